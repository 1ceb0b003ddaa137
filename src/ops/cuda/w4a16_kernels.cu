// W4A16 kernels: the repack from the AutoAWQ GEMM layout, the dispatch (launch_w4a16), and
// the register-streaming tensor-core kernel family ("legacy": m <= 8 by default, every m with
// AWQ_W4A16_KERNEL=legacy): output rows in tiles of 16 are mma.sync's A operand (dequantized in
// registers from 4-bit codes), the tokens in tiles of 8 its B operand ("swap AB"), so a single token
// costs one 16x8x16 mma per 256 weights and decode stays bound by the weight stream.
// A block's warps split K (split-K inside the block, joined by a shared-memory reduction);
// each warp streams 16-byte loads of codes two register stages deep, holds rt row tiles (x
// loaded once for them) and mt token tiles; blockIdx.y walks 8 mt-token chunks. The
// configurations compiled in and the one picked for each (m, n) are at the end of the file.
// Dequant and mma helpers: w4a16_device.cuh. The tiled GEMM for larger m: w4a16_tiled.cu.
#include "ops/cuda/w4a16_kernels.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <type_traits>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/w4a16_device.cuh"
#include "ops/cuda/w4a16_pipeline.cuh"
#include "ops/cuda/w4a16_tune.h"

namespace awq::cuda {

namespace {

using namespace w4a16_device;
using namespace pdl_device;

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

// One block: WN x RT row tiles (16 WN RT output rows) x MT token tiles (8 MT tokens). Its warps
// form WN row groups (RT row tiles each; the WN groups read the same x, so L1 serves all but
// the first) of WK warps that split K (chunk c goes to warp c % WK); a shared-memory reduction
// joins the WK partial sums. Each
// warp keeps two register stages of U chunks per row tile: the loads of the next stage are in
// flight while the current one is dequantized and multiplied. The B fragments (x) of a tile
// are loaded once and reused by the RT row tiles.
// SMALL_GROUP: group < 64, the params change inside a 64-input chunk.
// Programmatic dependent launch (pdl.h): the weights never depend on the previous kernel, so
// both register stages of codes and params (XS: stage 0; see the code) are loaded BEFORE pdl_wait(), overlapping their DRAM
// latency with the previous kernel's tail (for k = 4096 and 8 warps splitting K that is every
// chunk of the block); with prefetch_chunks > 0 (AWQ_CUDA_PDL=2, sm_90) thread 0 also asks for
// the next prefetch_chunks chunks of each row tile (and all its params) to be brought into L2.
// x is read and y written only after the wait. The arithmetic and its order do not change.
// XS ("x staged"): right after the wait the block copies its token rows of x (at most 8 MT rows
// of k inputs) into shared memory with cp.async, one L2 round trip for the whole block, and the
// B fragments are read from there. Without it every warp loads its x fragments from L2 chunk by
// chunk, and ncu showed those loads on the critical path: the compiler issues a chunk's x loads
// just before its mma, so each chunk waited one L2 round trip (docs/results/gpu.md, "ncu of the
// small-m kernels"). Shared layout: row r (token tok0 + r) at r (k + 8) halves; the 16-byte pad
// puts the 8 rows of a B fragment on different banks. Needs x 16-byte aligned (the launcher
// checks and otherwise runs the XS = 0 kernel). XS: 0 = x from L2 (no copy); 1 = the copy
// first, then the weights (launches without PDL); 2 = register stage 0, the wait and the copy,
// stage 1 (launches with PDL). See the comment above the wait below.
// SA ("scale after"; groups of 64 or more): a chunk's 4 products go into a zeroed f32 fragment
// from the unscaled codes (q - z), which is then multiplied by the row's scale and added to the
// accumulator (w4a16_device.cuh, dequant_unscaled): 16 HMUL2 fewer per chunk and row tile,
// 4 FFMA more. With SMALL_GROUP the scales change inside a chunk and SA is ignored.
// The xs SA kernels with one row tile and one token tile are held to 3 blocks per SM (80
// registers for 256 threads, as the kernel without SA has; the zeroed fragment would otherwise
// take it to 96, 2 blocks per SM). The others, their L2 twins (XS = 0) and the SMALL_GROUP
// instances (no SA) keep the compiler's choice (no spills).
// That is for 256 threads; in general 768 / threads blocks (10 warps splitting K: 2 blocks of
// 320 threads, 96 registers).
template <bool SA, bool SMALL_GROUP, int XS, int MT, int RT, int THREADS>
constexpr int sa_min_blocks() { return (SA && !SMALL_GROUP && XS != 0 && MT * RT == 1) ? 768 / THREADS : 0; }

template <int MT, int WK, int WN, int RT, bool SMALL_GROUP, int XS, bool SA>
__global__ void __launch_bounds__(WK * WN * 32, sa_min_blocks<SA, SMALL_GROUP, XS, MT, RT, WK * WN * 32>())
    w4a16_mma_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                     const __half* __restrict__ x, const __half* __restrict__ bias,
                     __half* __restrict__ y, int n, int k, int m, int group_tiles_log2,
                     int prefetch_chunks, bool gated) {
  constexpr int U = (RT * MT >= 8) ? 2 : 4;  // chunks per stage per row tile
  constexpr bool kSA = SA && !SMALL_GROUP;
  const int lane = threadIdx.x & 31, wk = (threadIdx.x >> 5) % WK, wn = (threadIdx.x >> 5) / WK;
  const int tiles_n = (n + 15) / 16, tn0 = (blockIdx.x * WN + wn) * RT;
  const int ktiles = k / 16, chunks = (k + 63) / 64, ngroups = ktiles >> group_tiles_log2;
  const int tok0 = blockIdx.y * 8 * MT;

  float acc[RT][MT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int t = 0; t < MT; ++t) acc[r][t][0] = acc[r][t][1] = acc[r][t][2] = acc[r][t][3] = 0.0f;
  // B fragment rows: token tok0 + 8t + lane/4 (clamped: columns past m are computed, never stored).
  // As 32-bit words (fp16 pairs): tile kt's b0 is word 8 kt, b1 word 8 kt + 4.
  // XS: the same words of the block's shared copy (xs_row[t]: the row's first word + lane % 4).
  extern __shared__ __align__(16) uint32_t xs[];
  const int xs_rows = min(8 * MT, m - tok0);  // token rows the block has (XS)
  const int xs_stride = (k + 8) / 2;          // words per shared row (XS)
  const uint32_t* xw[MT];
  int xs_row[MT];
#pragma unroll
  for (int t = 0; t < MT; ++t) {
    const int tok = min(tok0 + t * 8 + lane / 4, m - 1);
    xw[t] = reinterpret_cast<const uint32_t*>(x + size_t(tok) * k) + (lane % 4);
    xs_row[t] = min(t * 8 + lane / 4, xs_rows - 1) * xs_stride + (lane % 4);
  }
  auto load_b = [&](int t, int word) -> uint32_t {
    if constexpr (XS)
      return xs[xs_row[t] + word];
    else
      return __ldg(xw[t] + word);
  };
  // Row tiles past the end read tile tiles_n - 1 (in bounds) and are never stored.
  const uint4* cp[RT];
  const uint2* pp[RT];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const int tn = min(tn0 + r, tiles_n - 1);
    cp[r] = codes + size_t(tn) * chunks * 32 + lane;
    pp[r] = params + size_t(tn) * ngroups * 8 + lane / 4;
  }

