// ggml's Q4_0 and Q8_0 block encodings (the reference quantizers of ggml-quants.c, written
// from the format's definition): blocks of 32 consecutive weights of a row.
//
// Q4_0: d = m / -8 where m is the value of largest magnitude (sign kept), stored as fp16;
//   code q = min(15, trunc(x / d + 8.5)) in 0..15; weight = (q - 8) * d. Byte j of the 16
//   code bytes holds element j in its low nibble and element j + 16 in its high nibble.
//   The largest-magnitude element maps exactly to code 0 (-8 * d = m); error per element
//   <= |d| / 2 (+ the fp16 rounding of d).
// Q8_0: d = max|x| / 127 (fp16); q = round(x / d) in -127..127; weight = q * d.
#pragma once
#include <cstdint>

namespace awq::gguf {

// x: [n] with n % 32 == 0; out: n / 32 blocks of 18 (Q4_0) or 34 (Q8_0) bytes.
void quantize_row_q4_0(const float* x, int64_t n, uint8_t* out);
void dequantize_row_q4_0(const uint8_t* in, int64_t n, float* y);
void quantize_row_q8_0(const float* x, int64_t n, uint8_t* out);
void dequantize_row_q8_0(const uint8_t* in, int64_t n, float* y);

}  // namespace awq::gguf
