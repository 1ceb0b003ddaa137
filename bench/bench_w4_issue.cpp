// Issue rate of the AVX2 W4 decode kernel's inner loop (ops/cpu/w4.cpp tile_avx2_c16, one row of
// x, both 32-byte halves of each 64-byte line), on tiles that stay in L2, so that neither DRAM
// nor the prefetcher is measured: A is the kernel's instruction mix; B the int8x2-digit
// alternative (vpmaddubsw, int16 sums over 4 steps); D is A with vpxor in place of vpmaddwd
// (wrong results, same op count: if D is no faster, the multiplier is not the limit).
// docs/results/cpu.md "Software prefetch in the AVX2 decode kernel". Not wired into CMake:
//   g++ -O2 -mavx2 -mfma -std=c++20 bench/bench_w4_issue.cpp -o /tmp/bench_w4_issue
//   /tmp/bench_w4_issue [KiB of tiles, default 256]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static inline int32_t ld4(const int8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}
// A (Mul): the kernel's mix; D (!Mul): the same with vpxor in place of each vpmaddwd.
template <bool Mul>
__attribute__((target("avx2"))) inline __m256i mul_or_xor(__m256i a, __m256i b) {
  return Mul ? _mm256_madd_epi16(a, b) : _mm256_xor_si256(a, b);
}
template <bool Mul>
__attribute__((target("avx2"), noinline)) __m256i varA(const uint8_t* p, const int8_t* xs, int64_t steps,
                                                       int64_t groups) {
  const __m256i nib = _mm256_set1_epi16(0x000F);
  __m256i tot = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (int64_t j = 0; j < steps; ++j, p += 64, xs += 16) {
      const __m256i x02 = _mm256_set1_epi32(ld4(xs)), x13 = _mm256_set1_epi32(ld4(xs + 4)),
                    x46 = _mm256_set1_epi32(ld4(xs + 8)), x57 = _mm256_set1_epi32(ld4(xs + 12));
      for (int h = 0; h < 2; ++h) {
        const __m256i w = _mm256_load_si256((const __m256i*)(p + 32 * h));
        const __m256i w02 = _mm256_and_si256(w, nib), w13 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nib),
                      w46 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib), w57 = _mm256_srli_epi16(w, 12);
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(mul_or_xor<Mul>(w02, x02), mul_or_xor<Mul>(w13, x13)),
                                     _mm256_add_epi32(mul_or_xor<Mul>(w46, x46), mul_or_xor<Mul>(w57, x57)));
        if (h == 0)
          a0 = _mm256_add_epi32(a0, s);
        else
          a1 = _mm256_add_epi32(a1, s);
      }
    }
    tot = _mm256_add_epi32(tot, _mm256_add_epi32(a0, a1));
  }
  return tot;
}
// B: int8x2 digits (u8 nibbles x s8 digits via vpmaddubsw), int16 accumulation over 4 steps, then vpmaddwd with (254 |
// 1).
__attribute__((target("avx2"), noinline)) __m256i varB(const uint8_t* p, const int8_t* xs, int64_t steps,
                                                       int64_t groups) {
  const __m256i lowm = _mm256_set1_epi8(0x0F), k254 = _mm256_set1_epi16(254), ones = _mm256_set1_epi16(1);
  __m256i tot = _mm256_setzero_si256();
  for (int64_t g = 0; g < groups; ++g) {
    __m256i a[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int64_t j0 = 0; j0 < steps; j0 += 4) {
      __m256i d1[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()},
              d2[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int64_t j = 0; j < 4; ++j, p += 64, xs += 16) {
        const __m256i xh_lo = _mm256_set1_epi32(ld4(xs)), xh_hi = _mm256_set1_epi32(ld4(xs + 4)),
                      xl_lo = _mm256_set1_epi32(ld4(xs + 8)), xl_hi = _mm256_set1_epi32(ld4(xs + 12));
        for (int h = 0; h < 2; ++h) {
          const __m256i w = _mm256_load_si256((const __m256i*)(p + 32 * h));
          const __m256i lo = _mm256_and_si256(w, lowm), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), lowm);
          d1[h] = _mm256_add_epi16(d1[h],
                                   _mm256_add_epi16(_mm256_maddubs_epi16(lo, xh_lo), _mm256_maddubs_epi16(hi, xh_hi)));
          d2[h] = _mm256_add_epi16(d2[h],
                                   _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl_lo), _mm256_maddubs_epi16(hi, xl_hi)));
        }
      }
      for (int h = 0; h < 2; ++h)
        a[h] = _mm256_add_epi32(a[h], _mm256_add_epi32(_mm256_madd_epi16(d1[h], k254), _mm256_madd_epi16(d2[h], ones)));
    }
    tot = _mm256_add_epi32(tot, _mm256_add_epi32(a[0], a[1]));
  }
  return tot;
}
using Fn = __m256i (*)(const uint8_t*, const int8_t*, int64_t, int64_t);

int main(int argc, char** argv) {
  const int64_t kib = argc > 1 ? atoll(argv[1]) : 256;
  const int64_t lines = kib * 1024 / 64, steps = 16, groups = lines / steps;  // groups of 128 inputs
  uint8_t* w = static_cast<uint8_t*>(aligned_alloc(64, lines * 64));
  std::vector<int8_t> x(lines * 16 + 64);
  for (int64_t i = 0; i < lines * 64; ++i) w[i] = uint8_t(rand());
  for (auto& v : x) v = int8_t(rand() % 200 - 100);
  const Fn fns[3] = {varA<true>, varB, varA<false>};
  const char* names[3] = {"A int16 codes (the kernel)", "B int8x2 digits, int16 sums", "D A with vpxor for vpmaddwd"};
  const int reps = int(4096 * 1024 / kib);
  for (int f = 0; f < 3; ++f) {
    double best = 1e9;
    alignas(32) int32_t chk[8] = {};
    for (int t = 0; t < 7; ++t) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < reps; ++k)
        _mm256_store_si256(reinterpret_cast<__m256i*>(chk), fns[f](w, x.data(), steps, groups));
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    printf("%-30s %6.2f GB/s per core (check %d)\n", names[f], double(lines) * 64 * reps / best / 1e9, chk[0]);
  }
  free(w);
}