  uint4 wv[2][RT][U];
  uint2 pv[2][RT][U];
  // Stage indices are compile-time constants (a run-time index would put wv in local memory).
  // Chunks past the end are clamped to the last one (in bounds) and not multiplied in.
  auto load_stage = [&](auto stage, int c0) {
    constexpr int st = decltype(stage)::value;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = min(c0 + u * WK, chunks - 1);
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        wv[st][r][u] = load_stream_nc(cp[r] + size_t(c) * 32);
        pv[st][r][u] = __ldg(pp[r] + size_t((c * 4) >> group_tiles_log2) * 8);
      }
    }
  };
  // CHECKED: the stage holds chunks past the end or padded k-tiles; their x is replaced by 0.
  // Unchecked stages have no branch inside, so every x load of a chunk is issued up front.
  auto compute_stage = [&](auto stage, auto checked, int c0) {
    constexpr int st = decltype(stage)::value;
    constexpr bool kChecked = decltype(checked)::value;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c_raw = c0 + u * WK, c = kChecked ? min(c_raw, chunks - 1) : c_raw;
      GroupParams gp[RT];  // the chunk's group (its first tile's when group < 64)
#pragma unroll
      for (int r = 0; r < RT; ++r) gp[r] = expand(pv[st][r][u]);
      [[maybe_unused]] float part[RT][MT][4];  // kSA: the chunk's unscaled products
      if constexpr (kSA) {
#pragma unroll
        for (int r = 0; r < RT; ++r)
#pragma unroll
          for (int t = 0; t < MT; ++t) part[r][t][0] = part[r][t][1] = part[r][t][2] = part[r][t][3] = 0.0f;
      }
      // x for JB tiles at a time is loaded before their products (fewer for large MT: registers).
      constexpr int JB = MT <= 2 ? 4 : (MT <= 4 ? 2 : 1);
#pragma unroll
      for (int j0 = 0; j0 < 4; j0 += JB) {
        uint32_t b[JB][MT][2];
#pragma unroll
        for (int jj = 0; jj < JB; ++jj) {
          const int j = j0 + jj;
          const int kt = kChecked ? min(c * 4 + j, ktiles - 1) : c * 4 + j;
          const bool valid = !kChecked || (c_raw < chunks && c * 4 + j < ktiles);
#pragma unroll
          for (int t = 0; t < MT; ++t) {
            b[jj][t][0] = valid ? load_b(t, kt * 8) : 0u;
            b[jj][t][1] = valid ? load_b(t, kt * 8 + 4) : 0u;
          }
        }
#pragma unroll
        for (int jj = 0; jj < JB; ++jj) {
          const int j = j0 + jj;
#pragma unroll
          for (int r = 0; r < RT; ++r) {
            const uint4 w4 = wv[st][r][u];
            const uint32_t word = j == 0 ? w4.x : j == 1 ? w4.y : j == 2 ? w4.z : w4.w;
            if (SMALL_GROUP && j > 0) {
              const int kt = kChecked ? min(c * 4 + j, ktiles - 1) : c * 4 + j;
              gp[r] = expand(__ldg(pp[r] + size_t(kt >> group_tiles_log2) * 8));
            }
            uint32_t a[4];
            if constexpr (kSA) {
              dequant_unscaled(word, gp[r], a);
#pragma unroll
              for (int t = 0; t < MT; ++t) mma_16816(part[r][t], a, b[jj][t][0], b[jj][t][1]);
            } else {
              dequant(word, gp[r], a);
#pragma unroll
              for (int t = 0; t < MT; ++t) mma_16816(acc[r][t], a, b[jj][t][0], b[jj][t][1]);
            }
          }
        }
      }
      if constexpr (kSA) {
        // C fragment entries 0, 1: row lane / 4 of the tile (scale s_lo), 2, 3: row lane / 4 + 8 (s_hi).
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          const float s_lo = __low2float(gp[r].s_lo), s_hi = __low2float(gp[r].s_hi);
#pragma unroll
          for (int t = 0; t < MT; ++t) {
            acc[r][t][0] = fmaf(s_lo, part[r][t][0], acc[r][t][0]);
            acc[r][t][1] = fmaf(s_lo, part[r][t][1], acc[r][t][1]);
            acc[r][t][2] = fmaf(s_hi, part[r][t][2], acc[r][t][2]);
            acc[r][t][3] = fmaf(s_hi, part[r][t][3], acc[r][t][3]);
          }
        }
      }
    }
  };
  using S0 = std::integral_constant<int, 0>;
  using S1 = std::integral_constant<int, 1>;
  using Checked = std::true_type;
  using Unchecked = std::false_type;
  constexpr int kStep = WK * U;
  const int full_chunks = ktiles / 4;  // chunks whose 4 k-tiles are all real
  // A stage starting at c0 is all real when its last chunk c0 + (U - 1) WK is.
  auto stage_full = [&](int c0) { return c0 + (U - 1) * WK < full_chunks; };
  // Weights only before the wait (the loop's first iteration would load stage 1 at its top; it
  // skips that load instead).
  // The shared copy of x (XS): issued after the wait (x belongs to the previous kernel).
  auto copy_x = [&] {
    if constexpr (XS) {
      // xs_rows x k halves in 16-byte pieces (k % 16 == 0), all copies in flight at once.
      const int pieces_per_row = k / 8, pieces = xs_rows * pieces_per_row;
      for (int i = int(threadIdx.x); i < pieces; i += WK * WN * 32) {
        const int r = i / pieces_per_row, g = i - r * pieces_per_row;
        w4a16_pipeline::cp_async16(xs + r * xs_stride + g * 4, x + size_t(tok0 + r) * k + g * 8, true);
      }
      w4a16_pipeline::cp_async_commit();
    }
  };
  auto prefetch = [&] {
    if (prefetch_chunks > 0 && threadIdx.x == 0) {
      // Chunks [2 kStep, 2 kStep + prefetch_chunks) of each row tile: the ones after both
      // register stages of every warp (contiguous: a row tile's chunks are consecutive uint4 x 32).
      const int c_lo = min(2 * kStep, chunks), c_hi = min(chunks, c_lo + prefetch_chunks);
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const int tn = min(tn0 + r, tiles_n - 1);
        prefetch_l2(codes + (size_t(tn) * chunks + c_lo) * 32, uint32_t(c_hi - c_lo) * 512u);
        prefetch_l2(params + size_t(tn) * ngroups * 8, uint32_t(ngroups) * 64u);
      }
    }
  };
  // Where the wait and x's copy go among the weight loads. XS = 0: both register stages (and
  // the L2 prefetch), then the wait. XS = 1 (no PDL): the wait (a no-op then) and x's copy
  // first, so that x's L2 requests do not queue behind the weights' DRAM misses, then both
  // stages. XS = 2 (PDL): stage 0 (and the prefetch) before the wait, overlapping the previous
  // kernel's tail, then x, then stage 1. Measured on the H100 against both stages before the
  // wait (docs/results/gpu.md): plain calls at m = 1 up to 9 % faster, 7B decode at batch 1
  // 430 against 416 tok/s (and 429 against 424 for o_proj / down_proj alone).
  if constexpr (XS != 0) {
    if constexpr (XS == 1) {
      pdl_wait();  // x (and y) belong to earlier kernels (pdl.h)
      pdl_trigger();
      copy_x();
    }
    load_stage(S0{}, wk);
    if constexpr (XS == 2) {
      prefetch();
      pdl_wait();
      pdl_trigger();
      copy_x();
    }
    if (wk + kStep < chunks) load_stage(S1{}, wk + kStep);
    w4a16_pipeline::cp_async_wait<0>();
    __syncthreads();
  } else {
    load_stage(S0{}, wk);
    if (wk + kStep < chunks) load_stage(S1{}, wk + kStep);
    prefetch();
    pdl_wait();
    pdl_trigger();
  }
  for (int c0 = wk; c0 < chunks;) {
    if (c0 != wk && c0 + kStep < chunks) load_stage(S1{}, c0 + kStep);
    if (stage_full(c0))
      compute_stage(S0{}, Unchecked{}, c0);
    else
      compute_stage(S0{}, Checked{}, c0);
    c0 += kStep;
    if (c0 >= chunks) break;
    if (c0 + kStep < chunks) load_stage(S0{}, c0 + kStep);
    if (stage_full(c0))
      compute_stage(S1{}, Unchecked{}, c0);
    else
      compute_stage(S1{}, Checked{}, c0);
    c0 += kStep;
  }

