#include "ops/cuda/cuda_ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "core/error.h"
#include "ops/cuda/activation_device.cuh"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/rope_device.cuh"

namespace awq::cuda {

namespace {

using activation_device::silu_times;
using pdl_device::pdl_trigger;
using pdl_device::pdl_wait;

constexpr int kWarp = 32;

__device__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v, float* shared32) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // shared32 may still be read by a previous call
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  v = lane < nw ? shared32[lane] : 0.0f;
  return warp_sum(v);
}

__device__ float block_max(float v, float* shared32) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nw = blockDim.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  v = lane < nw ? shared32[lane] : -FLT_MAX;
  return warp_max(v);
}

// grid: rows; x[r] = table[ids[r]]
__global__ void embed_kernel(const __half* table, const int32_t* ids, int64_t d, float* x) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  const int64_t r = blockIdx.x;
  const __half* src = table + int64_t(ids[r]) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) x[r * d + j] = __half2float(src[j]);
}

// grid: rows. Scalar version (any d).
__global__ void add_rmsnorm_kernel(float* x, const __half* delta, const float* w, int64_t d,
                                   float eps, __half* h) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  __shared__ float red[32];
  float* xr = x + int64_t(blockIdx.x) * d;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float v = xr[j];
    if (delta) {
      v += __half2float(delta[int64_t(blockIdx.x) * d + j]);
      xr[j] = v;
    }
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, red) / float(d) + eps);
  __half* hr = h + int64_t(blockIdx.x) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) hr[j] = __float2half((xr[j] * inv) * w[j]);
}

// grid: rows; block: ceil(d / 4 / VPT) threads (<= 1024), thread i holding the VPT float4 pieces
// i, i + blockDim, ... of the row in registers. d % 4 == 0: 16-byte x / w and 8-byte delta / h
// accesses. The norm's weights are read before the wait (they are not written by any kernel:
// pdl.h's contract), so the chain after it is one read of x and delta, the sum, one write.
template <int VPT>
__global__ void add_rmsnorm4_kernel(float* x, const __half* delta, const float* w, int64_t d,
                                   float eps, __half* h) {
  __shared__ float red[32];
  const int64_t d4 = d / 4;
  const float4* wr = reinterpret_cast<const float4*>(w);
  float4 g[VPT], v[VPT];
#pragma unroll
  for (int i = 0; i < VPT; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * blockDim.x;
    if (j < d4) g[i] = wr[j];
  }
  pdl_wait();  // x and delta are written by earlier kernels (pdl.h)
  pdl_trigger();
  float4* xr = reinterpret_cast<float4*>(x + int64_t(blockIdx.x) * d);
  const uint2* dr = reinterpret_cast<const uint2*>(delta + int64_t(blockIdx.x) * d);
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < VPT; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * blockDim.x;
    if (j >= d4) continue;
    v[i] = xr[j];
    if (delta) {
      const uint2 u = dr[j];
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
      v[i].x += a.x, v[i].y += a.y, v[i].z += b.x, v[i].w += b.y;
      xr[j] = v[i];
    }
    ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
  }
  const float inv = rsqrtf(block_sum(ss, red) / float(d) + eps);
  uint2* hr = reinterpret_cast<uint2*>(h + int64_t(blockIdx.x) * d);
#pragma unroll
  for (int i = 0; i < VPT; ++i) {
    const int64_t j = threadIdx.x + int64_t(i) * blockDim.x;
    if (j >= d4) continue;
    const __half2 a = __floats2half2_rn((v[i].x * inv) * g[i].x, (v[i].y * inv) * g[i].y);
    const __half2 b = __floats2half2_rn((v[i].z * inv) * g[i].z, (v[i].w * inv) * g[i].w);
    uint2 u;
    u.x = *reinterpret_cast<const uint32_t*>(&a);
    u.y = *reinterpret_cast<const uint32_t*>(&b);
    hr[j] = u;
  }
}

constexpr int kRopeWarps = 8;  // heads per block of qk_norm_rope_store_kernel

