// W4A16 tiled GEMM for m >= 9 tokens (prefill, decode batches): the block tile of x (tokens)
// and of the weights (codes + params) is staged in shared memory by a STAGES-deep cp.async
// pipeline, one 64-input chunk per stage; x fragments come from shared memory by ldmatrix, the
// weights are dequantized in registers (w4a16_device.cuh) and multiplied on tensor cores.
//
// Same "swap AB" arrangement and the same repacked layout as the small-m kernels
// (w4a16_kernels.cu, layout in w4a16.h): weight rows in tiles of 16 are mma.sync's A operand,
// tokens in tiles of 8 its B operand. The layout already is what a tiled kernel wants: one
// 64-input chunk of a 16-row tile is 512 contiguous bytes = 32 lanes x one uint4, i.e. every
// lane's A fragments for 4 k-tiles in one 128-bit shared-memory load, so one layout serves both.
//
// Block tile: BN = WR * RT * 16 output rows x BM = WT * TT * 8 tokens; WR x WT warps, each warp
// owns RT row tiles x TT token tiles (acc: RT * TT * 4 floats per lane). Per k-tile a warp
// dequantizes RT A fragments and loads TT / 2 ldmatrix.x4 (each gives the B fragments of two
// token tiles), then issues RT * TT mma.
//
// Shared memory, per stage s (byte offsets inside the stage, all multiples of 16):
//   x:      [BM tokens][64 halfs], 128 bytes a row = 8 segments of 16 bytes; segment g of token
//           row r is stored at segment g ^ (r & 7) (XOR swizzle: the 8 rows an ldmatrix phase
//           reads sit in 8 different segments = all 32 banks, and cp.async's 16-byte writes of
//           one warp cover 4 whole rows: both conflict-free).
//   codes:  [BN / 16 row tiles][32 lanes] uint4 (a straight copy of the chunk; a warp reads 512
//           contiguous bytes: conflict-free).
//   params: [BN / 16 row tiles][P slots][8 row pairs] uint2, P = 4 when group < 64 (slot j =
//           the group of k-tile 4c + j) else 1 (the group of the chunk); 8 lanes read 64
//           contiguous bytes, 4 lanes per address (broadcast).
// Out-of-range data is zero-filled by cp.async (src-size 0), never read from outside the
// buffers: tokens >= m and inputs >= k of x (so padded k-tiles multiply by 0), row tiles past
// the end. Rows >= n and tokens >= m are not stored.
//
// Pipeline (the usual multistage loop): the prologue commits STAGES - 1 groups (chunks
// 0 .. STAGES - 2); iteration c waits until at most STAGES - 2 groups are pending (so group c,
// chunk c, has landed for this thread), __syncthreads (every thread's copies of chunk c are
// visible, and every thread is done computing chunk c - 1), then issues chunk c + STAGES - 1
// into slot (c - 1) % STAGES — the slot computed in iteration c - 1 — and commits (an empty
// group past the end, to keep the count), then computes chunk c from slot c % STAGES.
#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <optional>

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
using namespace w4a16_pipeline;

template <int TT, int RT, int WT, int WR, int STAGES, bool SMALL_GROUP>
struct Tile {
  static constexpr int kBM = WT * TT * 8;   // tokens per block
  static constexpr int kBN = WR * RT * 16;  // output rows per block
  static constexpr int kRowTiles = kBN / 16;
  static constexpr int kThreads = WT * WR * 32;
  static constexpr int kParamSlots = SMALL_GROUP ? 4 : 1;
  static constexpr int kXBytes = kBM * 128;               // x: [kBM][64] fp16
  static constexpr int kCodeBytes = kRowTiles * 32 * 16;  // codes: [kRowTiles][32] uint4
  static constexpr int kParamBytes = kRowTiles * kParamSlots * 64;  // [kRowTiles][P][8] uint2
  static constexpr int kStageBytes = kXBytes + kCodeBytes + kParamBytes;
  static constexpr int kPipeBytes = STAGES * kStageBytes;
  static constexpr int kReduceBytes = kBM * kBN * 4;  // split-K partial sums: [RT TT 4][threads] f32
  static constexpr int kSmemBytes = kPipeBytes > kReduceBytes ? kPipeBytes : kReduceBytes;
  static_assert(TT % 2 == 0, "ldmatrix.x4 loads two token tiles at a time");
  static_assert(STAGES >= 2, "cp.async pipeline needs two stages or more");
  static_assert(kXBytes % 16 == 0 && kCodeBytes % 16 == 0 && kParamBytes % 16 == 0, "alignment");
};

