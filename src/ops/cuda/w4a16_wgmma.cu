// W4A16 GEMM on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a only) for the larger
// token counts (prefill, big decode batches). Same repacked layout (w4a16.h), same "swap AB":
// the dequantized weights are wgmma's A operand, straight from registers, and the tokens its
// B operand (N = the block's BM tokens), read by the tensor cores from shared memory.
//
// Why it fits the layout as is: a wgmma m64nNk16 with A in registers takes, in each of its four
// warps, exactly mma.sync m16n8k16's A fragment of 16 rows; so warp w of a warpgroup dequantizes
// its row tile (w4a16_device.cuh dequant, as the other kernels) and the warpgroup covers 64
// rows. The x tile in shared memory is the tiled GEMM's ([BM tokens][64 inputs] per stage,
// 128 bytes a row, segment g of row r at g ^ (r & 7)): that is wgmma's 128-byte swizzle of a
// K-major operand when the tile starts at a 1024-byte boundary, so the descriptor points at it
// directly (k-tile j of the chunk: start + 32 j bytes; 8-row groups 1024 bytes apart).
//
// Block: NWG warpgroups along the rows (BN = 64 NWG rows) sharing one x tile of BM tokens.
// Pipeline (the tiled GEMM's multistage loop, STAGES slots of CPS chunks of 64 inputs):
// iteration i waits for slot i's copies (cp.async), makes them visible to the tensor cores
// (fence.proxy.async), waits for its warpgroup's wgmma of slot i - 1, and after __syncthreads
// (every warpgroup done with slot i - 1) issues slot i + STAGES - 1's copies into that slot;
// then it dequantizes slot i's chunks into registers and issues their 4 CPS wgmma as one commit
// group, which run while the next iteration waits and issues copies, and while the block's
// other warpgroups (and the SM's other blocks) dequantize. CPS = 2 halves the barriers and
// waits per input (measured 5-15 % faster for the 64 x 64 tiles). Dequantizing the next slot
// while this slot's wgmma run would need a second register set, and ptxas then serializes
// every wgmma (C7513, seen with CUDA 13.0); through shared memory (stmatrix, A by descriptor)
// it was correct but 20-40 % slower (docs/results/gpu.md), so no.
// Split-K (gridDim.z > 1): the splits of one output tile form a cluster and reduce through
// distributed shared memory, as in the tiled GEMM (w4a16_tiled.cu).
#include <cooperative_groups.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "core/env_choice.h"
#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/w4a16_device.cuh"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_pipeline.cuh"
#include "ops/cuda/w4a16_wgmma_device.cuh"
#include "ops/cuda/w4a16_wgmma_ws.h"

