// AutoAWQ group quantization (fp16 per op, as its tensor code runs) and the GEMM packing.
#include "quant/autoawq_pack.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/half.h"

namespace awq {

namespace {

// One fp16 tensor op: PyTorch computes in f32 and rounds the result to fp16 once.
inline float r16(float x) { return fp16_to_f32(f32_to_fp16(x)); }

// clamp(min=1e-5) on an fp16 tensor: the bound itself is an fp16 value (168 * 2^-24).
const float kMinRange = fp16_to_f32(f32_to_fp16(1e-5f));

// torch.round: half to even (the default rounding mode).
inline float round_even(float x) { return std::nearbyint(x); }

inline float clampf(float x, float lo, float hi) { return std::min(std::max(x, lo), hi); }

std::string dims(int64_t out, int64_t in) {
  return "[" + std::to_string(out) + ", " + std::to_string(in) + "]";
}

// Asymmetric (zero point) quantization of one group, AwqQuantizer.pseudo_quantize_tensor
// followed by WQLinear_GEMM.from_linear's re-derivation of the integer codes from w_fake.
// w: [n] fp16 bits; codes: [n]. Returns (scale fp16 bits, zero).
std::pair<uint16_t, uint8_t> quantize_group_asym(const uint16_t* w, int64_t n, int bits,
                                                 uint8_t* codes) {
  const float max_int = float((1 << bits) - 1);
  float wmax = -INFINITY, wmin = INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const float v = fp16_to_f32(w[i]);
    wmax = std::max(wmax, v);
    wmin = std::min(wmin, v);
  }
  const float range = std::max(r16(wmax - wmin), kMinRange);
  const uint16_t s16 = f32_to_fp16(range / max_int);
  const float s = fp16_to_f32(s16);
  const float z = clampf(-round_even(r16(wmin / s)), 0.0f, max_int);
  const float sz = r16(z * s);  // from_linear: scale_zeros = zeros * scales
  for (int64_t i = 0; i < n; ++i) {
    const float c = clampf(r16(round_even(r16(fp16_to_f32(w[i]) / s)) + z), 0.0f, max_int);
    const float w_fake = r16((c - z) * s);
    const float q = round_even(r16(r16(w_fake + sz) / s));
    // from_linear packs q unclamped; it equals c for every finite input (the clamp only
    // guards the nibble layout against a value that AutoAWQ would let spill into its neighbour).
    codes[i] = uint8_t(clampf(q, 0.0f, max_int));
  }
  return {s16, uint8_t(z)};
}

// Symmetric quantization (zero_point = false): q in [-2^(b-1), 2^(b-1) - 1], stored as
// q + 2^(b-1) with the constant zero point 2^(b-1). w: [n] fp16 bits; codes: [n].
std::pair<uint16_t, uint8_t> quantize_group_sym(const uint16_t* w, int64_t n, int bits,
                                                uint8_t* codes) {
  const int half = 1 << (bits - 1);
  const float max_int = float(half - 1), min_int = -float(half);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(fp16_to_f32(w[i])));
  amax = std::max(amax, kMinRange);
  const uint16_t s16 = f32_to_fp16(amax / max_int);
  const float s = fp16_to_f32(s16);
  for (int64_t i = 0; i < n; ++i) {
    const float q = clampf(round_even(r16(fp16_to_f32(w[i]) / s)), min_int, max_int);
    codes[i] = uint8_t(int(q) + half);
  }
  return {s16, uint8_t(half)};
}

void check_finite(const uint16_t* w, int64_t out, int64_t in, const std::string& name) {
  for (int64_t i = 0; i < out * in; ++i)
    if ((w[i] & 0x7c00) == 0x7c00)
      throw Error(name + ": weight [" + std::to_string(i / in) + ", " + std::to_string(i % in) +
                  "] is " + ((w[i] & 0x3ff) ? "NaN" : "infinite") + "; cannot quantize");
}

// Packs 8 logical columns v[0..7] (codes 0..15) into one word in AutoAWQ's ORDER.
inline int32_t pack_word(const uint8_t* v, int64_t stride) {
  uint32_t word = 0;
  for (int i = 0; i < 8; ++i) word |= uint32_t(v[kAwqOrder[i] * stride] & 0xF) << (4 * i);
  return int32_t(word);
}

void check_codes(int code, int bits, const std::string& name, const char* tensor, int64_t row,
                 int64_t col) {
  if (code >= (1 << bits))
    throw Error(name + "." + tensor + ": value " + std::to_string(code) + " at [" +
                std::to_string(row) + ", " + std::to_string(col) + "] does not fit " +
                std::to_string(bits) + " bits (quantization_config.bits = " +
                std::to_string(bits) + ")");
}

}  // namespace

