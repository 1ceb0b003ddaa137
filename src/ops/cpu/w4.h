// W4 (and W3) group-wise kernels on the AWQ weights, repacked at load into the layout they
// want: per output row, per run of 32 input channels, 16 bytes where byte i holds the code of
// input k0 + i in its low nibble and of input k0 + 16 + i in its high nibble
// (AwqMatrix::w4_codes). Zeros and fp16 scales stay per (row, group) (row_zeros, row_scales).
//
// Decode (n <= kW4GemvMaxRows rows of x): a GEMV that streams the 4-bit codes once and
// dequantizes in registers.
//  - AVX-512: per (row, group) a 16-entry table fp16((q - z) * s) widened to f32 sits in one
//    zmm; vpermps looks 16 weights up at once (it reads only the low 4 bits of each index, so
//    the high nibble needs one shift and the low one no mask). Same products as the reference.
//  - AVX2+FMA: codes -> int -> f32, per-group sums of q*x and of x, then s * (sum q x - z sum x)
//    (no fp16 rounding of (q - z) * s: a ~2^-11 relative difference per weight, see tests).
//  - AVX-512 VNNI (the default where the CPU has it; AWQ_W4_ACT=f32 turns it off): x quantized
//    to int8 per weight group (scale max|x| / 127), vpdpbusd on 64 codes at a time, per group
//    y += s sx (sum q xq) - s z sx (sum xq). The perplexity cost is measured in docs/results/cpu.md.
//    Groups must be multiples of 64 (else the f32 AVX-512 kernel runs).
//  - scalar: the same table per (row, group), one lookup per weight (CPUs without AVX2).
// Prefill (more rows): w4_dequantize_rows widens rows to f32 exactly as widen_row does and the
// blocked GEMM (gemm.h) packs and multiplies them.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"

namespace awq {

enum class W4Isa { Scalar, Avx2, Avx512, Avx512Vnni };

inline constexpr int64_t kW4GemvMaxRows = 8;

bool w4_isa_supported(W4Isa isa);
// The widest supported ISA, capped like the GEMM by AWQ_CPU_ISA=portable|avx2; AWQ_W4_ACT=f32
// excludes the int8-activation VNNI kernel.
W4Isa w4_best_isa();
const char* w4_isa_name(W4Isa isa);

// Whether w carries the kernel layout (an AwqGemm matrix repacked by w4_repack).
bool w4_ready(const Matrix& w);
// Whether a matrix of this shape can be repacked: cols % 32 == 0 and group % 32 == 0.
bool w4_layout_fits(int64_t cols, int group);

// The kernel layout from the row repack (AwqRows::codes, nibble j of word w = input 8w + j).
// row_codes: [rows, cols / 8]; returns [rows, cols / 2] bytes (requires w4_layout_fits).
std::vector<uint8_t> w4_repack(const uint32_t* row_codes, int64_t rows, int64_t cols);

// y = x W^T (+ bias) for w4_ready(w), 1 <= n <= kW4GemvMaxRows, with an explicit ISA (throws
// if the CPU lacks it). x: [n, w.cols]; bias: [w.rows] or nullptr; y: [n, w.rows].
void w4_gemv(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const Matrix& w,
             const float* bias, float* y);

// Rows [r0, r0 + count) of w dequantized to f32, bit-identical to widen_row:
// fp16((q - z) * s) widened. out: [count, w.cols].
void w4_dequantize_rows(W4Isa isa, const Matrix& w, int64_t r0, int64_t count, float* out);

}  // namespace awq
