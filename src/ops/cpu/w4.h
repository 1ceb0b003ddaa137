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
// Activations, per weight group of each row of x (AWQ_W4_ACT picks; any number of x rows:
// 1..8 (decode) and tiles of 8 (prefill), the same arithmetic per row either way, so a row's
// result does not depend on what else shares the call):
//  - auto (AWQ_W4_ACT=auto): int8x2 for decode (matmul of n <= kW4DecodeRows rows, and every
//    row of the server's batched decode), int8 for prefill, where the kernels are compute-bound
//    and int8x2 runs at ~0.55x of int8's speed. A prompt's keys and values then carry int8
//    rounding, which flipped a greedy token of a 126-token prompt (exact top-2 gap 0.014) in the
//    ASan build: faster prefill, not the default.
//  - int8x2 (the default, every row): x ~= u c with u = max|x| / 32258 and c = round(x / u), 15 bits,
//    split exactly into two int8 digits c = 254 q1 + q2 (|q1|, |q2| <= 127). Each unpacked
//    weight vector feeds one vpdpbusd per digit; the int32 sums combine exactly as
//    D = 254 D1 + D2 (|D| < 2^31 for runs of <= 4096 inputs); per group
//    y += s u D - s z u (sum c). |x - u c| <= u / 2 = max|x| / 64516: 254x finer than int8, so
//    greedy tokens follow the exact path (docs/results/cpu.md, "Greedy tokens"). What is left
//    against the reference is mostly its fp16 rounding of (q - z) s (<= 2^-11 relative per
//    weight), which integer kernels do not reproduce.
//  - int8 (AWQ_W4_ACT=int8; fastest, lossy): x quantized to int8 per weight group (u = max|x| /
//    127), one vpdpbusd of 64 codes (u8) by a broadcast 4 x bytes (s8); per group
//    y += s u (sum q xq) - s z u (sum xq). Moves logits by ~1e-2 (perplexity +0.01 %, but
//    greedy tokens can flip where the top-2 logits are 0.03 apart).
//  - AVX2 runs both with vpmaddubsw + vpmaddwd (no int16 saturation: |q x| <= 15 * 127 and
//    4 such products <= 7620; the high digit's pair sum is weighted 254 by vpmaddwd), results
//    bit-identical to the VNNI kernels'.
//  - AVX-512 f32 and scalar (AWQ_W4_ACT=f32, and CPUs without AVX2): exact reference weights
//    fp16((q - z) * s), f32 activations, n <= kW4GemvMaxRows; more rows are dequantized
//    (w4_dequantize_rows, bit-identical to widen_row) into the blocked f32 GEMM (gemm.h).
// Speed and accuracy of each: docs/results/cpu.md.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

#include "core/thread_pool.h"
#include "ops/cpu/matrix.h"

