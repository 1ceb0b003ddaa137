#include "ops/cpu/w4_act_quant.h"

// GCC 12's AVX-512 reduce and conversion intrinsics build on a self-initialised "undefined"
// vector, which -W(maybe-)uninitialized flags once inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace awq {

namespace {

// The group's 1 / u for `steps` codes per max|x|, or 0 when max|x| is 0 or so small that it
// overflows (the group is then taken as zeros: its products are below ~1e-34 |w| each, not
// rounded from inf, undefined as an int); unit: u, or 0 then.
float inverse_unit(float amax, float steps, float* unit) {
  const bool tiny = !(steps / amax <= std::numeric_limits<float>::max());
  *unit = tiny ? 0.0f : amax / steps;
  return amax > 0.0f && !tiny ? steps / amax : 0.0f;
}

float group_amax(const float* xg, int64_t gs) {
  float amax = 0.0f;
  for (int64_t k = 0; k < gs; ++k) amax = std::max(amax, std::fabs(xg[k]));
  return amax;
}

// Plain loops with target clones: the references, and the kernels where AVX-512 is missing.
// nearbyint in the default rounding mode rounds to nearest even, as the vector conversions do.
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
void int8_ref(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const float inv = inverse_unit(group_amax(xg, gs), 127.0f, &unit[g]);
    int32_t sum = 0;
    for (int64_t k8 = 0; k8 < gs; k8 += 8) {
      int8_t* dst = q + (g * gs + k8) / 8 * step;
      for (int64_t j = 0; j < 8; ++j) {
        const int32_t v = int32_t(std::nearbyint(xg[k8 + j] * inv));
        sum += v;
        dst[j] = int8_t(v);
      }
    }
    zsum[g] = unit[g] * float(sum);
  }
}

// |x * inv| <= 32258 (1 + 2^-23) rounds to |c| <= 32258, so |q1| <= 127. c / 254 is either a
// tie (c = 254 m + 127: either rounding leaves |q2| = 127) or at least 1/254 from one, far more
// than the float error of c * (1/254) (< 2^-16), so q1 is c / 254 rounded and |q2| <= 127.
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
void int8x2_ref(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const float inv = inverse_unit(group_amax(xg, gs), 127.0f * 254.0f, &unit[g]);
    int64_t sum = 0;  // |c| <= 32258 per input: int32 would overflow past 66 k inputs
    for (int64_t k8 = 0; k8 < gs; k8 += 8) {
      int8_t* dst = q + (g * gs + k8) / 8 * step;
      for (int64_t j = 0; j < 8; ++j) {
        const int32_t c = int32_t(std::nearbyint(xg[k8 + j] * inv));
        const int32_t hi = int32_t(std::nearbyint(float(c) * (1.0f / 254.0f)));
        dst[j] = int8_t(hi);
        dst[8 + j] = int8_t(c - 254 * hi);
        sum += c;
      }
    }
    zsum[g] = unit[g] * float(sum);
  }
}

// int8x2's codes c whole, as int16 in kInt16Order (w4_act_quant.h).
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
void int16_ref(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const float inv = inverse_unit(group_amax(xg, gs), 127.0f * 254.0f, &unit[g]);
    int64_t sum = 0;
    for (int64_t k8 = 0; k8 < gs; k8 += 8) {
      int8_t* dst = q + (g * gs + k8) / 8 * step;
      for (int s = 0; s < 8; ++s) {
        const int16_t c = int16_t(std::nearbyint(xg[k8 + kInt16Order[s]] * inv));
        std::memcpy(dst + 2 * s, &c, 2);
        sum += c;
      }
    }
    zsum[g] = unit[g] * float(sum);
  }
}

// AVX2: 8 inputs per vector, the same float products and rounding as the references. The
// default activations of the AVX2 kernels (int16) and int8's, so that AWQ_CPU_ISA=avx2 or an
// AVX2-only CPU does not quantize scalar.
__attribute__((target("avx2"))) float group_amax_avx2(const float* xg, int64_t gs) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m = _mm256_setzero_ps();
  for (int64_t k = 0; k < gs; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xg + k), abs_mask));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}

__attribute__((target("avx2"))) int64_t sum_lanes_avx2(__m256i v) {
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v);
  int64_t total = 0;
  for (int32_t l : lanes) total += l;
  return total;
}

// int8 (INT16 false): codes |c| <= 127, 8 bytes per run; int16: |c| <= 32258, 16 bytes per run
// in kInt16Order.
template <bool INT16>
__attribute__((target("avx2")))
void codes_avx2(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  // bytes of c0 c1 .. c7 (int16) -> kInt16Order
  const __m128i order = _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const __m256 inv = _mm256_set1_ps(inverse_unit(group_amax_avx2(xg, gs), INT16 ? 127.0f * 254.0f : 127.0f, &unit[g]));
    __m256i sum = _mm256_setzero_si256();  // per lane <= 32258 gs / 8: exact below 500 k inputs
    for (int64_t k = 0; k < gs; k += 8) {
      const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + k), inv));
      sum = _mm256_add_epi32(sum, c);
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));  // exact
      int8_t* dst = q + (g * gs + k) / 8 * step;
      if constexpr (INT16) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_shuffle_epi8(w, order));
      else _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm_packs_epi16(w, w));
    }
    zsum[g] = unit[g] * float(sum_lanes_avx2(sum));
  }
}

