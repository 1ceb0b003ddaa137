// Rows of IEEE fp16 <-> f32: the KV cache's conversions (rounding keys and values when they
// are written, widening blocks of them in the prefill attention). F16C (AVX2 builds of the
// kernels: vcvtph2ps / vcvtps2ph on 8 lanes) or AVX-512F (16 lanes) where the CPU has them,
// core/half.h one element at a time otherwise (GemmIsa::Portable). Every variant gives the
// same bits as core/half.h (round to nearest even, subnormals, inf; NaN stays NaN), checked
// over all 65536 fp16 values in tests/test_f16_rows.cpp.
#pragma once
#include <cstdint>

#include "ops/cpu/gemm.h"

namespace awq {

// Whether this CPU runs `isa`'s fp16 conversions: Portable always, Avx2 with AVX2 + FMA + F16C
// (the decode kernels of ops/cpu/attention_kernels.h use FMA too),
// Avx512 with AVX-512F.
bool f16_isa_supported(GemmIsa isa);
// The widest supported set not above gemm_best_isa() (so AWQ_CPU_ISA caps it too).
GemmIsa f16_best_isa();

// dst[i] = fp16 value src[i] as f32. src: [n] fp16 bits; dst: [n].
void f16_to_f32_row(GemmIsa isa, const uint16_t* src, float* dst, int64_t n);
// dst[i] = src[i] rounded to fp16 (nearest even; beyond +-65504 -> inf). src: [n]; dst: [n].
void f32_to_f16_row(GemmIsa isa, const float* src, uint16_t* dst, int64_t n);

// The same with f16_best_isa().
void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n);
void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n);

}  // namespace awq
