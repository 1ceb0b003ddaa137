// Device helpers shared by the W4A16 kernels (w4a16_kernels.cu: register-streaming kernels for
// small m; w4a16_tiled.cu: the shared-memory tiled GEMM for larger m). Internal to src/ops/cuda.
// Layout of codes and params: w4a16.h.
// Dequant (the lop3 trick): (q & 0x000f000f) | 0x64006400 is the fp16 pair 1024 + q; the
// nibbles at bits 4..7 give 1024 + 16 q. Subtracting 1024 + z (or an fma with 1/16 and
// -(64 + z)) gives q - z exactly; one hmul2 by the scale rounds like AutoAWQ's fp16((q - z) s).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/cuda/activation_device.cuh"

namespace awq::cuda::w4a16_device {

__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(b), "r"(c));  // (a & b) | c
  return r;
}

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// c += a b: one m16n8k16 tensor-core product, fp16 inputs, f32 accumulators.
// a: A fragment (16 x 16, row-major), b0/b1: B fragment (16 x 8, "col"), c: C fragment (16 x 8).
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes of weights that are read once: through the non-coherent path, not kept in L1.
__device__ __forceinline__ uint4 load_stream_nc(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// A group's params as fp16 pairs: scale of row r / r+8, and the zero offsets (see w4a16.h).
struct GroupParams {
  __half2 s_lo, s_hi, z_lo, z_hi;
};
__device__ __forceinline__ GroupParams expand(uint2 p) {
  return {bits_h2(__byte_perm(p.x, 0, 0x1010)), bits_h2(__byte_perm(p.x, 0, 0x3232)),
          bits_h2(__byte_perm(p.y, 0, 0x1010)), bits_h2(__byte_perm(p.y, 0, 0x3232))};
}

// A fragment of one 16x16 weight tile from its 8 codes and the group's params.
__device__ __forceinline__ void dequant(uint32_t q, const GroupParams& g, uint32_t (&a)[4]) {
  const __half2 sixteenth = bits_h2(0x2C002C00u);
  const uint32_t lo0 = and_or(q, 0x000f000fu, 0x64006400u), hi0 = and_or(q, 0x00f000f0u, 0x64006400u);
  q >>= 8;
  const uint32_t lo1 = and_or(q, 0x000f000fu, 0x64006400u), hi1 = and_or(q, 0x00f000f0u, 0x64006400u);
  a[0] = h2_bits(__hmul2(__hsub2(bits_h2(lo0), g.z_lo), g.s_lo));
  a[1] = h2_bits(__hmul2(__hfma2(bits_h2(hi0), sixteenth, g.z_hi), g.s_hi));
  a[2] = h2_bits(__hmul2(__hsub2(bits_h2(lo1), g.z_lo), g.s_lo));
  a[3] = h2_bits(__hmul2(__hfma2(bits_h2(hi1), sixteenth, g.z_hi), g.s_hi));
}

// The same A fragment without the scale: q - z exactly (integers -15..15 in fp16). For kernels
// that multiply a whole group's products by the scale afterwards, in f32 (one FFMA per
// accumulator per chunk instead of 4 HMUL2 per 16x16 tile); the weights are then not rounded
// to fp16 after scaling as AutoAWQ's are (a different rounding, not a larger one).
__device__ __forceinline__ void dequant_unscaled(uint32_t q, const GroupParams& g, uint32_t (&a)[4]) {
  const __half2 sixteenth = bits_h2(0x2C002C00u);
  const uint32_t lo0 = and_or(q, 0x000f000fu, 0x64006400u), hi0 = and_or(q, 0x00f000f0u, 0x64006400u);
  q >>= 8;
  const uint32_t lo1 = and_or(q, 0x000f000fu, 0x64006400u), hi1 = and_or(q, 0x00f000f0u, 0x64006400u);
  a[0] = h2_bits(__hsub2(bits_h2(lo0), g.z_lo));
  a[1] = h2_bits(__hfma2(bits_h2(hi0), sixteenth, g.z_hi));
  a[2] = h2_bits(__hsub2(bits_h2(lo1), g.z_lo));
  a[3] = h2_bits(__hfma2(bits_h2(hi1), sixteenth, g.z_hi));
}

// Stores one C fragment of the mma kernels whose weight rows are the M side (w4a16_kernels.cu,
// w4a16_kslice.cu): acc[e] is output row 16 tn + lane / 4 (+ 8 for e >= 2) for token tok0 +
// 2 (lane % 4) + (e & 1); rows >= n and tokens >= m are not stored. Plain: y [m, n] (+ bias).
// gated: the n rows are gate and up in alternating packs of 8 (cuda_ops.h silu_mul,
// interleaved), so e and e + 2 hold the gate and the up of output j = 8 tn + lane / 4, and
// y [m, n / 2] gets silu(gate) * up, each first rounded to fp16 as the fp16 projection output
// that silu_mul would read: the same bits as the projection followed by silu_mul.
__device__ __forceinline__ void store_c_fragment(const float (&acc)[4], int tn, int tok0, int lane, int m, int n,
                                                 const __half* __restrict__ bias, __half* __restrict__ y,
                                                 bool gated) {
  const int row = tn * 16 + lane / 4;
  if (gated) {
    if (row + 8 >= n) return;
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int tok = tok0 + (lane % 4) * 2 + e;
      if (tok >= m) continue;
      float g = acc[e], u = acc[e + 2];
      if (bias) g += __half2float(bias[row]), u += __half2float(bias[row + 8]);
      g = __half2float(__float2half(g));
      u = __half2float(__float2half(u));
      y[size_t(tok) * (n / 2) + tn * 8 + lane / 4] = __float2half(activation_device::silu_times(g, u));
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int tok = tok0 + (lane % 4) * 2 + (e & 1);
    const int r = row + (e >= 2 ? 8 : 0);
    if (tok < m && r < n) {
      float v = acc[e];
      if (bias) v += __half2float(bias[r]);
      y[size_t(tok) * n + r] = __float2half(v);
    }
  }
}

}  // namespace awq::cuda::w4a16_device
