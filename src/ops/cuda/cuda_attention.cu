#include "ops/cuda/cuda_attention.h"

#include <algorithm>
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
// Warps per block (each walks every NW-th pair of keys of the chunk): 8, or 4 where 8 would
// need more than 32 KB of shared memory for the cross-warp combine.
constexpr int warps_for(int hd, int hpb) { return hpb * hd <= 1024 ? 8 : 4; }
constexpr int64_t kMinSplitKeys = 128;  // shorter splits cost more in partials than they save

__device__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Loads N consecutive halves (N = 2, 4 or 8: 4, 8 or 16 bytes) as floats.
template <int N>
__device__ void load_halves(const __half* p, float* f) {
  if constexpr (N == 2) {
    const float2 v = __half22float2(*reinterpret_cast<const __half2*>(p));
    f[0] = v.x, f[1] = v.y;
  } else if constexpr (N == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y;
  } else {
    static_assert(N == 8);
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = a.x, f[2 * i + 1] = a.y;
    }
  }
}

// Where split `split` of row r starts and ends: keys [t0, t1) of the row's [first, last].
struct KeyRange {
  int t0, t1;
};
__device__ KeyRange key_range(int last, int window, int n_splits, int split) {
  const int first = window > 0 ? max(0, last - window + 1) : 0;
  const int len = last - first + 1;
  const int chunk = (len + n_splits - 1) / n_splits;
  const int t0 = first + split * chunk;
  return {t0, min(last + 1, t0 + chunk)};
}

// grid: (n_splits, n_heads / HPB, rows); block: NW warps. HPB query heads share one KV head.
// Lane l holds elements [l * EPL, (l + 1) * EPL) of every head vector. Each warp takes two
// keys per step (t and t + NW) so that two loads and two reductions are in flight.
template <int HD, int HPB, int NW = warps_for(HD, HPB)>
__global__ void __launch_bounds__(NW * kWarp)
    attention_kernel(const __half* q, int64_t q_stride, AttentionDims d, KvCacheView kv,
                     int n_splits, float scale, float* part, __half* out) {
  pdl_wait();  // q, the cache and pos/slot are written by earlier kernels and copies (pdl.h)
  pdl_trigger();
  constexpr int EPL = HD / kWarp;
  __shared__ float s_m[NW][HPB], s_l[NW][HPB];
  __shared__ float s_acc[NW][HPB][HD];
  const int split = blockIdx.x, h0 = blockIdx.y * HPB;
  const int64_t r = blockIdx.z, rows = gridDim.z;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = h0 / (d.n_heads / d.n_kv_heads);
  const int64_t kvd = int64_t(d.n_kv_heads) * HD;
  const KeyRange kr = key_range(kv.pos[r], d.window, n_splits, split);
  const int64_t base = int64_t(kv.slot[r]) * kv.ctx * kvd + g * HD + lane * EPL;
  const __half* kp = kv.k + base;
  const __half* vp = kv.v + base;

  float qr[HPB][EPL], acc[HPB][EPL], m[HPB], l[HPB];
#pragma unroll
  for (int h = 0; h < HPB; ++h) {
    load_halves<EPL>(q + r * q_stride + int64_t(h0 + h) * HD + lane * EPL, qr[h]);
#pragma unroll
    for (int e = 0; e < EPL; ++e) qr[h][e] *= scale, acc[h][e] = 0.0f;
    m[h] = -INFINITY, l[h] = 0.0f;
  }
  for (int t = kr.t0 + warp; t < kr.t1; t += 2 * NW) {
    const bool two = t + NW < kr.t1;  // warp-uniform
    float kf[EPL], vf[EPL], kf2[EPL], vf2[EPL];
    load_halves<EPL>(kp + t * kvd, kf);
    load_halves<EPL>(vp + t * kvd, vf);
    if (two) {
      load_halves<EPL>(kp + (t + NW) * kvd, kf2);
      load_halves<EPL>(vp + (t + NW) * kvd, vf2);
    } else {
#pragma unroll
      for (int e = 0; e < EPL; ++e) kf2[e] = vf2[e] = 0.0f;
    }
#pragma unroll
    for (int h = 0; h < HPB; ++h) {
      float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
      for (int e = 0; e < EPL; ++e) s1 += qr[h][e] * kf[e], s2 += qr[h][e] * kf2[e];
      s1 = warp_sum(s1);
      s2 = two ? warp_sum(s2) : -INFINITY;
      const float mn = fmaxf(m[h], fmaxf(s1, s2));
      const float corr = expf(m[h] - mn), p1 = expf(s1 - mn), p2 = expf(s2 - mn);
      l[h] = l[h] * corr + p1 + p2;
#pragma unroll
      for (int e = 0; e < EPL; ++e) acc[h][e] = acc[h][e] * corr + p1 * vf[e] + p2 * vf2[e];
      m[h] = mn;
    }
  }
#pragma unroll
  for (int h = 0; h < HPB; ++h) {
    if (lane == 0) s_m[warp][h] = m[h], s_l[warp][h] = l[h];
#pragma unroll
    for (int e = 0; e < EPL; ++e) s_acc[warp][h][lane * EPL + e] = acc[h][e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < HPB * HD; i += blockDim.x) {
    const int h = i / HD, e = i % HD;
    float mx = -INFINITY;
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, s_m[w][h]);
    float o = 0.0f, sum = 0.0f;
    if (mx != -INFINITY) {
      for (int w = 0; w < NW; ++w) {
        const float f = expf(s_m[w][h] - mx);  // 0 for a warp that saw no key
        o += s_acc[w][h][e] * f;
        sum += s_l[w][h] * f;
      }
    }
    const int head = h0 + h;
    if (n_splits == 1) {
      out[r * d.n_heads * HD + int64_t(head) * HD + e] = __float2half(o / sum);
    } else {
      const int64_t idx = (r * d.n_heads + head) * n_splits + split;
      part[idx * HD + e] = o;
      if (e == 0) {
        float* ml = part + rows * d.n_heads * n_splits * HD;
        ml[2 * idx] = mx, ml[2 * idx + 1] = sum;
      }
    }
  }
}

