// W4A16 wgmma GEMM with TMA loads (sm_90a): the same math, layout and "swap AB" as
// w4a16_wgmma.cu (each consumer warp dequantizes mma.sync's A fragment of its 16-row tile in
// registers; a warpgroup's four warps are wgmma's 64 x 16 register A; the tokens are its N = BM,
// read by the tensor cores from shared memory with the 128-byte swizzle), but the loads are
// taken off the consumers: one thread fills an mbarrier-guarded ring of STAGES slots with three
// TMA copies per chunk of 64 inputs (cp.async.bulk.tensor, tensor maps passed as
// __grid_constant__ parameters): the x tile (BM x 64, 128-byte swizzle: the layout the wgmma
// descriptor reads), the block's row tiles' 512 bytes of codes, and their params entries; all
// complete on the slot's "full" barrier (one arrival with the expected bytes). The consumer
// warpgroups (64 output rows each, sharing the x tile) only wait on "full", dequantize and issue
// their 4 wgmma, and, once these are done, arrive on the slot's "empty" barrier (one arrival per
// consumer warp) that the producer waits on before refilling the slot.
// Why: the cp.async kernel's warps spend most of their instructions on copies, addresses and
// block-wide barriers (about 250 per warp per chunk, issue-bound; docs/results/gpu.md).
// Measured on the H100 (docs/results/gpu.md, "TMA"): one bulk copy per row tile and params
// entry (9-17 copies per chunk) made every configuration 1.5-2.5x slower than the cp.async
// kernel; three boxes per chunk is what this file does. CPS = 2 (template): a slot holds two chunks
// (x in two boxes, the codes and params boxes two chunks deep): one full / empty round trip and
// four copies per two chunks.
// Options (template): a producer warpgroup of its own (setmaxnreg gives its registers to the
// consumers) or warp 0 of the consumers as producer; and a second A register set, so that a
// warpgroup dequantizes chunk i + 1 while its wgmma of chunk i run (ptxas keeps these wgmma
// asynchronous here; no C7513).
// Split-K (gridDim.z > 1): clusters along z reducing through distributed shared memory, as in
// w4a16_wgmma.cu; or (template L2K, where the grid is one wave) no clusters, the partials summed
// through a global workspace in L2 (store_split_k_through_l2, w4a16_wgmma_device.cuh).
// Stream-K (template SK): the grid is the SMs' resident blocks (G), and the flat range of
// (output tile, chunk) iterations, tile by tile, is cut into G equal contiguous parts, one per
// block; a block walks its part, its ring running on across tile boundaries. A tile wholly inside
// one part is stored as usual. A tile cut between blocks b_lo .. b_hi: each writes its partial
// sums (f32) to a global workspace slot of its own, then counts itself on the tile's counter;
// the block that counts last adds the partials in block order b_lo .. b_hi (deterministic: the
// same bits whichever block is last), stores the tile and resets the counter for the next
// launch. Nobody waits for another block, so the blocks need not be resident together. Why: the
// 256 x 128 tile runs one block per SM, and the 7B's wide layers at m <= 256 have 86-172 tiles
// for 132 SMs (0.65-0.73 of a wave, or 1.3 waves): whole tiles leave SMs idle. Measured on the
// H100 (docs/results/gpu.md, "Stream-K"): the partials' traffic (two 128 KB parts per block and
// call for 256 x 128, much of it through DRAM) costs about as much as the idle SMs on qkv and gate
// at m = 256; the dispatch takes these kernels only where they measured faster.
// The workspace is one per process (w4a16_prepare_wgmma_ws): stream-K and L2 split-K launches
// must not run concurrently on two streams.
#include "ops/cuda/w4a16_wgmma_ws.h"

#include <cooperative_groups.h>
#include <cuda.h>  // CUtensorMap and its enums (header only: the encoder comes through the runtime)
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/pdl_device.cuh"
#include "ops/cuda/w4a16_device.cuh"
#include "ops/cuda/w4a16_pipeline.cuh"
#include "ops/cuda/w4a16_wgmma_device.cuh"