#pragma unroll
  for (int r = 0; r < RT; ++r) {
    if constexpr (WK > 1) {
      __shared__ float red[WN][WK][MT * 4][32];
      if (r > 0) __syncthreads();  // the previous row tile's sums have been read
#pragma unroll
      for (int t = 0; t < MT; ++t)
#pragma unroll
        for (int j = 0; j < 4; ++j) red[wn][wk][t * 4 + j][lane] = acc[r][t][j];
      __syncthreads();
#pragma unroll
      for (int t = 0; t < MT; ++t) {
        if (t % WK != wk) continue;  // warp w owns the token tiles t with t % WK == w
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float s = 0.0f;
#pragma unroll
          for (int w = 0; w < WK; ++w) s += red[wn][w][t * 4 + j][lane];
          acc[r][t][j] = s;
        }
      }
    }
    const int tn = tn0 + r;
    if (tn >= tiles_n) continue;
#pragma unroll
    for (int t = 0; t < MT; ++t)
      if (t % WK == wk) store_c_fragment(acc[r][t], tn, tok0 + t * 8, lane, m, n, bias, y, gated);
  }
}

__global__ void add_bias_kernel(__half* __restrict__ y, const __half* __restrict__ bias, int64_t m,
                                int64_t n) {
  pdl_wait();  // y is the previous kernel's output (pdl.h)
  pdl_trigger();
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= m * n) return;
  y[idx] = __float2half(__half2float(y[idx]) + __half2float(bias[idx % n]));
}

