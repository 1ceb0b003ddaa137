// W4A16 "K-slice" kernels for a few tokens (m = 2..16): the register-streaming kernels'
// weight stream (w4a16_kernels.cu: each warp loads its codes straight into registers, two
// stages deep, mma.sync with the weight rows on the M side) with many rows per block and the K
// range split over a thread block cluster.
//
// Why (H100 sweeps, docs/results/gpu.md): the register-streaming kernels cover 16-32 rows per
// block, and every block reads all m rows of x. x then crosses L2 -> SM n / 16 or n / 32 times:
// m / 4 (or m / 8) times the weights' bytes, 2x at m = 8, 4x at m = 16. That traffic, not the
// weights, grew their time with m (gate+up: 18.3 us at m = 1, 23.1 at m = 2, 32.9 at m = 8 on the
// same instructions). Here a block covers WN row tiles (16 WN rows, 32-128), WK warps a row
// tile, over one K slice, and its warps share one shared-memory copy of that slice of x: x
// crosses L2 -> SM n / (16 WN) times, m / 32 of the weights' bytes for 128 rows. The slices of a row
// group are a cluster of `splits` blocks (rank z = slice z) that sum their partials through
// distributed shared memory in rank order (deterministic), so that small layers still give
// every SM blocks to run.
// Scale after (groups >= 64): a chunk's products are made from the unscaled codes and scaled in
// f32 (w4a16_device.cuh, dequant_unscaled), as the m = 1 kernels do.
#include <cooperative_groups.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/w4a16_device.cuh"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_pipeline.cuh"

