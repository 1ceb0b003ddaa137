#include <gtest/gtest.h>

#include <cmath>

#include "core/half.h"

namespace awq {

// Every one of the 65536 fp16 bit patterns converts to f32 and back unchanged (nan payloads
// are quieted, so for nan only nan-ness is checked). Exact: both conversions are exact here.
TEST(Half, Fp16RoundTripAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
      continue;
    }
    EXPECT_EQ(f32_to_fp16(f), h) << h;
  }
}

TEST(Half, Fp16RoundsToNearestEven) {
  EXPECT_EQ(fp16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);               // tie -> even (down)
  EXPECT_EQ(f32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);               // tie -> even (up)
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);                          // max finite
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);                          // rounds to inf
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);             // tie to even zero
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);             // smallest subnormal
  EXPECT_EQ(f32_to_fp16(-std::ldexp(1.0f, -24)), 0x8001);
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

}  // namespace awq