// grid: (rows, ceil((n_heads + 2 n_kv) / kRopeWarps)); one warp per head of q, k and v.
__global__ void qk_norm_rope_store_kernel(__half* qkv, int n_heads, int n_kv, int hd,
                                          const float2* cos_sin, const float* q_norm,
                                          const float* k_norm, float eps, KvCacheView kv) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  const int64_t r = blockIdx.x;
  const int lane = threadIdx.x % kWarp;
  const int head = blockIdx.y * kRopeWarps + threadIdx.x / kWarp;
  if (head >= n_heads + 2 * n_kv) return;
  const int half = hd / 2, kvd = n_kv * hd;
  __half* row = qkv + r * int64_t(n_heads * hd + 2 * kvd);
  const int p = kv.pos[r];
  const int64_t cache_row = (int64_t(kv.slot[r]) * kv.ctx + p) * kvd;
  if (head >= n_heads + n_kv) {  // v: copied as is
    const int g = head - n_heads - n_kv;
    const __half* src = row + n_heads * hd + kvd + g * hd;
    for (int j = lane; j < hd; j += kWarp) kv.v[cache_row + g * hd + j] = src[j];
    return;
  }
  const bool is_q = head < n_heads;
  __half* v = row + head * hd;  // q heads then k heads are adjacent in the row
  const float* norm = is_q ? q_norm : k_norm;
  float scale = 1.0f;
  if (norm) {
    float ss = 0.0f;
    for (int j = lane; j < hd; j += kWarp) {
      const float a = __half2float(v[j]);
      ss += a * a;
    }
    scale = rsqrtf(warp_sum(ss) / float(hd) + eps);
  }
  __half* dst = is_q ? v : kv.k + cache_row + (head - n_heads) * hd;
  const float2* cs = cos_sin + int64_t(p) * half;
  for (int j = lane; j < half; j += kWarp) {
    float a = __half2float(v[j]), b = __half2float(v[j + half]);
    if (norm) {
      a = (a * scale) * norm[j];
      b = (b * scale) * norm[j + half];
    }
    dst[j] = rope_device::rope_lo(a, b, cs[j]);
    dst[j + half] = rope_device::rope_hi(a, b, cs[j]);
  }
}

// o[0 .. W) = silu(g[e]) * u[e]: W = 1, or 8 with 16-byte loads and stores (same arithmetic).
template <int W>
__device__ void silu_mul_pieces(const __half* g, const __half* u, __half* o) {
  if constexpr (W == 1) {
    *o = __float2half(silu_times(__half2float(*g), __half2float(*u)));
  } else {
    static_assert(W == 8);
    const uint4 g4 = *reinterpret_cast<const uint4*>(g), u4 = *reinterpret_cast<const uint4*>(u);
    const __half2* gh = reinterpret_cast<const __half2*>(&g4);
    const __half2* uh = reinterpret_cast<const __half2*>(&u4);
    uint4 o4;
    __half2* oh = reinterpret_cast<__half2*>(&o4);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 gf = __half22float2(gh[e]), uf = __half22float2(uh[e]);
      oh[e] = __halves2half2(__float2half(silu_times(gf.x, uf.x)), __float2half(silu_times(gf.y, uf.y)));
    }
    *reinterpret_cast<uint4*>(o) = o4;
  }
}

// W outputs a thread (silu_mul_pieces), fw = ff / W pieces a row. interleaved (W = 8): gu's rows
// hold gate and up in alternating packs of 8 (pack p of the gate at 16 p, of the up at 16 p + 8),
// else gate | up.
template <int W>
__global__ void silu_mul_kernel(const __half* gu, int64_t rows, int64_t fw, bool interleaved, __half* out) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  const int64_t n = rows * fw;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / fw, j = i % fw;
    const int64_t g = (interleaved ? r * 2 * fw + 2 * j : r * 2 * fw + j) * W;
    silu_mul_pieces<W>(gu + g, gu + (interleaved ? g + W : g + fw * W), out + i * W);
  }
}

// grid: rows, block: 1024
__global__ void argmax_kernel(const float* logits, int64_t vocab, int32_t* ids) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  __shared__ float sv[32];
  __shared__ int64_t si[32];
  const float* l = logits + int64_t(blockIdx.x) * vocab;
  float best = -INFINITY;
  int64_t bi = vocab;  // larger than any index: loses every tie
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    if (l[j] > best || (l[j] == best && j < bi)) best = l[j], bi = j;
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > best || (ov == best && oi < bi)) best = ov, bi = oi;
  }
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) sv[warp] = best, si[warp] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / kWarp); ++w)
      if (sv[w] > best || (sv[w] == best && si[w] < bi)) best = sv[w], bi = si[w];
    // all-NaN rows keep index 0, as the CPU argmax
    ids[blockIdx.x] = int32_t(bi < vocab ? bi : 0);
  }
}

// grid: rows, block: 1024
__global__ void nll_kernel(const float* logits, const int32_t* target, int64_t vocab, float* nll) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  __shared__ float red[32];
  const float* l = logits + int64_t(blockIdx.x) * vocab;
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) sum += expf(l[j] - mx);
  sum = block_sum(sum, red);
  if (threadIdx.x == 0) nll[blockIdx.x] = (logf(sum) + mx) - l[target[blockIdx.x]];
}

}  // namespace

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(std::string("CUDA kernel ") + what + " failed: " + cudaGetErrorString(e));
}