namespace awq::cuda {

namespace {

using namespace w4a16_device;
using namespace pdl_device;

constexpr int kMaxSplits = 8;  // the largest portable cluster

// Shared memory of one block (host and device agree on it): the x slice, rows of
// slice_stride words (cps 64 inputs + 8 halves of padding: the 8 rows of a B fragment fall on
// different banks); with WK > 1 the warps' partial sums [WN][WK][MT][4][32] f32 for the block's
// reduction; with splits > 1 the block's sums [WN][MT][4][32] f32 for the cluster's (regions of
// their own: no cp.async ever writes them, so the remote loads of the reduction have no
// asynchronous writer to race with).
__host__ __device__ constexpr int kslice_stride_words(int cps) { return (cps * 64 + 8) / 2; }
__host__ __device__ constexpr int kslice_x_rows(int m, int mt) { return m < 8 * mt ? m : 8 * mt; }

// 8 warps of one token tile are held to 80 registers, 3 blocks per SM (96 by the compiler's
// choice: 2 blocks; their group < 64 instances then spill 4-64 bytes); the others keep the
// compiler's choice (no spills; ptxas -v, sm_90a).
template <int MT, int WN, int WK, int U>
constexpr int kslice_min_blocks() { return MT == 1 && WN * WK == 8 && U <= 4 ? 3 : 0; }

// Block (blockIdx.x, blockIdx.y, blockIdx.z): row tiles [WN blockIdx.x, +WN) x tokens
// [8 MT blockIdx.y, +8 MT) x input chunks [cps z, cps (z + 1)) (z = blockIdx.z = cluster rank).
// Warp (wn, wk) streams row tile WN blockIdx.x + wn over the slice's chunks c with
// (c - c_lo) % WK == wk, two register stages of U chunks each (the next stage's loads in flight
// while the current one is multiplied); the WK warps of a row tile then meet in a shared-memory
// reduction, the splits of the cluster in a distributed one.
// ORDER: 1 = without PDL: x's copy first, then the weights (x's L2 requests do not queue behind
// the weights' DRAM misses); 2 = launched with PDL: weight stage 0 before the wait (only weights
// are read before it: pdl.h), then x, then stage 1.
template <int MT, int WN, int WK, int U, bool SMALL_GROUP, int ORDER>
__global__ void __launch_bounds__(WN * WK * 32, kslice_min_blocks<MT, WN, WK, U>())
    w4a16_kslice_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                        const __half* __restrict__ x, const __half* __restrict__ bias,
                        __half* __restrict__ y, int n, int k, int m, int group_tiles_log2, int cps,
                        bool gated) {
  constexpr int kThreads = WN * WK * 32, kStep = WK * U;
  constexpr bool kSA = !SMALL_GROUP;
  const int lane = threadIdx.x & 31, wk = (threadIdx.x >> 5) % WK, wn = (threadIdx.x >> 5) / WK;
  const int tiles_n = (n + 15) / 16, tn = blockIdx.x * WN + wn;
  const int ktiles = k / 16, chunks = (k + 63) / 64, ngroups = ktiles >> group_tiles_log2;
  const int tok0 = blockIdx.y * 8 * MT;
  const int split = blockIdx.z, splits = gridDim.z;
  const int c_lo = min(chunks, split * cps), c_hi = min(chunks, c_lo + cps);
  const int in_lo = c_lo * 64, in_len = min(k, c_hi * 64) - in_lo;  // the slice of x (halves)

  extern __shared__ __align__(16) uint32_t kslice_smem[];
  uint32_t* xs = kslice_smem;
  const int xs_rows = min(8 * MT, m - tok0), xs_stride = kslice_stride_words(cps);
  float* red = reinterpret_cast<float*>(kslice_smem + kslice_x_rows(m, MT) * xs_stride);  // WK > 1

  float acc[MT][4];
#pragma unroll
  for (int t = 0; t < MT; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  // B fragment rows: token tok0 + 8t + lane/4, clamped (columns past m are computed, never
  // stored); k-tile kt's b0 is word 8 (kt - 4 c_lo) of the row, b1 that + 4.
  int xs_row[MT];
#pragma unroll
  for (int t = 0; t < MT; ++t) xs_row[t] = min(t * 8 + lane / 4, xs_rows - 1) * xs_stride + (lane % 4);
  const int tn_read = min(tn, tiles_n - 1);  // row tiles past the end: read in bounds, never stored
  const uint4* cp = codes + size_t(tn_read) * chunks * 32 + lane;
  const uint2* pp = params + size_t(tn_read) * ngroups * 8 + lane / 4;

  uint4 wv[2][U];
  uint2 pv[2][U];
  // Chunks past the slice are clamped to its last one (in bounds) and not multiplied in.
  auto load_stage = [&](auto stage, int c0) {
    constexpr int st = decltype(stage)::value;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = min(c0 + u * WK, c_hi - 1);
      wv[st][u] = load_stream_nc(cp + size_t(c) * 32);
      pv[st][u] = __ldg(pp + size_t((c * 4) >> group_tiles_log2) * 8);
    }
  };
  // CHECKED: the stage holds chunks past the slice or padded k-tiles, whose x is taken as 0.
  auto compute_stage = [&](auto stage, auto checked, int c0) {
    constexpr int st = decltype(stage)::value;
    constexpr bool kChecked = decltype(checked)::value;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c_raw = c0 + u * WK, c = kChecked ? min(c_raw, c_hi - 1) : c_raw;
      GroupParams gp = expand(pv[st][u]);
      [[maybe_unused]] float prod[MT][4];  // kSA: the chunk's unscaled products
      if constexpr (kSA) {
#pragma unroll
        for (int t = 0; t < MT; ++t) prod[t][0] = prod[t][1] = prod[t][2] = prod[t][3] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int kt = kChecked ? min(c * 4 + j, ktiles - 1) : c * 4 + j;
        const bool valid = !kChecked || (c_raw < c_hi && c * 4 + j < ktiles);
        const int word = (kt - 4 * c_lo) * 8;
        uint32_t b[MT][2];
#pragma unroll
        for (int t = 0; t < MT; ++t) {
          b[t][0] = valid ? xs[xs_row[t] + word] : 0u;
          b[t][1] = valid ? xs[xs_row[t] + word + 4] : 0u;
        }
        const uint4 w4 = wv[st][u];
        const uint32_t q = j == 0 ? w4.x : j == 1 ? w4.y : j == 2 ? w4.z : w4.w;
        if (SMALL_GROUP && j > 0) gp = expand(__ldg(pp + size_t(kt >> group_tiles_log2) * 8));
        uint32_t a[4];
        if constexpr (kSA) {
          dequant_unscaled(q, gp, a);
#pragma unroll
          for (int t = 0; t < MT; ++t) mma_16816(prod[t], a, b[t][0], b[t][1]);
        } else {
          dequant(q, gp, a);
#pragma unroll
          for (int t = 0; t < MT; ++t) mma_16816(acc[t], a, b[t][0], b[t][1]);
        }
      }
      if constexpr (kSA) {
        // C fragment entries 0, 1: row lane / 4 of the tile (scale s_lo); 2, 3: row lane / 4 + 8.
        const float s_lo = __low2float(gp.s_lo), s_hi = __low2float(gp.s_hi);
#pragma unroll
        for (int t = 0; t < MT; ++t) {
          acc[t][0] = fmaf(s_lo, prod[t][0], acc[t][0]);
          acc[t][1] = fmaf(s_lo, prod[t][1], acc[t][1]);
          acc[t][2] = fmaf(s_hi, prod[t][2], acc[t][2]);
          acc[t][3] = fmaf(s_hi, prod[t][3], acc[t][3]);
        }
      }
    }
  };
  auto copy_x = [&] {
    // xs_rows x in_len halves in 16-byte pieces (in_len % 8 == 0: k % 16 == 0), all in flight at once.
    const int pieces_per_row = in_len / 8, pieces = xs_rows * pieces_per_row;
    for (int i = int(threadIdx.x); i < pieces; i += kThreads) {
      const int r = i / pieces_per_row, g = i - r * pieces_per_row;
      w4a16_pipeline::cp_async16(xs + r * xs_stride + g * 4, x + size_t(tok0 + r) * k + in_lo + g * 8, true);
    }
    w4a16_pipeline::cp_async_commit();
  };
  using S0 = std::integral_constant<int, 0>;
  using S1 = std::integral_constant<int, 1>;
  const int full_chunks = min(c_hi, ktiles / 4);  // chunks of the slice whose 4 k-tiles are all real
  // A stage starting at c0 is all real when its last chunk c0 + (U - 1) WK is.
  auto stage_full = [&](int c0) { return c0 + (U - 1) * WK < full_chunks; };

