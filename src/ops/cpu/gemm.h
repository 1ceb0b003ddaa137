// Fast f32 GEMM for y = x W^T with any Matrix kind (dense F32/F16/BF16 or AWQ-quantized),
// checked against matmul_ref (tests/test_gemm.cpp).
//
// Shape of the blocked kernel (BLIS-like): each task owns a block of output columns (rows of
// W), widens them to f32 once per call (dense F16/BF16/F32 through 8x8 register transposes,
// AWQ through widen_row) into panels of NR columns laid out [K][NR], then sweeps its rows of
// x in K-blocks with a register-tiled MR x NR micro-kernel; tasks are handed out dynamically.
// Micro-kernels for AVX-512F, AVX2+FMA and portable C++ are compiled into every build (GCC
// target attributes) and picked at run time, so a portable (no -march) build still runs the
// wide kernels where the CPU has them.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"
#include "ops/cpu/w4.h"

namespace awq {

// y = x W^T (+ bias). x: [n, w.cols], bias: [w.rows] or nullptr, y: [n, w.rows].
// AWQ weights with the W4 layout: the W4 kernels (ops/cpu/w4.h), for any n with int8
// activations (the default), for n <= kW4GemvMaxRows with the exact f32 ones.
// n < kGemmMinRows (decode: memory-bound on the weights, where packing would only add
// traffic): dense weights stream once through a GEMV that widens them in registers (AVX2 +
// F16C); other AWQ weights, or a CPU without AVX2, use matmul_ref. Larger n: the blocked GEMM
// (W4 weights on the f32 kernels dequantized into its f32 panels).
// AWQ_MATMUL=reference routes every call to matmul_ref (the W4 reference path, for checks).
void matmul(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
            float* y);
inline constexpr int64_t kGemmMinRows = 4;

// Whether the row kernels of dense weights (AVX2 + FMA + F16C: matmul's GEMV,
// gemv_order_matmul, model/batch_linear.h's streaming kernel) run here: the CPU has them and
// AWQ_CPU_ISA does not cap the kernels to portable.
bool dense_row_kernels_supported();

// y = x W^T (+ bias) for dense W and any n, each row summed exactly as matmul's 1-row GEMV sums
// it (it is the same code: so a row's bits do not depend on n, and equal `awq generate`'s):
// blocks of 16 rows of W are streamed from memory once and kept in cache while every 6 or 3
// rows of x pass over them.
// Slower than the blocked GEMM for large n (the GEMV's arithmetic, and x re-read once per
// block). For the logits of the server's engine, whose
// decode steps take 1-3 rows under a light load (model/batch_decode.h). False (nothing done)
// where W is quantized or the CPU lacks AVX2 + FMA + F16C. Shapes as matmul.
bool gemv_order_matmul(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias, float* y);

// matmul of one x by several matrices (q/k/v, gate/up), each ps[j].y = x W_j^T (+ bias_j):
// W4 matrices of one shape class on the integer kernels share one quantized x and one
// parallel_for (w4_matmul_many); anything else runs matmul per product. Outputs equal matmul's
// bit for bit. x: [n, cols]; ps: [count].
void matmul_many(ThreadPool& pool, const float* x, int64_t n, const W4Product* ps, int count);

enum class GemmIsa { Portable, Avx2, Avx512 };

bool gemm_isa_supported(GemmIsa isa);
// AWQ_CPU_ISA=avx512 (unset: no cap) | avxvnni | avx2 | portable: the widest instruction set
// the kernels may use (benchmarks, CPUs where AVX-512 is slow). avxvnni = AVX2 for the GEMM,
// AVX2 + AVX-VNNI for the W4 kernels (w4.h).
enum class CpuIsaCap { Avx512, AvxVnni, Avx2, Portable };
CpuIsaCap cpu_isa_cap();
// The widest supported set under cpu_isa_cap(); what matmul() and attention() use.
GemmIsa gemm_best_isa();
const char* gemm_isa_name(GemmIsa isa);

// The blocked GEMM with an explicit micro-kernel set, whatever n (tests and benchmarks).
// Same shapes as matmul. Throws if the CPU lacks `isa`.
void matmul_blocked(ThreadPool& pool, GemmIsa isa, const float* x, int64_t n, const Matrix& w,
                    const float* bias, float* y);

// One register tile: c (=|+=) a * b with a row-major and b a packed panel of nr columns.
//   a: [m, kc] with row stride lda (m <= mr); b: [kc, nr] contiguous, zero past column nc;
//   c: [m, nc] with row stride ldc.
// Starting value of c: its current contents if accumulate, else bias ([nr], zero padded) if
// non-null, else 0. Columns >= nc of c are neither read nor written.
struct TileKernel {
  int mr, nr;
  void (*run)(int m, int64_t kc, const float* a, int64_t lda, const float* b, float* c,
              int64_t ldc, int nc, bool accumulate, const float* bias);
};
const TileKernel& tile_kernel(GemmIsa isa);

// Packs columns [0, nc) of a row-major block into one panel for TileKernel::run.
// src: [kc, nc] with row stride ld; panel: [kc, nr], columns >= nc zeroed.
void pack_panel(const float* src, int64_t ld, int64_t kc, int nc, int nr, float* panel);
// The same for the transpose: panel[k][j] = src[j * ld + k]. src: [nc, kc] with row stride ld.
void pack_panel_t(const float* src, int64_t ld, int64_t kc, int nc, int nr, float* panel);

}  // namespace awq
