// W4 (and W3) group-wise kernels on the AWQ weights, repacked at load into the layout they
// want: tiles of 16 output rows. Per tile and per 8 input channels k..k+7 one 64-byte line,
// where the 4 bytes of row l (bytes 4l..4l+3) hold the codes of inputs k..k+3 in their low
// nibbles and of inputs k+4..k+7 in their high nibbles. A tile's lines follow each other, the
// tiles too, so a thread streams one contiguous run of memory (rows of 1-2 pages each, read
// side by side, were too short for the hardware prefetcher). Scales (fp16) and zeros (u8) per
// (tile, group) as 16 lanes, one per row. All three in one 64-byte aligned allocation.
//
// With a row's 4 codes in one 32-bit lane, a dot product puts each output row in its own lane:
// no horizontal sums, and several rows of x share every weight load (the prefill GEMM).
//  - AVX-512 VNNI (the default where the CPU has it): x quantized to int8 per weight group
//    (scale max|x| / 127), vpdpbusd of 64 codes (u8) by a broadcast 4 x bytes (s8); per group
//    y += s sx (sum q xq) - s z sx (sum xq). Any number of x rows: 1..8 (decode) and tiles of
//    8 (prefill), the same arithmetic per row either way. Perplexity cost: docs/results/cpu.md.
//  - AVX2: the same int8 scheme with vpmaddubsw + vpmaddwd (no overflow: |q x| <= 15 * 127 and
//    4 such pairs <= 7620 fit int16), results identical to the VNNI kernel's.
//  - AVX-512 f32 and scalar (AWQ_W4_ACT=f32, and CPUs without AVX2): exact reference weights
//    fp16((q - z) * s), f32 activations, n <= kW4GemvMaxRows; more rows are dequantized
//    (w4_dequantize_rows, bit-identical to widen_row) into the blocked f32 GEMM (gemm.h).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"

namespace awq {

enum class W4Isa { Scalar, Avx2, Avx512, Avx512Vnni };

inline constexpr int64_t kW4TileRows = 16;
inline constexpr int64_t kW4GemvMaxRows = 8;  // f32-activation kernels: rows of x per call

bool w4_isa_supported(W4Isa isa);
// Whether the ISA's kernels quantize x to int8 (and then take any number of rows).
bool w4_isa_int8(W4Isa isa);
// The widest supported ISA, capped like the GEMM by AWQ_CPU_ISA=portable|avx2; AWQ_W4_ACT=f32
// takes the exact f32-activation kernels (AVX-512 or scalar).
W4Isa w4_best_isa();
const char* w4_isa_name(W4Isa isa);
// Makes w4_best_isa() return `isa` until called with nullopt (tests that need the exact f32
// kernels on a whole model). Not while another thread runs a matmul.
void w4_override_isa(std::optional<W4Isa> isa);

// Whether w carries the kernel layout (an AwqGemm matrix repacked by w4_repack).
bool w4_ready(const Matrix& w);
// Whether a matrix of this shape can be repacked: cols % 32 == 0 and group % 32 == 0.
bool w4_layout_fits(int64_t cols, int group);

// The repacked weights (see the top of this file); rows are padded to whole tiles with code 0,
// scale 0 and zero 0.
struct W4Tiles {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> mem;
  size_t bytes = 0;
  uint8_t* codes = nullptr;    // [tiles][cols / 8][16 rows][4 bytes]
  uint16_t* scales = nullptr;  // [tiles][cols / group][16] fp16
  uint8_t* zeros = nullptr;    // [tiles][cols / group][16]
};

// From the row repack (AwqRows: nibble j of word w = input 8w + j).
// row_codes: [rows, cols / 8]; row_zeros, row_scales: [rows, cols / group]. Requires
// w4_layout_fits(cols, group).
W4Tiles w4_repack(const uint32_t* row_codes, const uint8_t* row_zeros, const uint16_t* row_scales,
                  int64_t rows, int64_t cols, int group);
// Points w's kernel view (awq.w4_*) at t.
void w4_attach(Matrix& w, const W4Tiles& t);

// y = x W^T (+ bias) for w4_ready(w), with an explicit ISA (throws if the CPU lacks it).
// int8 ISAs: any n >= 1; f32 ISAs: 1 <= n <= kW4GemvMaxRows.
// x: [n, w.cols]; bias: [w.rows] or nullptr; y: [n, w.rows].
void w4_matmul(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const Matrix& w,
               const float* bias, float* y);

// Rows [r0, r0 + count) of w dequantized to f32, bit-identical to widen_row:
// fp16((q - z) * s) widened. out: [count, w.cols].
void w4_dequantize_rows(const Matrix& w, int64_t r0, int64_t count, float* out);

}  // namespace awq
