// W4A16 kernels: the repack from the AutoAWQ GEMM layout, and one tensor-core kernel family
// for every m: output rows in tiles of 16 are mma.sync's A operand (dequantized in registers
// from 4-bit codes), the tokens in tiles of 8 its B operand ("swap AB"), so a single token
// costs one 16x8x16 mma per 256 weights and the kernel stays bound by the weight stream.
//  - small m (GEMV): the 8 warps of a block share one row tile and split K; a shared-memory
//    reduction joins their partial sums.
//  - large m (GEMM): the 8 warps of a block take 8 row tiles over all of K, so the x values
//    each of them loads are the same and hit L1; blockIdx.y walks 64-token chunks.
// Dequant (the lop3 trick): (q & 0x000f000f) | 0x64006400 is the fp16 pair 1024 + q; the
// nibbles at bits 4..7 give 1024 + 16 q. Subtracting 1024 + z (or an fma with 1/16 and
// -(64 + z)) gives q - z exactly; one hmul2 by the scale rounds like AutoAWQ's fp16((q - z) s).
#include "ops/cuda/w4a16_kernels.h"

#include <algorithm>

#include "ops/cuda/cuda_check.h"

namespace awq::cuda {

namespace {

__device__ __forceinline__ int awq_code(const int32_t* qweight, int64_t n, int64_t row, int64_t col) {
  // qweight: [k, n/8]; logical column `row` (an output feature) of input row `col`.
  const uint32_t word = uint32_t(qweight[col * (n / 8) + row / 8]);
  const int j = int(row % 8);  // nibble kAwqReverseOrder[j] = {0, 4, 1, 5, 2, 6, 3, 7}[j]
  return int((word >> (4 * ((j % 2) * 4 + j / 2))) & 0xFu);
}

// One thread per (row tile, 64-input chunk, lane): the uint4 that lane loads.
__global__ void repack_codes_kernel(const int32_t* __restrict__ qweight, int64_t n, int64_t k,
                                    int64_t tiles_n, int64_t chunks, uint4* __restrict__ codes) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tiles_n * chunks * 32) return;
  const int lane = int(idx % 32);
  const int64_t chunk = (idx / 32) % chunks, tn = idx / 32 / chunks;
  const int64_t r0 = tn * 16 + lane / 4, r1 = r0 + 8;
  const int c = (lane % 4) * 2;
  uint32_t words[4];
  for (int j = 0; j < 4; ++j) {
    const int64_t kb = (chunk * 4 + j) * 16;
    // nibble i holds (row, column offset): {r c, r+8 c, r c+8, r+8 c+8, r c+1, r+8 c+1, r c+9, r+8 c+9}
    const int64_t rows[8] = {r0, r1, r0, r1, r0, r1, r0, r1};
    const int cols[8] = {c, c, c + 8, c + 8, c + 1, c + 1, c + 9, c + 9};
    uint32_t w = 0;
    for (int i = 0; i < 8; ++i) {
      const int64_t row = rows[i], col = kb + cols[i];
      const int q = (row < n && col < k) ? awq_code(qweight, n, row, col) : 0;
      w |= uint32_t(q) << (4 * i);
    }
    words[j] = w;
  }
  codes[idx] = make_uint4(words[0], words[1], words[2], words[3]);
}

// One thread per (row tile, group, row pair p): {s_r, s_r+8, 1024 + z_r, -(64 + z_r+8)}.
__global__ void repack_params_kernel(const int32_t* __restrict__ qzeros,
                                     const __half* __restrict__ scales, int64_t n, int64_t ngroups,
                                     int64_t tiles_n, uint2* __restrict__ params) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tiles_n * ngroups * 8) return;
  const int p = int(idx % 8);
  const int64_t g = (idx / 8) % ngroups, tn = idx / 8 / ngroups;
  const int64_t r0 = tn * 16 + p, r1 = r0 + 8;
  const __half zero = __float2half(0.0f);
  const __half s0 = r0 < n ? scales[g * n + r0] : zero;
  const __half s1 = r1 < n ? scales[g * n + r1] : zero;
  const int z0 = r0 < n ? awq_code(qzeros, n, r0, g) : 0;
  const int z1 = r1 < n ? awq_code(qzeros, n, r1, g) : 0;
  const __half zl = __float2half(float(1024 + z0)), zh = __float2half(float(-(64 + z1)));
  uint2 out;
  out.x = uint32_t(__half_as_ushort(s0)) | (uint32_t(__half_as_ushort(s1)) << 16);
  out.y = uint32_t(__half_as_ushort(zl)) | (uint32_t(__half_as_ushort(zh)) << 16);
  params[idx] = out;
}

