// Fake (pseudo) quantization in f32, as the AWQ search evaluates candidates: quantize each
// group of `group` consecutive input channels of every output row and dequantize right back.
// The arithmetic of llm-awq's pseudo_quantize_tensor (f32, round half to even):
//   asymmetric: s = max(max - min, 1e-5) / (2^b - 1); z = clamp(-round(min / s), 0, 2^b - 1)
//               w' = (clamp(round(w / s) + z, 0, 2^b - 1) - z) * s
//   symmetric:  s = max|w| / (2^(b-1) - 1);  w' = clamp(round(w / s), -2^(b-1), 2^(b-1) - 1) * s
// The checkpoint itself is quantized with AutoAWQ's fp16 arithmetic (autoawq_pack.h).
#pragma once
#include <cstdint>

#include "quant/autoawq_pack.h"

namespace awq {

// w: [rows, cols] in place; cols % p.group == 0.
void fake_quantize(float* w, int64_t rows, int64_t cols, const QuantParams& p);

// One group: w: [n] in place.
void fake_quantize_group(float* w, int64_t n, const QuantParams& p);

}  // namespace awq