  const int c_first = c_lo + wk;
  if (c_lo < c_hi) {
    if constexpr (ORDER == 1) {
      pdl_wait();  // x and y belong to earlier kernels (pdl.h)
      pdl_trigger();
      copy_x();
    }
    load_stage(S0{}, c_first);
    if constexpr (ORDER == 2) {
      pdl_wait();
      pdl_trigger();
      copy_x();
    }
    if (c_first + kStep < c_hi) load_stage(S1{}, c_first + kStep);
    w4a16_pipeline::cp_async_wait<0>();
    __syncthreads();  // the whole slice of x is in shared memory
    for (int c0 = c_first; c0 < c_hi;) {
      if (c0 != c_first && c0 + kStep < c_hi) load_stage(S1{}, c0 + kStep);
      if (stage_full(c0))
        compute_stage(S0{}, std::false_type{}, c0);
      else
        compute_stage(S0{}, std::true_type{}, c0);
      c0 += kStep;
      if (c0 >= c_hi) break;
      if (c0 + kStep < c_hi) load_stage(S0{}, c0 + kStep);
      if (stage_full(c0))
        compute_stage(S1{}, std::false_type{}, c0);
      else
        compute_stage(S1{}, std::true_type{}, c0);
      c0 += kStep;
    }
  } else {
    pdl_wait();  // an empty slice (chunks < splits cps) still waits: a grid never completes before its primary
    pdl_trigger();
  }

