// The residual add and RMSNorm of one row, in the one order that add_rmsnorm (cuda_ops.cu) and
// the W4A16 decode kernels' norm epilogue (w4a16_kernels.cu, W4A16NormEpilogue) both follow, so
// that the two give the same bits: kNormThreads threads, thread t taking the float4 pieces t,
// t + kNormThreads, ... of the row in that order, then block_sum. The arithmetic is spelled with
// explicit-rounding intrinsics so that nvcc cannot contract it into FMAs differently in the two
// kernels (it did, for RoPE: rope_device.cuh).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/cuda/reduce_device.cuh"

namespace awq::cuda::rmsnorm_device {

constexpr int kNormThreads = 256;
constexpr int kNormMaxPieces = 8;  // float4 pieces a thread holds: rows of up to 8192

// Rows this order covers (d % 4 == 0 for the 16-byte pieces).
__host__ __device__ constexpr bool norm_row_fits(int64_t d) {
  return d > 0 && d % 4 == 0 && d / 4 <= int64_t(kNormThreads) * kNormMaxPieces;
}

// x + delta, delta 4 fp16 values packed in 8 bytes.
__device__ __forceinline__ float4 add_delta(float4 x, uint2 delta) {
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&delta.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&delta.y));
  return make_float4(__fadd_rn(x.x, a.x), __fadd_rn(x.y, a.y), __fadd_rn(x.z, b.x), __fadd_rn(x.w, b.y));
}

// ss + the squares of v's four values.
__device__ __forceinline__ float add_squares(float ss, float4 v) {
  const float p = __fmaf_rn(v.w, v.w, __fmaf_rn(v.z, v.z, __fmaf_rn(v.y, v.y, __fmul_rn(v.x, v.x))));
  return __fadd_rn(ss, p);
}

// 1 / rms from the block's sum of squares over d values.
__device__ __forceinline__ float inverse_rms(float ss, int64_t d, float eps) {
  return rsqrtf(__fadd_rn(__fdiv_rn(ss, float(d)), eps));
}

// fp16 (v * inv) * g of four values, packed in 8 bytes.
__device__ __forceinline__ uint2 normed_halves(float4 v, float inv, float4 g) {
  const __half2 a = __floats2half2_rn(__fmul_rn(__fmul_rn(v.x, inv), g.x), __fmul_rn(__fmul_rn(v.y, inv), g.y));
  const __half2 b = __floats2half2_rn(__fmul_rn(__fmul_rn(v.z, inv), g.z), __fmul_rn(__fmul_rn(v.w, inv), g.w));
  uint2 u;
  u.x = *reinterpret_cast<const uint32_t*>(&a);
  u.y = *reinterpret_cast<const uint32_t*>(&b);
  return u;
}

// x: [d] += delta: [d] (fp16), h: [d] = rmsnorm(x) * w, one row (norm_row_fits(d)), by the
// threads t < kNormThreads of the calling block; every thread of the block must call it
// (block_sum synchronizes them; blockDim.x a multiple of 32, >= kNormThreads: the others add
// zeros, which leaves the sum's bits as add_rmsnorm4_kernel's). delta is read through L2
// (__ldcg): other blocks of the calling kernel wrote it. red32: 32 floats of shared memory.
__device__ __forceinline__ void add_rmsnorm_one_row(float* x, const __half* delta, const float* w, int64_t d,
                                                    float eps, __half* h, float* red32) {
  const int64_t d4 = d / 4;
  const int t = int(threadIdx.x);
  float4* xr = reinterpret_cast<float4*>(x);
  const uint2* dr = reinterpret_cast<const uint2*>(delta);
  float ss = 0.0f;
  if (t < kNormThreads) {
    for (int i = 0; i < kNormMaxPieces; ++i) {
      const int64_t j = t + int64_t(i) * kNormThreads;
      if (j >= d4) break;
      const float4 v = add_delta(xr[j], __ldcg(dr + j));
      xr[j] = v;
      ss = add_squares(ss, v);
    }
  }
  const float inv = inverse_rms(reduce_device::block_sum(ss, red32), d, eps);
  if (t >= kNormThreads) return;
  const float4* wr = reinterpret_cast<const float4*>(w);
  uint2* hr = reinterpret_cast<uint2*>(h);
  for (int i = 0; i < kNormMaxPieces; ++i) {
    const int64_t j = t + int64_t(i) * kNormThreads;
    if (j >= d4) break;
    hr[j] = normed_halves(xr[j], inv, wr[j]);  // xr[j]: this thread's own store above
  }
}

}  // namespace awq::cuda::rmsnorm_device