namespace awq::cuda {

namespace {

using namespace w4a16_device;
using namespace pdl_device;
using namespace w4a16_pipeline;
using namespace w4a16_wgmma_device;

// Timing experiments only, never the product: a build with -DAWQ_W4A16_WS_ABLATE=bits (e.g.
// cmake -DCMAKE_CUDA_FLAGS=-DAWQ_W4A16_WS_ABLATE=3, target bench_cuda_w4a16) leaves parts of the
// consumers' mainloop out: 1 the dequant (the codes go to the wgmma as they are), 2 the wgmma
// (the dequant stays), 4 the copies (no TMA at all; the consumers use whatever the ring holds,
// without waiting). The results are then wrong; the times say what each part costs
// (docs/results/gpu.md, "Where the 192-row tiles' time goes"). Compile-time, so that the rest of
// the loop compiles as in the product.
#ifndef AWQ_W4A16_WS_ABLATE
#define AWQ_W4A16_WS_ABLATE 0
#endif

constexpr int round_up_to(int a, int b) { return (a + b - 1) / b * b; }
constexpr int max_of(int a, int b) { return a > b ? a : b; }

// PWG: a producer warpgroup of its own (its first warp copies; setmaxnreg moves registers from
// it to the consumers), else warp 0 of the consumers copies too, one slot behind (see the loop).
// OVL: a consumer warpgroup dequantizes chunk i + 1 into a second register set while its wgmma
// of chunk i run, else after they are done, into the same registers.
template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K, bool SMALL_GROUP>
struct WsTile {
  static constexpr int kBN = NWG * 64;  // output rows per block
  static constexpr int kRowTiles = NWG * 4;
  static constexpr int kConsumerThreads = NWG * 128;
  static constexpr int kProducerWarp = PWG ? NWG * 4 : 0;  // the warp that issues the copies
  static constexpr int kThreads = kConsumerThreads + (PWG ? 128 : 0);
  // Registers (PWG): ptxas allots each thread kRegs (the launch bounds' share); the producer
  // warpgroup then gives most of its share to the consumers (setmaxnreg): it keeps 40 (24
  // where 40 would leave them under 232).
  static constexpr int kRegs = (65536 / (MINB * kThreads)) / 8 * 8 > 248 ? 248 : (65536 / (MINB * kThreads)) / 8 * 8;
  static constexpr int kPool = kRegs * kThreads;
  static constexpr int consumer_regs(int producer) {
    return ((kPool - 128 * producer) / kConsumerThreads) / 8 * 8 > 256 ? 256 : ((kPool - 128 * producer) / kConsumerThreads) / 8 * 8;
  }
  static constexpr int kProducerRegs = consumer_regs(40) >= 232 ? 40 : 24;
  static constexpr int kConsumerRegs = PWG ? consumer_regs(kProducerRegs) : kRegs;
  static constexpr int kParamSlots = SMALL_GROUP ? 4 : 1;     // a chunk's params entries (at most)
  static constexpr int kXBytes = BM * 128;                     // one chunk's x tile
  static constexpr int kCodeBytes = kRowTiles * 512 * CPS;     // [kRowTiles][CPS][512 B]
  static constexpr int kParamBytes = kRowTiles * kParamSlots * CPS * 64;
  static constexpr int kTxBytes = CPS * kXBytes + kCodeBytes + kParamBytes;  // a slot's copies (at most)
  static constexpr int kStageBytes = round_up_to(kTxBytes, 1024);     // x at 1024 B (the swizzle)
  static constexpr int kPipeBytes = STAGES * kStageBytes;
  static constexpr int kReduceBytes = split_k_reduce_bytes(BM, kConsumerThreads);  // split-K partials
  static constexpr int kBarrierOffset = max_of(kPipeBytes, kReduceBytes);
  // Stream-K: a block's partial sums of a tile, [BM / 8][consumer threads] float4 (a thread's
  // D fragment, 4 floats at a time; coalesced).
  static constexpr int kPartFloat4s = BM / 8 * kConsumerThreads;
  static_assert(kPartFloat4s * 16 == BM * kBN * 4, "a partial is the tile's BM x kBN f32");
  // + 2 STAGES barriers (full, empty), + 8: the stream-K "last block" flag, + 1024: the dynamic
  // shared memory is aligned up inside.
  static constexpr int kFlagOffset = kBarrierOffset + 2 * STAGES * 8;
  static constexpr int kSmemBytes = kFlagOffset + 8 + 1024;
  static_assert(BM == 64 || BM == 128 || BM == 192 || BM == 256, "wgmma N = BM tokens: 64, 128, 192 or 256");
  // Without a producer warpgroup, warp 0 refills a slot one chunk after its release, and waits
  // for chunk i + 1's slot before that: three slots or more, or it would wait for itself.
  static_assert(STAGES >= (PWG ? 2 : 3), "ring too short");
  // Two chunks a slot only with a producer warpgroup and without stream-K (its segments would
  // split slots).
  static_assert(CPS == 1 || (CPS == 2 && PWG && !SK), "chunks per slot: 1, or 2 with PWG and no SK");
  static_assert(!(SK && L2K), "stream-K takes no K splits");
  static_assert(kConsumerRegs >= kRegs, "setmaxnreg.inc must not lower the consumers' registers");
  static_assert(!PWG || kProducerWarp * 32 == kConsumerThreads, "the producer warpgroup follows the consumers");
};

#if AWQ_W4A16_WGMMA  // used only by the kernel body below (sm_90a builds)
// Stream-K: block b's share of the `total` iterations starts at sk_start(b) (G blocks, total >= G:
// every block gets one or more), and iteration g belongs to block sk_block_of(g).
__device__ __forceinline__ int sk_start(int b, int total, int blocks) {
  return int(int64_t(b) * total / blocks);
}
__device__ __forceinline__ int sk_block_of(int g, int total, int blocks) {
  return int((int64_t(g + 1) * blocks - 1) / total);
}
// The blocks b_lo .. b_hi whose parts hold the `chunks` iterations from t_first (a tile), and
// whether t_first lies inside b_lo's part (not at its start).
struct SkTileBlocks {
  int lo, hi;
  bool lo_inside;
};
__device__ __forceinline__ SkTileBlocks sk_tile_blocks(int t_first, int chunks, int total, int blocks) {
  const int lo = sk_block_of(t_first, total, blocks);
  return {lo, sk_block_of(t_first + chunks - 1, total, blocks), t_first != sk_start(lo, total, blocks)};
}
#endif

// x_map: x: [m, k] fp16 as a 2-D tensor map (box 64 inputs x BM tokens, 128-byte swizzle);
// codes: [tiles_n][chunks][32] uint4, params: [tiles_n][k / group][8] uint2 (w4a16.h);
// bias: [n] or null, y: [m, n]. gl2 = log2(group / 16).
// Grid: (ceil(tiles_n / kRowTiles), ceil(m / BM), splits); splits > 1: clusters (1, 1, splits).
// SK: grid (G) with G <= the number of iterations; sk_parts: [2 G][kPartFloat4s] float4 (slot
// 2 b: block b's first segment, 2 b + 1: its last), sk_counters: [G] u32, zero between launches.
// L2K (splits > 1, no clusters): sk_parts: [tiles][splits][kPartFloat4s] float4 (tile =
// blockIdx.y * gridDim.x + blockIdx.x), sk_counters: [2 tiles] u32, zero between launches; every
// block resident at once (store_split_k_through_l2; a cooperative launch).
// push: the split-K reduction's form (store_split_k_in_cluster; AWQ_W4A16_CLUSTER_PUSH).
// Block: NWG consumer warpgroups (then, with PWG, the producer warpgroup).
template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K, bool SMALL_GROUP>
__global__ void __launch_bounds__(NWG * 128 + (PWG ? 128 : 0), MINB)
    w4a16_wgmma_ws_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap code_map,
                          const __grid_constant__ CUtensorMap param_map, const __half* __restrict__ bias,
                          __half* __restrict__ y, float4* __restrict__ sk_parts, unsigned* __restrict__ sk_counters,
                          int n, int k, int m, int gl2, bool push) {
#if AWQ_W4A16_WGMMA
  using T = WsTile<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, SMALL_GROUP>;
  constexpr bool kAblateCopies = (AWQ_W4A16_WS_ABLATE & 4) != 0;  // see the top of the file
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
  const uint32_t smem_base = smem_addr(smem);
  const uint32_t full0 = smem_base + uint32_t(T::kBarrierOffset), empty0 = full0 + uint32_t(STAGES * 8);
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  // Named barrier 1 over the consumer threads (the producer warpgroup, if any, is not waited for).
  const auto consumer_sync = [] { asm volatile("bar.sync 1, %0;\n" ::"n"(T::kConsumerThreads) : "memory"); };
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64;
  const int row_blocks = (tiles_n + T::kRowTiles - 1) / T::kRowTiles;
  const int splits = int(gridDim.z), split = int(blockIdx.z);
  // The block's nch iterations. Without SK: chunks c_begin .. c_begin + nch - 1 (the block's
  // split) of tile (blockIdx.y, blockIdx.x) (none for an empty split). SK: [g_begin, g_begin +
  // nch) of the flat range tile * chunks + chunk, tile = token block * row_blocks + row block.
  int c_begin = 0, g_begin = 0, nch, total = 0;
  if constexpr (SK) {
    total = row_blocks * ((m + BM - 1) / BM) * chunks;
    g_begin = sk_start(int(blockIdx.x), total, int(gridDim.x));
    nch = sk_start(int(blockIdx.x) + 1, total, int(gridDim.x)) - g_begin;
  } else {
    const int per_split = (chunks + splits - 1) / splits;
    c_begin = min(chunks, split * per_split);
    nch = min(chunks, c_begin + per_split) - c_begin;
  }
  // Iteration it's chunk, and its tile's first row tile and first token.
  struct ItPos {
    int c, tn0, tok0;
  };
  const auto pos = [&](int it) {
    if constexpr (SK) {
      const int g = g_begin + it, tile = g / chunks;
      return ItPos{g - tile * chunks, tile % row_blocks * T::kRowTiles, tile / row_blocks * BM};
    } else {
      return ItPos{c_begin + it, int(blockIdx.x) * T::kRowTiles, int(blockIdx.y) * BM};
    }
  };

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full0 + uint32_t(8 * s), 1);                   // the producer's arrive.expect_tx
      mbar_init(empty0 + uint32_t(8 * s), uint32_t(NWG * 4));  // one arrival per consumer warp
    }
    // Split K: the reduction's barrier, in the stream-K flag's 8 bytes (a split launch is never
    // stream-K).
    if (!L2K && gridDim.z > 1) init_split_k_barrier(smem_base + uint32_t(T::kFlagOffset));
    mbar_init_fence();
  }
  __syncthreads();

  // The copies of iteration it (pos(it)) into its slot, issued by lane 0 of the producer warp: it
  // arms the slot's barrier (one arrival expecting all the slot's bytes), then three TMA copies:
  // the block's row tiles' codes of the chunk (one box of kRowTiles x 512 bytes), their params
  // entries of the chunk's groups (kRowTiles x pg x 64 bytes) and the x tile. Boxes past the
  // tensors (row tiles past n, the groups of padded k-tiles, tokens past m, inputs past k)
  // arrive as zeros and count in the bytes.
  // Params entries per row tile and slot: a chunk's groups (SMALL_GROUP), else the slot's first
  // chunk's group and (CPS 2) the next one, which its second chunk may reach.
  const int pg = (SMALL_GROUP ? 4 >> gl2 : 1) * CPS;
  const uint32_t tx_bytes = uint32_t(CPS * T::kXBytes + T::kCodeBytes + T::kRowTiles * pg * 64);
  // Slots: chunks it of the block go CPS to a slot, slot q = it / CPS (q % STAGES in the ring).
  const int nslots = (nch + CPS - 1) / CPS;
  auto arm = [&](int slot) {
    if (lane == 0) mbar_arrive_expect_tx(full0 + uint32_t(8 * slot), tx_bytes);
  };
  // Slot q's weights (iterations q CPS ..) into ring slot `slot`: codes [kRowTiles][CPS][512 B],
  // then params. Chunks past k arrive as zeros.
  auto load_weights = [&](int slot, int q) {
    const uint32_t st = smem_base + uint32_t(slot * T::kStageBytes), bar = full0 + uint32_t(8 * slot);
    const ItPos p = pos(q * CPS);
    const int c = p.c, tn0 = p.tn0;
    if (lane == 0) {
      tma_load_3d(st + uint32_t(CPS * T::kXBytes), &code_map, 0, c, tn0, bar);
      tma_load_3d(st + uint32_t(CPS * T::kXBytes + T::kCodeBytes), &param_map, 0, (c * 4) >> gl2, tn0, bar);
    }
  };
  auto load_x = [&](int slot, int q) {
    const ItPos p = pos(q * CPS);
    if (lane == 0)
#pragma unroll
      for (int h = 0; h < CPS; ++h)  // one box per chunk (the swizzled box is 64 inputs wide)
        tma_load_2d(smem_base + uint32_t(slot * T::kStageBytes + h * T::kXBytes), &x_map, (p.c + h) * 64, p.tok0,
                    full0 + uint32_t(8 * slot));
  };
  // Slot q into its ring slot once the slot's previous use (q - STAGES) is released.
  auto produce = [&](int q) {
    const int slot = q % STAGES;
    if (q >= STAGES) mbar_wait(empty0 + uint32_t(8 * slot), uint32_t(((q / STAGES) + 1) & 1));
    arm(slot);
    load_weights(slot, q);
    load_x(slot, q);
  };
  // Prologue of the producer warp: the weights of the first slots before pdl_wait (they do not
  // depend on the previous kernel), x after. Every thread waits (the consumers store y).
  const int first = kAblateCopies ? 0 : min(nslots, STAGES);
  if (warp == T::kProducerWarp) {
    if (lane == 0) {
      tma_prefetch_map(&x_map);
      tma_prefetch_map(&code_map);
      tma_prefetch_map(&param_map);
    }
    for (int it = 0; it < first; ++it) {
      arm(it);
      load_weights(it, it);
    }
  }
  pdl_wait();
  pdl_trigger();
  if (warp == T::kProducerWarp)
    for (int it = 0; it < first; ++it) load_x(it, it);

  namespace cg = cooperative_groups;
  if constexpr (PWG) {
    if (warp >= T::kProducerWarp) {
      // The producer warpgroup holds no accumulators: most of its registers go to the consumers.
      asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(T::kProducerRegs));
      if (warp == T::kProducerWarp)
        for (int q = first; q < (kAblateCopies ? 0 : nslots); ++q) produce(q);
      if (!L2K && splits > 1) {  // the consumers' cluster barriers (store_split_k_in_cluster): one, or two without push
        cg::cluster_group cluster = cg::this_cluster();
        cluster.sync();
        if (!push) cluster.sync();
      }
      return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(T::kConsumerRegs));
  }

  // Stream-K: the contributors b_lo .. b_hi of the block's first and last tile (the tiles
  // between lie wholly in its part), and whether the tile starts inside b_lo's part; found here,
  // before the accumulators are live (64-bit divisions).
  SkTileBlocks sk_first{}, sk_last{};
  if constexpr (SK) {
    const int blocks = int(gridDim.x);
    sk_first = sk_tile_blocks(g_begin / chunks * chunks, chunks, total, blocks);
    sk_last = sk_tile_blocks((g_begin + nch - 1) / chunks * chunks, chunks, total, blocks);
  }

  // Consumers: warp w (of warpgroup w / 4) owns row tile w of the block.
  float acc[BM / 2];
