#include "model/batch_linear.h"

#include <immintrin.h>

#include <cmath>

#include "core/half.h"
#include "ops/cpu/avx2_tile.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/w4.h"

namespace awq {

namespace {

template <DType DT>
float widen(const void* p, int64_t i) {
  if constexpr (DT == DType::F32) return static_cast<const float*>(p)[i];
  else if constexpr (DT == DType::F16) return fp16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

// W rows [r0, r0 + 8) against NX rows of x: y[i][r0 + j] = bias[r0 + j] + sum_k x[i][k] W[r0 + j][k]
// as one FMA chain over k per element (lane j of acc[i]). x: [NX, K]; y: [NX, ldy].
template <DType DT, int NX>
__attribute__((target("avx2,fma,f16c"))) void rows8(const float* x, const Matrix& w, int64_t r0,
                                                    const float* bias, float* y, int64_t ldy) {
  constexpr int64_t es = DT == DType::F32 ? 4 : 2;
  const int64_t K = w.cols;
  const char* wr = static_cast<const char*>(w.data) + r0 * K * es;  // [8, K]
  __m256 acc[NX];
  const __m256 b = bias ? _mm256_loadu_ps(bias + r0) : _mm256_setzero_ps();
  for (int i = 0; i < NX; ++i) acc[i] = b;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 v[8];
    for (int j = 0; j < 8; ++j) v[j] = load8_f32<DT>(wr + (j * K + k) * es);
    transpose8x8(v);  // v[kk]: lane j = W[r0 + j][k + kk]
    for (int kk = 0; kk < 8; ++kk)
      for (int i = 0; i < NX; ++i) acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(x[i * K + k + kk]), v[kk], acc[i]);
  }
  for (; k < K; ++k) {
    alignas(32) float col[8];
    for (int j = 0; j < 8; ++j) col[j] = widen<DT>(wr + j * K * es, k);
    const __m256 c = _mm256_load_ps(col);
    for (int i = 0; i < NX; ++i) acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(x[i * K + k]), c, acc[i]);
  }
  for (int i = 0; i < NX; ++i) _mm256_storeu_ps(y + i * ldy + r0, acc[i]);
}

// One W row (the N % 8 leftovers), the same FMA chain in scalar (std::fma rounds once, as
// the vector FMA does).
template <DType DT>
void row1(const float* x, int64_t nx, const Matrix& w, int64_t r, const float* bias, float* y, int64_t ldy) {
  constexpr int64_t es = DT == DType::F32 ? 4 : 2;
  const int64_t K = w.cols;
  const char* wr = static_cast<const char*>(w.data) + r * K * es;
  for (int64_t i = 0; i < nx; ++i) {
    float c = bias ? bias[r] : 0.0f;
    for (int64_t k = 0; k < K; ++k) c = std::fma(x[i * K + k], widen<DT>(wr, k), c);
    y[i * ldy + r] = c;
  }
}

template <DType DT>
void streaming(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias, float* y) {
  const int64_t N = w.rows, blocks = N / 8;
  pool.parallel_for(blocks + 1, [&](int64_t b, int64_t e) {  // item `blocks`: the N % 8 last rows
    for (int64_t q = b; q < e; ++q) {
      if (q == blocks) {
        for (int64_t r = 8 * blocks; r < N; ++r) row1<DT>(x, n, w, r, bias, y, N);
        continue;
      }
      int64_t i = 0;
      for (; i + 4 <= n; i += 4) rows8<DT, 4>(x + i * w.cols, w, 8 * q, bias, y + i * N, N);
      switch (n - i) {
        case 3: rows8<DT, 3>(x + i * w.cols, w, 8 * q, bias, y + i * N, N); break;
        case 2: rows8<DT, 2>(x + i * w.cols, w, 8 * q, bias, y + i * N, N); break;
        case 1: rows8<DT, 1>(x + i * w.cols, w, 8 * q, bias, y + i * N, N); break;
        default: break;
      }
    }
  }, /*min_chunk=*/16);
}

}  // namespace

bool batch_linear_streaming(ThreadPool& pool, const float* x, int64_t n, const Matrix& w,
                            const float* bias, float* y) {
  if (!dense_row_kernels_supported() || w.quantized() || n <= 0) return false;
  switch (w.dtype) {
    case DType::F32: streaming<DType::F32>(pool, x, n, w, bias, y); return true;
    case DType::F16: streaming<DType::F16>(pool, x, n, w, bias, y); return true;
    case DType::BF16: streaming<DType::BF16>(pool, x, n, w, bias, y); return true;
    default: return false;
  }
}

void batch_linear(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
                  float* y) {
  if (n < kBatchGemmMinRows && batch_linear_streaming(pool, x, n, w, bias, y)) return;
  // The int8-activation W4 kernels compute each row alone (the same bits for any n).
  if (w4_ready(w) && w4_isa_int8(w4_best_isa())) return w4_matmul(pool, w4_best_isa(), x, n, w, bias, y);
  matmul_blocked(pool, gemm_best_isa(), x, n, w, bias, y);
}

}  // namespace awq