namespace awq::cuda {

namespace {

using namespace w4a16_device;
using namespace pdl_device;
using namespace w4a16_pipeline;
using namespace w4a16_wgmma_device;

constexpr int round_up(int a, int b) { return (a + b - 1) / b * b; }

template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
struct WgTile {
  static constexpr int kRowTiles = NWG * 4;  // 16-row tiles: NWG * 64 output rows per block
  static constexpr int kThreads = NWG * 128;
  static constexpr int kParamSlots = SMALL_GROUP ? 4 : 1;
  static constexpr int kXBytes = BM * 128;
  static constexpr int kCodeBytes = kRowTiles * 32 * 16;
  static constexpr int kParamBytes = kRowTiles * kParamSlots * 64;
  static constexpr int kStageBytes = round_up(kXBytes + kCodeBytes + kParamBytes, 1024);  // x at 1024 B
  static constexpr int kPipeBytes = STAGES * CPS * kStageBytes;  // STAGES slots of CPS chunks
  static constexpr int kReduceBytes = split_k_reduce_bytes(BM, kThreads);
  // The split-K reduction's mbarrier (8 bytes) after both; + 1024: the dynamic shared memory is
  // aligned up to 1024 bytes inside the kernel.
  static constexpr int kBarrierOffset = kPipeBytes > kReduceBytes ? kPipeBytes : kReduceBytes;
  static constexpr int kSmemBytes = kBarrierOffset + 16 + 1024;
  static constexpr int kMinBlocks = kThreads <= 256 && BM <= 128 ? 2 : 1;  // register cap 128 (or 255)
  static_assert(BM == 64 || BM == 128 || BM == 256, "wgmma N = BM tokens: 64, 128 or 256");
  static_assert(STAGES >= 2, "cp.async pipeline needs two stages or more");
};

// codes: [tiles_n][chunks][32] uint4, params: [tiles_n][k / group][8] uint2 (w4a16.h);
// x: [m, k] fp16 (16-byte aligned rows), bias: [n] or null, y: [m, n]. gl2 = log2(group / 16).
// Grid: (ceil(tiles_n / kRowTiles), ceil(m / BM), splits); splits > 1: clusters (1, 1, splits).
// push: the split-K reduction's form (store_split_k_in_cluster; AWQ_W4A16_CLUSTER_PUSH).
template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
__global__ void __launch_bounds__(NWG * 128, (WgTile<BM, NWG, STAGES, CPS, SMALL_GROUP>::kMinBlocks))
    w4a16_wgmma_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                       const __half* __restrict__ x, const __half* __restrict__ bias,
                       __half* __restrict__ y, int n, int k, int m, int gl2, bool push) {
#if AWQ_W4A16_WGMMA
  using T = WgTile<BM, NWG, STAGES, CPS, SMALL_GROUP>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int rt = warp;  // the warp's row tile in the block (warp w of warpgroup g: tile 4g + w)
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64, ktiles = k / 16;
  const int ngroups = ktiles >> gl2;
  const int tn0 = int(blockIdx.x) * T::kRowTiles;
  const int tok0 = int(blockIdx.y) * BM;
  const int splits = int(gridDim.z), split = int(blockIdx.z);
  const int per_split = (chunks + splits - 1) / splits;
  const int c_begin = min(chunks, split * per_split), c_end = min(chunks, c_begin + per_split);

  // The copies' addresses, hoisted out of the chunk loop (the loop is issue-bound: every
  // instruction saved per chunk counts). Thread tid copies, per chunk, 16-byte segment
  // g = tid % 8 of token rows r0 + i R (R = threads / 8, a multiple of 8, so every row of a
  // thread has the same swizzle r & 7 = r0 & 7), the uint4 of lane tid % 32 of row tile tid / 32
  // (kRowTiles * 32 == threads), and one 16-byte quarter of a params entry (tid < kParamCopies).
  static_assert(T::kRowTiles * 32 == T::kThreads && (T::kThreads / 8) % 8 == 0, "copy mapping");
  constexpr int kXRowsPerPass = T::kThreads / 8, kXPasses = cdiv(BM, kXRowsPerPass);
  constexpr int kParamCopies = T::kRowTiles * T::kParamSlots * 4;
  static_assert(kParamCopies <= T::kThreads, "one params copy per thread at most");
  const int xg = tid & 7, xr0 = tid >> 3;
  const __half* x_src = x + size_t(min(tok0 + xr0, m - 1)) * size_t(k) + xg * 8;  // + chunk * 64
  const uint32_t x_dst = uint32_t(xr0 * 128 + ((xg ^ (xr0 & 7)) * 16));           // + pass * rows * 128
  const int code_tn = tn0 + (tid >> 5);
  const bool code_ok = code_tn < tiles_n;
  const uint4* code_src = codes + (size_t(min(code_tn, tiles_n - 1)) * size_t(chunks)) * 32 + lane;  // + chunk * 32
  const int pq = tid & 3, pj = (tid >> 2) % T::kParamSlots, pr = (tid >> 2) / T::kParamSlots;
  const bool param_ok = tid < kParamCopies && tn0 + pr < tiles_n;
  const uint4* param_src =
      reinterpret_cast<const uint4*>(params + size_t(min(tn0 + pr, tiles_n - 1)) * size_t(ngroups) * 8) + pq;
  const uint32_t smem_base = smem_addr(smem);

  // live == false: zero-fill the sub-slot (a chunk past c_end in a slot of two: it then adds
  // exactly 0, x and weights being 0, so the wgmma need not be skipped).
  auto load_x_stage = [&](int slot, int c, bool live) {
    const uint32_t dst = smem_base + uint32_t(slot * T::kStageBytes) + x_dst;
    const bool col_ok = live && c * 64 + xg * 8 < k;  // k % 16 == 0: a segment is all in or all out
#pragma unroll
    for (int pass = 0; pass < kXPasses; ++pass) {
      if (BM % kXRowsPerPass != 0 && xr0 + pass * kXRowsPerPass >= BM) break;
      const bool ok = col_ok && tok0 + xr0 + pass * kXRowsPerPass < m;
      cp_async16_to(dst + uint32_t(pass * kXRowsPerPass * 128),
                    ok ? x_src + size_t(pass * kXRowsPerPass) * size_t(k) + c * 64 : x, ok);
    }
  };
  auto load_w_stage = [&](int slot, int c, bool live) {
    const uint32_t st = smem_base + uint32_t(slot * T::kStageBytes);
    cp_async16_to(st + T::kXBytes + tid * 16, live ? code_src + c * 32 : codes, live && code_ok);
    if (tid < kParamCopies) {
      // Padded k-tiles of the last chunk take the last group (in bounds; their x is zero).
      const int kt = SMALL_GROUP ? min(c * 4 + pj, ktiles - 1) : c * 4;
      cp_async16_to(st + T::kXBytes + T::kCodeBytes + tid * 16,
                    live ? param_src + (kt >> gl2) * 4 : reinterpret_cast<const uint4*>(params), live && param_ok);
    }
  };

  float acc[BM / 2];
#pragma unroll
  for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
  // Pins the zeros in the accumulators' registers before the first wgmma. Without it ptxas
  // placed their definitions inside the wgmma pipeline (the wgmma of a slot stay in flight
  // across the loop's back edge) and serialized every wgmma (C7515), once the epilogue no
  // longer wrote acc: 30 % slower on the H100 (session 23, docs/results/gpu.md).
  fence_operands(acc);

  // The warp's A fragments of the chunk in `slot` (4 k-tiles) into a.
  auto dequant_chunk = [&](int slot, uint32_t (&a)[4][4]) {
    const unsigned char* st = smem + slot * T::kStageBytes;
    const uint4 w = reinterpret_cast<const uint4*>(st + T::kXBytes)[rt * 32 + lane];
    const uint2* ps = reinterpret_cast<const uint2*>(st + T::kXBytes + T::kCodeBytes);
    GroupParams gp;
    if (!SMALL_GROUP) gp = expand(ps[rt * 8 + lane / 4]);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (SMALL_GROUP) gp = expand(ps[(rt * 4 + j) * 8 + lane / 4]);
      dequant(j == 0 ? w.x : j == 1 ? w.y : j == 2 ? w.z : w.w, gp, a[j]);
    }
  };
  uint32_t a[CPS][4][4];  // the warp's A fragments of the CPS chunks of one slot (4 k-tiles each)
  // Slot `slot` holds chunks c0 .. c0 + CPS - 1 (those < c_end), chunk c0 + q in sub-slot
  // CPS slot + q (each sub-slot laid out as one chunk's stage above).
  auto load_slot = [&](int slot, int c0, bool weights, bool xs) {
    if (c0 >= c_end) return;  // a slot the loop never reaches
#pragma unroll
    for (int q = 0; q < CPS; ++q) {
      if (weights) load_w_stage(slot * CPS + q, c0 + q, c0 + q < c_end);
      if (xs) load_x_stage(slot * CPS + q, c0 + q, c0 + q < c_end);
    }
  };
  auto step = [&](int c0, int slot) {
    cp_async_wait<STAGES - 2>();  // this thread's copies of slot `slot` have landed
    fence_proxy_async();          // ... visible to the tensor cores once all threads pass the barrier
    wgmma_wait<0>();              // this warpgroup's wgmma of the previous slot are done
    __syncthreads();              // every warpgroup's are: the previous slot is free
    const int next = c0 + (STAGES - 1) * CPS;
    if (next < c_end) load_slot(slot == 0 ? STAGES - 1 : slot - 1, next, true, true);
    cp_async_commit();
#pragma unroll
    for (int q = 0; q < CPS; ++q) dequant_chunk(slot * CPS + q, a[q]);
    wgmma_fence();  // orders the dequant's register writes (and the accumulators) before the wgmma
#pragma unroll
    for (int q = 0; q < CPS; ++q) {  // a sub-slot past c_end is zero: adds 0
      const uint32_t xs = smem_base + uint32_t((slot * CPS + q) * T::kStageBytes);
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_tokens<BM>(acc, a[q][j], desc_k_major_sw128(xs + 32 * j));
    }
    wgmma_commit();
  };