void check_quant_params(const QuantParams& p, int64_t out, int64_t in, const std::string& name) {
  if (p.bits != 3 && p.bits != 4)
    throw Error(name + ": " + std::to_string(p.bits) + "-bit quantization is not supported " +
                "(bits must be 4, or 3 in the same nibble layout)");
  if (p.group <= 0)
    throw Error(name + ": group size " + std::to_string(p.group) +
                " is not supported; use a positive divisor of in_features " + std::to_string(in) +
                " (e.g. 128)");
  if (in <= 0 || out <= 0)
    throw Error(name + ": empty weight " + dims(out, in));
  if (in % p.group != 0)
    throw Error("group size " + std::to_string(p.group) + " does not divide in_features " +
                std::to_string(in) + " of " + name);
  if (out % 8 != 0)
    throw Error(name + ": out_features " + std::to_string(out) +
                " is not a multiple of 8, which the AutoAWQ GEMM layout needs (8 codes per int32)");
}

GroupQuantized quantize_autoawq(const uint16_t* w, int64_t out, int64_t in, const QuantParams& p,
                                const std::string& name) {
  check_quant_params(p, out, in, name);
  check_finite(w, out, in, name);
  const int64_t ng = in / p.group;
  GroupQuantized q;
  q.out = out;
  q.in = in;
  q.p = p;
  q.codes.resize(size_t(out * in));
  q.scales.resize(size_t(out * ng));
  q.zeros.resize(size_t(out * ng));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t off = o * in + g * p.group;
      auto [s, z] = p.zero_point
                        ? quantize_group_asym(w + off, p.group, p.bits, q.codes.data() + off)
                        : quantize_group_sym(w + off, p.group, p.bits, q.codes.data() + off);
      if ((s & 0x7c00) == 0x7c00)  // max - min overflowed fp16: AutoAWQ would produce NaN
        throw Error(name + ": the weights of row " + std::to_string(o) + ", input group " +
                    std::to_string(g) + " span more than fp16 can hold; cannot quantize");
      q.scales[size_t(o * ng + g)] = s;
      q.zeros[size_t(o * ng + g)] = z;
    }
  }
  return q;
}

std::vector<uint16_t> dequantize(const GroupQuantized& q) {
  const int64_t ng = q.in / q.p.group;
  std::vector<uint16_t> w(size_t(q.out * q.in));
  for (int64_t o = 0; o < q.out; ++o)
    for (int64_t k = 0; k < q.in; ++k) {
      const int64_t g = o * ng + k / q.p.group;
      const float s = fp16_to_f32(q.scales[size_t(g)]);
      w[size_t(o * q.in + k)] = f32_to_fp16(float(int(q.codes[size_t(o * q.in + k)]) - int(q.zeros[size_t(g)])) * s);
    }
  return w;
}

PackedGemm pack_gemm(const GroupQuantized& q) {
  check_quant_params(q.p, q.out, q.in, "pack_gemm");
  const int64_t ng = q.in / q.p.group, ow = q.out / 8;
  PackedGemm pk;
  pk.out = q.out;
  pk.in = q.in;
  pk.p = q.p;
  pk.qweight.resize(size_t(q.in * ow));
  pk.qzeros.resize(size_t(ng * ow));
  pk.scales.resize(size_t(ng * q.out));
  // codes: [out, in] -> qweight[k][c] packs codes[8c + ORDER[i]][k]
  for (int64_t k = 0; k < q.in; ++k)
    for (int64_t c = 0; c < ow; ++c)
      pk.qweight[size_t(k * ow + c)] = pack_word(q.codes.data() + 8 * c * q.in + k, q.in);
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t c = 0; c < ow; ++c)
      pk.qzeros[size_t(g * ow + c)] = pack_word(q.zeros.data() + 8 * c * ng + g, ng);
    for (int64_t o = 0; o < q.out; ++o) pk.scales[size_t(g * q.out + o)] = q.scales[size_t(o * ng + g)];
  }
  return pk;
}

// qzeros: [ng, out/8] packed, scales: [ng, out] fp16 -> zeros, scales_rows: [out, ng] each
// (output-row-major, as both the unpacked form and the row repack keep them).
static void unpack_zeros_scales(const int32_t* qzeros, const uint16_t* scales, int64_t out, int64_t ng,
                         const QuantParams& p, const std::string& name, std::vector<uint8_t>& zeros,
                         std::vector<uint16_t>& scales_rows) {
  const int64_t ow = out / 8;
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t o = 0; o < out; ++o) {
      const int z = awq_nibble(qzeros[g * ow + o / 8], int(o % 8));
      check_codes(z, p.bits, name, "qzeros", g, o);
      zeros[size_t(o * ng + g)] = uint8_t(z);
      scales_rows[size_t(o * ng + g)] = scales[g * out + o];
    }
}

GroupQuantized unpack_gemm(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                           int64_t out, int64_t in, const QuantParams& p, const std::string& name) {
  check_quant_params(p, out, in, name);
  const int64_t ng = in / p.group, ow = out / 8;
  GroupQuantized q;
  q.out = out;
  q.in = in;
  q.p = p;
  q.codes.resize(size_t(out * in));
  q.scales.resize(size_t(out * ng));
  q.zeros.resize(size_t(out * ng));
  for (int64_t k = 0; k < in; ++k)
    for (int64_t o = 0; o < out; ++o) {
      const int code = awq_nibble(qweight[k * ow + o / 8], int(o % 8));
      check_codes(code, p.bits, name, "qweight", k, o);
      q.codes[size_t(o * in + k)] = uint8_t(code);
    }
  unpack_zeros_scales(qzeros, scales, out, ng, p, name, q.zeros, q.scales);
  return q;
}

