// CPU attention throughput with an fp16 vs an f32 KV cache, per busy core: one thread, CPU time
// (CLOCK_THREAD_CPUTIME_ID), so the figures hold on a loaded machine. TinyLlama-1.1B's shape
// (32 query heads, 4 KV heads, head_dim 64, 22 layers): each decode step runs one query against
// every layer's cache (22 caches: 46 MB f32 / 23 MB fp16 at 1024 positions, beyond the L2),
// the prefill runs `prefill` queries against one layer. Prints microseconds per decode step (all
// layers) and the KV bytes read per second; for the fp16 cache each decode kernel (AVX-512,
// AVX2+F16C, portable) and the blocked prefill with the best micro-kernels.
// Not wired into CMake; build against the library of a build folder:
//   g++ -std=c++20 -O2 -Isrc bench/bench_attention.cpp build/release/libawqlib.a -lpthread -o /tmp/bench_attention
//   /tmp/bench_attention [ctx reps prefill]   (defaults: 1024 5 256)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/half.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/f16_rows.h"

using namespace awq;

int main(int argc, char** argv) {
  const int64_t ctx = argc > 1 ? std::atoll(argv[1]) : 1024;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const int64_t prefill = argc > 3 ? std::atoll(argv[3]) : 256;
  const int64_t layers = 22, heads = 32, kv_heads = 4, hd = 64, kvd = kv_heads * hd;
  const AttentionShape shape{heads, kv_heads, hd, ctx, 0};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> k32(layers), v32(layers);
  std::vector<std::vector<uint16_t>> k16(layers), v16(layers);
  for (int64_t l = 0; l < layers; ++l) {
    k32[size_t(l)].resize(size_t(ctx * kvd)), v32[size_t(l)].resize(size_t(ctx * kvd));
    for (float& x : k32[size_t(l)]) x = nd(rng);
    for (float& x : v32[size_t(l)]) x = nd(rng);
    k16[size_t(l)].resize(k32[size_t(l)].size()), v16[size_t(l)].resize(v32[size_t(l)].size());
    f32_to_f16_row(k32[size_t(l)].data(), k16[size_t(l)].data(), ctx * kvd);
    f32_to_f16_row(v32[size_t(l)].data(), v16[size_t(l)].data(), ctx * kvd);
  }
  std::vector<float> q(size_t(std::max<int64_t>(prefill, 1) * heads * hd)), out(q.size());
  for (float& x : q) x = nd(rng);
  ThreadPool pool(1);
  const int32_t last = int32_t(ctx - 1);

  std::printf("decode attention, 1 thread, CPU time, best of %d: TinyLlama shape, %lld layers, query at position %lld\n",
              reps, (long long)layers, (long long)last);
  const double kv_bytes32 = 2.0 * double(layers) * double(ctx) * double(kvd) * 4.0;
  auto decode = [&](KvType t, GemmIsa isa) {
    return best_thread_cpu_seconds([&] {
      for (int64_t l = 0; l < layers; ++l) {
        const KvView kv = t == KvType::F32 ? KvView::f32(k32[size_t(l)].data(), v32[size_t(l)].data())
                                           : KvView::f16(k16[size_t(l)].data(), v16[size_t(l)].data());
        attention_rows(pool, isa, q.data(), kv, &last, 1, shape, out.data());
      }
    }, reps);
  };
  const double t32 = decode(KvType::F32, f16_best_isa());
  std::printf("  f32 cache (target clones)      %8.1f us/step  %6.2f GB/s of KV\n", t32 * 1e6, kv_bytes32 / t32 / 1e9);
  for (GemmIsa isa : {GemmIsa::Avx512, GemmIsa::Avx2, GemmIsa::Portable}) {
    if (!f16_isa_supported(isa)) continue;
    const double t16 = decode(KvType::F16, isa);
    std::printf("  f16 cache, %-8s kernel      %8.1f us/step  %6.2f GB/s of KV  (f32 time / f16 time %.2fx)\n",
                gemm_isa_name(isa), t16 * 1e6, kv_bytes32 / 2 / t16 / 1e9, t32 / t16);
  }

  if (prefill > 1) {
    std::vector<int32_t> pos(static_cast<size_t>(prefill));
    for (int64_t i = 0; i < prefill; ++i) pos[size_t(i)] = int32_t(ctx - prefill + i);
    auto blocked = [&](KvType t) {
      const KvView kv = t == KvType::F32 ? KvView::f32(k32[0].data(), v32[0].data())
                                         : KvView::f16(k16[0].data(), v16[0].data());
      return best_thread_cpu_seconds([&] { attention_blocked(pool, gemm_best_isa(), q.data(), kv, pos.data(), prefill, shape, out.data()); }, reps);
    };
    const double p32 = blocked(KvType::F32), p16 = blocked(KvType::F16);
    std::printf("prefill attention (blocked, %s micro-kernels), %lld queries at positions %lld..%lld, one layer:\n",
                gemm_isa_name(gemm_best_isa()), (long long)prefill, (long long)(ctx - prefill), (long long)last);
    std::printf("  f32 cache %8.1f us   f16 cache %8.1f us   (f16 time / f32 time %.3fx)\n", p32 * 1e6, p16 * 1e6, p16 / p32);
  }
  return 0;
}
