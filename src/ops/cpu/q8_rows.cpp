#include "ops/cpu/q8_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4_act_quant.h"

namespace awq {

namespace {

constexpr int kLanes = 8;  // the f32 sums: block b adds into lane b % 8, then lanes 0..7 in order

// The per-block integer sums of one weight row against one quantized x row, and the f32 sum in
// the order both kernels use: lane[b % 8] = fma(d[b] * u[b], float(s_b), lane[b % 8]).
float finish_lanes(const float* lane) {
  float y = 0.0f;
  for (int l = 0; l < kLanes; ++l) y += lane[l];
  return y;
}

// x codes: int16, the same slot order as the weights' (both permuted alike: the sum is the same).
// |q| <= 127, |c| <= 32258: a block's sum is below 2^27 in magnitude (exact in int32; its
// conversion to f32 rounds the same way in both kernels).
void tail_blocks(const int8_t* wq, const float* wd, const int16_t* xq, const float* xu, int64_t b0, int64_t blocks,
                 float* lane) {
  for (int64_t b = b0; b < blocks; ++b) {
    int32_t s = 0;
    for (int64_t i = 0; i < kQ8Block; ++i) s += int32_t(wq[b * kQ8Block + i]) * int32_t(xq[b * kQ8Block + i]);
    lane[b % kLanes] = std::fma(wd[b] * xu[b], float(s), lane[b % kLanes]);
  }
}

float dot_scalar(const int8_t* wq, const float* wd, const int16_t* xq, const float* xu, int64_t blocks) {
  float lane[kLanes] = {};
  tail_blocks(wq, wd, xq, xu, 0, blocks, lane);
  return finish_lanes(lane);
}

// The int32 sums of a block's 32 products q c, as 8 partial sums: the weights widened to int16,
// then vpmaddwd (pairs of 16-bit products added into 32 bits).
__attribute__((target("avx2"))) inline __m256i block_products(const int8_t* w, const int16_t* x) {
  const __m256i w_lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  const __m256i w_hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
  const __m256i x_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i x_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16));
  return _mm256_add_epi32(_mm256_madd_epi16(w_lo, x_lo), _mm256_madd_epi16(w_hi, x_hi));
}

__attribute__((target("avx2,fma"))) float dot_avx2(const int8_t* wq, const float* wd, const int16_t* xq,
                                                   const float* xu, int64_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + kLanes <= blocks; b += kLanes) {
    __m256i p[kLanes];
    for (int j = 0; j < kLanes; ++j) p[j] = block_products(wq + (b + j) * kQ8Block, xq + (b + j) * kQ8Block);
    // Horizontal sums, block j into lane j: two rounds of hadd within 128-bit halves, then the
    // low and high halves added.
    const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
    const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
    const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
    const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                                       _mm256_permute2x128_si256(h0123, h4567, 0x31));
    const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(wd + b), _mm256_loadu_ps(xu + b));
    acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(s), acc);
  }
  alignas(32) float lane[kLanes];
  _mm256_store_ps(lane, acc);
  tail_blocks(wq, wd, xq, xu, b, blocks, lane);
  return finish_lanes(lane);
}

// quantize_act_int16 has an AVX2 version and the scalar reference (the same bits).
ActQuantIsa act_isa() { return act_quant_supported(ActQuantIsa::Avx2) ? ActQuantIsa::Avx2 : ActQuantIsa::Scalar; }

}  // namespace

bool q8_rows_fit(const Matrix& w) {
  const bool dense_float = w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16;
  return !w.quantized() && dense_float && w.rows > 0 && w.cols > 0 && w.cols % kQ8Block == 0;
}

Q8Rows q8_rows_from(ThreadPool& pool, const Matrix& w) {
  check(q8_rows_fit(w), "q8_rows_from: needs a dense F32/F16/BF16 matrix with a multiple of 32 columns");
  Q8Rows out;
  out.rows = w.rows;
  out.cols = w.cols;
  const int64_t blocks = w.cols / kQ8Block;
  out.q.resize(size_t(w.rows * w.cols));
  out.d.resize(size_t(w.rows * blocks));
  pool.reserve_scratch(size_t(w.cols) * sizeof(float));
  pool.parallel_for(
      w.rows,
      [&](int64_t r0, int64_t r1) {
        float* row = ThreadPool::scratch<float>();  // [cols]
        for (int64_t r = r0; r < r1; ++r) {
          widen_row(w, r, row);
          for (int64_t b = 0; b < blocks; ++b) {
            const float* v = row + b * kQ8Block;
            float amax = 0.0f;
            for (int64_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
            const float d = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            out.d[size_t(r * blocks + b)] = d;
            int8_t* q = out.q.data() + r * w.cols + b * kQ8Block;
            for (int64_t i = 0; i < kQ8Block; ++i) {  // slot i holds input kInt16Order[i % 8] of its run
              const float vi = v[i / 8 * 8 + kInt16Order[i % 8]];
              q[i] = int8_t(std::clamp(std::nearbyint(vi * inv), -127.0f, 127.0f));
            }
          }
        }
      },
      64);
  return out;
}

bool q8_isa_supported(Q8Isa isa) {
  return isa == Q8Isa::Scalar || (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
}

Q8Isa q8_best_isa() { return q8_isa_supported(Q8Isa::Avx2) ? Q8Isa::Avx2 : Q8Isa::Scalar; }

void q8_rows_matmul(ThreadPool& pool, Q8Isa isa, const float* x, int64_t n, const Q8Rows& w, const float* bias,
                    float* y) {
  check(q8_isa_supported(isa), "q8_rows_matmul: this CPU lacks AVX2 + FMA");
  if (n <= 0) return;
  const int64_t K = w.cols, blocks = K / kQ8Block;
  // x quantized once per call, on the caller's thread (its buffers reused from call to call).
  thread_local std::vector<int16_t> xq;
  thread_local std::vector<float> xu, xz;
  xq.resize(size_t(n * K));
  xu.resize(size_t(n * blocks));
  xz.resize(size_t(n * blocks));
  const ActQuantIsa aisa = act_isa();
  for (int64_t i = 0; i < n; ++i)  // step 16 bytes: the runs of 8 int16 codes back to back
    quantize_act_int16(aisa, x + i * K, K, kQ8Block, reinterpret_cast<int8_t*>(xq.data() + i * K), 16,
                       xu.data() + i * blocks, xz.data() + i * blocks);
  const auto dot = isa == Q8Isa::Avx2 ? dot_avx2 : dot_scalar;
  const int16_t* xqp = xq.data();
  const float* xup = xu.data();
  pool.parallel_for(
      w.rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int8_t* wq = w.q.data() + r * K;
          const float* wd = w.d.data() + r * blocks;
          const float b = bias ? bias[r] : 0.0f;
          for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = dot(wq, wd, xqp + i * K, xup + i * blocks, blocks) + b;
        }
      },
      16);
}

void q8_rows_matmul(ThreadPool& pool, const float* x, int64_t n, const Q8Rows& w, const float* bias, float* y) {
  q8_rows_matmul(pool, q8_best_isa(), x, n, w, bias, y);
}

}  // namespace awq