  // Prologue: the weights of the first STAGES - 1 slots before pdl_wait (see w4a16_tiled.cu),
  // x after.
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) load_slot(s, c_begin + s * CPS, true, false);
  if (splits > 1 && tid == 0) init_split_k_barrier(smem_base + uint32_t(T::kBarrierOffset));  // see its use
  pdl_wait();
  pdl_trigger();
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_slot(s, c_begin + s * CPS, false, true);
    cp_async_commit();
  }
  int slot = 0;
  for (int c0 = c_begin; c0 < c_end; c0 += CPS) {
    step(c0, slot);
    slot = slot + 1 == STAGES ? 0 : slot + 1;
  }
  wgmma_wait<0>();
  fence_operands(acc);
  cp_async_wait<0>();

  const DFragmentOut out = d_fragment_out(tn0 + rt, tiles_n, tok0, lane, m, n, bias, y);
  if (splits > 1) {
    __syncthreads();  // every warpgroup is done with the pipeline's shared memory
    store_split_k_in_cluster<BM, T::kThreads>(acc, smem, smem_base + uint32_t(T::kBarrierOffset), tid, split, splits,
                                              push, out);
  } else {
    store_d_fragment<BM>(acc, out);
  }
#else
  (void)codes, (void)params, (void)x, (void)bias, (void)y, (void)n, (void)k, (void)m, (void)gl2, (void)push;
  __trap();  // the host launches this only for sm_90a device code (w4a16_wgmma_available)
