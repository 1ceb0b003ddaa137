#include "ops/cuda/cuda_flash_prefill.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/env_choice.h"
#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/w4a16_device.cuh"
#include "ops/cuda/w4a16_pipeline.cuh"

namespace awq::cuda {

namespace {

using pdl_device::pdl_trigger;
using pdl_device::pdl_wait;
using w4a16_device::h2_bits;
using w4a16_device::mma_16816;
using w4a16_pipeline::cp_async16;
using w4a16_pipeline::cp_async_commit;
using w4a16_pipeline::cp_async_wait;
using w4a16_pipeline::ldmatrix_x4;
using w4a16_pipeline::ldmatrix_x4_trans;

constexpr int kBM = 64;       // (query row, head) items a block
constexpr int kBN = 64;       // keys a tile
constexpr int kThreads = 128;  // 4 warps, 16 items each
constexpr int kMaxSegments = 64;  // a launch's segments, passed as kernel parameters (1.3 KB)

// The segments of one launch and where each one's 64-item tiles start in the grid's x.
struct SegmentTable {
  int n = 0;
  int tile0[kMaxSegments + 1] = {};  // tile0[n]: the grid's x
  PrefillSegment seg[kMaxSegments];
};

// Shared memory of one block: the Q tile and two stages of K and V tiles, [64, D] fp16 each.
template <int D>
constexpr int smem_bytes() { return (kBM + 4 * kBN) * D * 2; }

// Offset (halves) of 16-byte chunk c of row `row` in a [rows, D] fp16 tile, XOR-swizzled so that
// the 8 rows one ldmatrix phase reads at the same chunk fall in 8 different bank groups.
template <int D>
__device__ __forceinline__ int swz(int row, int c) { return row * D + ((c ^ (row & 7)) << 3); }

// grid: (sum over segments of ceil(rows group / 64), n_kv_heads); block: 128 threads. Item i of a
// segment is (its row i / group, query head kvh group + i % group). Warp w holds items 16 w .. 16 w
// + 15 of the block; lane l the fragment rows g = l / 4 and g + 8 (m16n8k16 layouts) and, of
// each 8-key or 8-dim block, the columns 2 (l % 4) and 2 (l % 4) + 1.
template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_prefill_kernel(const __half* q, int64_t q_stride, SegmentTable st, AttentionDims d, const __half* k_cache,
                         const __half* v_cache, int64_t ctx, float scale_log2, __half* out) {
  pdl_wait();  // q and the cache are written by the kernels before (pdl.h)
  pdl_trigger();
  constexpr int kChunks = D / 8;  // 16-byte chunks a row
  extern __shared__ __align__(128) unsigned char smem[];
  __half* qs = reinterpret_cast<__half*>(smem);  // [kBM, D]
  __half* ks = qs + kBM * D;                     // [2][kBN, D]
  __half* vs = ks + 2 * kBN * D;                 // [2][kBN, D]

  const int group = d.n_heads / d.n_kv_heads;
  const int kvh = blockIdx.y;
  // The last tiles first: within a segment they have the longest key ranges.
  const int x = int(gridDim.x) - 1 - int(blockIdx.x);
  int si = 0;
  while (st.tile0[si + 1] <= x) ++si;
  const PrefillSegment& sg = st.seg[si];
  const int64_t items = int64_t(sg.rows) * group, i0 = int64_t(x - st.tile0[si]) * kBM;
  const int64_t row0 = sg.row0;
  const int64_t kvd = int64_t(d.n_kv_heads) * D;
  const int64_t cache0 = int64_t(sg.slot) * ctx * kvd + int64_t(kvh) * D;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  for (int e = tid; e < kBM * kChunks; e += kThreads) {  // the Q tile (zeros past the last item)
    const int ri = e / kChunks, c = e % kChunks;
    const int64_t item = i0 + ri;
    const bool ok = item < items;
    const int64_t r = ok ? item / group : 0;
    const int64_t head = int64_t(kvh) * group + (ok ? item % group : 0);
    cp_async16(qs + swz<D>(ri, c), q + (row0 + r) * q_stride + head * D + c * 8, ok);
  }
  cp_async_commit();

  // The block's keys: from the first row's window start to the last row's position.
  const int64_t last_item = (i0 + kBM < items ? i0 + kBM : items) - 1;
  // Positions are below ctx, which the cache's int32 positions bound (cuda_ops.h KvCacheView).
  const int p_lo = int(sg.first_pos + i0 / group), p_hi = int(sg.first_pos + last_item / group);
  const int k_first = d.window > 0 ? max(0, p_lo - d.window + 1) : 0;
  const int t_begin = k_first / kBN, t_end = p_hi / kBN + 1;
  // Keys outside [k_first, p_hi] are zero-filled, not read: past p_hi the cache may hold
  // anything (another sequence's keys, or never-written memory whose NaNs would reach P V).
  const auto load_kv = [&](int t, int stage) {
    for (int e = tid; e < kBN * kChunks; e += kThreads) {
      const int kr = e / kChunks, c = e % kChunks;
      const int key = t * kBN + kr;
      const bool ok = key >= k_first && key <= p_hi;
      const int64_t at = cache0 + int64_t(ok ? key : 0) * kvd + c * 8;
      cp_async16(ks + stage * kBN * D + swz<D>(kr, c), k_cache + at, ok);
      cp_async16(vs + stage * kBN * D + swz<D>(kr, c), v_cache + at, ok);
    }
  };
  load_kv(t_begin, 0);
  cp_async_commit();

  const int g = lane / 4, tq = lane % 4;
  // Positions of this thread's two rows (-1: past the last item, every key masked).
  const int64_t ia = i0 + warp * 16 + g, ib = ia + 8;
  const int pa = ia < items ? int(sg.first_pos + ia / group) : -1;
  const int pb = ib < items ? int(sg.first_pos + ib / group) : -1;

  cp_async_wait<1>();  // the Q tile (the first K / V tile may still be in flight)
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(qf[kk], qs + swz<D>(warp * 16 + lane % 16, 2 * kk + lane / 16));

  float o[D / 8][4];
#pragma unroll
  for (int db = 0; db < D / 8; ++db) o[db][0] = o[db][1] = o[db][2] = o[db][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

  for (int t = t_begin; t < t_end; ++t) {
    const int stage = (t - t_begin) & 1;
    if (t + 1 < t_end) load_kv(t + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();  // tile t
    __syncthreads();
    const __half* kt = ks + stage * kBN * D;
    const __half* vt = vs + stage * kBN * D;

    float sc[kBN / 8][4];  // S = Q K^T of the warp's 16 items x the tile's 64 keys
#pragma unroll
    for (int nb = 0; nb < kBN / 8; ++nb) sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int nb2 = 0; nb2 < kBN / 16; ++nb2) {
        uint32_t b[4];  // keys 16 nb2 .. + 15, dims 16 kk .. + 15
        ldmatrix_x4(b, kt + swz<D>(16 * nb2 + lane % 8 + (lane / 16) * 8, 2 * kk + (lane / 8) % 2));
        mma_16816(sc[2 * nb2], qf[kk], b[0], b[1]);
        mma_16816(sc[2 * nb2 + 1], qf[kk], b[2], b[3]);
      }
    }
    // Causal (and sliding-window) mask, in log2 units; a tile every row of the block sees
    // whole (most of a long prompt's) needs none. Items past the last row then get finite
    // scores of a zero q: never written.
    const bool whole = (t + 1) * kBN - 1 <= p_lo && (d.window == 0 || t * kBN > p_hi - d.window);
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int nb = 0; nb < kBN / 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = t * kBN + nb * 8 + 2 * tq + (e & 1), p = e < 2 ? pa : pb;
        const bool ok = whole || (key <= p && (d.window == 0 || key > p - d.window));
        sc[nb][e] = ok ? sc[nb][e] * scale_log2 : -INFINITY;
      }
      mx_a = fmaxf(mx_a, fmaxf(sc[nb][0], sc[nb][1]));
      mx_b = fmaxf(mx_b, fmaxf(sc[nb][2], sc[nb][3]));
    }
    // The four lanes of a fragment row hold its 64 keys between them.
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
    // A row with no key yet keeps max -inf: subtract 0 so that every exp2 is 0, not NaN.
    const float base_a = mx_a == -INFINITY ? 0.0f : mx_a, base_b = mx_b == -INFINITY ? 0.0f : mx_b;
    const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
    m_a = mx_a, m_b = mx_b;
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int nb = 0; nb < kBN / 8; ++nb) {
      sc[nb][0] = exp2f(sc[nb][0] - base_a), sc[nb][1] = exp2f(sc[nb][1] - base_a);
      sc[nb][2] = exp2f(sc[nb][2] - base_b), sc[nb][3] = exp2f(sc[nb][3] - base_b);
      sum_a += sc[nb][0] + sc[nb][1], sum_b += sc[nb][2] + sc[nb][3];
    }
    l_a = l_a * corr_a + sum_a;  // this lane's share; the row's four lanes are summed at the end
    l_b = l_b * corr_b + sum_b;
#pragma unroll
    for (int db = 0; db < D / 8; ++db) o[db][0] *= corr_a, o[db][1] *= corr_a, o[db][2] *= corr_b, o[db][3] *= corr_b;
    // O += P V: P's C fragments are, two n-blocks at a time, the A fragment of a 16-key step.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint32_t a[4] = {h2_bits(__floats2half2_rn(sc[2 * kk][0], sc[2 * kk][1])),
                             h2_bits(__floats2half2_rn(sc[2 * kk][2], sc[2 * kk][3])),
                             h2_bits(__floats2half2_rn(sc[2 * kk + 1][0], sc[2 * kk + 1][1])),
                             h2_bits(__floats2half2_rn(sc[2 * kk + 1][2], sc[2 * kk + 1][3]))};
