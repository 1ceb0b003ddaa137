// AutoAWQ quantization + GEMM packing against the golden vectors made by AutoAWQ's own code
// (../shared/testdata/awq, README there), bit for bit; round trips, 3-bit, symmetric mode,
// bad parameters; the AwqGemm widen_row kernel against AutoAWQ's dequantize_gemm output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/half.h"
#include "io/checkpoint.h"
#include "ops/cpu/matmul.h"
#include "quant/autoawq_pack.h"
#include "support/expect_error.h"
#include "support/shared_data.h"

namespace awq {
namespace {

// One golden case: every tensor copied out of the file (the mapping may be unaligned).
struct Golden {
  int64_t in = 0, out = 0, group = 0;
  std::vector<uint16_t> weight;      // [out, in] fp16
  std::vector<uint16_t> scales_ref;  // [out, in/group] fp16
  std::vector<uint16_t> zeros_ref;   // [out, in/group] fp16 (integer values)
  std::vector<int32_t> qweight;      // [in, out/8]
  std::vector<int32_t> qzeros;       // [in/group, out/8]
  std::vector<uint16_t> scales;      // [in/group, out] fp16
  std::vector<uint16_t> w_dq;        // [in, out] fp16
};

template <class T>
std::vector<T> copy_tensor(const Checkpoint& ck, const std::string& name, std::vector<int64_t> shape,
                           DType dt) {
  const TensorView& t = ck.get(name, shape);
  EXPECT_EQ(t.dtype, dt) << name;
  std::vector<T> v(size_t(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

Golden load_golden(int64_t in, int64_t out, int64_t group) {
  const std::string file = test::shared_path("testdata/awq/gemm_I" + std::to_string(in) + "_O" +
                                             std::to_string(out) + "_g" + std::to_string(group) +
                                             ".safetensors");
  const Checkpoint ck(file);
  Golden g;
  g.in = in, g.out = out, g.group = group;
  const int64_t ng = in / group;
  g.weight = copy_tensor<uint16_t>(ck, "weight", {out, in}, DType::F16);
  g.scales_ref = copy_tensor<uint16_t>(ck, "scales_ref", {out, ng}, DType::F16);
  g.zeros_ref = copy_tensor<uint16_t>(ck, "zeros_ref", {out, ng}, DType::F16);
  g.qweight = copy_tensor<int32_t>(ck, "qweight", {in, out / 8}, DType::I32);
  g.qzeros = copy_tensor<int32_t>(ck, "qzeros", {ng, out / 8}, DType::I32);
  g.scales = copy_tensor<uint16_t>(ck, "scales", {ng, out}, DType::F16);
  g.w_dq = copy_tensor<uint16_t>(ck, "w_dq", {in, out}, DType::F16);
  return g;
}

struct GoldenCase {
  int64_t in, out, group;
};

class AutoAwqGolden : public ::testing::TestWithParam<GoldenCase> {
 protected:
  static const Golden& golden(const GoldenCase& c) {
    static std::map<int64_t, Golden> cache;
    auto it = cache.find(c.in);
    if (it == cache.end()) it = cache.emplace(c.in, load_golden(c.in, c.out, c.group)).first;
    return it->second;
  }
  const Golden& g() const { return golden(GetParam()); }
  GroupQuantized quantize() const {
    return quantize_autoawq(g().weight.data(), g().out, g().in, QuantParams{4, int(g().group), true});
  }
};

// pseudo_quantize_tensor's scales (bits) and zero points (values: the file's zeros are fp16).
TEST_P(AutoAwqGolden, ScalesAndZerosFromWeight) {
  const GroupQuantized q = quantize();
  ASSERT_EQ(q.scales.size(), g().scales_ref.size());
  int64_t bad_s = 0, bad_z = 0;
  for (size_t i = 0; i < q.scales.size(); ++i) {
    bad_s += q.scales[i] != g().scales_ref[i];
    bad_z += float(q.zeros[i]) != fp16_to_f32(g().zeros_ref[i]);
  }
  EXPECT_EQ(bad_s, 0) << "scales differing from AutoAWQ's, of " << q.scales.size();
  EXPECT_EQ(bad_z, 0) << "zero points differing from AutoAWQ's, of " << q.zeros.size();
  // Control: the golden data tells the fp16-per-op scale from an f32 one (README: 21-27 %
  // of the scales differ), so the bit-exact match above is not vacuous.
  const int64_t G = g().group, ng = g().in / G;
  int64_t f32_differs = 0;
  for (int64_t o = 0; o < g().out; ++o)
    for (int64_t j = 0; j < ng; ++j) {
      float mx = -INFINITY, mn = INFINITY;
      for (int64_t k = j * G; k < (j + 1) * G; ++k) {
        mx = std::max(mx, fp16_to_f32(g().weight[size_t(o * g().in + k)]));
        mn = std::min(mn, fp16_to_f32(g().weight[size_t(o * g().in + k)]));
      }
      f32_differs += f32_to_fp16(std::max(mx - mn, 1e-5f) / 15.0f) != g().scales_ref[size_t(o * ng + j)];
    }
  EXPECT_GT(f32_differs, int64_t(q.scales.size()) / 10) << "f32-arithmetic scales differing";
}

// WQLinear_GEMM.from_linear's qweight / qzeros / scales, bit for bit.
TEST_P(AutoAwqGolden, PackedTensorsBitExact) {
  const PackedGemm pk = pack_gemm(quantize());
  EXPECT_EQ(pk.qweight, g().qweight);
  EXPECT_EQ(pk.qzeros, g().qzeros);
  EXPECT_EQ(pk.scales, g().scales);
}

// dequantize_gemm's w_dq [in, out]: from our codes, and straight from the golden GEMM tensors.
TEST_P(AutoAwqGolden, DequantizedEqualsWdq) {
  const Golden& gd = g();
  const std::vector<uint16_t> wq = dequantize(quantize());  // [out, in]
  int64_t bad = 0;
  for (int64_t o = 0; o < gd.out; ++o)
    for (int64_t k = 0; k < gd.in; ++k) bad += wq[size_t(o * gd.in + k)] != gd.w_dq[size_t(k * gd.out + o)];
  EXPECT_EQ(bad, 0) << "w_fake elements differing from w_dq";
  std::vector<float> row(size_t(gd.in));
  bad = 0;
  for (int64_t o = 0; o < gd.out; ++o) {
    dequantize_gemm_row(gd.qweight.data(), gd.qzeros.data(), gd.scales.data(), gd.out, gd.in,
                        int(gd.group), o, row.data());
    for (int64_t k = 0; k < gd.in; ++k)
      bad += f32_to_bits(row[size_t(k)]) != f32_to_bits(fp16_to_f32(gd.w_dq[size_t(k * gd.out + o)]));
  }
  EXPECT_EQ(bad, 0) << "dequantize_gemm_row elements differing from w_dq";
}

// unpack_gemm of the golden tensors gives back our codes, zeros and scales.
TEST_P(AutoAwqGolden, UnpackGoldenEqualsQuantized) {
  const Golden& gd = g();
  const GroupQuantized q = quantize();
  const GroupQuantized u = unpack_gemm(gd.qweight.data(), gd.qzeros.data(), gd.scales.data(), gd.out,
                                       gd.in, q.p, "golden");
  EXPECT_EQ(u.codes, q.codes);
  EXPECT_EQ(u.zeros, q.zeros);
  EXPECT_EQ(u.scales, q.scales);
}

// The edge rows the generator wrote into input group 0 (README table).
TEST_P(AutoAwqGolden, EdgeRows) {
  const GroupQuantized q = quantize();
  const int64_t ng = g().in / g().group, G = g().group;
  const uint16_t tiny_scale = f32_to_fp16(fp16_to_f32(f32_to_fp16(1e-5f)) / 15.0f);
  EXPECT_NEAR(fp16_to_f32(tiny_scale), 6.556510925292969e-07, 1e-12);
  EXPECT_EQ(q.scales[0], tiny_scale);  // row 0: constant -> clamped range
  EXPECT_EQ(q.zeros[0], 0);
  for (int64_t k = 0; k < G; ++k) EXPECT_EQ(q.codes[size_t(k)], 15) << k;
  EXPECT_EQ(q.zeros[size_t(1 * ng)], 0);   // row 1: all positive
  EXPECT_EQ(q.zeros[size_t(2 * ng)], 15);  // row 2: all negative
  EXPECT_EQ(q.scales[size_t(3 * ng)], tiny_scale);  // row 3: all zero
  for (int64_t k = 0; k < G; ++k) EXPECT_EQ(q.codes[size_t(3 * g().in + k)], 0) << k;
}

// AwqGemm matrices through widen_row / matmul_ref: from the row repack and from the strided
// checkpoint layout, both equal to w_dq; the matmul equals a dense F16 matmul of w_dq^T.
TEST_P(AutoAwqGolden, WidenRowAndMatmulOnGoldenTensors) {
  const Golden& gd = g();
  const QuantParams p{4, int(gd.group), true};
  const AwqRows rows = repack_rows(gd.qweight.data(), gd.qzeros.data(), gd.scales.data(), gd.out,
                                   gd.in, p, "golden");
  Matrix m(DType::I32, gd.out, gd.in, gd.qweight.data());
  m.kind = MatrixKind::AwqGemm;
  m.awq = AwqMatrix{4, int(gd.group), gd.qweight.data(), gd.qzeros.data(), gd.scales.data(),
                    rows.codes.data(), rows.zeros.data(), rows.scales.data()};
  Matrix strided = m;
  strided.awq.row_codes = nullptr;
  std::vector<uint16_t> dense(size_t(gd.out * gd.in));  // [out, in] = w_dq^T
  for (int64_t o = 0; o < gd.out; ++o)
    for (int64_t k = 0; k < gd.in; ++k) dense[size_t(o * gd.in + k)] = gd.w_dq[size_t(k * gd.out + o)];
  const Matrix md{DType::F16, gd.out, gd.in, dense.data()};
  std::vector<float> a(size_t(gd.in)), b(size_t(gd.in)), c(size_t(gd.in));
  for (int64_t o = 0; o < gd.out; ++o) {
    widen_row(m, o, a.data());
    widen_row(strided, o, b.data());
    widen_row(md, o, c.data());
    ASSERT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4)) << "row " << o;
    ASSERT_EQ(0, std::memcmp(b.data(), c.data(), b.size() * 4)) << "row " << o;
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  const int64_t n = 3;
  std::vector<float> x(size_t(n * gd.in)), yq(size_t(n * gd.out)), yd(size_t(n * gd.out));
  for (float& v : x) v = nd(rng);
  ThreadPool pool(2);
  matmul_ref(pool, x.data(), n, m, nullptr, yq.data());
  matmul_ref(pool, x.data(), n, md, nullptr, yd.data());
  EXPECT_EQ(yq, yd);
}

INSTANTIATE_TEST_SUITE_P(AutoAwq, AutoAwqGolden,
                         ::testing::Values(GoldenCase{256, 64, 128}, GoldenCase{1024, 384, 64}, GoldenCase{384, 128, 32}),
                         [](const auto& info) {
                           return "I" + std::to_string(info.param.in) + "_O" +
                                  std::to_string(info.param.out) + "_g" + std::to_string(info.param.group);
                         });

// w: [out, in] fp16 ~ N(0, 0.02) with a few 8x outliers.
std::vector<uint16_t> random_weight(int64_t out, int64_t in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<uint16_t> w(size_t(out * in));
  for (auto& v : w) v = f32_to_fp16(nd(rng) * (u(rng) < 0.005f ? 8.0f : 1.0f));
  return w;
}

// The nibble order itself: codes o (= 0..7) in output row o pack to 0x75316420.
TEST(AutoAwqPack, NibbleOrder) {
  GroupQuantized q;
  q.out = 8, q.in = 8, q.p = QuantParams{4, 8, true};
  q.codes.resize(64);
  for (int o = 0; o < 8; ++o)
    for (int k = 0; k < 8; ++k) q.codes[size_t(o * 8 + k)] = uint8_t(o);
  q.scales.assign(8, f32_to_fp16(1.0f));
  q.zeros = {0, 1, 2, 3, 4, 5, 6, 7};
  const PackedGemm pk = pack_gemm(q);
  for (int32_t word : pk.qweight) EXPECT_EQ(uint32_t(word), 0x75316420u);
  ASSERT_EQ(pk.qzeros.size(), 1u);
  EXPECT_EQ(uint32_t(pk.qzeros[0]), 0x75316420u);
  for (int n = 0; n < 8; ++n) EXPECT_EQ(awq_nibble(pk.qweight[0], n), n);
  q.codes[0] = 15;  // a nibble >= 8 in position 0 of column 0; position 7 (column 7) makes it negative
  q.codes[7 * 8] = 15;
  EXPECT_LT(pack_gemm(q).qweight[0], 0);
}

TEST(AutoAwqPack, UnpackOfPackIsIdentity) {
  for (auto [out, in, group] : {std::tuple<int64_t, int64_t, int>{64, 256, 128}, {24, 96, 32}, {40, 64, 64}}) {
    const auto w = random_weight(out, in, uint32_t(out * 1000 + in));
    for (int bits : {4, 3})
      for (bool zp : {true, false}) {
        const QuantParams p{bits, group, zp};
        const GroupQuantized q = quantize_autoawq(w.data(), out, in, p);
        const PackedGemm pk = pack_gemm(q);
        ASSERT_EQ(pk.qweight.size(), size_t(in * out / 8));
        ASSERT_EQ(pk.qzeros.size(), size_t(in / group * out / 8));
        ASSERT_EQ(pk.scales.size(), size_t(in / group * out));
        const GroupQuantized u = unpack_gemm(pk.qweight.data(), pk.qzeros.data(), pk.scales.data(), out, in, p);
        EXPECT_EQ(u.codes, q.codes) << bits << zp;
        EXPECT_EQ(u.zeros, q.zeros) << bits << zp;
        EXPECT_EQ(u.scales, q.scales) << bits << zp;
        // the row repack holds the same codes
        const AwqRows r = repack_rows(pk.qweight.data(), pk.qzeros.data(), pk.scales.data(), out, in, p, "w");
        for (int64_t o = 0; o < out; ++o)
          for (int64_t k = 0; k < in; ++k)
            ASSERT_EQ((r.codes[size_t(o * (in / 8) + k / 8)] >> (4 * (k % 8))) & 0xF, q.codes[size_t(o * in + k)]);
        EXPECT_EQ(r.zeros, q.zeros);
        EXPECT_EQ(r.scales, q.scales);
      }
  }
}

// Joining linears along the outputs (an engine's q | k | v in order, gate | up in alternating
// packs of 8): every joined output holds the codes, zero points and scales of the part's output
// it came from (both unpacked, compared row by row), at 4 and 3 bits.
TEST(AutoAwqPack, JoinGemmOutputs) {
  const int64_t in = 256;
  const int group = 64;
  for (const int bits : {4, 3}) {
    const QuantParams p{bits, group, true};
    std::vector<GroupQuantized> q;
    std::vector<PackedGemm> pk;
    for (const int64_t out : {24, 16, 40, 24}) {
      const auto w = random_weight(out, in, uint32_t(out * 7 + q.size() + bits));
      q.push_back(quantize_autoawq(w.data(), out, in, p));
      pk.push_back(pack_gemm(q.back()));
    }
    const auto part = [&](size_t i) {
      return GemmPart{pk[i].qweight.data(), pk[i].qzeros.data(), pk[i].scales.data(), pk[i].out};
    };
    const int64_t ng = in / group;
    // Joined output o of `u` against output rr of part `from`.
    const auto expect_row = [&](const GroupQuantized& u, int64_t o, const GroupQuantized& from, int64_t rr,
                                const std::string& what) {
      for (int64_t k = 0; k < in; ++k)
        ASSERT_EQ(u.codes[size_t(o * in + k)], from.codes[size_t(rr * in + k)]) << what << " output " << o;
      for (int64_t g = 0; g < ng; ++g) {
        ASSERT_EQ(u.zeros[size_t(o * ng + g)], from.zeros[size_t(rr * ng + g)]) << what << " output " << o;
        ASSERT_EQ(u.scales[size_t(o * ng + g)], from.scales[size_t(rr * ng + g)]) << what << " output " << o;
      }
    };
    const PackedGemm in_order = join_gemm_outputs({part(0), part(1), part(2)}, in, p, false);
    ASSERT_EQ(in_order.out, 80);
    const GroupQuantized u = unpack_gemm(in_order.qweight.data(), in_order.qzeros.data(), in_order.scales.data(),
                                         in_order.out, in, p);
    int64_t o = 0;
    for (size_t i = 0; i < 3; ++i)
      for (int64_t rr = 0; rr < q[i].out; ++rr) expect_row(u, o++, q[i], rr, "in order");
    const PackedGemm mixed = join_gemm_outputs({part(0), part(3)}, in, p, true);
    ASSERT_EQ(mixed.out, 48);
    const GroupQuantized v = unpack_gemm(mixed.qweight.data(), mixed.qzeros.data(), mixed.scales.data(), mixed.out, in, p);
    for (size_t i = 0; i < 2; ++i)
      for (int64_t rr = 0; rr < 24; ++rr) expect_row(v, 16 * (rr / 8) + 8 * int64_t(i) + rr % 8, q[i == 0 ? 0 : 3], rr, "interleaved");
  }
  const JoinedOutputs dense({12, 5}, false);  // dense rows in order: partial packs allowed
  EXPECT_EQ(dense.total(), 17);
  EXPECT_EQ(dense.pack_at(1, 0), 12);
  EXPECT_EQ(dense.pack_at(0, 1), 8);
  EXPECT_THROW(JoinedOutputs({16, 24}, true), Error);  // interleaving needs equal parts
  EXPECT_THROW(JoinedOutputs({12, 12}, true), Error);  // ... of whole packs
  EXPECT_THROW(JoinedOutputs({16, 16, 16}, true), Error);  // ... and two of them
}

// Asymmetric 3-bit: codes and zeros in 0..7, scale fp16(fp16(max - min) / 7), every weight
// within half a step (plus fp16 rounding) of its dequantized value.
TEST(AutoAwqPack, ThreeBitRoundTrip) {
  const int64_t out = 32, in = 256;
  const int group = 128;
  const auto w = random_weight(out, in, 3);
  const GroupQuantized q = quantize_autoawq(w.data(), out, in, QuantParams{3, group, true});
  for (uint8_t c : q.codes) ASSERT_LE(c, 7);
  for (uint8_t z : q.zeros) ASSERT_LE(z, 7);
  const std::vector<uint16_t> dq = dequantize(q);
  int used[8] = {};
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < in / group; ++g) {
      float mx = -1e9f, mn = 1e9f;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) {
        mx = std::max(mx, fp16_to_f32(w[size_t(o * in + k)]));
        mn = std::min(mn, fp16_to_f32(w[size_t(o * in + k)]));
      }
      const uint16_t want = f32_to_fp16(fp16_to_f32(f32_to_fp16(mx - mn)) / 7.0f);
      const size_t gi = size_t(o * (in / group) + g);
      ASSERT_EQ(q.scales[gi], want);
      const float s = fp16_to_f32(want);
      for (int64_t k = g * group; k < (g + 1) * group; ++k) {
        const float err = std::fabs(fp16_to_f32(w[size_t(o * in + k)]) - fp16_to_f32(dq[size_t(o * in + k)]));
        EXPECT_LE(err, 0.5f * s * 1.01f + 2e-3f * std::fabs(mx - mn)) << o << "," << k;
        used[q.codes[size_t(o * in + k)]]++;
      }
    }
  for (int c = 0; c < 8; ++c) EXPECT_GT(used[c], 0) << "code " << c << " never used";
  const PackedGemm pk = pack_gemm(q);
  for (int32_t word : pk.qweight) ASSERT_EQ(uint32_t(word) & 0x88888888u, 0u);  // no nibble >= 8
  const GroupQuantized u = unpack_gemm(pk.qweight.data(), pk.qzeros.data(), pk.scales.data(), out, in, q.p);
  EXPECT_EQ(u.codes, q.codes);
  // a 3-bit checkpoint with a code of 8 is corrupt
  std::vector<int32_t> bad = pk.qweight;
  bad[5] = int32_t(uint32_t(bad[5]) | 0x8u);
  EXPECT_AWQ_ERROR(unpack_gemm(bad.data(), pk.qzeros.data(), pk.scales.data(), out, in, q.p, "layer.q_proj"),
                   {"layer.q_proj", "qweight", "3 bits"});
  EXPECT_AWQ_ERROR(repack_rows(bad.data(), pk.qzeros.data(), pk.scales.data(), out, in, q.p, "layer.q_proj"),
                   {"layer.q_proj", "qweight", "3 bits"});
}

// zero_point = false: AutoAWQ's symmetric math, stored as q + 2^(b-1) with zero 2^(b-1).
TEST(AutoAwqPack, SymmetricMode) {
  const int64_t out = 16, in = 128;
  const auto w = random_weight(out, in, 11);
  for (int bits : {4, 3}) {
    const int half = 1 << (bits - 1);
    const GroupQuantized q = quantize_autoawq(w.data(), out, in, QuantParams{bits, 64, false});
    const std::vector<uint16_t> dq = dequantize(q);
    for (uint8_t z : q.zeros) ASSERT_EQ(z, half);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t g = 0; g < 2; ++g) {
        float amax = 0;
        for (int64_t k = g * 64; k < (g + 1) * 64; ++k) amax = std::max(amax, std::fabs(fp16_to_f32(w[size_t(o * in + k)])));
        const float s = fp16_to_f32(f32_to_fp16(amax / float(half - 1)));
        ASSERT_EQ(q.scales[size_t(o * 2 + g)], f32_to_fp16(s));
        for (int64_t k = g * 64; k < (g + 1) * 64; ++k) {
          const float x = fp16_to_f32(w[size_t(o * in + k)]);
          const float qi = std::clamp(std::nearbyint(fp16_to_f32(f32_to_fp16(x / s))), -float(half), float(half - 1));
          ASSERT_EQ(int(q.codes[size_t(o * in + k)]), int(qi) + half) << bits << " " << o << "," << k;
          // by value: AutoAWQ's w_fake keeps -0.0 from round(-0.3) * s, (q - z) * s gives +0.0
          ASSERT_EQ(fp16_to_f32(dq[size_t(o * in + k)]), fp16_to_f32(f32_to_fp16(qi * s)));
        }
      }
    const PackedGemm pk = pack_gemm(q);
    const uint32_t zword = bits == 4 ? 0x88888888u : 0x44444444u;
    for (int32_t z : pk.qzeros) EXPECT_EQ(uint32_t(z), zword);
  }
}

TEST(AutoAwqPack, BadParameters) {
  const auto w = random_weight(64, 384, 1);
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 64, 384, QuantParams{4, 100, true}, "layers.0.q_proj"),
                   {"group size 100", "does not divide in_features 384", "layers.0.q_proj"});
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 64, 384, QuantParams{4, 0, true}, "layers.0.q_proj"),
                   {"group size 0", "layers.0.q_proj"});
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 64, 384, QuantParams{4, -1, true}, "layers.0.q_proj"),
                   {"group size -1", "layers.0.q_proj"});
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 64, 384, QuantParams{2, 128, true}, "layers.0.q_proj"),
                   {"2-bit", "layers.0.q_proj"});
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 64, 384, QuantParams{8, 128, true}, "layers.0.q_proj"),
                   {"8-bit", "layers.0.q_proj"});
  EXPECT_AWQ_ERROR(quantize_autoawq(w.data(), 60, 384, QuantParams{4, 128, true}, "layers.0.q_proj"),
                   {"out_features 60", "multiple of 8", "layers.0.q_proj"});
  std::vector<uint16_t> nan = w;
  nan[3 * 384 + 7] = 0x7e00;
  EXPECT_AWQ_ERROR(quantize_autoawq(nan.data(), 64, 384, QuantParams{}, "layers.0.q_proj"),
                   {"layers.0.q_proj", "[3, 7]", "NaN"});
  std::vector<uint16_t> huge = w;
  huge[5 * 384 + 130] = f32_to_fp16(60000.0f);
  huge[5 * 384 + 131] = f32_to_fp16(-60000.0f);
  EXPECT_AWQ_ERROR(quantize_autoawq(huge.data(), 64, 384, QuantParams{}, "layers.0.q_proj"),
                   {"layers.0.q_proj", "row 5, input group 1", "fp16"});
  // any positive divisor works, not only 32/64/128
  EXPECT_NO_THROW(quantize_autoawq(w.data(), 64, 384, QuantParams{4, 48, true}));
}

}  // namespace
}  // namespace awq