#pragma unroll
  for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
  {
    const int rt = warp;
    uint4 w = make_uint4(0, 0, 0, 0);
    uint2 p[T::kParamSlots];
    // Wait for chunk it's slot (at its first chunk), read the warp's codes and params of it.
    auto fetch = [&](int it) {
      const int q = it / CPS, h = it % CPS, slot = q % STAGES;
      if (!kAblateCopies && h == 0) mbar_wait(full0 + uint32_t(8 * slot), uint32_t((q / STAGES) & 1));
      const unsigned char* st = smem + slot * T::kStageBytes;
      w = reinterpret_cast<const uint4*>(st + CPS * T::kXBytes)[(rt * CPS + h) * 32 + lane];
      const uint2* ps = reinterpret_cast<const uint2*>(st + CPS * T::kXBytes + T::kCodeBytes);
      // The slot's params start at its first chunk's first group: chunk h's first group is `off`
      // entries further (0 for one chunk a slot), its j-th input tile's j >> gl2 after that.
      int off = 0;
      if constexpr (CPS > 1) {
        const int c = pos(it).c;
        off = ((c * 4) >> gl2) - (((c - h) * 4) >> gl2);
      }
#pragma unroll
      for (int j = 0; j < T::kParamSlots; ++j) p[j] = ps[(rt * pg + off + (j >> gl2)) * 8 + lane / 4];
    };
    auto dequant_chunk = [&](uint32_t(&a)[4][4]) {  // the fetched chunk's 4 A fragments
#if AWQ_W4A16_WS_ABLATE & 1
#pragma unroll
      for (int j = 0; j < 4; ++j) a[j][0] = a[j][1] = a[j][2] = a[j][3] = j == 0 ? w.x : j == 1 ? w.y : j == 2 ? w.z : w.w;
      return;
#endif
      GroupParams gp = expand(p[0]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (SMALL_GROUP) gp = expand(p[j]);
        dequant(j == 0 ? w.x : j == 1 ? w.y : j == 2 ? w.z : w.w, gp, a[j]);
      }
    };
    // Chunk it, its A fragments in cur: wgmma; the next chunk fetched (and, OVL, dequantized into
    // nxt) while they run; then the slot released and (no PWG) warp 0 refills the slot of chunk
    // it - 1 (released by every warp by then, most likely) with chunk it - 1 + STAGES.
    // it_end: the end of the segment (the next chunk is fetched only inside it).
    auto step = [&](int it, int it_end, uint32_t(&cur)[4][4], uint32_t(&nxt)[4][4]) {
      const int slot = (it / CPS) % STAGES;
      wgmma_fence();  // orders the dequant's register writes (and the accumulators) before the wgmma
      const uint32_t xs = smem_base + uint32_t(slot * T::kStageBytes + (it % CPS) * T::kXBytes);
#if AWQ_W4A16_WS_ABLATE & 2
      (void)xs;
#pragma unroll
      for (int j = 0; j < 4; ++j)  // the dequant stays: its registers are used
        asm volatile("" ::"r"(cur[j][0]), "r"(cur[j][1]), "r"(cur[j][2]), "r"(cur[j][3]));
#else
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_tokens<BM>(acc, cur[j], desc_k_major_sw128(xs + 32 * j));
#endif
      wgmma_commit();
      if (it + 1 < it_end) {
        fetch(it + 1);
        if (OVL) dequant_chunk(nxt);
      }
      wgmma_wait<0>();
      __syncwarp();
      if (lane == 0 && ((it + 1) % CPS == 0 || it + 1 == it_end))
        mbar_arrive(empty0 + uint32_t(8 * slot));  // this warp is done with the slot
      if (!PWG && !kAblateCopies && warp == T::kProducerWarp && it >= 1 && it - 1 + STAGES < nch)
        produce(it - 1 + STAGES);
      if (!OVL && it + 1 < it_end) dequant_chunk(nxt);
    };
    uint32_t a0[4][4], a1[4][4];  // the warp's A fragments of one chunk (4 k-tiles); two sets (OVL)
    // Iterations it0 .. it1 - 1 (one segment: chunks of one tile) into acc.
    auto run_segment = [&](int it0, int it1) {
      if (it0 >= it1) return;
      fetch(it0);
      dequant_chunk(a0);
      if constexpr (OVL) {
        for (int it = it0; it < it1; it += 2) {
          step(it, it1, a0, a1);
          if (it + 1 < it1) step(it + 1, it1, a1, a0);
        }
      } else {
        for (int it = it0; it < it1; ++it) step(it, it1, a0, a0);
      }
      fence_operands(acc);  // acc is read after the last wgmma wait
    };
    if constexpr (SK) {
      // Stream-K: the segment of tile `tile` (contributors tb) is done: the tile is stored (it lies
      // wholly in this block's part), or the partial sums go to the workspace and the tile's
      // last-counting block stores the sum (see the top of the file).
      auto finish_segment = [&](int tile, SkTileBlocks tb) {
        const int tn = tile % row_blocks * T::kRowTiles + warp, tok0 = tile / row_blocks * BM;
        if (tb.lo == tb.hi) {
          store_d_fragment<BM>(acc, d_fragment_out(tn, tiles_n, tok0, lane, m, n, bias, y));
          return;
        }
        // Slot 2 b' of block b' holds the segment that starts its part, slot 2 b' + 1 the one that
        // ends it; only b_lo's segment can start inside its part.
        const auto part = [&](int bb, int j) {
          return sk_parts + size_t(2 * bb + (bb == tb.lo && tb.lo_inside ? 1 : 0)) * T::kPartFloat4s +
                 j * T::kConsumerThreads + tid;
        };
#pragma unroll
        for (int j = 0; j < BM / 8; ++j)
          __stcg(part(int(blockIdx.x), j), make_float4(acc[4 * j], acc[4 * j + 1], acc[4 * j + 2], acc[4 * j + 3]));
        __threadfence();  // the partials are visible device-wide before this block is counted
        consumer_sync();
        volatile unsigned* flag = reinterpret_cast<volatile unsigned*>(smem + T::kFlagOffset);
        if (tid == 0) {
          const unsigned before = atomicAdd(sk_counters + tb.lo, 1u);
          const bool last = before == unsigned(tb.hi - tb.lo);
          if (last) sk_counters[tb.lo] = 0;  // every contributor has counted: ready for the next launch
          *flag = last ? 1u : 0u;
        }
        consumer_sync();
        if (*flag == 0) return;
        __threadfence();  // the other blocks' partials, made visible before their count
        // The sum in block order, kGroup token tiles at a time, straight to y: the parts of b_lo
        // and b_lo + 1 are loaded together (2 kGroup loads in flight per thread), then those of
        // any further blocks. This block's own partial is read back too (each thread its own
        // stores): acc is dead here, and keeping it beside the sums made ptxas spill it.
        constexpr int kGroup = BM == 256 ? 16 : 8;  // 2 kGroup float4 = 128 registers at most
#pragma unroll
        for (int j0 = 0; j0 < BM / 8; j0 += kGroup) {
          float4 sum[kGroup], v[kGroup];
#pragma unroll
          for (int q = 0; q < kGroup; ++q) {
            sum[q] = __ldcg(part(tb.lo, j0 + q));
            v[q] = __ldcg(part(tb.lo + 1, j0 + q));
          }
          for (int bb = tb.lo + 1;;) {
#pragma unroll
            for (int q = 0; q < kGroup; ++q) {
              sum[q].x += v[q].x;
              sum[q].y += v[q].y;
              sum[q].z += v[q].z;
              sum[q].w += v[q].w;
            }
            if (++bb > tb.hi) break;
#pragma unroll
            for (int q = 0; q < kGroup; ++q) v[q] = __ldcg(part(bb, j0 + q));
          }
          // Built here, not once above: kept live across the sums it made ptxas spill (128 x 128).
          const DFragmentOut out = d_fragment_out(tn, tiles_n, tok0, lane, m, n, bias, y);
#pragma unroll
          for (int q = 0; q < kGroup; ++q) out.put(sum[q], j0 + q);
        }
      };
      // Segment by segment: the first from the block's first iteration to its tile's end, then
      // whole tiles, the last up to the block's last iteration.
      int tile = g_begin / chunks;
      for (int it0 = 0; it0 < nch; ++tile) {
        const int it1 = min(nch, (tile + 1) * chunks - g_begin);
        run_segment(it0, it1);
        // The tiles between the first and the last lie wholly in this block's part.
        const SkTileBlocks own{int(blockIdx.x), int(blockIdx.x), false};
        finish_segment(tile, it0 == 0 ? sk_first : it1 == nch ? sk_last : own);
#pragma unroll
        for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
        it0 = it1;
      }
    } else {
      run_segment(0, nch);
    }
  }
  if constexpr (SK) return;  // every segment was stored or handed on by finish_segment

  const DFragmentOut out =
      d_fragment_out(int(blockIdx.x) * T::kRowTiles + warp, tiles_n, int(blockIdx.y) * BM, lane, m, n, bias, y);
  if (splits > 1) {
    // Every consumer is done with the ring (and so every copy into it has landed).
    consumer_sync();
    if constexpr (L2K) {
      const size_t tile = size_t(blockIdx.y) * gridDim.x + blockIdx.x;
      store_split_k_through_l2<BM, T::kConsumerThreads>(acc, sk_parts + tile * splits * T::kPartFloat4s,
                                                        sk_counters + 2 * tile, smem, tid, split, splits,
                                                        consumer_sync, out);
      return;
    }
    store_split_k_in_cluster<BM, T::kConsumerThreads>(acc, smem, smem_base + uint32_t(T::kFlagOffset), tid, split,
                                                      splits, push, out);
  } else {
    store_d_fragment<BM>(acc, out);
  }
