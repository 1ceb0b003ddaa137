#include "ops/cuda/cuda_attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/rope_device.cuh"

namespace awq::cuda {

namespace {

using pdl_device::pdl_trigger;
using pdl_device::pdl_wait;

constexpr int kWarp = 32;
// Warps per block (each walks every NW-th pair of keys of the chunk): 8, or 4 where 8 would
// need more than 32 KB of shared memory for the cross-warp combine.
constexpr int warps_for(int hd, int hpb) { return hpb * hd <= 1024 ? 8 : 4; }
// The wide form: 16 warps where their combine fits the same 32 KB, else as warps_for. Taken
// where the grid has no more blocks than the GPU has SMs (wide_blocks): there a block's keys are
// walked in half the dependent round trips, and no SM that could share the work sits idle
// because of it. Where there are more blocks, the 8-warp blocks pack better (2-3 an SM against
// one). Measured on the H200 (docs/results/gpu.md, session 35): random Llama-2-7B W4 decode,
// batch 1, prompt 16 + 128 steps (32-64 blocks) 555-561 -> 584-593 tok/s; Llama-3-8B batch 1
// and 8 (8-128 blocks) +5 % and +3 %; but batch 8 and 32 of the 7B (256-1024 blocks) -2 % and
// -14 %, and 2048-token contexts (288 blocks) -6 % at batch 1.
constexpr int wide_warps(int hd, int hpb) { return hpb * hd <= 512 ? 16 : warps_for(hd, hpb); }
bool wide_blocks(int64_t blocks, int multiprocessors) { return blocks <= multiprocessors; }
constexpr int64_t kMinSplitKeys = 128;  // shorter splits cost more in partials than they save

__device__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The warp-wide sums of V values at once (V a power of two, <= 32; every lane holds its part of
// each): x[j] becomes the sum over the 32 lanes of x[j], in every lane. Reduce-scatter, then
// all-gather: each of the first log2 V butterfly stages sends half of the lane's remaining values
// to its partner and adds the other half, so lane l ends with the sum of value l >> (5 - log2 V)
// after V - 1 + 5 - log2 V shuffles; V more hand every sum to every lane. V separate warp_sum
// calls take 5 V shuffles (80 against 32 for the 16 scores of four heads and four keys): the
// scores' reductions were most of the decode attention's instructions for GQA. Measured on the
// H200 (docs/results/gpu.md, session 35), random W4 models, 2048-token contexts: Llama-3-8B
// decode batch 8 1620 -> 2043 tok/s (+26 %), batch 1 +6 %; Qwen2.5-7B batch 8 +5 %.
template <int V>
__device__ void warp_sum_many(float (&x)[V], int lane) {
  static_assert(V >= 1 && V <= kWarp && (V & (V - 1)) == 0, "V: a power of two up to 32");
  constexpr int kStages = V == 1 ? 0 : V == 2 ? 1 : V == 4 ? 2 : V == 8 ? 3 : V == 16 ? 4 : 5;
  int o = kWarp / 2;
#pragma unroll
  for (int st = 0, width = V; st < kStages; ++st, width /= 2, o >>= 1) {
    const bool upper = (lane & o) != 0;
    const int half = width / 2;
#pragma unroll
    for (int i = 0; i < V / 2; ++i) {
      if (i >= half) break;
      const float send = upper ? x[i] : x[i + half];
      const float keep = upper ? x[i + half] : x[i];
      x[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
    }
  }
  float total = x[0];
  for (; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
#pragma unroll
  for (int j = 0; j < V; ++j) x[j] = __shfl_sync(0xffffffffu, total, j << (5 - kStages));
}

// N consecutive halves (N = 2, 4 or 8) as one 4-, 8- or 16-byte word: a key or value slice
// of one lane, kept packed until used so that many can be in flight.
template <int N> struct Packed;
template <> struct Packed<2> { using type = uint32_t; };
template <> struct Packed<4> { using type = uint2; };
template <> struct Packed<8> { using type = uint4; };
template <int N>
using packed_t = typename Packed<N>::type;

template <int N>
__device__ packed_t<N> load_packed(const __half* p) { return *reinterpret_cast<const packed_t<N>*>(p); }

template <int N>
__device__ void widen(const packed_t<N>& u, float* f) {
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < N / 2; ++i) {
    const float2 a = __half22float2(h[i]);
    f[2 * i] = a.x, f[2 * i + 1] = a.y;
  }
}

template <int N>
__device__ packed_t<N> narrow(const float* f) {
  packed_t<N> u;
  __half2* h = reinterpret_cast<__half2*>(&u);
#pragma unroll
  for (int i = 0; i < N / 2; ++i) h[i] = __halves2half2(__float2half(f[2 * i]), __float2half(f[2 * i + 1]));
  return u;
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

// The decode form's own RoPE (RopeStore): one head vector, lane l holding elements
// [l EPL, (l + 1) EPL) as f32, optionally RMS-normed with norm (qwen3's q/k norm), rotated at
// the angles cs (the table's row of the position) and rounded to fp16 as qk_norm_rope_store
// rounds it. Rotate-half pairs element j with j + head_dim / 2, which lane l ^ 16 holds.
template <int EPL>
__device__ void rope_in_registers(float (&f)[EPL], const float* norm, float eps, const float2* cs, int lane) {
  constexpr int HD = EPL * kWarp;
  if (norm) {
    float ss = 0.0f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) ss += f[e] * f[e];
    const float scale = rsqrtf(warp_sum(ss) / float(HD) + eps);
#pragma unroll
    for (int e = 0; e < EPL; ++e) f[e] = (f[e] * scale) * norm[lane * EPL + e];
  }
  const bool lo = lane < kWarp / 2;
#pragma unroll
  for (int e = 0; e < EPL; ++e) {
    const float partner = __shfl_xor_sync(0xffffffffu, f[e], kWarp / 2);
    const float2 t = cs[(lane % (kWarp / 2)) * EPL + e];
    f[e] = __half2float(lo ? rope_device::rope_lo(f[e], partner, t) : rope_device::rope_hi(partner, f[e], t));
  }
}

// Keys a warp loads at once (U): as many as keep the packed loads, the scores and the
// accumulators in registers (8 for one or two 128-wide heads a block, 2 for eight).
__host__ __device__ constexpr int keys_per_step(int epl, int hpb) { return epl * hpb <= 8 ? 8 : epl * hpb <= 16 ? 4 : 2; }

// grid: (n_splits, n_heads / HPB, rows); block: NW warps. HPB query heads share one KV head.
// Lane l holds elements [l * EPL, (l + 1) * EPL) of every head vector. Each warp takes U keys
// per step (t, t + NW, ..., t + (U - 1) NW), their loads all issued before any is used: the
// loop is bound by the latency of those loads, so the more in flight the fewer round trips.
// FRESH (RopeStore): q and the row's own k are rotated here, and the blocks of the split that
// holds the row's last key take that key and its value from the projection's output (in
// registers) instead of the cache, which the first block of the KV head's group writes.
template <int HD, int HPB, bool FRESH, int NW = warps_for(HD, HPB)>
__global__ void __launch_bounds__(NW * kWarp)
    attention_kernel(const __half* q, int64_t q_stride, AttentionDims d, KvCacheView kv,
                     int n_splits, float scale, RopeStore rs, float* part, __half* out) {
  pdl_wait();  // q, the cache and pos/slot are written by earlier kernels and copies (pdl.h)
  pdl_trigger();
  constexpr int EPL = HD / kWarp, U = keys_per_step(EPL, HPB);
  using P = packed_t<EPL>;
  __shared__ float s_m[NW][HPB], s_l[NW][HPB];
  __shared__ float s_acc[NW][HPB][HD];
  const int split = blockIdx.x, h0 = blockIdx.y * HPB;
  const int64_t r = blockIdx.z, rows = gridDim.z;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int group = d.n_heads / d.n_kv_heads, g = h0 / group;
  const int64_t kvd = int64_t(d.n_kv_heads) * HD;
  const int last = kv.pos[r];
  const KeyRange kr = key_range(last, d.window, n_splits, split);
  const int64_t base = int64_t(kv.slot[r]) * kv.ctx * kvd + g * HD + lane * EPL;
  __half* kp = kv.k + base;  // written only at the row's last key (FRESH), read elsewhere
  __half* vp = kv.v + base;
  const __half* qrow = q + r * q_stride;

  float qr[HPB][EPL], acc[HPB][EPL], m[HPB], l[HPB];
#pragma unroll
  for (int h = 0; h < HPB; ++h) {
    widen<EPL>(load_packed<EPL>(qrow + int64_t(h0 + h) * HD + lane * EPL), qr[h]);
    if constexpr (FRESH) rope_in_registers<EPL>(qr[h], rs.q_norm, rs.eps, rs.cos_sin + int64_t(last) * (HD / 2), lane);
#pragma unroll
    for (int e = 0; e < EPL; ++e) qr[h][e] *= scale, acc[h][e] = 0.0f;
    m[h] = -INFINITY, l[h] = 0.0f;
  }
  P k_new{}, v_new{};  // FRESH: the row's own key (rotated) and value
  if constexpr (FRESH) {
    if (kr.t0 <= last && last < kr.t1) {
      const __half* kv_row = qrow + int64_t(d.n_heads) * HD + g * HD + lane * EPL;
      float f[EPL];
      widen<EPL>(load_packed<EPL>(kv_row), f);
      rope_in_registers<EPL>(f, rs.k_norm, rs.eps, rs.cos_sin + int64_t(last) * (HD / 2), lane);
      k_new = narrow<EPL>(f);
      v_new = load_packed<EPL>(kv_row + kvd);
      if (h0 % group == 0 && warp == 0) {  // one writer per KV head
        *reinterpret_cast<P*>(kp + int64_t(last) * kvd) = k_new;
        *reinterpret_cast<P*>(vp + int64_t(last) * kvd) = v_new;
      }
    }
  }
  for (int t = kr.t0 + warp; t < kr.t1; t += U * NW) {
    P kw[U], vw[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int tu = t + u * NW;
      kw[u] = vw[u] = P{};
      if (FRESH && tu == last) {
        kw[u] = k_new, vw[u] = v_new;
      } else if (tu < kr.t1) {
        kw[u] = load_packed<EPL>(kp + tu * kvd);
        vw[u] = load_packed<EPL>(vp + tu * kvd);
      }
    }
    float dots[HPB * U];  // [h][u]: this lane's part of q_h . k_u
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[EPL];
      widen<EPL>(kw[u], kf);
#pragma unroll
      for (int h = 0; h < HPB; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) dot += qr[h][e] * kf[e];
        dots[h * U + u] = dot;
      }
    }
    // GQA (several heads a block): all scores in one warp_sum_many. One head: a butterfly per
    // score, as before session 35 (warp_sum_many measured 2 % slower at batch 1 on short
    // contexts there, within noise elsewhere).
    if constexpr (HPB > 1) warp_sum_many<HPB * U>(dots, lane);
    float sc[HPB][U];
#pragma unroll
    for (int h = 0; h < HPB; ++h) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const bool valid = t + u * NW < kr.t1;  // warp-uniform
        sc[h][u] = !valid ? -INFINITY : HPB > 1 ? dots[h * U + u] : warp_sum(dots[h * U + u]);
      }
      float mn = m[h];
#pragma unroll
      for (int u = 0; u < U; ++u) mn = fmaxf(mn, sc[h][u]);
      const float corr = expf(m[h] - mn);  // t < t1: mn is finite
      l[h] *= corr;
#pragma unroll
      for (int e = 0; e < EPL; ++e) acc[h][e] *= corr;
#pragma unroll
      for (int u = 0; u < U; ++u) sc[h][u] = expf(sc[h][u] - mn), l[h] += sc[h][u];
      m[h] = mn;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[EPL];
      widen<EPL>(vw[u], vf);
#pragma unroll
      for (int h = 0; h < HPB; ++h)
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[h][e] += sc[h][u] * vf[e];
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

template <int HD, int HPB, bool FRESH>
void launch_warps(const LaunchShape& shape, const __half* q, int64_t q_stride, const AttentionDims& d,
                  const KvCacheView& kv, int n_splits, float scale, const RopeStore& rs, float* scratch, __half* out) {
  if (int(shape.block.x) == wide_warps(HD, HPB) * kWarp)
    return launch_kernel(shape, attention_kernel<HD, HPB, FRESH, wide_warps(HD, HPB)>, q, q_stride, d, kv, n_splits,
                         scale, rs, scratch, out);
  launch_kernel(shape, attention_kernel<HD, HPB, FRESH>, q, q_stride, d, kv, n_splits, scale, rs, scratch, out);
}

template <int HD, bool FRESH>
void launch_attention(const LaunchShape& shape, int hpb, const __half* q, int64_t q_stride, const AttentionDims& d,
                      const KvCacheView& kv, int n_splits, float scale, const RopeStore& rs, float* scratch,
                      __half* out) {
  switch (hpb) {
    case 8: return launch_warps<HD, 8, FRESH>(shape, q, q_stride, d, kv, n_splits, scale, rs, scratch, out);
    case 4: return launch_warps<HD, 4, FRESH>(shape, q, q_stride, d, kv, n_splits, scale, rs, scratch, out);
    case 2: return launch_warps<HD, 2, FRESH>(shape, q, q_stride, d, kv, n_splits, scale, rs, scratch, out);
    default: return launch_warps<HD, 1, FRESH>(shape, q, q_stride, d, kv, n_splits, scale, rs, scratch, out);
  }
}

// The current device's SMs (asked once per device: a host query, no sync).
int current_multiprocessors() {
  static thread_local int device = -1, sms = 0;
  int dev = 0;
  AWQ_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev != device) {
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    device = dev;
  }
  return sms;
}

template <int HD>
void launch(const __half* q, int64_t q_stride, int64_t rows, const AttentionDims& d,
            const KvCacheView& kv, int n_splits, float* scratch, __half* out, const RopeStore* rope,
            cudaStream_t s) {
  const int hpb = heads_per_block(d);
  const dim3 grid(unsigned(n_splits), unsigned(d.n_heads / hpb), unsigned(rows));
  const float scale = float(1.0 / std::sqrt(double(HD)));
  const int64_t blocks = int64_t(grid.x) * grid.y * grid.z;
  const int warps = wide_blocks(blocks, current_multiprocessors()) ? wide_warps(HD, hpb) : warps_for(HD, hpb);
  const LaunchShape shape{grid, dim3(unsigned(warps * kWarp)), 0, s};
  if (rope)
    launch_attention<HD, true>(shape, hpb, q, q_stride, d, kv, n_splits, scale, *rope, scratch, out);
  else
    launch_attention<HD, false>(shape, hpb, q, q_stride, d, kv, n_splits, scale, RopeStore{}, scratch, out);
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
               const KvCacheView& kv, int n_splits, float* scratch, __half* out, cudaStream_t s,
               const RopeStore* rope) {
  if (rows <= 0) return;
  if (n_splits < 1 || (n_splits > 1 && !scratch)) throw Error("attention: bad split count / scratch");
  if (rope && (!rope->cos_sin || q_stride < int64_t(d.n_heads + 2 * d.n_kv_heads) * d.head_dim))
    throw Error("attention: the fused RoPE needs the rotary table and q | k | v rows");
  switch (d.head_dim) {
    case 64: return launch<64>(q, q_stride, rows, d, kv, n_splits, scratch, out, rope, s);
    case 128: return launch<128>(q, q_stride, rows, d, kv, n_splits, scratch, out, rope, s);
    case 256: return launch<256>(q, q_stride, rows, d, kv, n_splits, scratch, out, rope, s);
    default:
      throw Error("head_dim " + std::to_string(d.head_dim) +
                  " is not supported by the CUDA attention kernel (64, 128 or 256)");
  }
}

}  // namespace awq::cuda