// codes: [tiles_n][chunks][32] uint4, params: [tiles_n][k / group][8] uint2 (w4a16.h);
// x: [m, k] fp16 (16-byte aligned rows: k % 16 == 0 and x 16-byte aligned), bias: [n] or null,
// y: [m, n]. gl2 = log2(group / 16). Grid: (ceil(tiles_n / kRowTiles), ceil(m / kBM), splits).
// Split-K (gridDim.z = splits > 1, sm_90 only): the splits of one output tile form a thread
// block cluster (1, 1, splits); split z runs chunks [z cps, (z + 1) cps), cps = ceil(chunks /
// splits) (a split may get none), writes its partial sums to its own shared memory, and after
// a cluster barrier each split sums, in rank order 0 .. splits - 1 (deterministic), the
// partials of all splits for its share of the token tiles ((r TT + t) % splits == z) through
// distributed shared memory and stores them. A second cluster barrier keeps every block's
// shared memory alive until the others have read it. No workspace, no atomics, no locks.
template <int TT, int RT, int WT, int WR, int STAGES, bool SMALL_GROUP>
__global__ void __launch_bounds__(WT * WR * 32)
    w4a16_tiled_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                       const __half* __restrict__ x, const __half* __restrict__ bias,
                       __half* __restrict__ y, int n, int k, int m, int gl2) {
  using T = Tile<TT, RT, WT, WR, STAGES, SMALL_GROUP>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wr = warp % WR, wt = warp / WR;
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64, ktiles = k / 16;
  const int ngroups = ktiles >> gl2;
  const int tn0 = int(blockIdx.x) * T::kRowTiles;  // the block's first row tile
  const int tok0 = int(blockIdx.y) * T::kBM;       // the block's first token
  const int splits = int(gridDim.z), split = int(blockIdx.z);
  const int per_split = (chunks + splits - 1) / splits;
  const int c_begin = min(chunks, split * per_split), c_end = min(chunks, c_begin + per_split);

  // Issues the cp.async copies of chunk c's x (inputs 64c .. 64c + 63) into stage slot `slot`.
  auto load_x_stage = [&](int slot, int c) {
    unsigned char* st = smem + slot * T::kStageBytes;
    __half* xs = reinterpret_cast<__half*>(st);
#pragma unroll
    for (int it = 0; it < cdiv(T::kBM * 8, T::kThreads); ++it) {
      const int i = tid + it * T::kThreads;
      if (T::kBM * 8 % T::kThreads != 0 && i >= T::kBM * 8) break;
      const int r = i >> 3, g = i & 7;  // token row r of the tile, 16-byte segment g
      const int tok = tok0 + r, col = c * 64 + g * 8;
      const bool ok = tok < m && col < k;  // k % 16 == 0: a segment is all in or all out
      const __half* src = ok ? x + size_t(tok) * size_t(k) + col : x;
      cp_async16(xs + r * 64 + ((g ^ (r & 7)) * 8), src, ok);
    }
  };
  // The same for chunk c's weights (codes and params): never written by another kernel.
  auto load_w_stage = [&](int slot, int c) {
    unsigned char* st = smem + slot * T::kStageBytes;
    uint4* cs = reinterpret_cast<uint4*>(st + T::kXBytes);
#pragma unroll
    for (int it = 0; it < cdiv(T::kRowTiles * 32, T::kThreads); ++it) {
      const int i = tid + it * T::kThreads;
      if (T::kRowTiles * 32 % T::kThreads != 0 && i >= T::kRowTiles * 32) break;
      const int tn = tn0 + (i >> 5);
      const bool ok = tn < tiles_n;
      const uint4* src = ok ? codes + (size_t(tn) * size_t(chunks) + size_t(c)) * 32 + (i & 31) : codes;
      cp_async16(cs + i, src, ok);
    }
    uint4* ps = reinterpret_cast<uint4*>(st + T::kXBytes + T::kCodeBytes);
#pragma unroll
    for (int it = 0; it < cdiv(T::kRowTiles * T::kParamSlots * 4, T::kThreads); ++it) {
      const int i = tid + it * T::kThreads;
      if (T::kRowTiles * T::kParamSlots * 4 % T::kThreads != 0 && i >= T::kRowTiles * T::kParamSlots * 4) break;
      // i = (row tile * P + slot j) * 4 + quarter q of the 64-byte entry (two row pairs each).
      const int q = i & 3, j = (i >> 2) % T::kParamSlots, rt = (i >> 2) / T::kParamSlots;
      const int tn = tn0 + rt;
      // Padded k-tiles of the last chunk take the last group (in bounds; their x is zero).
      const int kt = SMALL_GROUP ? min(c * 4 + j, ktiles - 1) : c * 4;
      const bool ok = tn < tiles_n;
      const uint4* src =
          ok ? reinterpret_cast<const uint4*>(params + (size_t(tn) * size_t(ngroups) + size_t(kt >> gl2)) * 8) + q
             : reinterpret_cast<const uint4*>(params);
      cp_async16(ps + i, src, ok);
    }
  };
  auto load_stage = [&](int slot, int c) {
    load_x_stage(slot, c);
    load_w_stage(slot, c);
  };

  float acc[RT][TT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int t = 0; t < TT; ++t) acc[r][t][0] = acc[r][t][1] = acc[r][t][2] = acc[r][t][3] = 0.0f;

  // Multiplies the chunk in stage slot `slot` into acc.
  auto compute_stage = [&](int slot) {
    const unsigned char* st = smem + slot * T::kStageBytes;
    const __half* xs = reinterpret_cast<const __half*>(st);
    const uint4* cs = reinterpret_cast<const uint4*>(st + T::kXBytes);
    const uint2* ps = reinterpret_cast<const uint2*>(st + T::kXBytes + T::kCodeBytes);
    uint4 w[RT];
    GroupParams gp[RT];
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      w[r] = cs[(wr * RT + r) * 32 + lane];
      if (!SMALL_GROUP) gp[r] = expand(ps[(wr * RT + r) * 8 + lane / 4]);
    }
    // ldmatrix addresses: lane 8i + q gives row q of matrix i; matrices {tokens 0-7, k 0-7},
    // {0-7, 8-15}, {8-15, 0-7}, {8-15, 8-15} of a 16-token pair of tiles = b0, b1 of token tile
    // 2p and b0, b1 of tile 2p + 1 (row = token, so a lane holds token lane/4, inputs 2(lane%4) + {0, 1}).
    const int mi = lane >> 3, q = lane & 7;
#pragma unroll
    for (int j = 0; j < 4; ++j) {  // k-tile j of the chunk: halfs 16j .. 16j + 15 = segments 2j, 2j + 1
      uint32_t b[TT][2];
#pragma unroll
      for (int p = 0; p < TT / 2; ++p) {
        const int row = wt * TT * 8 + p * 16 + (mi >> 1) * 8 + q;  // token row in the tile; row & 7 == q
        const int g = j * 2 + (mi & 1);
        uint32_t r4[4];
        ldmatrix_x4(r4, xs + row * 64 + ((g ^ q) * 8));
        b[2 * p][0] = r4[0];
        b[2 * p][1] = r4[1];
        b[2 * p + 1][0] = r4[2];
        b[2 * p + 1][1] = r4[3];
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        if (SMALL_GROUP) gp[r] = expand(ps[((wr * RT + r) * 4 + j) * 8 + lane / 4]);
        const uint32_t word = j == 0 ? w[r].x : j == 1 ? w[r].y : j == 2 ? w[r].z : w[r].w;
        uint32_t a[4];
        dequant(word, gp[r], a);
#pragma unroll
        for (int t = 0; t < TT; ++t) mma_16816(acc[r][t], a, b[t][0], b[t][1]);
      }
    }
  };

  // Prologue. Programmatic dependent launch (pdl.h): the weights of the first STAGES - 1 chunks
  // are requested before pdl_wait() (they overlap the previous kernel's tail), x after it. The
  // weight copies join the first commit group (cp.async groups are "everything issued since the
  // last commit"), so waiting for group 0 waits for them too: group s still holds everything
  // chunk c_begin + s needs, as before.
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s)
    if (c_begin + s < c_end) load_w_stage(s, c_begin + s);
  pdl_wait();  // x (and y) belong to earlier kernels
  pdl_trigger();
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (c_begin + s < c_end) load_x_stage(s, c_begin + s);
    cp_async_commit();
  }
  int slot = 0;  // = (c - c_begin) % STAGES
  for (int c = c_begin; c < c_end; ++c) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int next = c + STAGES - 1;  // goes to slot (c - c_begin - 1) % STAGES, computed last iteration
    if (next < c_end) load_stage(slot == 0 ? STAGES - 1 : slot - 1, next);
    cp_async_commit();
    compute_stage(slot);
    slot = slot + 1 == STAGES ? 0 : slot + 1;
  }
  cp_async_wait<0>();  // only empty groups can be pending here; leave nothing in flight

  if (splits > 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __syncthreads();  // every warp of this block is done reading the pipeline's shared memory
    // part: [RT * TT * 4][kThreads] f32, this thread's partial sums (a warp writes 128 contiguous bytes).
    float* part = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int r = 0; r < RT; ++r)
#pragma unroll
      for (int t = 0; t < TT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) part[((r * TT + t) * 4 + e) * T::kThreads + tid] = acc[r][t][e];
    cluster.sync();  // every split's partials are written and visible cluster-wide
#pragma unroll
    for (int r = 0; r < RT; ++r)
#pragma unroll
      for (int t = 0; t < TT; ++t) {
        if ((r * TT + t) % splits != split) continue;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float sum = 0.0f;
          for (int z = 0; z < splits; ++z)  // rank z of the cluster is split z (cluster dims (1, 1, splits))
            sum += cluster.map_shared_rank(part, z)[((r * TT + t) * 4 + e) * T::kThreads + tid];
          acc[r][t][e] = sum;
        }
      }
    cluster.sync();  // no block exits (its shared memory gone) while another still reads it
#else
    __trap();  // the host launches splits > 1 only for code built for sm_90 (w4a16_split_k_available)
#endif
  }

  // C fragment: acc[r][t][e] is row (lane/4 + 8 (e >= 2)) of row tile r, token 2 (lane%4) + (e & 1)
  // of token tile t.
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const int tn = tn0 + wr * RT + r;
    if (tn >= tiles_n) continue;