#else
  (void)x_map, (void)code_map, (void)param_map, (void)bias, (void)y, (void)sk_parts, (void)sk_counters, (void)n, (void)k,
      (void)m, (void)gl2, (void)push;
  __trap();  // the host launches this only for sm_90a device code (w4a16_wgmma_available)
#endif
}

// The driver's cuTensorMapEncodeTiled, through the runtime (no -lcuda); null where unavailable.
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found);
    if (e != cudaSuccess || found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// A tensor map of `rank` dimensions (dims[0] innermost; strides: bytes between consecutive
// indices of dims 1 ..) with boxes `box`, zeros outside the tensor.
CUtensorMap tensor_map(CUtensorMapDataType type, cuuint32_t rank, const void* base, const cuuint64_t* dims,
                       const cuuint64_t* strides, const cuuint32_t* box, CUtensorMapSwizzle swizzle, const char* what) {
  CUtensorMap map{};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r = tensor_map_encoder()(&map, type, rank, const_cast<void*>(base), dims, strides, box, elem_strides,
                                          CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    std::string msg = "w4a16 wgmma: cuTensorMapEncodeTiled failed (";
    msg += std::to_string(int(r));
    msg += ") for ";
    msg += what;
    msg += ": it needs 16-byte aligned data (x: rows of k % 8 == 0 halves)";
    throw Error(msg);
  }
  return map;
}

// The stream-K workspace (one per process; w4a16_prepare_wgmma_ws allocates it, an atexit
// handler frees it): partial sums, [2 G][kPartFloat4s] float4, and counters, [G] u32 (zero).
struct StreamKWorkspace {
  float4* parts = nullptr;
  unsigned* counters = nullptr;
  size_t part_bytes = 0;  // bytes of parts
  int counters_count = 0;
  int sms = 0;            // the device's SMs: G = sms * blocks per SM (at most)
};
StreamKWorkspace sk_workspace;

template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K, bool SMALL_GROUP>
void launch_ws_kernel(int splits, const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                      __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  using T = WsTile<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, SMALL_GROUP>;
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64, ngroups = (k / 16) >> gl2;
  const int row_blocks = (tiles_n + T::kRowTiles - 1) / T::kRowTiles, token_blocks = (m + BM - 1) / BM;
  // L2K: the cluster form of the same tile (the same bits), where the L2 form cannot run.
  const auto launch_as_cluster = [&] {
    launch_ws_kernel<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, false, SMALL_GROUP>(splits, codes, params, x, bias, y,
                                                                                    n, k, m, gl2, s);
  };
  if constexpr (L2K) {
    // Split-K through L2 only where every block is resident at once (one wave: at most one block
    // per SM, which any launchable block gets) and the workspace holds the partials.
    const int64_t tiles = int64_t(row_blocks) * token_blocks, launched = tiles * splits;
    if (splits < 2 || launched > sk_workspace.sms ||
        size_t(launched) * T::kPartFloat4s * sizeof(float4) > sk_workspace.part_bytes ||
        2 * tiles > sk_workspace.counters_count) {
      launch_as_cluster();
      return;
    }
  }
  // x: [m, k] fp16, boxes of BM tokens x 64 inputs with the 128-byte swizzle (wgmma's B layout).
  const cuuint64_t x_dims[2] = {cuuint64_t(k), cuuint64_t(m)}, x_strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t x_box[2] = {64, cuuint32_t(BM)};
  // codes: [tiles_n][chunks][128] u32, boxes of kRowTiles tiles x CPS chunks.
  const cuuint64_t c_dims[3] = {128, cuuint64_t(chunks), cuuint64_t(tiles_n)};
  const cuuint64_t c_strides[2] = {512, cuuint64_t(chunks) * 512};
  const cuuint32_t c_box[3] = {128, cuuint32_t(CPS), cuuint32_t(T::kRowTiles)};
  // params: [tiles_n][ngroups][16] u32, boxes of kRowTiles tiles x the chunk's groups.
  const cuuint64_t p_dims[3] = {16, cuuint64_t(ngroups), cuuint64_t(tiles_n)};
  const cuuint64_t p_strides[2] = {64, cuuint64_t(ngroups) * 64};
  const cuuint32_t p_box[3] = {16, cuuint32_t((SMALL_GROUP ? 4 >> gl2 : 1) * CPS), cuuint32_t(T::kRowTiles)};
  const CUtensorMap x_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, x, x_dims, x_strides, x_box,
                                       CU_TENSOR_MAP_SWIZZLE_128B, "x");
  const CUtensorMap code_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, codes, c_dims, c_strides, c_box,
                                          CU_TENSOR_MAP_SWIZZLE_NONE, "the codes");
  const CUtensorMap param_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, params, p_dims, p_strides, p_box,
                                           CU_TENSOR_MAP_SWIZZLE_NONE, "the params");
  auto* kernel = w4a16_wgmma_ws_kernel<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, SMALL_GROUP>;
  if constexpr (SK) {
    // One block per resident slot (MINB per SM), never more blocks than iterations.
    const int64_t total = int64_t(row_blocks) * token_blocks * chunks;
    if (total > INT32_MAX) throw Error("w4a16 stream-K: " + std::to_string(total) + " iterations overflow int");
    const int blocks = int(std::min<int64_t>(total, int64_t(sk_workspace.sms) * MINB));
    if (size_t(2 * blocks) * T::kPartFloat4s * sizeof(float4) > sk_workspace.part_bytes ||
        blocks > sk_workspace.counters_count)
      throw Error("w4a16 stream-K: the workspace is smaller than this launch needs");
    launch_kernel({dim3(unsigned(blocks)), dim3(T::kThreads), size_t(T::kSmemBytes), s, 1u}, kernel, x_map, code_map,
                  param_map, bias, y, sk_workspace.parts, sk_workspace.counters, n, k, m, gl2, false);
    return;
  }
  const dim3 grid{unsigned(row_blocks), unsigned(token_blocks), unsigned(splits)};
  if constexpr (L2K) {
    // No cluster; a cooperative launch, since the owners wait for their peers (with PDL where it
    // is on). Where the driver refuses it (the SMs shared, e.g. under MPS): the cluster form.
    // The cooperative attribute costs ~1.2-1.5 us of PDL's overlap on the H100 (session 24, call
    // 9: down_proj m = 64 19.3 against 17.8 us with PDL); without it a grid that cannot be all
    // resident (MPS, another process's kernels, a sanitizer) would wait for its peers forever.
    if (!try_launch_cooperative({grid, dim3(T::kThreads), size_t(T::kSmemBytes), s, 1u}, kernel, x_map, code_map,
                                param_map, bias, y, sk_workspace.parts, sk_workspace.counters, n, k, m, gl2, false))
      launch_as_cluster();
    return;
  }
  std::optional<PdlScope> no_pdl;
  if (splits > 1) no_pdl.emplace(PdlMode::Off);  // as the other GEMMs: clusters launch without PDL
  launch_kernel({grid, dim3(T::kThreads), size_t(T::kSmemBytes), s, unsigned(splits)}, kernel, x_map, code_map,
                param_map, bias, y, static_cast<float4*>(nullptr), static_cast<unsigned*>(nullptr), n, k, m, gl2,
                splits > 1 && w4a16_cluster_push_from_env());
}