#endif
}

// 1 where this file's device code has wgmma (sm_90a), else 0.
__global__ void wgmma_probe_kernel(int* has) {
#ifdef __CUDA_ARCH__
  *has = AWQ_W4A16_WGMMA;
#endif
}

template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
void set_wgmma_smem(int optin) {
  using T = WgTile<BM, NWG, STAGES, CPS, SMALL_GROUP>;
  AWQ_CUDA_CHECK(cudaFuncSetAttribute(w4a16_wgmma_kernel<BM, NWG, STAGES, CPS, SMALL_GROUP>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      std::min(T::kSmemBytes, optin)));
}
template <int BM, int NWG, int STAGES, int CPS>
void prepare_wgmma(int optin) {
  set_wgmma_smem<BM, NWG, STAGES, CPS, true>(optin);
  set_wgmma_smem<BM, NWG, STAGES, CPS, false>(optin);
}
template <int BM, int NWG, int STAGES, int CPS>
int wgmma_smem_bytes() {
  return std::max(WgTile<BM, NWG, STAGES, CPS, true>::kSmemBytes, WgTile<BM, NWG, STAGES, CPS, false>::kSmemBytes);
}

template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
void launch_wgmma_kernel(int splits, const uint4* codes, const uint2* params, const __half* x,
                         const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  using T = WgTile<BM, NWG, STAGES, CPS, SMALL_GROUP>;
  auto* kernel = w4a16_wgmma_kernel<BM, NWG, STAGES, CPS, SMALL_GROUP>;
  const int tiles_n = (n + 15) / 16;
  const dim3 grid(unsigned((tiles_n + T::kRowTiles - 1) / T::kRowTiles), unsigned((m + BM - 1) / BM),
                  unsigned(splits));
  // As the tiled GEMM: split-K (cluster) launches go without the PDL attribute; so do the
  // 64 x 64 tiles (one warpgroup, many blocks per SM): with PDL, back-to-back unsplit launches
  // of them ran 18-26 % slower on the H100 (bench "PDL us" column, docs/results/gpu.md), while
  // the wider tiles gained up to 15 %.
  std::optional<PdlScope> no_pdl;
  if (splits > 1 || (BM == 64 && NWG == 1)) no_pdl.emplace(PdlMode::Off);
  launch_kernel({grid, dim3(T::kThreads), size_t(T::kSmemBytes), s, unsigned(splits)},
                kernel, codes, params, x, bias, y, n, k, m, gl2, splits > 1 && w4a16_cluster_push_from_env());
}