#pragma unroll
    for (int t = 0; t < TT; ++t) {
      if ((r * TT + t) % splits != split) continue;  // another split stores it (splits == 1: none)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int tok = tok0 + wt * TT * 8 + t * 8 + (lane % 4) * 2 + (e & 1);
        const int row = tn * 16 + lane / 4 + (e >= 2 ? 8 : 0);
        if (tok < m && row < n) {
          float v = acc[r][t][e];
          if (bias) v += __half2float(bias[row]);
          y[size_t(tok) * size_t(n) + row] = __float2half(v);
        }
      }
    }
  }
}

// Raises the kernel's dynamic shared-memory limit to what it may use (the split-K partials
// included) within the device's opt-in maximum (optin: bytes per block). Every pipeline fits
// sm_80 and newer (at most 84 KB; sm_86/89 allow 99 KB); the split-K partials of the 128 x 256
// tile (128 KB) fit only sm_80/90-class devices, and split-K runs on sm_90 only.
template <int TT, int RT, int WT, int WR, int STAGES, bool SMALL_GROUP>
void set_smem_limit(int optin) {
  using T = Tile<TT, RT, WT, WR, STAGES, SMALL_GROUP>;
  AWQ_CUDA_CHECK(cudaFuncSetAttribute(w4a16_tiled_kernel<TT, RT, WT, WR, STAGES, SMALL_GROUP>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      std::min(T::kSmemBytes, std::max(optin, T::kPipeBytes))));
}

template <int TT, int RT, int WT, int WR, int STAGES>
void prepare_tiled(int optin) {
  set_smem_limit<TT, RT, WT, WR, STAGES, true>(optin);
  set_smem_limit<TT, RT, WT, WR, STAGES, false>(optin);
}

// Bytes of shared memory a launch of the tiled kernel needs: with split-K, the partial sums too.
template <int TT, int RT, int WT, int WR, int STAGES>
int split_smem_bytes() {
  return std::max(Tile<TT, RT, WT, WR, STAGES, true>::kSmemBytes, Tile<TT, RT, WT, WR, STAGES, false>::kSmemBytes);
}

// Writes the __CUDA_ARCH__ this file's device code was compiled for as it runs on this device
// (e.g. 800 when only sm_80 PTX was built and is JIT-compiled for an H100): split-K needs the
// cluster code of an sm_90 build, which the tiled kernel compiles out below 900.
__global__ void arch_probe_kernel(int* arch) {
#ifdef __CUDA_ARCH__
  *arch = __CUDA_ARCH__;
#endif
}

template <int TT, int RT, int WT, int WR, int STAGES, bool SMALL_GROUP>
void launch_tiled_kernel(const dim3 grid, int splits, const uint4* codes, const uint2* params,
                         const __half* x, const __half* bias, __half* y, int n, int k, int m,
                         int gl2, cudaStream_t s) {
  using T = Tile<TT, RT, WT, WR, STAGES, SMALL_GROUP>;
  auto* kernel = w4a16_tiled_kernel<TT, RT, WT, WR, STAGES, SMALL_GROUP>;
  // Split-K launches (thread block clusters) go without the PDL attribute: with it, decode at
  // batch 16-32 on an H100 ran 11-16 % slower than with PDL off (a dependent grid's blocks parked
  // on the SMs seem to stall the co-scheduling a cluster needs); unsplit tiled launches keep it
  // (+3 % there). Measured: docs/results/gpu.md, "PDL and split-K clusters".
  std::optional<PdlScope> no_pdl;
  if (splits > 1) no_pdl.emplace(PdlMode::Off);
  if (splits == 1) {
    launch_kernel({grid, dim3(T::kThreads), size_t(T::kPipeBytes), s}, kernel, codes, params, x, bias, y, n, k, m, gl2);
    return;
  }
  const dim3 cluster_grid(grid.x, grid.y, unsigned(splits));  // split z of a tile: cluster rank z
  launch_kernel({cluster_grid, dim3(T::kThreads), size_t(T::kSmemBytes), s, unsigned(splits)}, kernel, codes,
                params, x, bias, y, n, k, m, gl2);
}