int blocks_for(int64_t items, int threads) { return int((items + threads - 1) / threads); }

// Chunks of 64 inputs per row tile (512 bytes of codes each) the L2 prefetch of AWQ_CUDA_PDL=2
// asks for beyond the register stages: 16 KB per row tile, 22 MB for the fused gate+up of
// Llama-2-7B (under half of an H100's L2), the whole of a 4096 x 4096 linear.
constexpr int kL2PrefetchChunks = 32;

// XS kernels: the largest shared copy of x a block may have (bytes; the device's opt-in limit
// may lower it, xs_limit). 100 KB holds 8 tokens of k = 4096 or 4 of k = 11008 and leaves room
// for two such blocks per SM on an H100 (228 KB); a larger copy runs the XS = 0 kernel.
constexpr int kXsMaxBytes = 100 * 1024;
int xs_limit = 0;  // set once by w4a16_prepare_streaming

size_t xs_bytes(int m, int k, int mt) { return size_t(std::min(m, 8 * mt)) * size_t(k + 8) * 2; }

template <int MT, int WK, int WN, int RT, bool XS, bool SA>
void launch(const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* y,
            int n, int k, int m, int gl2, cudaStream_t s, bool gated) {
  const int tiles_n = (n + 15) / 16;
  const dim3 grid((tiles_n + WN * RT - 1) / (WN * RT), (m + 8 * MT - 1) / (8 * MT));
  const size_t smem = xs_bytes(m, k, MT);
  const bool xs = XS && reinterpret_cast<uintptr_t>(x) % 16 == 0 && smem <= size_t(xs_limit);
  const LaunchShape shape{grid, dim3(WK * WN * 32), xs ? smem : 0, s};
  const bool pdl = pdl_launch(s);
  const int prefetch = pdl && pdl_mode() == PdlMode::OnL2Prefetch ? kL2PrefetchChunks : 0;
  const auto go = [&](auto kernel) {
    launch_kernel(shape, kernel, codes, params, x, bias, y, n, k, m, gl2, prefetch, gated);
  };
  if constexpr (XS) {
    if (xs) {
      const auto with_order = [&](auto order) {
        constexpr int kOrder = decltype(order)::value;
        if (gl2 < 2)
          go(w4a16_mma_kernel<MT, WK, WN, RT, true, kOrder, SA>);
        else
          go(w4a16_mma_kernel<MT, WK, WN, RT, false, kOrder, SA>);
      };
      if (pdl)
        with_order(std::integral_constant<int, 2>{});
      else
        with_order(std::integral_constant<int, 1>{});
      return;
    }
  }
  if (gl2 < 2)
    go(w4a16_mma_kernel<MT, WK, WN, RT, true, 0, SA>);
  else
    go(w4a16_mma_kernel<MT, WK, WN, RT, false, 0, SA>);
}