__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(a), "r"(b), "r"(c));  // (a & b) | c
  return r;
}

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// A fragment of one 16x16 weight tile from its 8 codes and the group's params.
__device__ __forceinline__ void dequant(uint32_t q, uint2 p, uint32_t (&a)[4]) {
  const __half2 s_lo = bits_h2(__byte_perm(p.x, 0, 0x1010)), s_hi = bits_h2(__byte_perm(p.x, 0, 0x3232));
  const __half2 z_lo = bits_h2(__byte_perm(p.y, 0, 0x1010)), z_hi = bits_h2(__byte_perm(p.y, 0, 0x3232));
  const __half2 sixteenth = bits_h2(0x2C002C00u);
  const uint32_t lo0 = and_or(q, 0x000f000fu, 0x64006400u), hi0 = and_or(q, 0x00f000f0u, 0x64006400u);
  q >>= 8;
  const uint32_t lo1 = and_or(q, 0x000f000fu, 0x64006400u), hi1 = and_or(q, 0x00f000f0u, 0x64006400u);
  a[0] = h2_bits(__hmul2(__hsub2(bits_h2(lo0), z_lo), s_lo));
  a[1] = h2_bits(__hmul2(__hfma2(bits_h2(hi0), sixteenth, z_hi), s_hi));
  a[2] = h2_bits(__hmul2(__hsub2(bits_h2(lo1), z_lo), s_lo));
  a[3] = h2_bits(__hmul2(__hfma2(bits_h2(hi1), sixteenth, z_hi), s_hi));
}

// MT token tiles of 8; WK warps split K within a row tile, WN warps take separate row tiles.
template <int MT, int WK, int WN>
__global__ void __launch_bounds__(WK * WN * 32)
    w4a16_mma_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                     const __half* __restrict__ x, const __half* __restrict__ bias,
                     __half* __restrict__ y, int n, int k, int m, int group_tiles_log2) {
  constexpr int U = 4;  // 16-byte code loads in flight per lane
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wk = warp % WK, wn = warp / WK;
  const int tiles_n = (n + 15) / 16, tn = blockIdx.x * WN + wn;
  const int ktiles = k / 16, chunks = (k + 63) / 64, ngroups = ktiles >> group_tiles_log2;
  const int tok0 = blockIdx.y * 8 * MT;

  float acc[MT][4];
#pragma unroll
  for (int t = 0; t < MT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  // B fragment rows: token tok0 + 8t + lane/4 (clamped: columns past m are computed, never stored).
  const __half* xr[MT];
#pragma unroll
  for (int t = 0; t < MT; ++t) {
    const int tok = min(tok0 + t * 8 + lane / 4, m - 1);
    xr[t] = x + size_t(tok) * k + (lane % 4) * 2;
  }

  if (tn < tiles_n) {
    const uint4* cp = codes + size_t(tn) * chunks * 32 + lane;
    const uint2* pp = params + size_t(tn) * ngroups * 8 + lane / 4;
    for (int c0 = wk; c0 < chunks; c0 += WK * U) {
      uint4 wv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u * WK;
        wv[u] = c < chunks ? load_stream(cp + size_t(c) * 32) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u * WK;
        if (c >= chunks) break;
        const uint32_t words[4] = {wv[u].x, wv[u].y, wv[u].z, wv[u].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int kt = c * 4 + j;
          if (kt >= ktiles) break;
          const uint2 p = __ldg(pp + size_t(kt >> group_tiles_log2) * 8);
          uint32_t a[4];
          dequant(words[j], p, a);
#pragma unroll
          for (int t = 0; t < MT; ++t) {
            const uint32_t b0 = __ldg(reinterpret_cast<const unsigned int*>(xr[t] + kt * 16));
            const uint32_t b1 = __ldg(reinterpret_cast<const unsigned int*>(xr[t] + kt * 16 + 8));
            mma_16816(acc[t], a, b0, b1);
          }
        }
      }
    }
  }

  if constexpr (WK > 1) {
    __shared__ float red[WK * WN][MT * 4][32];
#pragma unroll
    for (int t = 0; t < MT; ++t)
#pragma unroll
      for (int j = 0; j < 4; ++j) red[warp][t * 4 + j][lane] = acc[t][j];
    __syncthreads();
    if (wk != 0) return;
#pragma unroll
    for (int t = 0; t < MT; ++t)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < WK; ++w) s += red[wn * WK + w][t * 4 + j][lane];
        acc[t][j] = s;
      }
  }
  if (tn >= tiles_n) return;
