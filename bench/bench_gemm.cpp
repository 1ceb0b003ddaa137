// GEMM throughput: matmul_ref vs the blocked GEMM (each supported ISA), same run, same data.
// Not wired into CMake; build against the library of a build folder:
//   g++ -std=c++20 -O2 -Isrc bench/bench_gemm.cpp build/gemm/libawqlib.a -lpthread
//       -o /tmp/bench_gemm
//   /tmp/bench_gemm [n K N dtype threads reps]     (defaults: 512 384 1024 f16 2 15)
//   dtype: f32 | f16 | bf16 | awq (4-bit, group 128)
// Dense weights also time the server's two row-exact kernels (batch_linear, gemv_order_matmul).
// Prints GFLOP/s (2 n K N / time) as min-time (best) and median over reps; the machine may be
// shared, so the ratio of medians measured here is the number to quote.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "model/batch_linear.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "quant/autoawq_pack.h"

using namespace awq;

namespace {

// Seconds per call of fn over `reps` timed calls (after one warm-up): sorted.
std::vector<double> time_calls(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 512;
  const int64_t K = argc > 2 ? std::atoll(argv[2]) : 384;
  const int64_t N = argc > 3 ? std::atoll(argv[3]) : 1024;
  const std::string dt = argc > 4 ? argv[4] : "f16";
  const int threads = argc > 5 ? std::atoi(argv[5]) : 2;
  const int reps = argc > 6 ? std::atoi(argv[6]) : 15;

  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(size_t(n * K)), y(size_t(n * N)), wf(size_t(N * K));
  for (float& v : x) v = nd(rng);
  for (float& v : wf) v = 0.05f * nd(rng);
  std::vector<uint16_t> wh(wf.size());
  Matrix w{DType::F32, N, K, wf.data()};
  // awq: 4-bit, group 128, from the row repack (as the engine loads it); K % 128 == 0, N % 8 == 0
  std::vector<uint16_t> w16;
  GroupQuantized q;
  PackedGemm pk;
  AwqRows rows;
  if (dt == "awq") {
    w16.resize(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) w16[i] = f32_to_fp16(wf[i]);
    const QuantParams p{4, 128, true};
    q = quantize_autoawq(w16.data(), N, K, p);
    pk = pack_gemm(q);
    rows = repack_rows(pk.qweight.data(), pk.qzeros.data(), pk.scales.data(), N, K, p, "w");
    w = Matrix{DType::I32, N, K, pk.qweight.data()};
    w.kind = MatrixKind::AwqGemm;
    w.awq = AwqMatrix{4, 128, pk.qweight.data(), pk.qzeros.data(), pk.scales.data(),
                      rows.codes.data(), rows.zeros.data(), rows.scales.data()};
  }
  if (dt == "f16" || dt == "bf16") {
    for (size_t i = 0; i < wf.size(); ++i)
      wh[i] = dt == "f16" ? f32_to_fp16(wf[i]) : f32_to_bf16(wf[i]);
    w = Matrix{dt == "f16" ? DType::F16 : DType::BF16, N, K, wh.data()};
  }
  ThreadPool pool(threads);
  const double flop = 2.0 * double(n) * double(K) * double(N);
  auto report = [&](const char* name, const std::vector<double>& t) {
    std::printf("%-10s min %8.3f ms  median %8.3f ms   GFLOP/s best %7.1f  median %7.1f\n", name,
                t.front() * 1e3, t[t.size() / 2] * 1e3, flop / t.front() * 1e-9,
                flop / t[t.size() / 2] * 1e-9);
  };
  std::printf("n=%lld K=%lld N=%lld %s, %d threads, %d reps\n", (long long)n, (long long)K,
              (long long)N, dt.c_str(), threads, reps);
  report("ref", time_calls([&] { matmul_ref(pool, x.data(), n, w, nullptr, y.data()); }, reps));
  report("matmul", time_calls([&] { matmul(pool, x.data(), n, w, nullptr, y.data()); }, reps));
  // The server's row-exact kernels for dense weights: the GEMM's order at any n (batch_linear:
  // the blocked GEMM from 4 rows, a transposing streaming kernel below) and the GEMV's order
  // at any n (gemv_order_matmul, the server's logits).
  if (!w.quantized()) {
    report("batch_linear", time_calls([&] { batch_linear(pool, x.data(), n, w, nullptr, y.data()); }, reps));
    report("gemv_order", time_calls([&] { gemv_order_matmul(pool, x.data(), n, w, nullptr, y.data()); }, reps));
  }
  for (GemmIsa isa : {GemmIsa::Portable, GemmIsa::Avx2, GemmIsa::Avx512})
    if (gemm_isa_supported(isa))
      report(gemm_isa_name(isa),
             time_calls([&] { matmul_blocked(pool, isa, x.data(), n, w, nullptr, y.data()); }, reps));
  return 0;
}