template <int BM, int NWG, int STAGES, int CPS>
void launch_wgmma(int splits, const uint4* codes, const uint2* params, const __half* x,
                  const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  if (gl2 < 2)
    launch_wgmma_kernel<BM, NWG, STAGES, CPS, true>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
  else
    launch_wgmma_kernel<BM, NWG, STAGES, CPS, false>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

struct WgmmaEntry {
  W4A16TiledConfig cfg;
  void (*launch)(int, const uint4*, const uint2*, const __half*, const __half*, __half*, int, int, int, int,
                 cudaStream_t);
  void (*prepare)(int optin);
  int (*smem_bytes)();
};
#define AWQ_W4A16_WGMMA_CFG(BM, NWG, ST, CPS)                                                              \
  WgmmaEntry {                                                                                        \
    W4A16TiledConfig{BM / 8, CPS, 1, NWG * 4, ST, BM, NWG * 64, NWG * 128, true, false},                       \
        &launch_wgmma<BM, NWG, ST, CPS>, &prepare_wgmma<BM, NWG, ST, CPS>, &wgmma_smem_bytes<BM, NWG, ST, CPS>        \
  }
// (tokens BM = wgmma's N, warpgroups NWG along the rows (64 rows each), stages)
const WgmmaEntry kWgmma[] = {
    AWQ_W4A16_WGMMA_CFG(64, 1, 4, 1),   // 0: 64 tokens x 64 rows, 4 warps
    AWQ_W4A16_WGMMA_CFG(64, 2, 4, 1),   // 1: 64 x 128, 8 warps
    AWQ_W4A16_WGMMA_CFG(128, 1, 4, 1),  // 2: 128 x 64
    AWQ_W4A16_WGMMA_CFG(128, 2, 4, 1),  // 3: 128 x 128 (2 blocks per SM)
    AWQ_W4A16_WGMMA_CFG(256, 1, 3, 1),  // 4: 256 x 64 (3 stages: 2 blocks per SM)
    AWQ_W4A16_WGMMA_CFG(256, 2, 4, 1),  // 5: 256 x 128 (1 block per SM)
    AWQ_W4A16_WGMMA_CFG(64, 4, 4, 1),   // 6: 64 x 256, 16 warps (x read once per 256 rows)
    AWQ_W4A16_WGMMA_CFG(64, 1, 3, 2),   // 7: 64 x 64, 2 chunks per slot (half the barriers)
    AWQ_W4A16_WGMMA_CFG(64, 2, 3, 2),   // 8: 64 x 128, 2 chunks per slot
    // Swept and dropped (branch gpu10, the 7B shapes at m = 64..256): (64, 1, 4, 2), (64, 2, 4, 2)
    // and (128, 1, 2, 2); at no (shape, m) more than 1 % faster than the best of these
    // (h100_gpu10_call1_sweep_push1.log, W20-W22; docs/results/gpu.md).
};
#undef AWQ_W4A16_WGMMA_CFG
constexpr int kNumWgmma = int(sizeof(kWgmma) / sizeof(kWgmma[0]));

bool wgmma_ok = false;
bool wgmma_ws_ok = false;  // the warp-specialized configurations (w4a16_wgmma_ws.cu) can run
int wgmma_optin = 0;

}  // namespace

