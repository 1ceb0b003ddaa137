// The inner loops of CPU attention (ops/cpu/attention.h): softmax over a row of scores, and one
// query of one head against its keys and values (the decode step) for an f32 or fp16 cache.
#pragma once
#include <cstdint>

#include "ops/cpu/gemm.h"

namespace awq {

// s[j] = exp(s[j] - mx) for j < n (every s[j] <= mx); returns their sum. s: [n].
float exp_shift_sum(float* s, int64_t n, float mx);
// max(m, s[0..n)). s: [n].
float max_of(const float* s, int64_t n, float m);

// One query of one head against keys [first, last] of its KV head: scores, softmax, weighted
// sum of the values.
// q: [hd]; key / value t at k + t * ld / v + t * ld (floats); scores: [last - first + 1]
// scratch; o: [hd].
void attend_one_f32(const float* q, const float* k, const float* v, int64_t ld, int64_t first,
                    int64_t last, int64_t hd, float scale, float* scores, float* o);

// The same against fp16 keys and values (uint16_t bits, element strides as above), widened
// to f32 as they are read; row: [hd] scratch (used by the portable kernel).
using AttendOneF16 = void (*)(const float* q, const uint16_t* k, const uint16_t* v, int64_t ld,
                              int64_t first, int64_t last, int64_t hd, float scale, float* scores,
                              float* row, float* o);
// The kernel for `isa`: AVX-512F (16 lanes), AVX2 + FMA + F16C (8 lanes), portable (core/half.h
// into `row`, then the f32 loops). f16_isa_supported(isa) must hold (ops/cpu/f16_rows.h).
AttendOneF16 attend_one_f16(GemmIsa isa);

}  // namespace awq