// AVX-512: 16 inputs per vector (two runs of 8). The same float products and the same rounding
// (vcvtps2dq, round to nearest even) as the references, so the same codes. A decode step
// quantizes x for every linear and a prefill 512 rows of it: the references cost ~10 % of a
// 1.1B prompt.
__attribute__((target("avx512f"))) float group_amax_avx512(const float* xg, int64_t gs) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t k = 0; k < gs; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xg + k)));
  return _mm512_reduce_max_ps(m);
}

__attribute__((target("avx512f")))
void int8_avx512(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const __m512 inv = _mm512_set1_ps(inverse_unit(group_amax_avx512(xg, gs), 127.0f, &unit[g]));
    __m512i sum = _mm512_setzero_si512();
    for (int64_t k = 0; k < gs; k += 16) {
      const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + k), inv));
      sum = _mm512_add_epi32(sum, c);
      const __m128i b = _mm512_cvtepi32_epi8(c);  // |c| <= 127: exact
      int8_t* dst = q + (g * gs + k) / 8 * step;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), b);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + step), _mm_unpackhi_epi64(b, b));
    }
    zsum[g] = unit[g] * float(_mm512_reduce_add_epi32(sum));
  }
}

__attribute__((target("avx512f")))
void int8x2_avx512(const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step, float* unit, float* zsum) {
  const __m512 inv254 = _mm512_set1_ps(1.0f / 254.0f);
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    const __m512 inv = _mm512_set1_ps(inverse_unit(group_amax_avx512(xg, gs), 127.0f * 254.0f, &unit[g]));
    __m512i sum = _mm512_setzero_si512();  // per lane <= 32258 gs / 16: exact below 1 M inputs
    for (int64_t k = 0; k < gs; k += 16) {
      const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + k), inv));
      const __m512i hi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(c), inv254));
      const __m512i lo = _mm512_sub_epi32(c, _mm512_sub_epi32(_mm512_slli_epi32(hi, 8), _mm512_slli_epi32(hi, 1)));
      sum = _mm512_add_epi32(sum, c);
      const __m128i h = _mm512_cvtepi32_epi8(hi), l = _mm512_cvtepi32_epi8(lo);  // both in [-127, 127]
      int8_t* dst = q + (g * gs + k) / 8 * step;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi64(h, l));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + step), _mm_unpackhi_epi64(h, l));
    }
    int64_t total = 0;
    alignas(64) int32_t lanes[16];
    _mm512_store_si512(lanes, sum);
    for (int32_t v : lanes) total += v;
    zsum[g] = unit[g] * float(total);
  }
}

void check(ActQuantIsa isa, int64_t K, int64_t gs) {
  if (!act_quant_supported(isa))
    throw std::runtime_error(isa == ActQuantIsa::Avx2 ? "quantize_act: this CPU lacks AVX2" : "quantize_act: this CPU lacks AVX-512");
  if (gs <= 0 || gs % 16 != 0 || K % gs != 0) throw std::logic_error("quantize_act: K must be a multiple of gs, gs of 16");
}

}  // namespace

bool act_quant_supported(ActQuantIsa isa) {
  switch (isa) {
    case ActQuantIsa::Scalar: return true;
    case ActQuantIsa::Avx2: return __builtin_cpu_supports("avx2");
    case ActQuantIsa::Avx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
}

void quantize_act_int8(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                       float* unit, float* zsum) {
  check(isa, K, gs);
  if (isa == ActQuantIsa::Avx512) int8_avx512(x, K, gs, q, step, unit, zsum);
  else if (isa == ActQuantIsa::Avx2) codes_avx2<false>(x, K, gs, q, step, unit, zsum);
  else int8_ref(x, K, gs, q, step, unit, zsum);
}

void quantize_act_int8x2(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                         float* unit, float* zsum) {
  check(isa, K, gs);
  if (isa == ActQuantIsa::Avx512) int8x2_avx512(x, K, gs, q, step, unit, zsum);
  else int8x2_ref(x, K, gs, q, step, unit, zsum);  // no AVX2 version: the AVX2 kernels take int16
}

void quantize_act_int16(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                        float* unit, float* zsum) {
  check(isa, K, gs);
  if (isa == ActQuantIsa::Avx2) codes_avx2<true>(x, K, gs, q, step, unit, zsum);
  else int16_ref(x, K, gs, q, step, unit, zsum);  // no AVX-512 version: the VNNI kernels take int8x2
}

}  // namespace awq
