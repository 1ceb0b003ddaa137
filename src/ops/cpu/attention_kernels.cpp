#include "ops/cpu/attention_kernels.h"

// GCC 12's AVX-512 headers build unmasked intrinsics (cvtph) on a self-initialised
// "undefined" vector, which -Wuninitialized flags once inlined (GCC bug 105593, fixed in
// GCC 13); the values are never read (as in ops/cpu/w4.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "ops/cpu/avx2_tile.h"
#include "ops/cpu/matmul.h"

namespace awq {

namespace {

// exp(x) for x <= 0 (Cephes expf: range reduction by ln 2, degree-6 polynomial, ~2 ulp), in
// plain arithmetic the compiler vectorises; std::exp is a call per score and costs more than
// the Q K^T tile that produced the score. Inputs below -87 give ~1.6e-38 instead of less: the
// row maximum contributes exp(0) = 1 to every sum, so the difference is below f32 resolution.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting rounds to integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln2, ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// Scores [nk] -> probabilities: softmax in place (max subtracted, normalised).
void softmax_scores(float* scores, int64_t nk) {
  const float mx = max_of(scores, nk, -INFINITY);
  const float inv = 1.0f / exp_shift_sum(scores, nk, mx);
  for (int64_t t = 0; t < nk; ++t) scores[t] *= inv;
}

// ---- AVX-512F: 16 lanes; _mm512_cvtph_ps is AVX-512F itself (no F16C needed). ----

__attribute__((target("avx512f"))) inline __m512 load16_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// o[j0 .. j0 + 16 NV) = sum_t p[t] v_t[j0 ..], NV vectors held in registers over all keys.
// p: [nk] probabilities; value t of the chunk at v + t * ld.
template <int NV>
__attribute__((target("avx512f"), always_inline)) inline void pv_chunk_avx512(const float* p, int64_t nk,
                                                                              const uint16_t* v, int64_t ld, float* o) {
  __m512 acc[NV];
  for (int c = 0; c < NV; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t t = 0; t < nk; ++t) {
    const __m512 pt = _mm512_set1_ps(p[t]);
    for (int c = 0; c < NV; ++c) acc[c] = _mm512_fmadd_ps(pt, load16_f16(v + t * ld + 16 * c), acc[c]);
  }
  for (int c = 0; c < NV; ++c) _mm512_storeu_ps(o + 16 * c, acc[c]);
}

__attribute__((target("avx512f"))) void attend_one_f16_avx512(const float* q, const uint16_t* k,
                                                              const uint16_t* v, int64_t ld, int64_t first,
                                                              int64_t last, int64_t hd, float scale,
                                                              float* scores, float*, float* o) {
  const int64_t nk = last - first + 1, hv = hd / 16 * 16;
  for (int64_t t = first; t <= last; ++t) {
    const uint16_t* kt = k + t * ld;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= hd; j += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load16_f16(kt + j), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j + 16), load16_f16(kt + j + 16), a1);
    }
    if (j < hv) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load16_f16(kt + j), a0), j += 16;
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; j < hd; ++j) s += q[j] * fp16_to_f32(kt[j]);
    scores[t - first] = s * scale;
  }
  softmax_scores(scores, nk);
  const uint16_t* v0 = v + first * ld;  // value of key `first`
  int64_t j = 0;
  for (; j + 64 <= hv; j += 64) pv_chunk_avx512<4>(scores, nk, v0 + j, ld, o + j);
  switch ((hv - j) / 16) {
    case 3: pv_chunk_avx512<3>(scores, nk, v0 + j, ld, o + j); break;
    case 2: pv_chunk_avx512<2>(scores, nk, v0 + j, ld, o + j); break;
    case 1: pv_chunk_avx512<1>(scores, nk, v0 + j, ld, o + j); break;
    default: break;
  }
  for (j = hv; j < hd; ++j) {
    float acc = 0.0f;
    for (int64_t t = 0; t < nk; ++t) acc += scores[t] * fp16_to_f32(v0[t * ld + j]);
    o[j] = acc;
  }
}

// ---- AVX2 + FMA + F16C: 8 lanes. ----


template <int NV>
__attribute__((target("avx2,fma,f16c"), always_inline)) inline void pv_chunk_avx2(const float* p, int64_t nk,
                                                                                   const uint16_t* v, int64_t ld, float* o) {
  __m256 acc[NV];
  for (int c = 0; c < NV; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t t = 0; t < nk; ++t) {
    const __m256 pt = _mm256_set1_ps(p[t]);
    for (int c = 0; c < NV; ++c) acc[c] = _mm256_fmadd_ps(pt, load8_f32<DType::F16>(v + t * ld + 8 * c), acc[c]);
  }
  for (int c = 0; c < NV; ++c) _mm256_storeu_ps(o + 8 * c, acc[c]);
}

