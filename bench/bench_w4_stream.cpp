// W4 decode GEMV and FP16 GEMV streaming from DRAM against the plain read loop of
// runtime/bandwidth.cpp, same process, same threads, wall clock: the ratio is how close the
// kernels come to what the cores can read. The working set is beyond any cache (96 W4 matrices
// of 5632 x 2048 = 580 MB, four FP16 32000 x 2048 matrices = 524 MB, the TinyLlama lm_head
// shape); bench_w4's default 145 MB is partly held by this VM's caches (41 against 26 GB/s).
// Not wired into CMake; build against the sources:
//   g++ -std=c++20 -O3 -DNDEBUG -Isrc bench/bench_w4_stream.cpp src/ops/cpu/w4.cpp
//       src/ops/cpu/w4_act_quant.cpp src/ops/cpu/gemm.cpp src/ops/cpu/matmul.cpp
//       src/runtime/bandwidth.cpp src/core/*.cpp src/quant/autoawq_pack.cpp -lpthread -o /tmp/bench_w4_stream
//   /tmp/bench_w4_stream [threads rounds]   (defaults: 2 3)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/w4.h"
#include "runtime/bandwidth.h"

using namespace awq;

namespace {
// Best GB/s over reps of fn, which reads `bytes`.
template <class F>
double best_wall_gbs(F&& fn, double bytes, int reps) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::max(best, bytes / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2, rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const int64_t N = 5632, K = 2048, group = 128, mats = 96, vocab = 32000, heads = 4;
  ThreadPool pool(threads);
  std::mt19937 rng(1);
  std::vector<float> x(static_cast<size_t>(K)), y(static_cast<size_t>(vocab));
  for (float& v : x) v = float(rng() % 1000) / 1000.0f - 0.5f;
  std::vector<W4Tiles> tiles(static_cast<size_t>(mats));
  std::vector<Matrix> w4(static_cast<size_t>(mats));
  for (int64_t m = 0; m < mats; ++m) {
    std::vector<uint32_t> codes(static_cast<size_t>(N * K / 8));
    for (auto& c : codes) c = uint32_t(rng());
    const std::vector<uint8_t> zeros(static_cast<size_t>(N * K / group), 8);
    const std::vector<uint16_t> scales(static_cast<size_t>(N * K / group), f32_to_fp16(0.01f));
    tiles[size_t(m)] = w4_repack(codes.data(), zeros.data(), scales.data(), N, K, int(group));
    Matrix& w = w4[size_t(m)];
    w = Matrix(DType::I32, N, K, nullptr);
    w.kind = MatrixKind::AwqGemm;
    w.awq.group = int(group);
    w4_attach(w, tiles[size_t(m)]);
  }
  std::vector<std::vector<uint16_t>> f16(static_cast<size_t>(heads));
  std::vector<Matrix> wf(static_cast<size_t>(heads));
  for (int64_t m = 0; m < heads; ++m) {
    f16[size_t(m)].assign(static_cast<size_t>(vocab * K), f32_to_fp16(0.01f));
    wf[size_t(m)] = Matrix(DType::F16, vocab, K, f16[size_t(m)].data());
  }
  const double w4_bytes = double(mats) * (double(N * K) / 2 + double(N * K / group) * 3);
  const double f16_bytes = double(heads) * double(vocab * K) * 2;
  std::printf("%d threads; W4 %.0f MB (%s), FP16 %.0f MB; best of 5 (W4) / 3 (FP16) per round\n", threads,
              w4_bytes / 1e6, w4_isa_name(w4_best_isa()), f16_bytes / 1e6);
  for (int round = 0; round < rounds; ++round) {
    const double g4 = best_wall_gbs([&] {
      for (const Matrix& w : w4) w4_matmul(pool, w4_best_isa(), x.data(), 1, w, nullptr, y.data());
    }, w4_bytes, 5);
    const double g16 = best_wall_gbs([&] {
      for (const Matrix& w : wf) matmul(pool, x.data(), 1, w, nullptr, y.data());
    }, f16_bytes, 3);
    const double bw = measure_read_bandwidth(pool, BandwidthOptions{});
    std::printf("  round %d: w4 gemv %6.2f GB/s (%.3f of the read loop), f16 gemv %6.2f GB/s (%.3f), read loop %6.2f GB/s\n",
                round + 1, g4, g4 / bw, g16, g16 / bw, bw);
  }
  return 0;
}