// grid: (n_heads, rows); block: HD threads. out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
template <int HD>
__global__ void combine_kernel(const float* part, int n_heads, int n_splits, __half* out) {
  pdl_wait();  // the partials of attention_kernel (pdl.h)
  pdl_trigger();
  const int head = blockIdx.x, e = threadIdx.x;
  const int64_t r = blockIdx.y, rows = gridDim.y;
  const int64_t idx0 = (r * n_heads + head) * n_splits;
  const float* ml = part + rows * n_heads * n_splits * HD + 2 * idx0;
  float mx = -INFINITY;
  for (int s = 0; s < n_splits; ++s) mx = fmaxf(mx, ml[2 * s]);
  float o = 0.0f, sum = 0.0f;
  for (int s = 0; s < n_splits; ++s) {
    if (ml[2 * s] == -INFINITY) continue;  // a split past the row's last key
    const float f = expf(ml[2 * s] - mx);
    o += part[(idx0 + s) * HD + e] * f;
    sum += ml[2 * s + 1] * f;
  }
  out[r * n_heads * HD + int64_t(head) * HD + e] = __float2half(o / sum);
}

int heads_per_block(const AttentionDims& d) {
  const int group = d.n_heads / d.n_kv_heads;
  for (int hpb : {8, 4, 2})
    if (group % hpb == 0) return hpb;
  return 1;
}

template <int HD>
void launch(const __half* q, int64_t q_stride, int64_t rows, const AttentionDims& d,
            const KvCacheView& kv, int n_splits, float* scratch, __half* out, cudaStream_t s) {
  const int hpb = heads_per_block(d);
  const dim3 grid(unsigned(n_splits), unsigned(d.n_heads / hpb), unsigned(rows));
  const float scale = float(1.0 / std::sqrt(double(HD)));
  const LaunchShape shape{grid, dim3(unsigned(warps_for(HD, hpb) * kWarp)), 0, s};
  switch (hpb) {
    case 8: launch_kernel(shape, attention_kernel<HD, 8>, q, q_stride, d, kv, n_splits, scale, scratch, out); break;
    case 4: launch_kernel(shape, attention_kernel<HD, 4>, q, q_stride, d, kv, n_splits, scale, scratch, out); break;
    case 2: launch_kernel(shape, attention_kernel<HD, 2>, q, q_stride, d, kv, n_splits, scale, scratch, out); break;
    default: launch_kernel(shape, attention_kernel<HD, 1>, q, q_stride, d, kv, n_splits, scale, scratch, out); break;
  }
  check_launch("attention");
  if (n_splits > 1) {
    launch_kernel({dim3(unsigned(d.n_heads), unsigned(rows)), dim3(HD), 0, s}, combine_kernel<HD>, scratch,
                  d.n_heads, n_splits, out);
    check_launch("attention combine");
  }
}

}  // namespace

bool attention_supports(int head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }

int64_t attention_scratch_floats(int64_t rows, const AttentionDims& d, int n_splits) {
  if (n_splits <= 1) return 0;
  return rows * d.n_heads * int64_t(n_splits) * (d.head_dim + 2);
}

int decode_splits(int64_t rows, const AttentionDims& d, int multiprocessors, int64_t max_keys) {
  const int64_t blocks = rows * (d.n_heads / heads_per_block(d));  // per split
  const int64_t fill = (int64_t(2) * multiprocessors + blocks - 1) / blocks;
  const int64_t by_keys = (max_keys + kMinSplitKeys - 1) / kMinSplitKeys;
  return int(std::clamp<int64_t>(std::min(fill, by_keys), 1, 32));
}

void attention(const __half* q, int64_t q_stride, int64_t rows, const AttentionDims& d,
               const KvCacheView& kv, int n_splits, float* scratch, __half* out, cudaStream_t s) {
  if (rows <= 0) return;
  if (n_splits < 1 || (n_splits > 1 && !scratch)) throw Error("attention: bad split count / scratch");
  switch (d.head_dim) {
    case 64: return launch<64>(q, q_stride, rows, d, kv, n_splits, scratch, out, s);
    case 128: return launch<128>(q, q_stride, rows, d, kv, n_splits, scratch, out, s);
    case 256: return launch<256>(q, q_stride, rows, d, kv, n_splits, scratch, out, s);
    default:
      throw Error("head_dim " + std::to_string(d.head_dim) +
                  " is not supported by the CUDA attention kernel (64, 128 or 256)");
  }
}

}  // namespace awq::cuda
