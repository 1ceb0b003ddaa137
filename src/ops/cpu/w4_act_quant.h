// Activations of the W4 integer kernels (w4.h): one row of x quantized per weight group, as
// codes c times a unit u per group:
//  - int8:   c = round(x / u), u = max|x| / 127; |x - u c| <= u / 2.
//  - int8x2: c = round(x / u), u = max|x| / 32258 (32258 = 127 * 254), |c| <= 32258, split
//    exactly into two int8 digits c = 254 q1 + q2 with q1 = round(c / 254) (|q1| <= 127) and
//    q2 = c - 254 q1 (|q2| <= 127); |x - u c| <= u / 2, 254x finer than int8.
// Rounding to nearest even. A group with max|x| so small that 1 / u overflows a float is taken
// as zeros (u = 0, codes 0). Alongside: zsum = u * sum(c) per group, for the zero points.
//  - int16: int8x2's u and c, with c kept whole as an int16 (|c| <= 32258) for the AVX2
//    kernel, whose vpmaddwd multiplies pairs of 16-bit inputs: two products per int32 lane in
//    one instruction, where the two int8 digits took four vpmaddubsw / vpmaddwd.
// Output layout, per 8 inputs j of the row: B bytes at q + j * step; int8: B = 8 codes,
// int8x2: B = 16, the 8 high digits then the 8 low digits; int16: B = 16, the 8 codes as
// little-endian int16 in the order c0 c2 c1 c3 c4 c6 c5 c7 (kInt16Order: the pairs the kernel
// broadcasts against the nibbles of its packed weights).
// The AVX2 / AVX-512 versions give the same bits as the scalar references (tested).
#pragma once
#include <cstdint>

namespace awq {

enum class ActQuantIsa { Scalar, Avx2, Avx512 };
bool act_quant_supported(ActQuantIsa isa);

// x: [K] (K a multiple of gs, gs a multiple of 16); q: (K / 8) runs of B bytes, step apart;
// unit, zsum: [K / gs].
void quantize_act_int8(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                       float* unit, float* zsum);
void quantize_act_int8x2(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                         float* unit, float* zsum);
void quantize_act_int16(ActQuantIsa isa, const float* x, int64_t K, int64_t gs, int8_t* q, int64_t step,
                        float* unit, float* zsum);

// int16 layout: slot s of a run of 8 holds input kInt16Order[s].
inline constexpr int kInt16Order[8] = {0, 2, 1, 3, 4, 6, 5, 7};

}  // namespace awq