template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K>
void launch_ws(int splits, const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* y,
               int n, int k, int m, int gl2, cudaStream_t s) {
  if (gl2 < 2)
    launch_ws_kernel<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, true>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
  else
    launch_ws_kernel<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, false>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

// False where the kernel cannot run here: its shared memory over the device's opt-in, or fewer
// registers per thread than the setmaxnreg split assumes (the consumers' setmaxnreg.inc would
// then wait forever for registers the block does not hold).
template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K, bool SMALL_GROUP>
bool set_ws_smem(int optin) {
  using T = WsTile<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, SMALL_GROUP>;
  auto* kernel = w4a16_wgmma_ws_kernel<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, SMALL_GROUP>;
  if (T::kSmemBytes > optin) return false;
  cudaFuncAttributes attr{};
  AWQ_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  if (PWG && attr.numRegs * T::kThreads < 128 * T::kProducerRegs + T::kConsumerThreads * T::kConsumerRegs) return false;
  AWQ_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  return true;
}
template <int BM, int NWG, int STAGES, int CPS, int MINB, bool PWG, bool OVL, bool SK, bool L2K>
bool prepare_ws(int optin) {
  const bool small = set_ws_smem<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, true>(optin);
  const bool large = set_ws_smem<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, L2K, false>(optin);
  // An L2 split-K tile launches its cluster twin where the L2 form cannot run (launch_ws_kernel):
  // that twin needs its shared memory allowance too, whether or not kWs lists it.
  if constexpr (L2K) return small && large && prepare_ws<BM, NWG, STAGES, CPS, MINB, PWG, OVL, SK, false>(optin);
  return small && large;
}

struct WsEntry {
  W4A16TiledConfig cfg;
  void (*launch)(int, const uint4*, const uint2*, const __half*, const __half*, __half*, int, int, int, int,
                 cudaStream_t);
  bool (*prepare)(int optin);
  int blocks_per_sm;  // MINB: a stream-K grid has this many blocks per SM
};
// In W4A16TiledConfig: tt = BM / 8 token tiles, rt = CPS chunks per slot, wt = 1 + OVL (A register
// sets), wr = 4 consumer warps per 64 rows; threads counts the producer warpgroup (PWG).
#define AWQ_W4A16_WS_CFG(BM, NWG, ST, CPS, MINB, PWG, OVL, SK, L2K)                                                 \
  WsEntry {                                                                                                         \
    W4A16TiledConfig{BM / 8, CPS, 1 + OVL, NWG * 4, ST, BM, NWG * 64, NWG * 128 + (PWG ? 128 : 0), true, SK, L2K},     \
        &launch_ws<BM, NWG, ST, CPS, MINB, PWG, OVL, SK, L2K>, &prepare_ws<BM, NWG, ST, CPS, MINB, PWG, OVL, SK, L2K>, \
        MINB                                                                                                        \
  }
// (tokens BM = wgmma's N, consumer warpgroups NWG along the rows (64 rows each), ring slots,
// chunks per slot (CPS), blocks per SM asked of the register allocator, producer warpgroup,
// overlapped dequant, stream-K, split-K through L2)
const WsEntry kWs[] = {
    AWQ_W4A16_WS_CFG(64, 1, 4, 1, 4, 0, 1, 0, 0),    // 0: 64 tokens x 64 rows, warp 0 copies, overlapped dequant
    AWQ_W4A16_WS_CFG(64, 1, 4, 1, 4, 0, 0, 0, 0),    // 1: the same, dequant after the wgmma
    AWQ_W4A16_WS_CFG(128, 1, 3, 1, 3, 0, 1, 0, 0),   // 2: 128 x 64
    AWQ_W4A16_WS_CFG(128, 2, 4, 1, 2, 0, 1, 0, 0),   // 3: 128 x 128
    AWQ_W4A16_WS_CFG(256, 1, 3, 1, 2, 0, 1, 0, 0),   // 4: 256 x 64
    AWQ_W4A16_WS_CFG(64, 2, 4, 1, 2, 0, 1, 0, 0),    // 5: 64 x 128
    AWQ_W4A16_WS_CFG(256, 2, 5, 1, 1, 1, 1, 0, 0),   // 6: 256 x 128, producer warpgroup
    AWQ_W4A16_WS_CFG(256, 2, 5, 1, 1, 1, 1, 1, 0),   // 7: 6 with stream-K (one block per SM)
    AWQ_W4A16_WS_CFG(128, 2, 4, 1, 2, 0, 1, 1, 0),   // 8: 3 with stream-K (two blocks per SM)
    AWQ_W4A16_WS_CFG(64, 2, 4, 1, 2, 0, 1, 1, 0),    // 9: 5 with stream-K (two blocks per SM)
    // Three consumer warpgroups (192 rows) and a producer warpgroup, one block per SM: grids that
    // the 128- and 256-row tiles cannot make fill whole waves (qkv at m = 256: 128 tiles of
    // 128 x 192 on 132 SMs, against 96 of 256 x 128). Picked by the dispatch's wave rule
    // (w4a16_tiled.cu). Swept and dropped: the stream-K twin of 10 (H100, the 7B shapes at
    // m = 128..512: faster than the picks only for qkv at m = 384, 84.0 against 89.3 us).
    // Measured on the H100 / H200 (docs/results/gpu.md, session 22): 128 x 192 with 8 slots is
    // 1-2 % faster than with 6 (9: slower), and two chunks a slot gain it nothing; 64 x 192 with
    // two chunks a slot (4 slots, the same 8 chunks in flight) is 1-6 % faster than with one.
    AWQ_W4A16_WS_CFG(128, 3, 8, 1, 1, 1, 1, 0, 0),   // 10: 128 x 192
    AWQ_W4A16_WS_CFG(64, 3, 4, 2, 1, 1, 1, 0, 0),    // 11: 64 x 192, two chunks a slot
    // 10 and 11 with split-K through L2 instead of clusters (store_split_k_through_l2; the
    // cluster form where the grid is over one wave): splits of 3 and 6 fill the 132 SMs on the
    // narrow layers' 22 row blocks, where clusters of 3 and 6 fit only 117 and 102 SMs.
    AWQ_W4A16_WS_CFG(128, 3, 8, 1, 1, 1, 1, 0, 1),   // 12: 128 x 192, split-K through L2
    AWQ_W4A16_WS_CFG(64, 3, 4, 2, 1, 1, 1, 0, 1),    // 13: 64 x 192 c2, split-K through L2
    // 192-token tiles (wgmma N = 192), one block per SM: m = 129..192 in one token block, where
    // the 128-token tiles take two (each reading and dequantizing the weights again) and the
    // 256-token tile computes a quarter or more of padding. Picked by measurement only (the
    // tuner, w4a16_tune.h; no rule takes them).
    AWQ_W4A16_WS_CFG(192, 2, 6, 1, 1, 1, 1, 0, 0),   // 14: 192 x 128
    AWQ_W4A16_WS_CFG(192, 2, 6, 1, 1, 1, 1, 0, 1),   // 15: 192 x 128, split-K through L2
    AWQ_W4A16_WS_CFG(192, 3, 6, 1, 1, 1, 0, 0, 0),   // 16: 192 x 192, one A register set (registers)
    // 128 x 128 with a producer warpgroup, one block per SM, split-K through L2 (session 32): the
    // narrow layers at m = 129..256 in 2 token blocks x 32 row blocks x 2 splits = 128 blocks, one
    // wave. H200: o_proj at m = 256 20.8 us at split 2 against 21.3 for 128 x 192 at split 3, the
    // pick before; down_proj at m = 128 25.8 at split 4 against 26.3 (docs/results/gpu.md,
    // session 32). Picked by measurement only (the tuner). The 256 x 128 tile's L2 twin, tried in
    // the same sweep, won nowhere (o_proj m = 256 21.7 us at split 4) and is not listed.
    AWQ_W4A16_WS_CFG(128, 2, 8, 1, 1, 1, 1, 0, 1),   // 17: 128 x 128, producer warpgroup, split-K through L2
};
#undef AWQ_W4A16_WS_CFG
constexpr int kNumWs = int(sizeof(kWs) / sizeof(kWs[0]));
constexpr int kWsWide = 6;    // the 256 x 128 producer-warpgroup tile (w4a16_wgmma_ws_wide)
constexpr int kWsSquare = 3;  // the 128 x 128 tile, warp 0 copies (w4a16_wgmma_ws_square)
constexpr int kWsWideSk = 7, kWsSquareSk = 8;  // their stream-K twins
constexpr int kWsRows192Of128 = 10, kWsRows192Of64 = 11;  // 128 x 192 and 64 x 192
constexpr int kWsRows192L2Of128 = 12, kWsRows192L2Of64 = 13;  // their split-K-through-L2 twins

}  // namespace

