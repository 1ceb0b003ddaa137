// Activations of the W4 integer kernels (w4.h): one row of x quantized per weight group, as
// codes c times a unit u per group:
//  - int8:   c = round(x / u), u = max|x| / 127; |x - u c| <= u / 2.
//  - int8x2: c = round(x / u), u = max|x| / 32258 (32258 = 127 * 254), |c| <= 32258, split
//    exactly into two int8 digits c = 254 q1 + q2 with q1 = round(c / 254) (|q1| <= 127) and
//    q2 = c - 254 q1 (|q2| <= 127); |x - u c| <= u / 2, 254x finer than int8.
// Rounding to nearest even. A group with max|x| so small that 1 / u overflows a float is taken
// as zeros (u = 0, codes 0). Alongside: zsum = u * sum(c) per group, for the zero points.
// Output layout, per 8 inputs j of the row: B bytes at q + j * step; int8: B = 8 codes,
// int8x2: B = 16, the 8 high digits then the 8 low digits.
// The AVX-512 versions give the same bits as the scalar references (tested).
#pragma once
#include <cstdint>

namespace awq {

enum class ActQuantIsa { Scalar, Avx512 };
bool act_quant_supported(ActQuantIsa isa);

// x: [K] (K a multiple of gs, gs a multiple of 16); q: (K / 8) runs of B bytes, step apart;
// unit, zsum: [K / gs].
void quantize_act_int8(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                       float* unit, float* zsum);
void quantize_act_int8x2(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                         float* unit, float* zsum);

}  // namespace awq
