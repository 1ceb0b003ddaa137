// AutoAWQ group quantization and the AutoAWQ "GEMM" checkpoint layout, bit for bit
// (casper-hansen/AutoAWQ v0.2.9: AwqQuantizer.pseudo_quantize_tensor, WQLinear_GEMM.from_linear,
// packing_utils.dequantize_gemm). The arithmetic and both nibble orders: docs/formats.md.
//
// Codes are always stored in 4-bit nibbles, 8 per int32 word. bits = 3 is our documented
// extension: the same layout holding codes 0..7. zero_point = false (symmetric) is stored as
// codes q + 2^(bits-1) with a constant zero point 2^(bits-1), so every AWQ loader reads it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace awq {

struct QuantParams {
  int bits = 4;             // 4, or 3 (our extension, same nibble layout)
  int group = 128;          // input channels per group; must divide in_features
  bool zero_point = true;   // false: AutoAWQ's symmetric mode, see above
};

// AutoAWQ's packing order: nibble i of a word holds logical column 8c + kAwqOrder[i].
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
// Its inverse: logical column n sits in nibble kAwqReverseOrder[n % 8] of word n / 8.
inline constexpr int kAwqReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// The code of logical column n (n = 0..7 within the word) of a packed word.
inline int awq_nibble(int32_t word, int n) {
  return int((uint32_t(word) >> (4 * kAwqReverseOrder[n])) & 0xFu);
}

// Throws awq::Error naming `name` unless bits is 3 or 4, group > 0 divides in, out % 8 == 0.
void check_quant_params(const QuantParams& p, int64_t out, int64_t in, const std::string& name);

// One linear's weight, quantized group-wise along the input channels.
struct GroupQuantized {
  int64_t out = 0, in = 0;
  QuantParams p;
  std::vector<uint8_t> codes;    // [out, in], 0 .. 2^bits - 1
  std::vector<uint16_t> scales;  // [out, in / group] fp16 bits
  std::vector<uint8_t> zeros;    // [out, in / group], 0 .. 2^bits - 1
};

// w: [out, in] fp16 bits (nn.Linear layout). Every step rounds to fp16 as AutoAWQ's fp16
// tensor ops do (docs/formats.md). Non-finite weights or bad params -> awq::Error naming `name`.
GroupQuantized quantize_autoawq(const uint16_t* w, int64_t out, int64_t in, const QuantParams& p,
                                const std::string& name = "weight");

// AutoAWQ's w_fake / dequantize_gemm: returns [out, in] fp16 bits, fp16((code - zero) * scale).
std::vector<uint16_t> dequantize(const GroupQuantized& q);

// The tensors an AutoAWQ GEMM checkpoint stores for one linear.
struct PackedGemm {
  int64_t out = 0, in = 0;
  QuantParams p;
  std::vector<int32_t> qweight;  // [in, out / 8]
  std::vector<int32_t> qzeros;   // [in / group, out / 8]
  std::vector<uint16_t> scales;  // [in / group, out] fp16 bits
};

PackedGemm pack_gemm(const GroupQuantized& q);

// The inverse of pack_gemm. qweight: [in, out/8], qzeros: [in/group, out/8], scales:
// [in/group, out] fp16. A code or zero above 2^bits - 1 (possible only for bits = 3) ->
// awq::Error naming `name`.
GroupQuantized unpack_gemm(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                           int64_t out, int64_t in, const QuantParams& p,
                           const std::string& name = "weight");

// Output row r of the dequantized weight, read straight from the GEMM layout (strided; the
// reference the row layout below is checked against). qweight: [in, out/8], qzeros:
// [in/group, out/8], scales: [in/group, out] fp16; dst: [in] f32 = fp16((q - z) * s) widened.
void dequantize_gemm_row(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                         int64_t out, int64_t in, int group, int64_t r, float* dst);

// The GEMM layout repacked at load so that one output row is contiguous (what widen_row reads).
struct AwqRows {
  int64_t out = 0, in = 0;
  QuantParams p;
  std::vector<uint32_t> codes;   // [out, in / 8]: nibble j of word w = code of input 8w + j
  std::vector<uint8_t> zeros;    // [out, in / group]
  std::vector<uint16_t> scales;  // [out, in / group] fp16 bits
};

// qweight: [in, out/8], qzeros: [in/group, out/8], scales: [in/group, out] fp16. Checks codes
// and zeros against 2^bits - 1 (awq::Error naming `name`).
AwqRows repack_rows(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                    int64_t out, int64_t in, const QuantParams& p, const std::string& name);

// Several linears over the same input joined along the output dimension (what an engine fuses:
// q | k | v, gate | up): where output pack `pack` (outputs 8 pack .. 8 pack + 7) of part `part`
// lands among the joined outputs. In order (part 0's outputs, then part 1's, ...), or with
// interleave8 (exactly two parts of equal size) in alternating packs of 8: part 0's pack p at
// 16 p, part 1's at 16 p + 8. Every part's size must be a multiple of 8 for interleave8
// (awq::Error otherwise); in order, a part's last pack may be partial (dense rows).
class JoinedOutputs {
 public:
  JoinedOutputs(const std::vector<int64_t>& part_outs, bool interleave8);
  int64_t pack_at(size_t part, int64_t pack) const {
    return interleave8_ ? (pack * 2 + int64_t(part)) * 8 : first_[part] + pack * 8;
  }
  int64_t total() const { return total_; }

 private:
  std::vector<int64_t> first_;  // first joined output of each part (in order)
  int64_t total_ = 0;
  bool interleave8_ = false;
};

// One part of join_gemm_outputs: an AutoAWQ GEMM linear's tensors (qweight [in, out/8], qzeros
// [in/group, out/8], scales [in/group, out] fp16) and its out_features (a multiple of 8).
struct GemmPart {
  const int32_t* qweight = nullptr;
  const int32_t* qzeros = nullptr;
  const uint16_t* scales = nullptr;
  int64_t out = 0;
};

// The parts (same in_features and group) as the tensors of one linear whose outputs are laid
// out by JoinedOutputs: whole packed words and scale columns move (a pack of 8 outputs is one
// word of each row of qweight and qzeros), nothing is repacked.
PackedGemm join_gemm_outputs(const std::vector<GemmPart>& parts, int64_t in, const QuantParams& p,
                             bool interleave8);

}  // namespace awq