  if constexpr (WK > 1) {
    // red[((wn WK + wk) MT + t) 4 + e][32]; warp wk = 0 of each row tile sums them in wk order.
#pragma unroll
    for (int t = 0; t < MT; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) red[(((wn * WK + wk) * MT + t) * 4 + e) * 32 + lane] = acc[t][e];
    __syncthreads();
    if (wk == 0) {
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float sum = 0.0f;
#pragma unroll
          for (int w = 0; w < WK; ++w) sum += red[(((wn * WK + w) * MT + t) * 4 + e) * 32 + lane];
          acc[t][e] = sum;
        }
    }
  }
  bool owner = wk == 0;  // this warp stores row tile tn
  if (splits > 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
    // part[((wn MT + t) 4 + e][32], after red: a warp writes 128 contiguous bytes per entry.
    float* part = red + (WK > 1 ? WN * WK * MT * 4 * 32 : 0);
    if (wk == 0) {
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) part[((wn * MT + t) * 4 + e) * 32 + lane] = acc[t][e];
    }
    cluster.sync();  // every slice's partials are written and visible cluster-wide
    owner = wk == 0 && wn % splits == split;  // rank wn % splits sums row tile wn over the slices
    if (owner) {
      const float* src[kMaxSplits];
#pragma unroll
      for (int z = 0; z < kMaxSplits; ++z) src[z] = cluster.map_shared_rank(part, z < splits ? z : 0);
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = ((wn * MT + t) * 4 + e) * 32 + lane;
          float sum = 0.0f;
#pragma unroll
          for (int z = 0; z < kMaxSplits; ++z)  // in rank order; unrolled, so the loads fly together
            if (z < splits) sum += src[z][i];
          acc[t][e] = sum;
        }
    }
    cluster.sync();  // no block exits (its shared memory gone) while another still reads it
#else
    __trap();  // the host launches splits > 1 only for code built for sm_90 (w4a16_split_k_available)
#endif
  }
  if (!owner || tn >= tiles_n) return;
#pragma unroll
  for (int t = 0; t < MT; ++t) store_c_fragment(acc[t], tn, tok0 + t * 8, lane, m, n, bias, y, gated);
}

int smem_limit = 0;  // the device's opt-in shared memory per block (w4a16_prepare_kslice)

int chunks_per_split(int64_t k, int splits) {
  const int chunks = int((k + 63) / 64);
  return (chunks + splits - 1) / splits;
}

size_t smem_bytes(const W4A16KSliceConfig& c, int splits, int64_t m, int64_t k) {
  const size_t x = size_t(kslice_x_rows(int(m), c.mt)) * size_t(kslice_stride_words(chunks_per_split(k, splits))) * 4;
  const size_t sums = size_t(c.mt) * 4 * 32 * 4;  // one warp's partial sums
  return x + (c.wk > 1 ? size_t(c.wn * c.wk) * sums : 0) + (splits > 1 ? size_t(c.wn) * sums : 0);
}

template <int MT, int WN, int WK, int U>
void launch(int splits, const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* y,
            int n, int k, int m, int gl2, size_t smem, cudaStream_t s, bool gated) {
  const int tiles_n = (n + 15) / 16;
  const dim3 grid(unsigned((tiles_n + WN - 1) / WN), unsigned((m + 8 * MT - 1) / (8 * MT)), unsigned(splits));
  // Cluster launches carry the PDL attribute too unless AWQ_W4A16_KSLICE_PDL=0 (the tiled GEMM's
  // split-K measured slower with it; these gained 1-3 % in the H100 decode step at batch 2-16).
  const bool pdl = (splits == 1 || w4a16_kslice_pdl_from_env()) && pdl_launch(s);
  const LaunchShape shape{grid, dim3(WN * WK * 32), smem, s, unsigned(splits), pdl};
  const int cps = chunks_per_split(k, splits);
  const auto go = [&](auto order) {
    constexpr int kOrder = decltype(order)::value;
    if (gl2 < 2)
      launch_kernel(shape, w4a16_kslice_kernel<MT, WN, WK, U, true, kOrder>, codes, params, x, bias, y, n, k, m, gl2, cps,
                    gated);
    else
      launch_kernel(shape, w4a16_kslice_kernel<MT, WN, WK, U, false, kOrder>, codes, params, x, bias, y, n, k, m, gl2, cps,
                    gated);
  };
  if (pdl)
    go(std::integral_constant<int, 2>{});
  else
    go(std::integral_constant<int, 1>{});
}

