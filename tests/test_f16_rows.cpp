// The fp16 <-> f32 row conversions of the KV cache (ops/cpu/f16_rows.h), every ISA variant the
// CPU runs, against core/half.h: exact (same bits), since all of them round to nearest even.
// Lengths that are not a multiple of the vector width check the scalar tails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "ops/cpu/f16_rows.h"

namespace awq {
namespace {

std::vector<GemmIsa> f16_isas() {
  std::vector<GemmIsa> v;
  for (GemmIsa isa : {GemmIsa::Portable, GemmIsa::Avx2, GemmIsa::Avx512})
    if (f16_isa_supported(isa)) v.push_back(isa);
  return v;
}

// All 65536 bit patterns widen to the same f32 bits as fp16_to_f32 (NaN: NaN).
TEST(F16Rows, WidenAllPatterns) {
  std::vector<uint16_t> src(65536 + 13);  // + a tail
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint16_t(i * 40503u);  // odd multiplier: a permutation mod 2^16
  for (GemmIsa isa : f16_isas()) {
    std::vector<float> got(src.size(), -1.0f);
    f16_to_f32_row(isa, src.data(), got.data(), int64_t(src.size()));
    for (size_t i = 0; i < src.size(); ++i) {
      const float want = fp16_to_f32(src[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[i])) << gemm_isa_name(isa) << " " << src[i];
        continue;
      }
      ASSERT_EQ(f32_to_bits(got[i]), f32_to_bits(want)) << gemm_isa_name(isa) << " bits " << src[i];
    }
  }
}

// f32 values across the whole fp16 range and beyond (subnormals, exact ties, overflow to inf,
// infinities, NaN) round to the bits f32_to_fp16 gives.
TEST(F16Rows, RoundMatchesScalar) {
  std::vector<float> src;
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    // exponents around the fp16 range: |x| in [2^-30, 2^17)
    const uint32_t b = bits(rng);
    const uint32_t exp = 97 + (b >> 24) % 48;
    src.push_back(bits_to_f32((b & 0x80000000u) | (exp << 23) | (b & 0x7fffffu)));
  }
  for (uint32_t h = 0; h < 0x7c00; h += 37) {  // exact ties between neighbouring fp16 values
    const float a = fp16_to_f32(uint16_t(h)), b = fp16_to_f32(uint16_t(h + 1));
    src.push_back(a + (b - a) / 2), src.push_back(-(a + (b - a) / 2));
  }
  for (float x : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, INFINITY, -INFINITY, NAN, 5.96e-8f, 2.98e-8f})
    src.push_back(x);
  src.push_back(1.0f);  // odd length: a tail for every width
  for (GemmIsa isa : f16_isas()) {
    std::vector<uint16_t> got(src.size());
    f32_to_f16_row(isa, src.data(), got.data(), int64_t(src.size()));
    for (size_t i = 0; i < src.size(); ++i) {
      if (std::isnan(src[i])) {
        EXPECT_TRUE(std::isnan(fp16_to_f32(got[i]))) << gemm_isa_name(isa);
        continue;
      }
      ASSERT_EQ(got[i], f32_to_fp16(src[i])) << gemm_isa_name(isa) << " x " << src[i];
    }
  }
}

TEST(F16Rows, BestIsaIsSupported) {
  EXPECT_TRUE(f16_isa_supported(f16_best_isa()));
  EXPECT_TRUE(f16_isa_supported(GemmIsa::Portable));
}

}  // namespace
}  // namespace awq