__attribute__((target("avx2,fma,f16c"))) void attend_one_f16_avx2(const float* q, const uint16_t* k,
                                                                  const uint16_t* v, int64_t ld, int64_t first,
                                                                  int64_t last, int64_t hd, float scale,
                                                                  float* scores, float*, float* o) {
  const int64_t nk = last - first + 1, hv = hd / 8 * 8;
  for (int64_t t = first; t <= last; ++t) {
    const uint16_t* kt = k + t * ld;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= hd; j += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8_f32<DType::F16>(kt + j), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j + 8), load8_f32<DType::F16>(kt + j + 8), a1);
    }
    if (j < hv) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8_f32<DType::F16>(kt + j), a0), j += 8;
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; j < hd; ++j) s += q[j] * fp16_to_f32(kt[j]);
    scores[t - first] = s * scale;
  }
  softmax_scores(scores, nk);
  const uint16_t* v0 = v + first * ld;
  int64_t j = 0;
  for (; j + 32 <= hv; j += 32) pv_chunk_avx2<4>(scores, nk, v0 + j, ld, o + j);
  switch ((hv - j) / 8) {
    case 3: pv_chunk_avx2<3>(scores, nk, v0 + j, ld, o + j); break;
    case 2: pv_chunk_avx2<2>(scores, nk, v0 + j, ld, o + j); break;
    case 1: pv_chunk_avx2<1>(scores, nk, v0 + j, ld, o + j); break;
    default: break;
  }
  for (j = hv; j < hd; ++j) {
    float acc = 0.0f;
    for (int64_t t = 0; t < nk; ++t) acc += scores[t] * fp16_to_f32(v0[t * ld + j]);
    o[j] = acc;
  }
}

// ---- Portable: each row widened into `row` by core/half.h, then the f32 loops. ----

void attend_one_f16_portable(const float* q, const uint16_t* k, const uint16_t* v, int64_t ld,
                             int64_t first, int64_t last, int64_t hd, float scale, float* scores,
                             float* row, float* o) {
  const int64_t nk = last - first + 1;
  for (int64_t t = first; t <= last; ++t) {
    for (int64_t j = 0; j < hd; ++j) row[j] = fp16_to_f32(k[t * ld + j]);
    scores[t - first] = dot_f32(q, row, hd) * scale;
  }
  softmax_scores(scores, nk);
  std::fill(o, o + hd, 0.0f);
  for (int64_t t = first; t <= last; ++t) {
    for (int64_t j = 0; j < hd; ++j) row[j] = fp16_to_f32(v[t * ld + j]);
    const float p = scores[t - first];
    for (int64_t j = 0; j < hd; ++j) o[j] += p * row[j];
  }
}

}  // namespace

// Partial sums in 16 lanes so the sum vectorises too (as dot_f32).
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
float exp_shift_sum(float* s, int64_t n, float mx) {
  for (int64_t j = 0; j < n; ++j) s[j] = exp_nonpositive(s[j] - mx);
  float acc[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; ++l) acc[l] += s[j + l];
  float sum = 0.0f;
  for (; j < n; ++j) sum += s[j];
  for (int l = 0; l < 16; ++l) sum += acc[l];
  return sum;
}

__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
float max_of(const float* s, int64_t n, float m) {
  float acc[16];
  for (float& a : acc) a = m;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; ++l) acc[l] = acc[l] > s[j + l] ? acc[l] : s[j + l];
  for (; j < n; ++j) m = std::max(m, s[j]);
  for (float a : acc) m = std::max(m, a);
  return m;
}

// As plain loops with target clones so the portable build vectorises them too (dot_f32 is
// inline; o[j] accumulates over t in order).
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
void attend_one_f32(const float* q, const float* k, const float* v, int64_t ld, int64_t first,
                    int64_t last, int64_t hd, float scale, float* scores, float* o) {
  const int64_t nk = last - first + 1;
  for (int64_t t = first; t <= last; ++t) scores[t - first] = dot_f32(q, k + t * ld, hd) * scale;
  const float mx = max_of(scores, nk, -INFINITY);
  const float inv = 1.0f / exp_shift_sum(scores, nk, mx);
  std::fill(o, o + hd, 0.0f);
  for (int64_t t = first; t <= last; ++t) {
    const float p = scores[t - first] * inv;
    const float* vt = v + t * ld;
    for (int64_t j = 0; j < hd; ++j) o[j] += p * vt[j];
  }
}

AttendOneF16 attend_one_f16(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Avx512: return attend_one_f16_avx512;
    case GemmIsa::Avx2: return attend_one_f16_avx2;
    case GemmIsa::Portable: break;
  }
  return attend_one_f16_portable;
}

}  // namespace awq