#pragma unroll
      for (int db2 = 0; db2 < D / 16; ++db2) {
        uint32_t b[4];  // keys 16 kk .. + 15, dims 16 db2 .. + 15, transposed
        ldmatrix_x4_trans(b, vt + swz<D>(16 * kk + lane % 8 + ((lane / 8) % 2) * 8, 2 * db2 + lane / 16));
        mma_16816(o[2 * db2], a, b[0], b[1]);
        mma_16816(o[2 * db2 + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
  }

  l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
  l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
  const int64_t out_stride = int64_t(d.n_heads) * D;
  if (ia < items) {
    const float inv = 1.0f / l_a;  // the row's own key is always there: l_a > 0
    __half* dst = out + (row0 + ia / group) * out_stride + (int64_t(kvh) * group + ia % group) * D + 2 * tq;
#pragma unroll
    for (int db = 0; db < D / 8; ++db)
      *reinterpret_cast<__half2*>(dst + db * 8) = __floats2half2_rn(o[db][0] * inv, o[db][1] * inv);
  }
  if (ib < items) {
    const float inv = 1.0f / l_b;
    __half* dst = out + (row0 + ib / group) * out_stride + (int64_t(kvh) * group + ib % group) * D + 2 * tq;
#pragma unroll
    for (int db = 0; db < D / 8; ++db)
      *reinterpret_cast<__half2*>(dst + db * 8) = __floats2half2_rn(o[db][2] * inv, o[db][3] * inv);
  }
}

template <int D>
void launch(const __half* q, int64_t q_stride, const SegmentTable& st, const AttentionDims& d, const __half* k_cache,
            const __half* v_cache, int64_t ctx, __half* out, cudaStream_t s) {
  // Above the 48 KB default for D = 128; set for the current device at every launch (a few per
  // layer and prefill chunk), so that --device cuda:N needs no per-device bookkeeping.
  AWQ_CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      smem_bytes<D>()));
  const dim3 grid(unsigned(st.tile0[st.n]), unsigned(d.n_kv_heads));
  const float scale_log2 = float(1.4426950408889634 / std::sqrt(double(D)));
  launch_kernel({grid, dim3(kThreads), size_t(smem_bytes<D>()), s}, flash_prefill_kernel<D>, q, q_stride, st, d,
                k_cache, v_cache, ctx, scale_log2, out);
  check_launch("flash prefill attention");
}

