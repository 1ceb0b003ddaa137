// An int8 copy of a dense weight matrix for decode (llama.cpp's Q8_0 idea): each row in blocks of
// 32 inputs, codes q = round(W / d) with d = max|W of the block| / 127, so |W - d q| <= d / 2
// (relative error <= 1/254 of the block's largest weight). The product quantizes each row of x
// per block of 32 inputs to 16-bit codes (ops/cpu/w4_act_quant.h's int16: c = round(x / u),
// u = max|x| / 32258, so x keeps ~15 bits and the error is the weights') and sums q c in int32
// per block:
//   y[r] = sum_b d[r][b] u[b] sum_i q[r][32 b + i] c[32 b + i]   (+ bias[r]).
// Half the bytes of fp16, for the layer whose weights AWQ leaves in fp16: lm_head (a large part of
// a decode step's reads on large-vocabulary or small models: Llama-3's 128k x 4096, Qwen2.5's
// 152k). AVX2 where the CPU has it, a plain loop otherwise; both give the same bits (integer
// sums, then the same f32 operations in the same order).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"
#include "ops/cpu/w4_act_quant.h"  // kInt16Order

namespace awq {

inline constexpr int64_t kQ8Block = 32;

struct Q8Rows {
  int64_t rows = 0, cols = 0;  // cols % kQ8Block == 0
  std::vector<int8_t> q;       // [rows, cols]; slot s of each run of 8 holds input kInt16Order[s]
  std::vector<float> d;        // [rows, cols / kQ8Block]
};

// Whether w can have an int8 copy: dense (F32, F16, BF16) with cols a multiple of kQ8Block.
bool q8_rows_fit(const Matrix& w);
// The int8 copy of dense w: [rows, cols] (q8_rows_fit(w)). Deterministic, any thread count.
Q8Rows q8_rows_from(ThreadPool& pool, const Matrix& w);

enum class Q8Isa { Scalar, Avx2 };
bool q8_isa_supported(Q8Isa isa);
Q8Isa q8_best_isa();

// y: [n, w.rows] = x: [n, w.cols] W^T (+ bias: [w.rows]), x quantized per row to int16 per block.
// Each row of y is the same whatever n is and whichever isa runs.
void q8_rows_matmul(ThreadPool& pool, Q8Isa isa, const float* x, int64_t n, const Q8Rows& w, const float* bias,
                    float* y);
void q8_rows_matmul(ThreadPool& pool, const float* x, int64_t n, const Q8Rows& w, const float* bias, float* y);

}  // namespace awq
