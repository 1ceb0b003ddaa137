#include "ops/cuda/cuda_ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "core/error.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"

namespace awq::cuda {

namespace {

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

// grid: rows. d % 4 == 0: 16-byte x / w and 8-byte delta / h accesses.
__global__ void add_rmsnorm4_kernel(float* x, const __half* delta, const float* w, int64_t d,
                                    float eps, __half* h) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  __shared__ float red[32];
  const int64_t d4 = d / 4;
  float4* xr = reinterpret_cast<float4*>(x + int64_t(blockIdx.x) * d);
  const uint2* dr = reinterpret_cast<const uint2*>(delta + int64_t(blockIdx.x) * d);
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < d4; j += blockDim.x) {
    float4 v = xr[j];
    if (delta) {
      const uint2 u = dr[j];
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
      v.x += a.x, v.y += a.y, v.z += b.x, v.w += b.y;
      xr[j] = v;
    }
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float inv = rsqrtf(block_sum(ss, red) / float(d) + eps);
  const float4* wr = reinterpret_cast<const float4*>(w);
  uint2* hr = reinterpret_cast<uint2*>(h + int64_t(blockIdx.x) * d);
  for (int64_t j = threadIdx.x; j < d4; j += blockDim.x) {
    const float4 v = xr[j], g = wr[j];
    const __half2 a = __floats2half2_rn((v.x * inv) * g.x, (v.y * inv) * g.y);
    const __half2 b = __floats2half2_rn((v.z * inv) * g.z, (v.w * inv) * g.w);
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
    const float2 t = cs[j];
    dst[j] = __float2half(a * t.x - b * t.y);
    dst[j + half] = __float2half(b * t.x + a * t.y);
  }
}

__global__ void silu_mul_kernel(const __half* gu, int64_t rows, int64_t ff, __half* out) {
  pdl_wait();  // everything below reads what earlier kernels wrote (pdl.h)
  pdl_trigger();
  const int64_t n = rows * ff;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ff, j = i % ff;
    const float g = __half2float(gu[r * 2 * ff + j]), u = __half2float(gu[r * 2 * ff + ff + j]);
    out[i] = __float2half(g / (1.0f + expf(-g)) * u);
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
  if (d % 4 == 0) {
    const int threads = int(std::min<int64_t>(1024, (d / 4 + kWarp - 1) / kWarp * kWarp));
    launch_kernel({dim3(unsigned(rows)), dim3(unsigned(threads)), 0, s}, add_rmsnorm4_kernel, x, delta, w, d, eps, h);
  } else {
    launch_kernel({dim3(unsigned(rows)), dim3(256), 0, s}, add_rmsnorm_kernel, x, delta, w, d, eps, h);
  }
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

void silu_mul(const __half* gu, int64_t rows, int64_t ff, __half* out, cudaStream_t s) {
  const int64_t n = rows * ff;
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  launch_kernel({dim3(unsigned(blocks)), dim3(256), 0, s}, silu_mul_kernel, gu, rows, ff, out);
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