void dequantize_gemm_row(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                         int64_t out, int64_t in, int group, int64_t r, float* dst) {
  const int64_t ow = out / 8, c = r / 8;
  const int n = int(r % 8);
  for (int64_t k = 0; k < in; ++k) {
    const int64_t g = k / group;
    const int q = awq_nibble(qweight[k * ow + c], n);
    const int z = awq_nibble(qzeros[g * ow + c], n);
    dst[k] = r16(float(q - z) * fp16_to_f32(scales[g * out + r]));
  }
}

AwqRows repack_rows(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                    int64_t out, int64_t in, const QuantParams& p, const std::string& name) {
  check_quant_params(p, out, in, name);
  const int64_t ng = in / p.group, ow = out / 8, wpr = (in + 7) / 8;
  AwqRows rows;
  rows.out = out;
  rows.in = in;
  rows.p = p;
  rows.codes.assign(size_t(out * wpr), 0);
  rows.zeros.resize(size_t(out * ng));
  rows.scales.resize(size_t(out * ng));
  uint32_t any_code = 0;  // OR of every code: one range check at the end
  // Eight input rows of qweight at a time become one word in each of 8 output rows.
  for (int64_t kb = 0; kb < wpr; ++kb) {
    const int64_t nk = std::min<int64_t>(8, in - 8 * kb);
    for (int64_t c = 0; c < ow; ++c) {
      uint32_t words[8] = {};
      for (int64_t j = 0; j < nk; ++j) words[j] = uint32_t(qweight[(8 * kb + j) * ow + c]);
      for (int n = 0; n < 8; ++n) {
        uint32_t row_word = 0;
        for (int64_t j = 0; j < nk; ++j) {
          const uint32_t code = (words[j] >> (4 * kAwqReverseOrder[n])) & 0xFu;
          row_word |= code << (4 * j);
        }
        rows.codes[size_t((8 * c + n) * wpr + kb)] = row_word;
        any_code |= row_word;
      }
    }
  }
  if (p.bits < 4 && (any_code & 0x88888888u))  // some code >= 8
    for (int64_t k = 0; k < in; ++k)
      for (int64_t o = 0; o < out; ++o)
        check_codes(awq_nibble(qweight[k * ow + o / 8], int(o % 8)), p.bits, name, "qweight", k, o);
  unpack_zeros_scales(qzeros, scales, out, ng, p, name, rows.zeros, rows.scales);
  return rows;
}

JoinedOutputs::JoinedOutputs(const std::vector<int64_t>& part_outs, bool interleave8)
    : interleave8_(interleave8) {
  if (interleave8 && (part_outs.size() != 2 || part_outs[0] != part_outs[1] || part_outs[0] % 8 != 0))
    throw Error("joining linears in alternating packs of 8 outputs needs two parts of equal size, a multiple of 8");
  for (const int64_t n : part_outs) {
    first_.push_back(total_);
    total_ += n;
  }
}

PackedGemm join_gemm_outputs(const std::vector<GemmPart>& parts, int64_t in, const QuantParams& p,
                             bool interleave8) {
  std::vector<int64_t> outs;
  for (const GemmPart& part : parts) {
    if (part.out % 8 != 0) throw Error("join_gemm_outputs: out_features must be a multiple of 8");
    outs.push_back(part.out);
  }
  const JoinedOutputs joined(outs, interleave8);
  check_quant_params(p, joined.total(), in, "join_gemm_outputs");
  PackedGemm g;
  g.out = joined.total();
  g.in = in;
  g.p = p;
  const int64_t n8 = g.out / 8, ng = in / p.group;
  g.qweight.resize(size_t(in * n8));
  g.qzeros.resize(size_t(ng * n8));
  g.scales.resize(size_t(ng * g.out));
  // Row by row over source and destination (a 7B's gate | up is 11M words a layer).
  for (size_t i = 0; i < parts.size(); ++i) {
    const GemmPart& part = parts[i];
    const int64_t p8 = part.out / 8;
    const auto words = [&](const int32_t* src, int32_t* dst) {
      for (int64_t q = 0; q < p8; ++q) dst[joined.pack_at(i, q) / 8] = src[q];
    };
    for (int64_t r = 0; r < in; ++r) words(part.qweight + r * p8, g.qweight.data() + r * n8);
    for (int64_t r = 0; r < ng; ++r) {
      words(part.qzeros + r * p8, g.qzeros.data() + r * n8);
      for (int64_t q = 0; q < p8; ++q)
        std::copy_n(part.scales + r * part.out + q * 8, 8, g.scales.data() + r * g.out + joined.pack_at(i, q));
    }
  }
  return g;
}

}  // namespace awq