int w4a16_wgmma_ws_count() { return kNumWs; }
int w4a16_wgmma_ws_wide() { return kWsWide; }
int w4a16_wgmma_ws_square() { return kWsSquare; }
int w4a16_wgmma_ws_wide_sk() { return kWsWideSk; }
int w4a16_wgmma_ws_square_sk() { return kWsSquareSk; }
int w4a16_wgmma_ws_rows192(int tokens) { return tokens == 64 ? kWsRows192Of64 : kWsRows192Of128; }
int w4a16_wgmma_ws_rows192_l2(int tokens) { return tokens == 64 ? kWsRows192L2Of64 : kWsRows192L2Of128; }
W4A16TiledConfig w4a16_wgmma_ws_config(int i) { return kWs[i].cfg; }

namespace {

void free_stream_k_workspace() {
  // At exit (after the last launch): errors are of no use here (the runtime may be unloading).
  cudaFree(sk_workspace.parts);
  cudaFree(sk_workspace.counters);
  sk_workspace = StreamKWorkspace{};
}

// The workspace's sizes on a GPU of `sms` multiprocessors: the largest stream-K grid of kWs (2
// partial slots per block) or L2 split-K wave (one block per SM), and their counters.
struct WorkspaceSizes {
  size_t part_bytes = 0;
  int counters = 0;
};
WorkspaceSizes workspace_sizes(int sms) {
  WorkspaceSizes w;
  for (const WsEntry& e : kWs) {
    const size_t tile_bytes = size_t(e.cfg.bm) * size_t(e.cfg.bn) * sizeof(float);
    if (e.cfg.stream_k) {
      const int blocks = sms * e.blocks_per_sm;
      w.part_bytes = std::max(w.part_bytes, size_t(2 * blocks) * tile_bytes);
      w.counters = std::max(w.counters, blocks);
    } else if (e.cfg.l2_split) {  // one wave of blocks (one per SM), two counters per tile
      w.part_bytes = std::max(w.part_bytes, size_t(sms) * tile_bytes);
      w.counters = std::max(w.counters, 2 * sms);
    }
  }
  return w;
}

// Sized for this device (workspace_sizes). False where the memory is not there.
bool allocate_stream_k_workspace() {
  int dev = 0;
  AWQ_CUDA_CHECK(cudaGetDevice(&dev));
  AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&sk_workspace.sms, cudaDevAttrMultiProcessorCount, dev));
  const WorkspaceSizes ws = workspace_sizes(sk_workspace.sms);
  const size_t bytes = ws.part_bytes;
  const int counters = ws.counters;
  if (cudaMalloc(&sk_workspace.parts, bytes) != cudaSuccess ||
      cudaMalloc(&sk_workspace.counters, size_t(counters) * sizeof(unsigned)) != cudaSuccess ||
      cudaMemset(sk_workspace.counters, 0, size_t(counters) * sizeof(unsigned)) != cudaSuccess) {
    (void)cudaGetLastError();
    free_stream_k_workspace();
    return false;
  }
  sk_workspace.part_bytes = bytes;
  sk_workspace.counters_count = counters;
  std::atexit(free_stream_k_workspace);  // compute-sanitizer's leak check counts what is left
  return true;
}

}  // namespace

size_t w4a16_wgmma_ws_workspace_bytes(int sms) {
  const WorkspaceSizes ws = workspace_sizes(sms);
  return ws.part_bytes + size_t(ws.counters) * sizeof(unsigned);
}

bool w4a16_prepare_wgmma_ws(int optin) {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [optin] {
    bool fits = true;
    for (const WsEntry& e : kWs) fits = e.prepare(optin) && fits;
    ok = fits && tensor_map_encoder() != nullptr && allocate_stream_k_workspace();
  });
  return ok;
}

void launch_w4a16_wgmma_ws(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                           const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  kWs[config].launch(splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

}  // namespace awq::cuda
