// Reference matmul: y = x W^T, the plain multi-threaded kernel every fast kernel is checked
// against. F16/BF16 weights are widened to f32 row by row, AWQ weights dequantized row by row
// (W4A16 / W3A16 reference: fp16((q - z) * s) widened, as AutoAWQ's dequantize_gemm); compute is f32.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"

namespace awq {

// x: [n, w.cols] f32, y: [n, w.rows] f32, bias: [w.rows] or nullptr.
void matmul_ref(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
                float* y);

// Widens (dense) or dequantizes (AwqGemm) row r of w into out: [w.cols].
void widen_row(const Matrix& w, int64_t r, float* out);

// sum_i a[i] * b[i] in f32 with 16 independent partial sums (vectorisable).
// Inline, so that callers compiled for a wider ISA (target clones) vectorise it in place.
inline float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * b[i + k];
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int k = 0; k < 16; ++k) s += acc[k];
  return s;
}

}  // namespace awq