void embed_rows(const __half* table, const int32_t* ids, int64_t rows, int64_t d, float* x,
                cudaStream_t s) {
  if (rows <= 0) return;
  // The first kernel of a forward pass follows the copy of the token ids: no PDL attribute.
  launch_kernel({dim3(unsigned(rows)), dim3(256), 0, s, 1, /*pdl=*/false}, embed_kernel, table, ids, d, x);
  check_launch("embed_rows");
}

void add_rmsnorm(float* x, const __half* delta, const float* w, int64_t rows, int64_t d, float eps,
                 __half* h, cudaStream_t s) {
  if (rows <= 0) return;
  const int64_t d4 = d / 4;
  const auto threads_for = [&](int vpt) {  // a whole number of warps holding d / 4 pieces, vpt each
    return dim3(unsigned(((d4 + vpt - 1) / vpt + kWarp - 1) / kWarp * kWarp));
  };
  const auto shape = [&](dim3 block) { return LaunchShape{dim3(unsigned(rows)), block, 0, s}; };
  if (d % 4 != 0 || d4 > 8 * 1024)
    launch_kernel(shape(dim3(256)), add_rmsnorm_kernel, x, delta, w, d, eps, h);
  else if (d4 <= 1024)
    launch_kernel(shape(threads_for(1)), add_rmsnorm4_kernel<1>, x, delta, w, d, eps, h);
  else if (d4 <= 2 * 1024)
    launch_kernel(shape(threads_for(2)), add_rmsnorm4_kernel<2>, x, delta, w, d, eps, h);
  else if (d4 <= 4 * 1024)
    launch_kernel(shape(threads_for(4)), add_rmsnorm4_kernel<4>, x, delta, w, d, eps, h);
  else
    launch_kernel(shape(threads_for(8)), add_rmsnorm4_kernel<8>, x, delta, w, d, eps, h);
  check_launch("add_rmsnorm");
}

std::vector<float> rope_cos_sin_table(const std::vector<float>& inv_freq, int64_t ctx) {
  const size_t half = inv_freq.size();
  std::vector<float> t(size_t(ctx) * half * 2);
  for (int64_t p = 0; p < ctx; ++p)
    for (size_t j = 0; j < half; ++j) {
      const float angle = float(p) * inv_freq[j];
      t[(size_t(p) * half + j) * 2] = float(std::cos(double(angle)));
      t[(size_t(p) * half + j) * 2 + 1] = float(std::sin(double(angle)));
    }
  return t;
}

void qk_norm_rope_store(__half* qkv, int64_t rows, int n_heads, int n_kv_heads, int head_dim,
                        const float2* cos_sin, const float* q_norm, const float* k_norm, float eps,
                        const KvCacheView& kv, cudaStream_t s) {
  if (rows <= 0) return;
  const dim3 grid(unsigned(rows), unsigned((n_heads + 2 * n_kv_heads + kRopeWarps - 1) / kRopeWarps));
  launch_kernel({grid, dim3(kRopeWarps * kWarp), 0, s}, qk_norm_rope_store_kernel, qkv, n_heads, n_kv_heads,
                head_dim, cos_sin, q_norm, k_norm, eps, kv);
  check_launch("qk_norm_rope_store");
}

void silu_mul(const __half* gu, int64_t rows, int64_t ff, __half* out, cudaStream_t s, bool interleaved) {
  const int64_t n = rows * ff;
  if (n <= 0) return;
  const bool vec = ff % 8 == 0 && reinterpret_cast<uintptr_t>(gu) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (interleaved && !vec) throw Error("silu_mul: interleaved gate/up needs ff % 8 == 0 and 16-byte aligned buffers");
  if (vec) {
    const int64_t blocks = std::min<int64_t>((n / 8 + 127) / 128, 65535);
    launch_kernel({dim3(unsigned(blocks)), dim3(128), 0, s}, silu_mul_kernel<8>, gu, rows, ff / 8, interleaved, out);
  } else {
    const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
    launch_kernel({dim3(unsigned(blocks)), dim3(256), 0, s}, silu_mul_kernel<1>, gu, rows, ff, false, out);
  }
  check_launch("silu_mul");
}

void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids, cudaStream_t s) {
  if (rows <= 0) return;
  launch_kernel({dim3(unsigned(rows)), dim3(1024), 0, s}, argmax_kernel, logits, vocab, ids);
  check_launch("argmax_rows");
}

void nll_rows(const float* logits, const int32_t* target, int64_t rows, int64_t vocab, float* nll,
              cudaStream_t s) {
  if (rows <= 0) return;
  launch_kernel({dim3(unsigned(rows)), dim3(1024), 0, s}, nll_kernel, logits, target, vocab, nll);
  check_launch("nll_rows");
}

}  // namespace awq::cuda
