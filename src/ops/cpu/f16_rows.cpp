#include "ops/cpu/f16_rows.h"

// GCC 12's AVX-512 headers build unmasked intrinsics (cvtph) on a self-initialised
// "undefined" vector, which -Wuninitialized flags once inlined (GCC bug 105593, fixed in
// GCC 13); the values are never read (as in ops/cpu/w4.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include "core/half.h"

namespace awq {

namespace {

void widen_portable(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(src[i]);
}
void round_portable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_fp16(src[i]);
}

__attribute__((target("avx2,f16c"))) void widen_avx2(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  widen_portable(src + i, dst + i, n - i);
}
__attribute__((target("avx2,f16c"))) void round_avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  round_portable(src + i, dst + i, n - i);
}

__attribute__((target("avx512f"))) void widen_avx512(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  widen_portable(src + i, dst + i, n - i);
}
__attribute__((target("avx512f"))) void round_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  round_portable(src + i, dst + i, n - i);
}

}  // namespace

bool f16_isa_supported(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Portable: return true;
    case GemmIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case GemmIsa::Avx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
}

GemmIsa f16_best_isa() {
  static const GemmIsa best = [] {
    GemmIsa isa = gemm_best_isa();
    if (isa == GemmIsa::Avx512 && !f16_isa_supported(isa)) isa = GemmIsa::Avx2;
    if (isa == GemmIsa::Avx2 && !f16_isa_supported(isa)) isa = GemmIsa::Portable;
    return isa;
  }();
  return best;
}

void f16_to_f32_row(GemmIsa isa, const uint16_t* src, float* dst, int64_t n) {
  switch (isa) {
    case GemmIsa::Avx512: return widen_avx512(src, dst, n);
    case GemmIsa::Avx2: return widen_avx2(src, dst, n);
    case GemmIsa::Portable: return widen_portable(src, dst, n);
  }
}

void f32_to_f16_row(GemmIsa isa, const float* src, uint16_t* dst, int64_t n) {
  switch (isa) {
    case GemmIsa::Avx512: return round_avx512(src, dst, n);
    case GemmIsa::Avx2: return round_avx2(src, dst, n);
    case GemmIsa::Portable: return round_portable(src, dst, n);
  }
}

void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) { f16_to_f32_row(f16_best_isa(), src, dst, n); }
void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n) { f32_to_f16_row(f16_best_isa(), src, dst, n); }

}  // namespace awq
