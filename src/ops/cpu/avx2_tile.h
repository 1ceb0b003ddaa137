// AVX2 building blocks shared by the blocked GEMM (ops/cpu/gemm.cpp), the batched-decode
// streaming kernel (model/batch_linear.cpp) and the fp16-KV attention (ops/cpu/attention_kernels.cpp). Compiled with target attributes,
// so a portable build carries them; callers check the CPU before using them.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"

namespace awq {

// 8 consecutive elements of one row as f32. p: [8] elements of dtype DT (F32, F16 or BF16).
template <DType DT>
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8_f32(const void* p) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(p));
  } else {
    const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
    if constexpr (DT == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16
  }
}

// Sum of the 8 lanes: (lanes 0-3 + 4-7), then pairs, then the last two.
__attribute__((target("avx2,fma,f16c"))) inline float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// 8x8 transpose in registers: v[r] lane k -> v[k] lane r.
__attribute__((target("avx2,fma,f16c"))) inline void transpose8x8(__m256 v[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

}  // namespace awq