template <int MT, int WN, int WK, int U>
void prepare(int bytes) {
  const auto set = [&](auto kernel) {
    AWQ_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  };
  set(w4a16_kslice_kernel<MT, WN, WK, U, true, 1>);
  set(w4a16_kslice_kernel<MT, WN, WK, U, false, 1>);
  set(w4a16_kslice_kernel<MT, WN, WK, U, true, 2>);
  set(w4a16_kslice_kernel<MT, WN, WK, U, false, 2>);
}

using LaunchFn = void (*)(int, const uint4*, const uint2*, const __half*, const __half*, __half*, int, int, int, int,
                          size_t, cudaStream_t, bool);
struct KSliceEntry {
  W4A16KSliceConfig cfg;
  LaunchFn launch;
  void (*prepare)(int bytes);
};
#define AWQ_W4A16_KSLICE(MT, WN, WK, U) \
  KSliceEntry{W4A16KSliceConfig{MT, WN, WK, U}, &launch<MT, WN, WK, U>, &prepare<MT, WN, WK, U>}
const KSliceEntry kKSlice[] = {
    AWQ_W4A16_KSLICE(1, 4, 1, 4),  // 0: 64 rows x 8 tokens, 4 warps
    AWQ_W4A16_KSLICE(1, 8, 1, 4),  // 1: 128 rows x 8 tokens, 8 warps
    AWQ_W4A16_KSLICE(1, 4, 2, 4),  // 2: 64 rows x 8 tokens, 8 warps (2 a row tile, splitting its slice)
    AWQ_W4A16_KSLICE(2, 4, 1, 4),  // 3: 64 rows x 16 tokens, 4 warps
    AWQ_W4A16_KSLICE(2, 8, 1, 4),  // 4: 128 rows x 16 tokens, 8 warps
    AWQ_W4A16_KSLICE(1, 2, 4, 4),  // 5: 32 rows x 8 tokens, 8 warps (4 a row tile)
    AWQ_W4A16_KSLICE(1, 4, 1, 8),  // 6: as 0 with stages of 8 chunks (more bytes in flight a warp)
    AWQ_W4A16_KSLICE(2, 4, 2, 4),  // 7: 64 rows x 16 tokens, 8 warps (2 a row tile)
    AWQ_W4A16_KSLICE(2, 8, 1, 2),  // 8: as 4 with stages of 2 chunks (fewer registers)
};
#undef AWQ_W4A16_KSLICE
constexpr int kNumKSlice = int(sizeof(kKSlice) / sizeof(kKSlice[0]));

}  // namespace

int w4a16_kslice_count() { return kNumKSlice; }
W4A16KSliceConfig w4a16_kslice_config(int i) { return kKSlice[i].cfg; }

void w4a16_prepare_kslice() {
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0;
    AWQ_CUDA_CHECK(cudaGetDevice(&dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&smem_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    for (const KSliceEntry& e : kKSlice) e.prepare(smem_limit);
  });
}

bool w4a16_kslice_fits(int config, int splits, int64_t m, int64_t k) {
  w4a16_prepare_kslice();
  return splits >= 1 && splits <= kMaxSplits && (splits == 1 || w4a16_split_k_available()) &&
         smem_bytes(kKSlice[config].cfg, splits, m, k) <= size_t(smem_limit);
}