bool flash_prefill_from_env() {
  static const bool on =
      env_choice("AWQ_CUDA_FLASH_PREFILL", std::getenv("AWQ_CUDA_FLASH_PREFILL"),
                 {{"0", "prefill attention runs the per-row kernel (cuda_attention.h), as before session 33"},
                  {"1", "prefill attention runs on tensor cores for head_dim 64 and 128 (default)"}},
                 1) == 1;
  return on;
}

}  // namespace

bool flash_prefill_supports(const AttentionDims& d) {
  return (d.head_dim == 64 || d.head_dim == 128) && d.n_kv_heads > 0 && d.n_heads % d.n_kv_heads == 0 &&
         flash_prefill_from_env();
}

void flash_prefill_attention(const __half* q, int64_t q_stride, const PrefillSegment* segs, int n_segs,
                             const AttentionDims& d, const __half* k_cache, const __half* v_cache, int64_t ctx,
                             __half* out, cudaStream_t s) {
  if (!flash_prefill_supports(d))
    throw Error("flash prefill attention: head_dim " + std::to_string(d.head_dim) + " is not supported (64 or 128)");
  if (ctx > INT32_MAX) throw Error("flash prefill attention: a context of " + std::to_string(ctx) + " positions");
  const int group = d.n_heads / d.n_kv_heads;
  SegmentTable st;
  const auto flush = [&] {
    if (st.n == 0) return;
    if (d.head_dim == 64)
      launch<64>(q, q_stride, st, d, k_cache, v_cache, ctx, out, s);
    else
      launch<128>(q, q_stride, st, d, k_cache, v_cache, ctx, out, s);
    st.n = 0;
  };
  for (int i = 0; i < n_segs; ++i) {
    const PrefillSegment& g = segs[i];
    if (g.rows <= 0) continue;
    if (g.first_pos < 0 || g.row0 < 0 || g.slot < 0 || int64_t(g.first_pos) + g.rows > ctx)
      throw Error("flash prefill attention: positions " + std::to_string(g.first_pos) + ".." +
                  std::to_string(int64_t(g.first_pos) + g.rows - 1) + " of slot " + std::to_string(g.slot) +
                  " outside the context of " + std::to_string(ctx));
    if (st.n == kMaxSegments) flush();
    st.seg[st.n] = g;
    st.tile0[st.n + 1] = st.tile0[st.n] + int((int64_t(g.rows) * group + kBM - 1) / kBM);
    ++st.n;
  }
  flush();
}

}  // namespace awq::cuda