// Indices 0 .. kNumWgmma - 1: this file's configurations; then w4a16_wgmma_ws.cu's.
int w4a16_wgmma_count() { return kNumWgmma + w4a16_wgmma_ws_count(); }
W4A16TiledConfig w4a16_wgmma_config(int i) {
  return i < kNumWgmma ? kWgmma[i].cfg : w4a16_wgmma_ws_config(i - kNumWgmma);
}
int w4a16_wgmma_ws_first() { return kNumWgmma; }
namespace {
// The tiled configuration index (as w4a16_tiled_config) of the TMA kernel's configuration ws.
int ws_tiled_index(int ws) { return w4a16_tiled_count() - w4a16_wgmma_count() + kNumWgmma + ws; }
}  // namespace
int w4a16_tma_wide_config() { return ws_tiled_index(w4a16_wgmma_ws_wide()); }
int w4a16_tma_square_config() { return ws_tiled_index(w4a16_wgmma_ws_square()); }
int w4a16_tma_wide_sk_config() { return ws_tiled_index(w4a16_wgmma_ws_wide_sk()); }
int w4a16_tma_square_sk_config() { return ws_tiled_index(w4a16_wgmma_ws_square_sk()); }
int w4a16_tma_rows192_config(int tokens) { return ws_tiled_index(w4a16_wgmma_ws_rows192(tokens)); }
int w4a16_tma_rows192_l2_config(int tokens) { return ws_tiled_index(w4a16_wgmma_ws_rows192_l2(tokens)); }
bool w4a16_wgmma_ws_available() {
  w4a16_prepare_wgmma();
  return wgmma_ws_ok;
}

void w4a16_prepare_wgmma() {
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0, major = 0, has = 0;
    AWQ_CUDA_CHECK(cudaGetDevice(&dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&wgmma_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    int* d_has = nullptr;
    AWQ_CUDA_CHECK(cudaMalloc(&d_has, sizeof(int)));
    AWQ_CUDA_CHECK(cudaMemset(d_has, 0, sizeof(int)));
    wgmma_probe_kernel<<<1, 1>>>(d_has);
    const cudaError_t launched = cudaGetLastError();
    const cudaError_t copied = cudaMemcpy(&has, d_has, sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(d_has);
    AWQ_CUDA_CHECK(launched);
    AWQ_CUDA_CHECK(copied);
    bool fits = true;
    for (const WgmmaEntry& e : kWgmma) fits = fits && e.smem_bytes() <= wgmma_optin;
    // AWQ_W4A16_WGMMA=0: the mma.sync kernels only (the baseline, or a fallback without a rebuild).
    const bool off = env_choice("AWQ_W4A16_WGMMA", std::getenv("AWQ_W4A16_WGMMA"),
                                {{"0", "no wgmma: the mma.sync tiled GEMM for every m"}, {"1", "default"}}, 1) == 0;
    wgmma_ok = !off && major == 9 && has == 1 && fits;
    if (wgmma_ok) {
      for (const WgmmaEntry& e : kWgmma) e.prepare(wgmma_optin);
      wgmma_ws_ok = w4a16_prepare_wgmma_ws(wgmma_optin);
    }
  });
}

bool w4a16_wgmma_available() {
  w4a16_prepare_wgmma();
  return wgmma_ok;
}

void launch_w4a16_wgmma(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                        const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                        cudaStream_t s) {
  if (!w4a16_wgmma_available())
    throw Error("launch_w4a16_wgmma: no wgmma on this device/build (needs sm_90a device code on an sm_90 GPU)");
  if (splits < 1 || splits > 8 || !w4a16_split_k_available()) splits = 1;
  const int gl2 = w4a16_group_tiles_log2(group);
  if (config >= kNumWgmma) {
    if (wgmma_ws_ok) {
      launch_w4a16_wgmma_ws(config - kNumWgmma, splits, codes, params, x, bias, y, int(n), int(k), int(m), gl2, s);
      return;
    }
    config = 3;  // no tensor-map encoder (or shared memory) for them here: the 128 x 128 cp.async tile
  }
  kWgmma[config].launch(splits, codes, params, x, bias, y, int(n), int(k), int(m), gl2, s);
}

}  // namespace awq::cuda