// The pick, from the H100 sweep of the five Llama-2-7B shapes at m = 1, 2, 4, 8, 16
// (`bench_cuda_w4a16 20 ksweep`, docs/results/gpu.md, "K-slice kernels"):
//  - m = 2..8: 8 warps of 128 rows (configuration 1) on layers of n >= 8192; 4 warps of 64 rows
//    (0) on narrow layers with a long K (n < 8192, k >= 8192: down_proj). Narrow layers with a
//    short K (o_proj) keep the register-streaming kernels (7.0-7.3 against 7.3-7.7 us at m = 2..4).
//  - m = 9..16: 8 warps of 128 rows, 16 tokens, stages of 2 chunks (8: 79 registers, 3 blocks
//    per SM; stages of 4 chunks took 122 registers and were 9-25 % slower).
//  - splits: the largest power of two up to 8 whose grid stays within 22 warps per SM (2.75 of
//    the 3 blocks of 8 warps an SM holds: the rest is lost to packing whole clusters into a GPC;
//    qkv at 4 splits, 384 blocks, measured 16.8 against 14.9 us at 2), and only where that grid
//    reaches 15 warps per SM (qkv, 96 row groups: 2 splits give 12 and measured no faster than
//    the register-streaming kernel; 4 give 23): thinner grids keep the picks before.
// m = 1 keeps the register-streaming kernels (0.88-0.97x of them here).
// Thin grids on wide layers (session 26, H200 ksweep with 1, 2, 3, 4, 6 and 8 splits,
// docs/results/gpu.md; AWQ_W4A16_KSLICE_THIN=0 gives the picks before): where the rule above
// finds no split (qkv of a 7B, 96 row groups of 128), 2 splits of the narrower configurations
// beat the kernels picked before: m = 2..8 with 4 warps of 64 rows, stages of 8 chunks (6), qkv
// 11.5 / 12.1 / 13.3 / 13.7 against 13.3 / 13.6 / 14.7 / 15.3 us at m = 2 / 4 / 6 / 8; m = 9..16
// with 16 tokens, 8 warps of 128 rows, stages of 4 chunks (4), 17.4 / 18.3 against the tiled
// GEMM's 19.6 / 19.8 at m = 12 / 16. Splits of 3 and 6 won nowhere.
namespace {
W4A16KSliceChoice thin_grid_pick(int64_t m, int64_t k) {
  const int config = m > 8 ? 4 : 6;
  if (!w4a16_kslice_thin_from_env() || !w4a16_kslice_fits(config, 2, m, k)) return {};
  return {config, 2};
}
}  // namespace

W4A16KSliceChoice w4a16_default_kslice(int64_t m, int64_t n, int64_t k) {
  if (m < 2 || m > 16 || !w4a16_split_k_available()) return {};
  const bool narrow = n < 8192, long_k = k >= 8192;
  if (m <= 8 && narrow && !long_k) return {};
  const int config = m > 8 ? 8 : narrow ? 0 : 1;
  const W4A16KSliceConfig c = kKSlice[config].cfg;
  const int64_t groups = ((n + 15) / 16 + c.wn - 1) / c.wn, warps = c.wn * c.wk, sms = w4a16_sm_count();
  for (int splits = kMaxSplits; splits >= 1; splits /= 2) {
    const int64_t grid_warps = groups * splits * warps;
    if (grid_warps > 22 * sms || !w4a16_kslice_fits(config, splits, m, k)) continue;
    if (grid_warps < 15 * sms) return narrow ? W4A16KSliceChoice{} : thin_grid_pick(m, k);
    return {config, splits};
  }
  return {};
}

void launch_w4a16_kslice(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                         const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                         cudaStream_t s, bool gated) {
  check(config >= 0 && config < kNumKSlice, "launch_w4a16_kslice: no configuration " + std::to_string(config));
  check(w4a16_kslice_fits(config, splits, m, k),
        "launch_w4a16_kslice: configuration " + std::to_string(config) + " with " + std::to_string(splits) +
            " K splits does not fit this device (shared memory, or clusters) at m = " + std::to_string(m) +
            ", k = " + std::to_string(k));
  check(reinterpret_cast<uintptr_t>(x) % 16 == 0, "launch_w4a16_kslice: x must be 16-byte aligned (cp.async)");
  check(!gated || n % 16 == 0, "launch_w4a16_kslice: gated outputs need n % 16 == 0");
  kKSlice[config].launch(splits, codes, params, x, bias, y, int(n), int(k), int(m), w4a16_group_tiles_log2(group),
                         smem_bytes(kKSlice[config].cfg, splits, m, k), s, gated);
}

}  // namespace awq::cuda