template <int TT, int RT, int WT, int WR, int STAGES>
void launch_tiled(int splits, const uint4* codes, const uint2* params, const __half* x,
                  const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  using T = Tile<TT, RT, WT, WR, STAGES, false>;
  const int tiles_n = (n + 15) / 16;
  const dim3 grid(unsigned((tiles_n + T::kRowTiles - 1) / T::kRowTiles), unsigned((m + T::kBM - 1) / T::kBM));
  if (gl2 < 2)
    launch_tiled_kernel<TT, RT, WT, WR, STAGES, true>(grid, splits, codes, params, x, bias, y, n, k, m, gl2, s);
  else
    launch_tiled_kernel<TT, RT, WT, WR, STAGES, false>(grid, splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

using TiledLaunchFn = void (*)(int, const uint4*, const uint2*, const __half*, const __half*, __half*,
                               int, int, int, int, cudaStream_t);
struct TiledEntry {
  W4A16TiledConfig cfg;
  TiledLaunchFn launch;
  void (*prepare)(int optin);
  int (*split_bytes)();
};
#define AWQ_W4A16_TILED(TT, RT, WT, WR, ST)                                                      \
  TiledEntry {                                                                                   \
    W4A16TiledConfig{TT, RT, WT, WR, ST, WT * TT * 8, WR * RT * 16, WT * WR * 32, false, false},        \
        &launch_tiled<TT, RT, WT, WR, ST>, &prepare_tiled<TT, RT, WT, WR, ST>,                   \
        &split_smem_bytes<TT, RT, WT, WR, ST>                                                    \
  }
// (token tiles per warp TT, row tiles per warp RT, warps along tokens WT, along rows WR, stages)
const TiledEntry kTiled[] = {
    AWQ_W4A16_TILED(4, 1, 1, 4, 4),  // 0: 32 tokens x 64 rows, 4 warps
    AWQ_W4A16_TILED(4, 2, 1, 4, 4),  // 1: 32 x 128, 4 warps
    AWQ_W4A16_TILED(8, 1, 1, 4, 4),  // 2: 64 x 64, 4 warps
    AWQ_W4A16_TILED(8, 2, 1, 4, 4),  // 3: 64 x 128, 4 warps
    AWQ_W4A16_TILED(8, 1, 1, 8, 4),  // 4: 64 x 128, 8 warps
    AWQ_W4A16_TILED(8, 2, 2, 4, 3),  // 5: 128 x 128, 8 warps
    AWQ_W4A16_TILED(8, 4, 2, 2, 3),  // 6: 128 x 128, 4 warps
    AWQ_W4A16_TILED(2, 2, 1, 4, 4),  // 7: 16 x 128, 4 warps (m = 9 .. 16: decode batches)
    AWQ_W4A16_TILED(2, 1, 1, 4, 4),  // 8: 16 x 64, 4 warps
    AWQ_W4A16_TILED(8, 4, 2, 4, 3),  // 9: 128 x 256, 8 warps (swept; not picked until measured)
    AWQ_W4A16_TILED(2, 2, 1, 4, 8),  // 10: 16 x 128, 8 stages: more bytes in flight for decode (swept)
};
#undef AWQ_W4A16_TILED
constexpr int kNumTiled = int(sizeof(kTiled) / sizeof(kTiled[0]));

}  // namespace

int w4a16_sm_count() {
  static const int count = [] {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 132;
    return sms;
  }();
  return count;
}

namespace {

int blocks(const W4A16TiledConfig& c, int64_t m, int64_t n) {
  const int64_t row_blocks = ((n + 15) / 16 + c.bn / 16 - 1) / (c.bn / 16);
  return int(row_blocks * ((m + c.bm - 1) / c.bm));
}

// The prefill rules (m = 129..512, and m = 65..128 on n >= 8192) of the wgmma GEMM with the TMA
// kernels on: the best or within 3 % of the best configuration of the H100 wsweep of the five
// Llama-2-7B shapes at m = 64..512 (docs/results/gpu-logs/h100_gpu7_wsweep_before.log; µs,
// median of 20; "was" = the dispatch before these rules). Tiles (tokens x rows): c64 = 64 x 64
// cp.async with two chunks per slot, c128 = 64 x 128 likewise, t128 = 128 x 128 TMA (2 blocks per
// SM), t256 = 256 x 128 TMA with a producer warpgroup (1 block per SM). These kernels run in
// whole waves: a grid just past a multiple of what the SMs hold costs a wave more, so the wide
// layers choose by grid size, and the narrow ones (n < 8192: o_proj, down_proj) by m and k.
//  - wide (n >= 8192), m = 65..128 (AWQ_W4A16_WIDE_MID; before session 28: n >= 16384 at
//    m = 97..128 only, t128 unsplit, from the 7B's gate+up 58.6 was 64.4): t128 split 2 where
//    that fits 2 blocks per SM, else unsplit where that does, else 128 x 192 unsplit where t128
//    would be <= 3 blocks per SM. In practice the layers the wave rule (which comes first) does not
//    take: session 28's H200 wsweeps (h200_s28_call3_*, µs at m = 80 / 128, the pick before ->
//    this): Llama-3-8B's gate+up 28672 x 4096 94.1 / 58.1 -> 57.7 / 58.1 (t128), a 13B's qkv
//    15360 x 5120 56.9 / 58.9 -> 41.9 / 40.7 (t128 split 2), Qwen2.5-7B's gate+up 37888 x 3584
//    96.9 / 87.9 -> 64.7 / 71.1 (128 x 192: 296 t128 blocks are 2.2 per SM).
//  - narrow, m <= 192: c64 split 2 (o_proj 22.4 / 22.7 was 24.7 / 24.4 at m = 160 / 192;
//    down_proj 50.0 / 50.7 was 60.4 / 61.6);
//    m <= 256: k > 8192 c128 split 2 (down_proj 57.7 was 61.9), else c64 (o_proj 24.5, as was);
//    (branch gpu10 measured the cp.async 128 x 64 tile split 2 at 23.7-24.2 there with its pushed
//    reduction, but 33-35 once that reduction writes its own region first, for racecheck: not taken);
//    m <= 384: c64 (o_proj 33.1 / 33.3 was 38.9 / 37.8 at m = 320 / 384; down_proj 86.4 /
//    86.5 was 89.4 / 89.4);
//    m <= 512: t256 split 2 while its clusters fit one wave (o_proj / down_proj at m = 512: 128
//    blocks, 31.2 / 68.2 was c128's 39.4 / stream-K's 84.0 in session 23's sweep, with the
//    rewritten reduction), else k > 8192 t128 split 2 (down_proj 91.2 was 130.0), else c128
//    (o_proj 38.1 was 54.1).
//  - wide, m <= 192: c128 while its grid fits 2 blocks per SM (gate or up: 258 blocks, 39.6 /
//    39.3 was t256's 45.3 / 46.7), else t256 while it is one wave (qkv: 96 blocks, 46.3 / 46.8
//    against c128's 60.7 / 61.1), else c128 (gate+up: 79.2 / 78.9 was t256's 91.8 / 95.9, 2 waves);
//    m <= 256: t256 (as was: 48.0, 48.0, 98.4), split 2 where that is one wave (session 24:
//    n = 8192, a 70B's o_proj / down_proj, 51.3 / 156.6 was 89.1 / 365.5);
//    m <= 384: t128 while its grid fits 2 blocks per SM (gate or up: 258 blocks, 59.1 / 60.7
//    was 93.8 / 92.5), else c128 while it fits 4 per SM (qkv m = 320: 480 blocks, 77.3 was
//    96.0), else t256 while it fits 2 per SM (qkv m = 384: 95.9 as was, c128 98.4), else t128
//    (gate+up: 128.8 / 121.7 was 173.3 / 163.1; the best at m = 320, 128 x 128 cp.async, 125.2);
//    m <= 512: t256 (as was: 98.6, 99.1, 147.1; t128 within 1 % on qkv and gate or up).
// {-1, 0}: no rule here (the rules of w4a16_default_tiled apply).
// Whether the 256 x 128 TMA tile split 2 (each split >= 8 chunks of 64 inputs) is one wave.
bool t256_split2_one_wave(int64_t m, int64_t n, int64_t k, const W4A16PickContext& ctx) {
  return ctx.split_ok && (k + 63) / 64 >= 16 &&
         2 * int64_t(blocks(w4a16_tiled_config(w4a16_tma_wide_config()), m, n)) <= ctx.sms;
}

// ctx.t256_from_161 (AWQ_W4A16_T256_FROM_161): the wide layers' t256 split 2 in one wave also at
// m = 161..192 (session 28, H200 wsweeps h200_s28_call1_*, µs at m = 176 / 192, the wave rule's
// 64 x 192 before: a 70B's o_proj 8192 x 8192 48.2 / 48.6 was 52.1 / 52.3, its down_proj
// 8192 x 28672 at 192 154.1 was 183.6; at m = 160 the 64 x 192 tile was the faster, 51.2 against
// 54.2, session 27). The wave rule leaves these to this rule (wave_tile_pick).
W4A16TiledChoice prefill_wgmma_pick(int64_t m, int64_t n, int64_t k, const W4A16PickContext& ctx) {
  const int c64 = kNumTiled + 7, c128 = kNumTiled + 8, t128 = w4a16_tma_square_config(),
            t256 = w4a16_tma_wide_config();
  const int64_t chunks = (k + 63) / 64;
  const int split2 = ctx.split_ok && chunks >= 16 ? 2 : 1;
  const auto grid = [&](int cfg) { return int64_t(blocks(w4a16_tiled_config(cfg), m, n)); };
  const int64_t slots = ctx.sms;
  if (m <= 64 || (m <= 96 && !ctx.wide_mid) || m > 512) return {-1, 0};
  const bool t256_split2 = t256_split2_one_wave(m, n, k, ctx);
  if (m <= 128) {
    if (!ctx.wide_mid) return n >= 16384 ? W4A16TiledChoice{t128, 1} : W4A16TiledChoice{-1, 0};
    if (n < kW4A16TmaMinRows) return {-1, 0};
    if (grid(t128) <= 2 * slots) return {t128, split2 == 2 && 2 * grid(t128) <= 2 * slots ? 2 : 1};
    return grid(t128) <= 3 * slots ? W4A16TiledChoice{w4a16_tma_rows192_config(128), 1} : W4A16TiledChoice{-1, 0};
  }
  if (n < kW4A16TmaMinRows) {
    if (m <= 192) return {c64, split2};
    if (m <= 256) return k > 8192 ? W4A16TiledChoice{c128, split2} : W4A16TiledChoice{c64, 1};
    if (m <= 384) return {c64, 1};
    if (t256_split2) return {t256, 2};
    return k > 8192 ? W4A16TiledChoice{t128, split2} : W4A16TiledChoice{c128, 1};
  }
  if (m <= 192) {
    if (ctx.t256_from_161 && m > kW4A16TmaMinTokens && t256_split2) return {t256, 2};
    if (grid(c128) <= 2 * slots) return {c128, 1};
    return grid(t256) <= slots ? W4A16TiledChoice{t256, 1} : W4A16TiledChoice{c128, 1};
  }
  // m = 193..256: t256 split 2 where that is still one wave (n ~ 8192, a 70B's o_proj and
  // down_proj: 64 blocks unsplit; session 24, h100_s24_call4_* / call5_*: 8192 x 8192 m = 256
  // 51.3 was 89.1 us, 8192 x 28672 156.6 was 365.5; the 7B's wide layers have 86-172 blocks).
  if (m <= 256) return {t256, t256_split2 ? 2 : 1};
  if (m <= 384) {
    if (grid(t128) <= 2 * slots) return {t128, 1};
    if (grid(c128) <= 4 * slots) return {c128, 1};
    return grid(t256) <= 2 * slots ? W4A16TiledChoice{t256, 1} : W4A16TiledChoice{t128, 1};
  }
  return {t256, 1};
}

// The stream-K rules (with the TMA kernels and AWQ_W4A16_STREAM_K on): where the stream-K twins
// of the TMA tiles (sk256 = 256 x 128, sk128 = 128 x 128; w4a16_wgmma_ws.cu) measured faster
// than the prefill pick `c` in both of branch gpu9's H100 wsweeps with the final fixup
// (docs/results/gpu-logs/h100_gpu9_wsweep{2,3}.log; µs, medians of 20, call 2 / call 3), they
// replace it; elsewhere `c` stays:
//  - wide layers (n >= 8192) where `c` is the 256 x 128 tile t256 (one block per SM, whole
//    waves): m = 385..512 sk256 while t256's grid is under 1.4 waves (gate or up: 172 blocks,
//    88.4 / 92.7 was 107.9 / 99.2; qkv, 192 blocks, and gate+up, 344, stay: sk256 92.9 / 99.1
//    against 103.6 / 96.4, 152.0 / 163.6 against 160.7 / 148.5); m = 257..384 sk128 (qkv at
//    384: 86.1 / 90.7 was 101.4 / 96.1); m = 193..256 on n >= 16384 sk256 (gate+up at 256:
//    88.5 / 93.2 was 107.4 / 99.2; qkv and gate or up stay on t256: sk256 55.1 / 57.4 and
//    51.5 / 53.9 against 51.1 / 47.6 and 52.4 / 48.6).
//  - narrow layers (n < 8192) with k > 8192 (down_proj): m = 193..256 sk256 (52.1 / 53.3 was
//    56.9 / 58.4), 257..384 sk128 (at 384: 78.2 / 85.6 was 86.9 / 88.8; at 320, call 3: 83.2
//    was 87.4), 385..512 sk256 (at 512: 81.4 / 86.7 was >= 98.9 / 95.8) where the prefill
//    pick is not t256 split 2 (session 23: that one is faster still, see below).
//  - o_proj (n, k < 8192), m <= 192 and m > 512: no rule (the cp.async tiles are faster at
//    m <= 192 and on o_proj; m > 512 was not measured); nor the narrow layers' t256 split 2 at
//    m = 385..512 (prefill_wgmma_pick: down_proj at 512 68.2 against sk256's 84.0, session 23).
W4A16TiledChoice stream_k_pick(int64_t m, int64_t n, int64_t k, int sms, W4A16TiledChoice c) {
  const W4A16TiledChoice sk256{w4a16_tma_wide_sk_config(), 1}, sk128{w4a16_tma_square_sk_config(), 1};
  if (m <= 192 || m > 512) return c;
  if (n >= kW4A16TmaMinRows) {
    if (c.config != w4a16_tma_wide_config()) return c;
    if (m > 384) return blocks(w4a16_tiled_config(c.config), m, n) * 10 < int64_t(sms) * 14 ? sk256 : c;
    if (m > 256) return sk128;
    return n >= 16384 ? sk256 : c;
  }
  if (k <= 8192 || (m > 384 && c.config == w4a16_tma_wide_config() && c.splits > 1)) return c;
  return m > 384 || m <= 256 ? sk256 : sk128;
}

// The wave rule (with the TMA kernels and AWQ_W4A16_WAVE_TILES on), m = 33..512 (m = 65..96 with
// AWQ_W4A16_WAVE_MID on, else 33..64 and 97..512), before the prefill rules: the 192-row TMA
// tiles (one block per SM, w4a16_wgmma_ws.cu) where their grid, split or not, fills whole waves
// of the SMs to >= 85 %. In order:
//  - m <= 64 (one 64-token block): 64 x 192 unsplit, else split 2, in one wave; else, on long
//    layers (k > 8192, >= 32 chunks), 64 x 192 split 4 where its grid is 60-90 % of a wave.
//  - m <= 64, after those two: the L2 rule (AWQ_W4A16_L2_SPLIT on): 64 x 192 with split-K
//    through L2 (no cluster; w4a16_wgmma_ws.cu) at the most splits, 3..8, whose grid is one
//    wave, where that fills it to >= 85 % and each split keeps >= 16 chunks of 64 inputs.
//  - m = 65..512: 128 x 192 split 2 in one wave, >= 80 % of it (its tokens >= 75 % of its token
//    blocks, or one block; 80: a 13B's n = 5120 layers, 27 row blocks, at m = 256: 108 blocks, 82 %); 64 x 192
//    unsplit, else split 2, in one wave; the L2 rule with 128 x 192 (tokens >= 75 %); on long
//    layers 128 x 192 split 4 at 60-90 % of a wave, on the others (>= 32 chunks) at 80-90 %;
//    else 128 x 192 unsplit in one wave, or in two where the tokens also fill >= 75 % of them
//    (token blocks counted by the tokens they hold: a second wave of 128-token tiles with 32
//    tokens each is mostly padding, which the smaller tiles of the rules after avoid).
//  - not the layers of n >= kW4A16TmaMinRows at m = 161..192 where the 256 x 128 tile split 2 is
//    one wave (AWQ_W4A16_T256_FROM_161: the prefill rule takes those).
// m = 65..96 (session 28, H200 wsweeps h200_s28_call1_*, µs at m = 66 / 80 / 96, the cp.async
// 64 x 64 tile split 2 before): down_proj 4096 x 11008 128 x 192 L2 split 6 25.1-25.4 was
// 31.4-33.8, Qwen2-7B's 3584 x 18944 34.4-34.6 was 50.9-54.6; a 13B's o_proj 5120 x 5120 128 x 192
// split 4 19.4-19.7 was 22.5-22.6, its down_proj 5120 x 13824 35.4-36.0 was 53.0-53.6; the 7B's
// and Qwen2-7B's o_proj keep the 64 x 64 tile (no rule here applies; it was the best or within
// 4 %).
// Why: these kernels run one tile per SM at a time, so a grid's time goes by its waves; at the 7B
// shapes the 128- and 256-row tiles leave a wave a third empty (qkv at m = 256: 96 tiles of
// 256 x 128 on 132 SMs) or spill into a second one, where a 192-row tile gives 116-132 tiles a
// wave. Split-K fills the wave where the tiles alone do not (o_proj / down_proj have 22 row
// blocks of 192): its cluster reduction cost 11-14 us on these tiles until session 23 rewrote
// it (w4a16_wgmma_device.cuh), and 4-5 us since (o_proj m = 128: split 4 17.1 against 12.4
// without any reduction, a timing build).
// From the H100 wsweeps of the five 7B shapes (µs, medians; "was" = the pick before):
//  - branch gpu11 (docs/results/gpu-logs/h100_gpu11_*): qkv / gate or up at m = 128 64 x 192
//    30.7 / 29.5 was 37.2 / 35.0; gate+up m = 128 128 x 192 42.2 was 58.9; m = 192 qkv / gate or up
//    128 x 192 40.2 / 39.7 was 46.5 / 41.0, o_proj / down_proj 64 x 192 split 2 20.2 / 41.5 was
//    21.4 / 48.9; m = 256 qkv / gate or up / gate+up 128 x 192 42.6 / 41.3 / 87.6 was 47.8 /
//    47.3 / 92.0; m = 512 qkv / gate or up 128 x 192 (two waves) 85.4 / 87.8 was 95.5 / 91.0.
//  - session 23, the new reduction (docs/results/gpu-logs/h100_s23_call3_*): m = 64 qkv / gate or
//    up 64 x 192 split 2 20.1 / 19.9 was 20.8 / 20.6, gate+up 64 x 192 30.0 was 37.4, down_proj
//    64 x 192 split 4 24.0 was 25.9; m = 128 qkv / gate or up 128 x 192 split 2 27.0 / 26.9 was
//    29.7 / 29.4, down_proj 128 x 192 split 4 31.9 was 35.4; m = 384 o_proj / down_proj
//    128 x 192 split 2 25.4 / 56.4 was 28.0 / 70.3.
// Where it does not apply, the 192-row tiles measured slower than the picks there: o_proj at
// m = 64 / 128 / 256 (the cp.async 64 x 64 tile: 12.6 / 15.9 / 24.9 against 13.0 / 17.1 / 24.6 at
// best), down_proj at 256, qkv / gate or up / gate+up at 384 (e.g. gate or up: 59.7 against
// 77.9), gate+up and down_proj at 512, and gate+up at m = 160 (54 % of two waves' tokens).
// Clusters of one-block-per-SM tiles: on the H100 clusters of 2 fill all 132 SMs, of 3 only
// 117, of 4 120, of 6 102 (bench/cuda_cluster/cluster_occupancy.cu, docs/results/gpu.md): so
// splits of 2, and of 4 only on grids of <= 90 % of a wave; the L2 rule's splits need no
// cluster. Session 24 (docs/results/gpu-logs/h100_s24_call2_*; µs, best of two medians of 20):
// down_proj m = 64 64 x 192 L2 split 6 19.4 was 64 x 192 split 4 22.3; m = 128 128 x 192 L2
// split 6 26.5 was split 4 29.0; m = 256 128 x 192 L2 split 3 40.9 was stream-K 51.0; o_proj
// m = 256 L2 split 3 21.5 was 64 x 64 23.6; the narrow layers of other models (call 4, µs):
// Llama-3-8B down_proj (4096 x 14336) at m = 64 / 128 / 256 22.6 / 31.8 / 49.9, Qwen2-7B's
// (3584 x 18944) 26.7 / 36.3 / 59.6, each the best of the sweep; a 70B's o_proj (8192 x 8192, 43
// row blocks: 64 x 192 split 3 at m = 64, 128 x 192 split 3 at 128) 24.1 / 33.5, the best; a
// 13B's n = 5120 (27 row blocks) splits 4 at 60-90 % of a wave instead. The 128 x 192 split 2
// above at 80 %: a 13B's o_proj / down_proj at m = 256 27.5 / 61.4 was 39.6 / 76.2 (calls 4, 5).
// Not taken (short splits): o_proj m = 64 L2 split 6
// 13.1 against 11.4, m = 128 split 6 17.2 against 14.4. The L2 partials cost ~3 us there (a
// timing build without their stores and loads: o_proj m = 256 18.5).
// {-1, 0}: no pick here.
W4A16TiledChoice wave_tile_pick(int64_t m, int64_t n, int64_t k, const W4A16PickContext& ctx) {
  if (m <= 32 || (m > 64 && m <= 96 && !ctx.wave_mid) || m > 512) return {-1, 0};
  if (ctx.t256_from_161 && m > kW4A16TmaMinTokens && m <= 192 && n >= kW4A16TmaMinRows &&
      t256_split2_one_wave(m, n, k, ctx))
    return {-1, 0};  // the prefill rule's 256 x 128 split 2 (prefill_wgmma_pick)
  const int sms = ctx.sms;
  const bool split_ok = ctx.split_ok;
  const int r64 = w4a16_tma_rows192_config(64), r128 = w4a16_tma_rows192_config(128);
  const int64_t chunks = (k + 63) / 64;
  const bool split2 = split_ok && chunks >= 16, split4 = split_ok && k > 8192 && chunks >= 32;
  // Split-K through L2 (no cluster): the most splits, 3..8, whose grid is one wave, where that
  // fills it and leaves each split >= 16 chunks; 0 where none does.
  const auto l2_splits = [&](int64_t grid) {
    const int64_t s = std::min<int64_t>(8, grid > 0 ? sms / grid : 0);
    return ctx.l2_split && split_ok && s >= 3 && grid * s * 100 >= 85 * int64_t(sms) && chunks >= 16 * s ? int(s) : 0;
  };
  const auto waves_of = [&](int64_t grid) { return (grid + sms - 1) / sms; };
  const auto fills = [&](int64_t grid, int max_waves, int percent = 85) {
    return waves_of(grid) <= max_waves && grid * 100 >= percent * waves_of(grid) * int64_t(sms);
  };
  // 60-90 % of one wave: clusters of 4 fit (see above) and fill most of it.
  const auto fits4 = [&](int64_t grid) { return grid * 10 >= 6 * int64_t(sms) && grid * 10 <= 9 * int64_t(sms); };
  const int64_t g64 = blocks(w4a16_tiled_config(r64), m, n);
  if (m <= 64) {
    if (fills(g64, 1)) return {r64, 1};
    if (split2 && fills(2 * g64, 1)) return {r64, 2};
    if (const int s = l2_splits(g64)) return {w4a16_tma_rows192_l2_config(64), s};
    if (split4 && fits4(4 * g64)) return {r64, 4};
    return {-1, 0};
  }
  const W4A16TiledConfig c = w4a16_tiled_config(r128);
  const int64_t token_blocks = (m + c.bm - 1) / c.bm, g128 = blocks(c, m, n), row_blocks = g128 / token_blocks;
  // >= 75 % of its token blocks, or one block (m = 65..128: the 64-token tiles would cover the
  // same 128 tokens in two blocks, reading the weights twice).
  const bool tokens_fill = token_blocks == 1 || m * 100 >= 75 * token_blocks * c.bm;
  if (split2 && tokens_fill && fills(2 * g128, 1, 80)) return {r128, 2};
  if (fills(g64, 1)) return {r64, 1};
  if (split2 && fills(2 * g64, 1)) return {r64, 2};
  if (const int s = tokens_fill ? l2_splits(g128) : 0) return {w4a16_tma_rows192_l2_config(128), s};
  // Split 4 also on shorter layers where its grid fills >= 80 % of the wave (a 13B's o_proj,
  // n = k = 5120, 27 row blocks: 108 blocks; session 27 H200 wsweep h200_s27_call3_wsweep_5120x5120.log,
  // m = 128: 19.7 us against 23.1 for the 64 x 64 tile split 2 picked before).
  const bool split4_short = split_ok && chunks >= 32 && 4 * g128 * 100 >= 80 * int64_t(sms);
  if ((split4 || split4_short) && tokens_fill && fits4(4 * g128)) return {r128, 4};
  if (!fills(g128, 2)) return {-1, 0};
  // Two waves: row blocks x m / 128 tiles' worth of tokens >= 75 % of them.
  if (waves_of(g128) == 2 && row_blocks * m * 100 < 75 * 2 * int64_t(sms) * c.bm) return {-1, 0};
  return {r128, 1};
}

}  // namespace

int w4a16_tiled_count() { return kNumTiled + w4a16_wgmma_count(); }
W4A16TiledConfig w4a16_tiled_config(int i) {
  return i < kNumTiled ? kTiled[i].cfg : w4a16_wgmma_config(i - kNumTiled);
}

static bool split_k_ok = false;  // set once by w4a16_prepare_tiled
static int smem_optin = 0;       // the device's opt-in shared memory per block, bytes

bool w4a16_split_k_available() {
  w4a16_prepare_tiled();
  return split_k_ok;
}

// The tile and split for m tokens and n outputs, from the H200 sweep of the Llama-2-7B shapes
// (SWEEP=1 scripts/gpu-check bench; docs/results/gpu-logs/h200_sweep.log). What it showed:
// these kernels are limited by how many blocks run at once, not by the reuse a wide tile
// gives, so narrow tiles and K splits that fill the GPU 2-3 times over win.
//  - m <= 96: candidates 16 x 128 then 16 x 64 (m <= 16), 32 x 128 then 32 x 64 (m <= 32),
//    64 x 64 (m <= 96). The first whose grid, unsplit or split 2 or 4 ways, reaches 2.5 blocks
//    per SM wins at its smallest such split; else the last candidate at its largest split.
//  - m <= 256: 64 x 128 with 8 warps, split 2 while the grid is <= 2 blocks per SM; 128 x 128
//    once the grid passes 4 blocks per SM (the fused gate+up at m = 256).
//  - larger m: 128 x 128, then 64 x 128, then 64 x 64: the first with >= 3/4 of a block per SM.
// A split keeps >= 4 chunks of 64 inputs per part and its partial sums within shared memory.
W4A16TiledChoice w4a16_pick_tiled(int64_t m, int64_t n, int64_t k, const W4A16PickContext& ctx) {
  const int sms = ctx.sms;
  const int64_t chunks = (k + 63) / 64;
  const bool split_ok = ctx.split_ok;
  const auto can_split = [&](int cfg, int splits) {
    return splits == 1 || (split_ok && chunks >= 4 * splits && kTiled[cfg].split_bytes() <= ctx.smem_optin);
  };
  // m > 32 on sm_90a: the wgmma GEMM (w4a16_wgmma.cu), from its H100 sweep of the 7B shapes
  // (docs/results/gpu-logs/h100_wgmma_sweep.log): like the mma.sync tiles it wants 2-3 blocks
  // per SM, and a K split costs more the more row blocks there are. Configurations: 7 = 64 x 64
  // with two chunks per pipeline slot, 1 = 64 x 128, 3 = 128 x 128.
  //  - m <= 128 while 64 x 64 tiles give at most 4 blocks per SM: 64 x 64, the smallest split
  //    (1, 2, 4) whose grid reaches 1.6 blocks per SM (1.9 until session 24; H100 wsweeps of
  //    shapes at 1.6-1.9 blocks per SM, h100_s24_call7_summary.log, µs: Qwen2-7B's o_proj
  //    3584 x 3584 at m = 80..128 split 2 13.0-13.8 was split 4 15.7-16.0; at m = 40..64 a 13B's
  //    qkv 15360 x 5120 unsplit 28.5-30.3 was split 2 31.8-33.5, its gate or up 13824 x 5120
  //    28.6 / 29.3 was 32.0 / 32.5, Llama-3-8B's gate or up 14336 x 4096 23.5 / 23.7 was
  //    27.3 / 27.0; no 7B pick changes); and 3 splits instead of 4 where that grid is 1.4-1.7
  //    blocks per SM (AWQ_W4A16_SPLIT3; H200 sweep of session 27, h200_s27_call1_*, µs at m = 20 /
  //    33 / 48 / 64 split 4 -> 3: the 7B's o_proj, 192 blocks, 11.2 / 11.5 / 11.6 / 11.9 ->
  //    10.9 / 11.1 / 11.1 / 11.3; Qwen2-7B's qkv 4608 x 3584, 216 blocks, 10.5 / 10.7 / 10.8 /
  //    11.2 -> 10.5 / 10.6 / 10.7 / 10.9; not a 13B's o_proj 5120 x 5120, 240 blocks, 1.82 per SM,
  //    where split 3 was slower: 13.5-14.2 -> 16.3-16.9);
  //  - larger m while 64 x 64 tiles give at most 2 blocks per SM: 64 x 64, unsplit;
  //  - else, while 128 x 128 tiles give under 2.5 blocks per SM: 64 x 128, split 2 while its
  //    grid is under 2 blocks per SM;
  //  - else 128 x 128, unsplit.
  //  - first: m >= 160 (in effect m > 512: the prefill rules below take 129..512) on wide layers (n >= 8192: the fused qkv, gate or up, gate+up of a 7B) the
  //    TMA kernel's 256 x 128 tile (w4a16_wgmma_ws.cu), measured faster there than what the rules
  //    below pick (H100, docs/results/gpu-logs/h100_gpu6_*; m = 160 / 192 / 256 / 512: qkv
  //    1.28-1.37x, gate or up 1.18-1.38x, gate+up 1.09x / 1.10x / even (1.06x with PDL) / 1.31x;
  //    o_proj and down_proj, n = 4096, measured slower on it). AWQ_W4A16_TMA=0 leaves it out.
  //  - before that, m = 129..512 (and 97..128 on n >= 16384) with the TMA kernels on: the
  //    prefill rules of prefill_wgmma_pick (branch gpu7's H100 wsweep up to m = 512; each pick
  //    the best or within 3.3 % of it at every measured shape and m, 1.04-1.57x the rules before
  //    where they differ), some of them then replaced by a stream-K tile (stream_k_pick, branch
  //    gpu9; AWQ_W4A16_STREAM_K=0 leaves that out). AWQ_W4A16_TMA=0 leaves them all out.
  //  - before all of these, m = 33..64 and 97..512 with the TMA kernels on: the 192-row tiles,
  //    split or not, where the wave rule (wave_tile_pick, branch gpu11, session 23) takes them;
  //    AWQ_W4A16_WAVE_TILES=0 leaves it out.
  //  - m = 17..32 (AWQ_W4A16_WGMMA_FROM_17, on by default): the picks of m = 33, one 64-token
  //    tile as there (the same grid; a partly empty token tile costs little where the weights'
  //    stream bounds the time). H200 sweep, session 25 (docs/results/gpu-logs/h200_s25_*), µs at
  //    m = 17 / 32 before -> after: o_proj 14.0 / 14.2 -> 11.2, qkv 26.6 / 26.9 -> 19.4 / 19.1,
  //    gate or up 23.4 / 23.5 -> 18.6 / 18.9, gate+up 37.4 / 37.8 -> 28.3 / 28.7, down_proj
  //    30.8 / 31.2 -> 19.4 / 19.5.
  if (m > 16 && m <= 32 && ctx.wgmma && ctx.wgmma_from_17) m = 33;
  if (m > 32 && ctx.wgmma) {
    const bool tma = ctx.tma;
    if (tma && ctx.wave_tiles) {
      const W4A16TiledChoice c = wave_tile_pick(m, n, k, ctx);
      if (c.config >= 0) return c;
    }
    if (tma) {
      const W4A16TiledChoice c = prefill_wgmma_pick(m, n, k, ctx);
      if (c.config >= 0) return ctx.stream_k ? stream_k_pick(m, n, k, sms, c) : c;
    }
    if (m >= kW4A16TmaMinTokens && n >= kW4A16TmaMinRows && tma) return {w4a16_tma_wide_config(), 1};
    const auto wg = [&](int i) { return blocks(w4a16_wgmma_config(i), m, n); };
    const auto split = [&](int splits) { return split_ok && chunks >= 8 * splits ? splits : 1; };
    // m <= 64 (AWQ_W4A16_WIDE_MID): the 64 x 128 tile (two chunks a slot) at split 1 or 2 where
    // that grid is 1.6-2 blocks per SM, and the 64 x 64 tile up to 5 blocks per SM (4 above). Session
    // 28's H200 wsweeps (h200_s28_call3_*, µs at m = 33 / 64, the pick before -> this): Llama-3-8B's
    // gate+up 28672 x 4096 46.2 / 48.3 -> 38.2 / 40.7 (split 1, 224 blocks), a 13B's qkv 15360 x 5120
    // 28.6 / 30.0 -> 26.9 / 28.0 (split 2, 240), Qwen2.5-7B's gate+up 37888 x 3584 (the 64 x 128
    // tile at 2.2 per SM) 57.4 / 59.0 -> 47.0 / 49.2 (64 x 64, 4.5 per SM, was the 4-stage 64 x 128).
    const bool wide_mid = m <= 64 && ctx.wide_mid;
    if (wide_mid) {
      const int64_t b128 = wg(8);
      for (const int s : {1, 2})
        if (split(s) == s && b128 * s * 10 >= int64_t(sms) * 16 && b128 * s <= 2 * int64_t(sms)) return {kNumTiled + 8, s};
    }
    const int64_t b64 = wg(7);
    if (m <= 128 && b64 <= (wide_mid ? 5 : 4) * int64_t(sms)) {
      int splits = 1;
      while (splits < 4 && b64 * split(splits) * 10 < int64_t(sms) * 16) splits *= 2;
      // Split 3 instead of 4 where its grid is 1.4-1.7 blocks per SM (session 27, above).
      const int64_t grid3 = b64 * 3;
      if (splits == 4 && split(3) == 3 && grid3 * 10 >= int64_t(sms) * 14 && grid3 * 10 <= int64_t(sms) * 17 &&
          ctx.split3)
        return {kNumTiled + 7, 3};
      return {kNumTiled + 7, split(splits)};
    }
    if (b64 <= 2 * int64_t(sms)) return {kNumTiled + 7, 1};
    if (wg(3) * 2 < int64_t(sms) * 5) return {kNumTiled + 1, wg(1) < 2 * int64_t(sms) ? split(2) : 1};
    return {kNumTiled + 3, 1};
  }
  if (m <= 96) {
    static const int tiny_m[] = {7, 8}, small_m[] = {1, 0}, mid_m[] = {2};
    const int* cands = m <= 16 ? tiny_m : m <= 32 ? small_m : mid_m;
    const int count = m <= 32 ? 2 : 1;
    const int64_t target = int64_t(sms) * 5 / 2;
    for (int i = 0; i < count; ++i) {
      const int64_t b = blocks(kTiled[cands[i]].cfg, m, n);
      for (int splits = 1; splits <= 4; splits *= 2)
        if (b * splits >= target && can_split(cands[i], splits)) return {cands[i], splits};
    }
    const int last = cands[count - 1];
    for (int splits = 4; splits >= 2; splits /= 2)
      if (can_split(last, splits)) return {last, splits};
    return {last, 1};
  }
  if (m <= 256) {
    const int64_t b = blocks(kTiled[4].cfg, m, n);
    if (b > 4 * int64_t(sms)) return {5, 1};
    return {4, b <= 2 * int64_t(sms) && can_split(4, 2) ? 2 : 1};
  }
  static const int large_m[] = {5, 3, 2};
  for (int c : large_m)
    if (blocks(kTiled[c].cfg, m, n) >= sms * 3 / 4) return {c, 1};
  return {2, 1};
}

W4A16PickContext w4a16_pick_context() {
  W4A16PickContext c;
  c.split_ok = w4a16_split_k_available();  // first: it also reads smem_optin
  c.sms = w4a16_sm_count();
  c.smem_optin = smem_optin;
  c.wgmma = w4a16_wgmma_available();
  c.tma = c.wgmma && w4a16_wgmma_ws_available() && w4a16_tma_from_env();
  c.wave_tiles = w4a16_wave_tiles_from_env();
  c.l2_split = w4a16_l2_split_from_env();
  c.stream_k = w4a16_stream_k_from_env();
  c.wgmma_from_17 = w4a16_wgmma_from_17_from_env();
  c.split3 = w4a16_split3_from_env();
  c.wave_mid = w4a16_wave_mid_from_env();
  c.t256_from_161 = w4a16_t256_from_161_from_env();
  c.wide_mid = w4a16_wide_mid_from_env();
  return c;
}

W4A16TiledChoice w4a16_default_tiled(int64_t m, int64_t n, int64_t k) {
  // The device and the switches do not change within a process: read once (a bad switch value
  // throws here again at the next call, as a static whose initialization throws is retried).
  static const W4A16PickContext ctx = w4a16_pick_context();
  return w4a16_pick_tiled(m, n, k, ctx);
}

// Synchronous (a probe kernel and a copy): upload_w4a16 calls it first, outside any capture.
void w4a16_prepare_tiled() {
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0, major = 0, arch = 0;
    AWQ_CUDA_CHECK(cudaGetDevice(&dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    for (const TiledEntry& e : kTiled) e.prepare(smem_optin);
    int* d_arch = nullptr;
    AWQ_CUDA_CHECK(cudaMalloc(&d_arch, sizeof(int)));
    arch_probe_kernel<<<1, 1>>>(d_arch);
    const cudaError_t launched = cudaGetLastError();
    const cudaError_t copied = cudaMemcpy(&arch, d_arch, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d_arch);
    AWQ_CUDA_CHECK(launched);
    AWQ_CUDA_CHECK(copied);
    split_k_ok = major >= 9 && arch >= 900;  // thread block clusters + the cluster code built
  });
  w4a16_prepare_wgmma();
}

void launch_w4a16_tiled(int config, int splits, const uint4* codes, const uint2* params,
                        const __half* x, const __half* bias, __half* y, int64_t n, int64_t k,
                        int group, int64_t m, cudaStream_t s) {
  w4a16_prepare_tiled();
  if (config >= kNumTiled) {
    if (w4a16_wgmma_available()) {
      launch_w4a16_wgmma(config - kNumTiled, splits, codes, params, x, bias, y, n, k, group, m, s);
      return;
    }
    config = 5;  // no wgmma here: the 128 x 128 mma.sync tile
  }
  if (splits < 1 || splits > 8 || !w4a16_split_k_available() || kTiled[config].split_bytes() > smem_optin)
    splits = 1;
  kTiled[config].launch(splits, codes, params, x, bias, y, int(n), int(k), int(m),
                        w4a16_group_tiles_log2(group), s);
}

}  // namespace awq::cuda
