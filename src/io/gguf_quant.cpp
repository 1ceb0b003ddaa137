#include "io/gguf_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "io/gguf_format.h"

namespace awq::gguf {
namespace {
void put_fp16(uint8_t* p, float v) {
  const uint16_t h = f32_to_fp16(v);
  std::memcpy(p, &h, 2);
}
float get_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}
}  // namespace

void quantize_row_q4_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQ4_0Block; ++b, x += kQ4_0Block, out += kQ4_0Bytes) {
    float amax = 0, m = 0;  // the element of largest magnitude, with its sign
    for (int j = 0; j < kQ4_0Block; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), m = x[j];
    const float d = m / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_fp16(out, d);
    for (int j = 0; j < kQ4_0Block / 2; ++j) {
      const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[j + kQ4_0Block / 2] * id + 8.5f)));
      out[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_row_q4_0(const uint8_t* in, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQ4_0Block; ++b, in += kQ4_0Bytes, y += kQ4_0Block) {
    const float d = get_fp16(in);
    for (int j = 0; j < kQ4_0Block / 2; ++j) {
      y[j] = float(int(in[2 + j] & 0x0f) - 8) * d;
      y[j + kQ4_0Block / 2] = float(int(in[2 + j] >> 4) - 8) * d;
    }
  }
}

void quantize_row_q8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b, x += kQ8_0Block, out += kQ8_0Bytes) {
    float amax = 0;
    for (int j = 0; j < kQ8_0Block; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_fp16(out, d);
    for (int j = 0; j < kQ8_0Block; ++j) out[2 + j] = uint8_t(int8_t(std::lround(x[j] * id)));
  }
}

void dequantize_row_q8_0(const uint8_t* in, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b, in += kQ8_0Bytes, y += kQ8_0Block) {
    const float d = get_fp16(in);
    for (int j = 0; j < kQ8_0Block; ++j) y[j] = float(int8_t(in[2 + j])) * d;
  }
}

}  // namespace awq::gguf
