// The linears of the batched decode step: y = x W^T with results that are bit-identical for
// a row whatever the number of rows next to it.
//
// The blocked GEMM (ops/cpu/gemm.h) computes every output element as one chain of FMAs over
// k = 0..K-1 starting from the bias (or 0), for any row count and any tile it lands in. For
// few rows it widens and packs all of W into f32 panels first, which costs more than the
// product itself. batch_linear therefore runs small batches (n < kBatchGemmMinRows) through a
// streaming kernel that keeps exactly that FMA chain per element (8 W rows x 8 inputs are
// widened and transposed in registers, no panels in memory), and larger ones through the
// blocked GEMM. Both give the same bits, so a request's logits do not depend on how many
// others share its step. Dense F32/F16/BF16 weights on AVX2+FMA+F16C CPUs whose GEMM kernel
// is AVX2 or AVX-512 take the streaming kernel; AWQ weights with an int8-activation W4 kernel
// (ops/cpu/w4.h: each row computed alone) take it for any n; anything else (AWQ weights on the
// exact f32 kernels, the portable ISA) always uses the blocked GEMM.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"

namespace awq {

inline constexpr int64_t kBatchGemmMinRows = 4;

// x: [n, w.cols]; bias: [w.rows] or nullptr; y: [n, w.rows].
void batch_linear(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
                  float* y);

// The streaming kernel alone, any n (tests compare it bit for bit with matmul_blocked).
// Returns false, doing nothing, where it does not apply (see above).
bool batch_linear_streaming(ThreadPool& pool, const float* x, int64_t n, const Matrix& w,
                            const float* bias, float* y);

}  // namespace awq
