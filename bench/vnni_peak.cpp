// The instruction ceiling of the W4 integer kernels on one core: 16 independent chains of
// vpdpbusd zmm (and, for comparison, of vfmadd zmm), nothing else in the loop. The int8x2
// prefill kernel needs two vpdpbusd per 64 multiply-adds; docs/results/cpu.md compares it
// with this figure. Not wired into CMake:
//   g++ -O2 bench/vnni_peak.cpp -o /tmp/vnni_peak && /tmp/vnni_peak
// GCC 12's reduce intrinsics read a self-initialised "undefined" vector (GCC bug 105593), as
// in src/ops/cpu/w4.cpp.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <chrono>
#include <cstdio>

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int main() {
  constexpr long kInstr = 200000000;
  __m512i a[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm512_set1_epi32(i);
  __m512i w = _mm512_set1_epi8(3);
  const __m512i x = _mm512_set1_epi8(1);
  auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < kInstr / 16; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) a[i] = _mm512_dpbusd_epi32(a[i], w, x);
    __asm__ volatile("" : "+v"(w));  // keeps the loop from being folded
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512i r = a[0];
  for (int i = 1; i < 16; ++i) r = _mm512_add_epi32(r, a[i]);
  std::printf("vpdpbusd zmm: %.3f G instructions/s = %.1f G int8 ops/s (checksum %d)\n", kInstr / s / 1e9,
              kInstr * 128.0 / s / 1e9, _mm512_reduce_add_epi32(r));
  __m512 f[16];
  for (int i = 0; i < 16; ++i) f[i] = _mm512_set1_ps(float(i));
  __m512 fw = _mm512_set1_ps(1.0001f);
  const __m512 fx = _mm512_set1_ps(0.9999f);
  t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < kInstr / 16; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) f[i] = _mm512_fmadd_ps(f[i], fw, fx);
    __asm__ volatile("" : "+v"(fw));
  }
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 fr = f[0];
  for (int i = 1; i < 16; ++i) fr = _mm512_add_ps(fr, f[i]);
  std::printf("vfmadd231ps zmm: %.3f G instructions/s = %.1f GFLOP/s (checksum %g)\n", kInstr / s / 1e9,
              kInstr * 32.0 / s / 1e9, double(_mm512_reduce_add_ps(fr)));
  return 0;
}