// Raises the XS kernels' dynamic shared-memory limit to `bytes`.
template <int MT, int WK, int WN, int RT, bool XS, bool SA>
void prepare(int bytes) {
  if constexpr (XS) {
    const auto set = [&](auto kernel) {
      AWQ_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    };
    set(w4a16_mma_kernel<MT, WK, WN, RT, true, 1, SA>);
    set(w4a16_mma_kernel<MT, WK, WN, RT, false, 1, SA>);
    set(w4a16_mma_kernel<MT, WK, WN, RT, true, 2, SA>);
    set(w4a16_mma_kernel<MT, WK, WN, RT, false, 2, SA>);
  }
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

namespace {

using LaunchFn = void (*)(const uint4*, const uint2*, const __half*, const __half*, __half*, int, int,
                          int, int, cudaStream_t, bool);
struct Variant {
  W4A16Variant v;
  LaunchFn fn;
  void (*prepare)(int bytes);
};
#define AWQ_W4A16_VARIANT(MT, WK, WN, RT, XS, SA) \
  Variant{W4A16Variant{MT, WK, WN, RT, XS, SA}, &launch<MT, WK, WN, RT, XS, SA>, &prepare<MT, WK, WN, RT, XS, SA>}
// 0-8: x read from global memory (L2) by each warp; 9-13: x staged in shared memory (XS);
// 14-16: two token tiles with x staged (m = 9..16); 17-21: the scale applied after the mma (SA),
// xs and L2 twins; 22 (branch gpu8): 10 warps splitting K, xs and SA (down_proj's long K at
// m = 1; 2 blocks per SM of 320 threads).
const Variant kVariants[] = {
    AWQ_W4A16_VARIANT(1, 8, 1, 1, false, false), AWQ_W4A16_VARIANT(1, 16, 1, 1, false, false),
    AWQ_W4A16_VARIANT(1, 4, 1, 2, false, false), AWQ_W4A16_VARIANT(2, 8, 1, 1, false, false),
    AWQ_W4A16_VARIANT(2, 4, 1, 2, false, false), AWQ_W4A16_VARIANT(4, 8, 1, 2, false, false),
    AWQ_W4A16_VARIANT(4, 4, 1, 2, false, false), AWQ_W4A16_VARIANT(8, 4, 1, 2, false, false),
    AWQ_W4A16_VARIANT(8, 4, 2, 2, false, false), AWQ_W4A16_VARIANT(1, 8, 1, 1, true, false),
    AWQ_W4A16_VARIANT(1, 16, 1, 1, true, false), AWQ_W4A16_VARIANT(1, 4, 1, 2, true, false),
    AWQ_W4A16_VARIANT(1, 8, 1, 2, true, false), AWQ_W4A16_VARIANT(1, 4, 1, 1, true, false),
    AWQ_W4A16_VARIANT(2, 8, 1, 1, true, false), AWQ_W4A16_VARIANT(2, 4, 1, 2, true, false),
    AWQ_W4A16_VARIANT(2, 8, 1, 2, true, false), AWQ_W4A16_VARIANT(1, 8, 1, 1, true, true),
    AWQ_W4A16_VARIANT(1, 8, 1, 1, false, true), AWQ_W4A16_VARIANT(1, 4, 1, 2, true, true),
    AWQ_W4A16_VARIANT(1, 4, 1, 2, false, true), AWQ_W4A16_VARIANT(1, 8, 1, 2, true, true),
    AWQ_W4A16_VARIANT(1, 10, 1, 1, true, true)};
#undef AWQ_W4A16_VARIANT
constexpr int kNumVariants = int(sizeof(kVariants) / sizeof(kVariants[0]));

// The configuration launch_w4a16 uses for m tokens, n outputs and k inputs (index into
// kVariants), from the H100 sweeps (SWEEP=1 scripts/gpu-check bench; bench/cuda/small_m_compare.sh,
// docs/results/gpu.md): one token tile with 8 warps splitting K for decode; two row tiles per
// warp (x reused) once n is large or m passes 8; four token tiles from m = 17 on. xs
// (AWQ_W4A16_XSMEM, default on): x staged in shared memory where that measured faster:
//  - m = 1: (1, 8, 1, 1) xs for every shape (but down_proj: branch gpu8 below);
//  - m = 2..8, n >= 8192: (1, 4, 1, 2) without xs (the copy of m rows costs more than it saves);
//  - m = 2..8, n < 8192: (1, 8, 1, 2) xs for k >= 8192 or m > 4 (down_proj; o_proj at m = 8),
//    else (1, 8, 1, 1) without xs.
// SA (AWQ_W4A16_SCALE_AFTER, default on; branch gpu5's H100 sweeps): the scale applied after the
// mma where that measured faster: m = 1 on every shape ((1, 8, 1, 1) xs: 5-9 % faster plain, 7B
// decode at batch 1 +2-5 %), and (1, 8, 1, 2) xs at m = 2..8 where x fits in shared memory
// (2-4 %; where it does not, e.g. down_proj at m = 8, its L2 twin with SA measured slower than
// without, so the kernel without SA stays).
// The choice does not depend on PDL (a K split changes the order of the sums, and PDL on and
// off must give the same bits: pdl.h).
// m = 9..16 on a small layer (n, k < 8192: o_proj): (2, 8, 1, 2) xs, faster than the tiled GEMM
// (w4a16_auto_uses_tiled; H100, docs/results/gpu.md: o_proj at m = 9/12/16 9.6/10.5/10.5 us
// against the tiled GEMM's 12.2; down_proj, k = 11008, stays tiled: 24.8 us against >= 25.5).
bool mid_m_streaming(int64_t m, int64_t n, int64_t k, bool xs) {
  return xs && m >= 9 && m <= 16 && n < 8192 && k < 8192;
}

// Branch gpu8 (H100 calls of 2026-11-27 12:14-12:41 UTC, docs/results/gpu.md), with xs and sa:
//  - m = 1 on a long K (k >= 8192, n < 8192: down_proj; AWQ_W4A16_LONG_K=0 turns it off):
//    (1, 10, 1, 1) xs sa, 10 warps splitting 172 chunks instead of 8 (2 blocks of 320 threads per
//    SM hold all 256 blocks at once): with PDL 10.4 against 12.5 us (back-to-back calls), plain
//    12.1-12.4 against 11.8-12.0 (2-3 % slower); 7B decode at batch 1, medians of 3 alternations:
//    PDL on (the default) 452.7 against 445.4 tok/s (+1.6 %), PDL off 426.9 against 435.6
//    (-2.0 %) (docs/results/gpu.md, branch gpu8); (1, 12, 1, 1), 80 registers with spills:
//    12.8 / 10.2;
//  - not taken: m = 2 on a wide layer with the m = 1 kernel (variant 17) instead of (1, 4, 1, 2)
//    (variant 2): plain 1-4 % faster (gate+up 22.9 against 23.7 us), with PDL up to 9 % slower
//    (gate 12.3 against 11.3, qkv 13.4 against 13.0; 12:29 UTC).
int default_variant(int64_t m, int64_t n, int64_t k, bool xs, bool scale_after, bool long_k) {
  const bool wide = n >= 8192;
  if (mid_m_streaming(m, n, k, xs)) return 16;  // (2, 8, 1, 2) xs
  if (xs && scale_after && long_k && m == 1 && !wide && k >= 8192) return 22;
  if (xs && m == 1) return scale_after ? 17 : 9;
  if (xs && m <= 8 && !wide && (k >= 8192 || m > 4))  // (1, 8, 1, 2) xs, with SA where x fits
    return scale_after && xs_bytes(int(m), int(k), 1) <= size_t(kXsMaxBytes) ? 21 : 12;
  if (xs && m <= 8) return wide ? 2 : 0;
  if (m <= 8) return wide ? 2 : 0;              // (1, 4, 1, 2) : (1, 8, 1, 1)
  if (m <= 16) return wide ? 4 : 2;             // (2, 4, 1, 2) : (1, 4, 1, 2)
  return 6;                                     // (4, 4, 1, 2)
}

}  // namespace

bool w4a16_auto_uses_tiled(int64_t m, int64_t n, int64_t k) {
  return m >= kW4A16TiledMinTokens && !mid_m_streaming(m, n, k, w4a16_xsmem_from_env());
}

int w4a16_variant_count() { return kNumVariants; }
W4A16Variant w4a16_variant(int i) { return kVariants[i].v; }
int w4a16_default_variant(int64_t m, int64_t n, int64_t k) {
  return default_variant(m, n, k, w4a16_xsmem_from_env(), w4a16_scale_after_from_env(),
                         w4a16_long_k_from_env());
}

void w4a16_prepare_streaming() {
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0, optin = 0;
    AWQ_CUDA_CHECK(cudaGetDevice(&dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    // The static reduction array of the largest configuration (8 warps x 4 accumulators x 32
    // lanes of floats for MT = 1) stays under the rest of the opt-in limit.
    const int limit = std::min(kXsMaxBytes, optin - 8 * 1024);
    for (const Variant& v : kVariants) v.prepare(limit);
    xs_limit = limit;
  });
}

void launch_w4a16_variant(int variant, const uint4* codes, const uint2* params, const __half* x,
                          const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                          cudaStream_t s, bool gated) {
  check(!gated || n % 16 == 0, "launch_w4a16_variant: gated outputs need n % 16 == 0");
  w4a16_prepare_streaming();
  kVariants[variant].fn(codes, params, x, bias, y, int(n), int(k), int(m), w4a16_group_tiles_log2(group), s, gated);
}

W4A16Dispatch w4a16_dispatch(bool x_aligned, int64_t m, int64_t n, int64_t k, int group, W4A16Path path) {
  using Kind = W4A16Dispatch::Kind;
  W4A16Dispatch d;
  // A small-batch pick the tuner recorded (w4a16_tune.h; timed with an aligned x, on Auto with the
  // K-slice kernels on) comes first, then the rules'.
  const bool small_rules = x_aligned && path == W4A16Path::Auto && w4a16_kslice_from_env();
  const W4A16SmallPick tuned = small_rules ? w4a16_tuned_small(m, n, k) : W4A16SmallPick{};
  if (tuned.variant >= 0) {
    d.kind = Kind::Streaming;
    d.variant = tuned.variant;
    d.tuned = true;
    return d;
  }
  d.ks = tuned.ks.config >= 0 ? tuned.ks : small_rules ? w4a16_default_kslice(m, n, k) : W4A16KSliceChoice{};
  if (d.ks.config >= 0) {
    d.kind = Kind::KSlice;
    d.tuned = tuned.ks.config >= 0;
    return d;
  }
  if (x_aligned && (path == W4A16Path::Tiled || (path == W4A16Path::Auto && w4a16_auto_uses_tiled(m, n, k)))) {
    d.kind = Kind::Tiled;
    d.tiled = w4a16_tuned_pick(m, n, k, group);
    d.tuned = d.tiled.config >= 0;
    if (!d.tuned) d.tiled = w4a16_default_tiled(m, n, k);
    return d;
  }
  d.kind = Kind::Streaming;
  d.variant = w4a16_default_variant(m, n, k);
  return d;
}

bool w4a16_gated_output_available(const __half* x, int64_t m, int64_t n, int64_t k, W4A16Path path) {
  // The group does not change the family (only the tiled pick, which has no gated output).
  return n % 16 == 0 && w4a16_dispatch(reinterpret_cast<uintptr_t>(x) % 16 == 0, m, n, k, 128, path).has_gated_epilogue();
}

namespace {

W4A16Dispatch choose(const __half* x, int64_t m, int64_t n, int64_t k, int group, W4A16Path path) {
  return w4a16_dispatch(reinterpret_cast<uintptr_t>(x) % 16 == 0, m, n, k, group, path);  // rows too: k % 16 == 0
}

// Runs the kernel of choice c (gated: only where c.has_gated_epilogue()).
void launch_choice(const W4A16Dispatch& c, const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                   __half* y, int64_t n, int64_t k, int group, int64_t m, cudaStream_t s, bool gated) {
  if (c.kind == W4A16Dispatch::Kind::KSlice)
    launch_w4a16_kslice(c.ks.config, c.ks.splits, codes, params, x, bias, y, n, k, group, m, s, gated);
  else if (c.kind == W4A16Dispatch::Kind::Tiled)
    launch_w4a16_tiled(c.tiled.config, c.tiled.splits, codes, params, x, bias, y, n, k, group, m, s);
  else
    launch_w4a16_variant(c.variant, codes, params, x, bias, y, n, k, group, m, s, gated);
}

}  // namespace

void launch_w4a16(const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                  __half* y, int64_t n, int64_t k, int group, int64_t m, W4A16Path path,
                  cudaStream_t s, bool gated) {
  const W4A16Dispatch c = choose(x, m, n, k, group, path);
  check(!gated || c.has_gated_epilogue(), "launch_w4a16: the tiled GEMM has no gated output (w4a16_gated_output_available)");
  launch_choice(c, codes, params, x, bias, y, n, k, group, m, s, gated);
}

void launch_w4a16_silu(const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* gu,
                       __half* act, int64_t n, int64_t k, int group, int64_t m, W4A16Path path, cudaStream_t s) {
  const W4A16Dispatch c = choose(x, m, n, k, group, path);
  if (c.has_gated_epilogue()) {
    launch_choice(c, codes, params, x, bias, act, n, k, group, m, s, /*gated=*/true);
  } else {
    launch_choice(c, codes, params, x, bias, gu, n, k, group, m, s, /*gated=*/false);
    silu_mul(gu, m, n / 2, act, s, /*interleaved=*/true);
  }
}

void launch_add_bias(__half* y, const __half* bias, int64_t m, int64_t n, cudaStream_t s) {
  constexpr int kThreads = 256;
  launch_kernel({dim3(unsigned(blocks_for(m * n, kThreads))), dim3(kThreads), 0, s}, add_bias_kernel, y, bias, m, n);
}

}  // namespace awq::cuda
