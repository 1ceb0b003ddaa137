// W4 GEMV throughput per busy core, independent of how loaded the machine is: one thread,
// CPU time (CLOCK_THREAD_CPUTIME_ID), a working set of several matrices larger than the
// L3 of one CCD. Prints weight GB read per CPU-second for each W4 ISA, the FP16 GEMV, and the
// plain read loop of runtime/bandwidth.cpp (the ceiling one core can pull).
// Not wired into CMake; build against the library of a build folder:
//   g++ -std=c++20 -O2 -Isrc bench/bench_w4.cpp build/release/libawqlib.a -lpthread -o /tmp/bench_w4
//   /tmp/bench_w4 [rows cols mats reps prefill_rows]   (defaults: 5632 2048 24 5 64 = the TinyLlama
//   MLP shape; prefill_rows 512 = a 512-token prompt, whose x no longer fits the L2)

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/half.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/w4.h"
#include "runtime/bandwidth.h"

using namespace awq;

namespace {
// Best (max) GB per CPU-second over reps of fn, which reads `bytes`.
double best_gbs(const std::function<void()>& fn, double bytes, int reps) {
  return bytes / best_thread_cpu_seconds(fn, reps) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 5632, K = argc > 2 ? std::atoll(argv[2]) : 2048;
  const int mats = argc > 3 ? std::atoi(argv[3]) : 24, reps = argc > 4 ? std::atoi(argv[4]) : 5;
  const int group = 128;
  std::mt19937 rng(1);
  ThreadPool pool(1);
  std::vector<float> x(static_cast<size_t>(K)), y(static_cast<size_t>(N));
  for (float& v : x) v = float(rng() % 1000) / 1000.0f - 0.5f;
  // W4: codes, zeros, scales per matrix, repacked into the kernels' tiles
  std::vector<W4Tiles> tiles(static_cast<size_t>(mats));
  std::vector<std::vector<uint16_t>> f16(static_cast<size_t>(mats));
  std::vector<Matrix> w4(static_cast<size_t>(mats)), wf(static_cast<size_t>(mats));
  for (int m = 0; m < mats; ++m) {
    std::vector<uint32_t> codes(size_t(N * K / 8));
    for (auto& c : codes) c = uint32_t(rng());
    const std::vector<uint8_t> zeros(size_t(N * K / group), 8);
    const std::vector<uint16_t> scales(size_t(N * K / group), f32_to_fp16(0.01f));
    tiles[size_t(m)] = w4_repack(codes.data(), zeros.data(), scales.data(), N, K, group);
    Matrix& w = w4[size_t(m)];
    w = Matrix(DType::I32, N, K, nullptr);
    w.kind = MatrixKind::AwqGemm;
    w.awq.group = group;
    w4_attach(w, tiles[size_t(m)]);
    f16[size_t(m)].assign(size_t(N * K), f32_to_fp16(0.01f));
    wf[size_t(m)] = Matrix(DType::F16, N, K, f16[size_t(m)].data());
  }
  const double w4_bytes = double(mats) * (double(N * K) / 2 + double(N * K / group) * 3);
  const double f16_bytes = double(mats) * double(N * K) * 2;
  std::printf("shape %lld x %lld, %d matrices (W4 %.0f MB, FP16 %.0f MB), 1 thread, GB per CPU-second (best of %d):\n",
              (long long)N, (long long)K, mats, w4_bytes / 1e6, f16_bytes / 1e6, reps);
  // The int8x2 kernels right after their int8 twins, and their ratio (same run, same data).
  double decode_gbs[kW4IsaCount] = {};
  for (W4Isa isa : {W4Isa::Scalar, W4Isa::Avx512, W4Isa::Avx2, W4Isa::Avx2Int8x2, W4Isa::Avx512Vnni,
                    W4Isa::Avx512VnniInt8x2, W4Isa::AvxVnniInt8x2}) {
    if (!w4_isa_supported(isa)) continue;
    const double g = best_gbs([&] {
      for (const Matrix& w : w4) w4_matmul(pool, isa, x.data(), 1, w, nullptr, y.data());
    }, w4_bytes, reps);
    decode_gbs[int(isa)] = g;
    std::printf("  w4 gemv %-18s %7.2f GB/s  (%.2f G weights/s)\n", w4_isa_name(isa), g, g * 1e9 / (w4_bytes / mats / double(N * K) * 1e9) );
  }
  for (auto [one, two] : {std::pair{W4Isa::Avx2, W4Isa::Avx2Int8x2}, std::pair{W4Isa::Avx512Vnni, W4Isa::Avx512VnniInt8x2}})
    if (decode_gbs[int(one)] > 0)
      std::printf("  decode %s / %s: %.3f\n", w4_isa_name(two), w4_isa_name(one), decode_gbs[int(two)] / decode_gbs[int(one)]);
  // Prefill: P rows of x through one matrix, GFLOP per CPU-second (2 N K P flops).
  const int64_t P = argc > 5 ? std::atoll(argv[5]) : 64;
  std::vector<float> xp(static_cast<size_t>(P * K)), yp(static_cast<size_t>(P * N));
  for (float& v : xp) v = float(rng() % 1000) / 1000.0f - 0.5f;
  const double flops = 2.0 * double(N) * double(K) * double(P);
  double prefill_gflops[kW4IsaCount] = {};
  for (W4Isa isa : {W4Isa::Avx2, W4Isa::Avx2Int8x2, W4Isa::AvxVnniInt8x2, W4Isa::Avx512Vnni, W4Isa::Avx512VnniInt8x2}) {
    if (!w4_isa_supported(isa)) continue;
    const double g = best_gbs([&] { w4_matmul(pool, isa, xp.data(), P, w4[0], nullptr, yp.data()); }, flops, reps);
    prefill_gflops[int(isa)] = g;
    std::printf("  w4 prefill %d rows %-18s %7.1f GFLOP/s\n", int(P), w4_isa_name(isa), g);
  }
  for (auto [one, two] : {std::pair{W4Isa::Avx2, W4Isa::Avx2Int8x2}, std::pair{W4Isa::Avx512Vnni, W4Isa::Avx512VnniInt8x2}})
    if (prefill_gflops[int(one)] > 0)
      std::printf("  prefill %s / %s: %.3f\n", w4_isa_name(two), w4_isa_name(one), prefill_gflops[int(two)] / prefill_gflops[int(one)]);
  const double gd = best_gbs([&] { matmul_blocked(pool, gemm_best_isa(), xp.data(), P, w4[0], nullptr, yp.data()); }, flops, reps);
  std::printf("  w4 prefill %d rows dequant+f32 GEMM %7.1f GFLOP/s\n", int(P), gd);
  const double g16 = best_gbs([&] {
    for (const Matrix& w : wf) matmul(pool, x.data(), 1, w, nullptr, y.data());
  }, f16_bytes, reps);
  std::printf("  f16 gemv         %7.2f GB/s\n", g16);
  const double t0 = thread_cpu_seconds();
  const double bw = measure_read_bandwidth(pool, BandwidthOptions{});
  std::printf("  read loop (wall, 1 GiB, best of 5) %.2f GB/s  [%.1f s CPU]\n", bw, thread_cpu_seconds() - t0);
  return 0;
}