namespace awq {

// Kernel families: Avx2 / Avx512Vnni take int8 x, the Int8x2 ones int8x2 x (VNNI as two int8
// digits, AVX2 as the same codes whole in int16: w4_act_quant.h), Scalar / Avx512 f32 x (exact).
// AvxVnniInt8x2: the AVX2 int8x2 kernel with AVX-VNNI's vpdpwssd (CPUs with AVX-VNNI but no
// AVX-512: Intel since Alder Lake).
enum class W4Isa { Scalar, Avx2, Avx512, Avx512Vnni, Avx2Int8x2, Avx512VnniInt8x2, AvxVnniInt8x2 };
inline constexpr int kW4IsaCount = int(W4Isa::AvxVnniInt8x2) + 1;  // tables indexed by W4Isa
// Int8x2 is the default. Auto (AWQ_W4_ACT=auto): int8x2 for decode rows (n <= kW4DecodeRows in
// matmul, every row of the server's batched decode), int8 for prefill (n > kW4DecodeRows), where
// the kernels are compute-bound and int8x2 runs at ~0.55x of int8 (docs/results/cpu.md); its
// int8 prefill can flip greedy tokens of long prompts (test W4Greedy under AWQ_W4_ACT=auto).
enum class W4Act { Auto, Int8x2, Int8, F32 };

inline constexpr int64_t kW4TileRows = 16;
inline constexpr int64_t kW4GemvMaxRows = 8;  // f32-activation kernels: rows of x per call
inline constexpr int64_t kW4DecodeRows = 8;   // AWQ_W4_ACT=auto: up to this many rows are decode

bool w4_isa_supported(W4Isa isa);
// Whether the ISA's kernels quantize x to integers, int8 or int8x2 (and then take any number of
// rows, each computed alone).
bool w4_isa_int8(W4Isa isa);
bool w4_isa_int8x1(W4Isa isa);  // single int8 digit (Avx2, Avx512Vnni)
bool w4_isa_int8x2(W4Isa isa);  // two digits (Avx2Int8x2, Avx512VnniInt8x2, AvxVnniInt8x2)
// AWQ_W4_ACT: unset or "int8x2" -> Int8x2, "int8" -> Int8, "f32" -> F32; anything else throws
// awq::Error naming the variable and the accepted values.
W4Act w4_act_from_env();
// AWQ_W4_PREFETCH (the variable's text, nullptr when unset): the software prefetch distance in
// bytes of the AVX2 int16 decode kernel, 4096 unset; "0", "2048", "8192" too; anything else
// throws awq::Error naming the variable and the accepted values. Prefetching changes no result.
int64_t w4_decode_prefetch_bytes(const char* value);
// The widest supported ISA, capped by AWQ_CPU_ISA (cpu_isa_cap, gemm.h), with the
// activations of AWQ_W4_ACT (int8x2 by default; f32: the exact AVX-512 or scalar kernels;
// without AVX2 the scalar f32 kernels whatever it says).
W4Isa w4_best_isa();
// The ISA for a matmul of n rows of x: w4_best_isa(), except that AWQ_W4_ACT=auto takes the single-int8 kernels of the same width for n > kW4DecodeRows (prefill). An override
// (w4_override_isa) wins. The server's batched decode (batch_linear) uses w4_best_isa() for
// every batch size, so its rows equal single-sequence decode rows bit for bit.
W4Isa w4_isa_for_rows(int64_t n);
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
// Points w's kernel view (awq.w4_*) at t. Checks AWQ_W4_ACT (w4_best_isa), so a bad value
// fails when a model loads.
void w4_attach(Matrix& w, const W4Tiles& t);

// y = x W^T (+ bias) for w4_ready(w), with an explicit ISA (throws if the CPU lacks it).
// int8 / int8x2 ISAs: any n >= 1; f32 ISAs: 1 <= n <= kW4GemvMaxRows.
// x: [n, w.cols]; bias: [w.rows] or nullptr; y: [n, w.rows].
void w4_matmul(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const Matrix& w,
               const float* bias, float* y);

// One product of w4_matmul_many: y = x W^T (+ bias). bias: [w.rows] or nullptr; y: [n, w.rows].
struct W4Product {
  const Matrix* w;
  const float* bias;
  float* y;
};
// Whether a and b can share one quantized x in w4_matmul_many (both w4_ready, same cols, same
// group).
bool w4_can_share_x(const Matrix& a, const Matrix& b);
// Several products of the same x (q/k/v, gate/up): with the integer kernels x is quantized once
// and one parallel_for runs all their tiles (one thread handshake instead of `count`). Each
// output is bit-identical to w4_matmul's. Requires w4_can_share_x of every w with the first.
// x: [n, cols]; ps: [count].
void w4_matmul_many(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const W4Product* ps, int count);

// Rows [r0, r0 + count) of w dequantized to f32, bit-identical to widen_row:
// fp16((q - z) * s) widened. out: [count, w.cols].
void w4_dequantize_rows(const Matrix& w, int64_t r0, int64_t count, float* out);

}  // namespace awq
