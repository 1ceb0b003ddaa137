// IEEE fp16 and bfloat16 <-> float32 conversions, bit-exact (subnormals, inf, nan;
// round-to-nearest-even on the way down), independent of the compiler's _Float16 support.
#pragma once
#include <cstdint>
#include <cstring>

namespace awq {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24
    float f = float(mant) * (1.0f / 16777216.0f);
    return (h & 0x8000) ? -f : f;
  }
  if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
  return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);  // nan / inf
  if (ax >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520 -> inf
  if (ax < 0x38800000u) {
    // result is subnormal (or zero): round(|f| * 2^24) with ties to even
    const float af = bits_to_f32(ax);
    const float scaled = af * 16777216.0f;  // exact: power of two
    uint32_t r = uint32_t(scaled);
    const float rem = scaled - float(r);
    if (rem > 0.5f || (rem == 0.5f && (r & 1))) ++r;
    return sign | uint16_t(r);
  }
  // normal: re-bias exponent, round mantissa 23 -> 10 bits, ties to even
  uint32_t m = ax - 0x38000000u;  // exponent bias 127 -> 15
  m += 0xfff + ((m >> 13) & 1);
  return sign | uint16_t(m >> 13);
}

inline float bf16_to_f32(uint16_t b) { return bits_to_f32(uint32_t(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet nan
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

}  // namespace awq
