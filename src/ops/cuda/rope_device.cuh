// Device side of rotate-half RoPE, shared by qk_norm_rope_store (cuda_ops.cu) and the decode
// attention that does the same work itself (cuda_attention.cu): one helper, so both produce
// the same bits for the same inputs (the compiler sees the same expression in both).
#pragma once
#include <cuda_fp16.h>

namespace awq::cuda::rope_device {

// The rotated pair of (a, b) = (x[j], x[j + head_dim / 2]) at an angle with cos_sin = (cos, sin):
// lo = x'[j] = a cos - b sin, hi = x'[j + head_dim / 2] = b cos + a sin, both rounded to fp16.
// Explicit roundings (_rn intrinsics are never contracted): left to the compiler, the same
// expression became different fused multiply-adds in the two kernels (1-ulp differences).
__device__ __forceinline__ __half rope_lo(float a, float b, float2 cs) {
  return __float2half(__fmaf_rn(a, cs.x, __fmul_rn(-b, cs.y)));
}
__device__ __forceinline__ __half rope_hi(float a, float b, float2 cs) {
  return __float2half(__fmaf_rn(b, cs.x, __fmul_rn(a, cs.y)));
}

}  // namespace awq::cuda::rope_device