#pragma unroll
  for (int t = 0; t < MT; ++t)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int tok = tok0 + t * 8 + (lane % 4) * 2 + (j & 1);
      const int row = tn * 16 + lane / 4 + (j >= 2 ? 8 : 0);
      if (tok < m && row < n) {
        float v = acc[t][j];
        if (bias) v += __half2float(bias[row]);
        y[size_t(tok) * n + row] = __float2half(v);
      }
    }
}

__global__ void add_bias_kernel(__half* __restrict__ y, const __half* __restrict__ bias, int64_t m,
                                int64_t n) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= m * n) return;
  y[idx] = __float2half(__half2float(y[idx]) + __half2float(bias[idx % n]));
}

int blocks_for(int64_t items, int threads) { return int((items + threads - 1) / threads); }

template <int MT, int WK, int WN>
void launch(const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* y,
            int n, int k, int m, int gl2, cudaStream_t s) {
  const int tiles_n = (n + 15) / 16;
  const dim3 grid((tiles_n + WN - 1) / WN, (m + 8 * MT - 1) / (8 * MT));
  w4a16_mma_kernel<MT, WK, WN><<<grid, WK * WN * 32, 0, s>>>(codes, params, x, bias, y, n, k, m, gl2);
  AWQ_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_repack(const int32_t* qweight, const int32_t* qzeros, const __half* scales, int64_t n,
                   int64_t k, int group, uint4* codes, uint2* params, cudaStream_t s) {
  const int64_t tiles_n = (n + 15) / 16, chunks = (k + 63) / 64, ngroups = k / group;
  constexpr int kThreads = 256;
  repack_codes_kernel<<<blocks_for(tiles_n * chunks * 32, kThreads), kThreads, 0, s>>>(
      qweight, n, k, tiles_n, chunks, codes);
  AWQ_CUDA_CHECK_LAUNCH();
  repack_params_kernel<<<blocks_for(tiles_n * ngroups * 8, kThreads), kThreads, 0, s>>>(
      qzeros, scales, n, ngroups, tiles_n, params);
  AWQ_CUDA_CHECK_LAUNCH();
}

void launch_w4a16(const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                  __half* y, int64_t n, int64_t k, int group, int64_t m, cudaStream_t s) {
  int gl2 = 0;
  while ((16 << gl2) < group) ++gl2;  // group / 16 = 2^gl2 (w4a16.cu checks the power of two)
  const int ni = int(n), ki = int(k), mi = int(m);
  if (m <= 8)
    launch<1, 8, 1>(codes, params, x, bias, y, ni, ki, mi, gl2, s);
  else if (m <= 16)
    launch<2, 8, 1>(codes, params, x, bias, y, ni, ki, mi, gl2, s);
  else if (m <= 32)
    launch<4, 8, 1>(codes, params, x, bias, y, ni, ki, mi, gl2, s);
  else
    launch<8, 1, 8>(codes, params, x, bias, y, ni, ki, mi, gl2, s);
}

void launch_add_bias(__half* y, const __half* bias, int64_t m, int64_t n, cudaStream_t s) {
  constexpr int kThreads = 256;
  add_bias_kernel<<<blocks_for(m * n, kThreads), kThreads, 0, s>>>(y, bias, m, n);
  AWQ_CUDA_CHECK_LAUNCH();
}

}  // namespace awq::cuda
