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
// kernel; three boxes per chunk is what this file does.
// Options (template): a producer warpgroup of its own (setmaxnreg gives its registers to the
// consumers) or warp 0 of the consumers as producer; and a second A register set, so that a
// warpgroup dequantizes chunk i + 1 while its wgmma of chunk i run (ptxas keeps these wgmma
// asynchronous here; no C7513).
// Split-K (gridDim.z > 1): clusters along z reducing through distributed shared memory, as in
// w4a16_wgmma.cu.
#include "ops/cuda/w4a16_wgmma_ws.h"

#include <cooperative_groups.h>
#include <cuda.h>  // CUtensorMap and its enums (header only: the encoder comes through the runtime)
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <algorithm>
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

constexpr int round_up_to(int a, int b) { return (a + b - 1) / b * b; }
constexpr int max_of(int a, int b) { return a > b ? a : b; }

// PWG: a producer warpgroup of its own (its first warp copies; setmaxnreg moves registers from
// it to the consumers), else warp 0 of the consumers copies too, one slot behind (see the loop).
// OVL: a consumer warpgroup dequantizes chunk i + 1 into a second register set while its wgmma
// of chunk i run, else after they are done, into the same registers.
template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL, bool SMALL_GROUP>
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
  static constexpr int kParamSlots = SMALL_GROUP ? 4 : 1;
  static constexpr int kXBytes = BM * 128;
  static constexpr int kCodeBytes = kRowTiles * 512;
  static constexpr int kParamBytes = kRowTiles * kParamSlots * 64;
  static constexpr int kTxBytes = kXBytes + kCodeBytes + kParamBytes;  // a slot's copies
  static constexpr int kStageBytes = round_up_to(kTxBytes, 1024);     // x at 1024 B (the swizzle)
  static constexpr int kPipeBytes = STAGES * kStageBytes;
  static constexpr int kReduceBytes = BM * kBN * 4;  // split-K partials: [BM / 2][consumer threads] f32
  static constexpr int kBarrierOffset = max_of(kPipeBytes, kReduceBytes);
  // + 2 STAGES barriers (full, empty), + 1024: the dynamic shared memory is aligned up inside.
  static constexpr int kSmemBytes = kBarrierOffset + 2 * STAGES * 8 + 1024;
  static_assert(BM == 64 || BM == 128 || BM == 256, "wgmma N = BM tokens: 64, 128 or 256");
  // Without a producer warpgroup, warp 0 refills a slot one chunk after its release, and waits
  // for chunk i + 1's slot before that: three slots or more, or it would wait for itself.
  static_assert(STAGES >= (PWG ? 2 : 3), "ring too short");
  static_assert(kConsumerRegs >= kRegs, "setmaxnreg.inc must not lower the consumers' registers");
  static_assert(!PWG || kProducerWarp * 32 == kConsumerThreads, "the producer warpgroup follows the consumers");
};

// x_map: x: [m, k] fp16 as a 2-D tensor map (box 64 inputs x BM tokens, 128-byte swizzle);
// codes: [tiles_n][chunks][32] uint4, params: [tiles_n][k / group][8] uint2 (w4a16.h);
// bias: [n] or null, y: [m, n]. gl2 = log2(group / 16).
// Grid: (ceil(tiles_n / kRowTiles), ceil(m / BM), splits); splits > 1: clusters (1, 1, splits).
// Block: NWG consumer warpgroups (then, with PWG, the producer warpgroup).
template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL, bool SMALL_GROUP>
__global__ void __launch_bounds__(NWG * 128 + (PWG ? 128 : 0), MINB)
    w4a16_wgmma_ws_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap code_map,
                          const __grid_constant__ CUtensorMap param_map, const __half* __restrict__ bias,
                          __half* __restrict__ y, int n, int k, int m, int gl2) {
#if AWQ_W4A16_WGMMA
  using T = WsTile<BM, NWG, STAGES, MINB, PWG, OVL, SMALL_GROUP>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
  const uint32_t smem_base = smem_addr(smem);
  const uint32_t full0 = smem_base + uint32_t(T::kBarrierOffset), empty0 = full0 + uint32_t(STAGES * 8);
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64;
  const int tn0 = int(blockIdx.x) * T::kRowTiles;
  const int tok0 = int(blockIdx.y) * BM;
  const int splits = int(gridDim.z), split = int(blockIdx.z);
  const int per_split = (chunks + splits - 1) / splits;
  const int c_begin = min(chunks, split * per_split), c_end = min(chunks, c_begin + per_split);
  const int nch = c_end - c_begin;  // this block's chunks (0 for an empty split)

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full0 + uint32_t(8 * s), 1);                   // the producer's arrive.expect_tx
      mbar_init(empty0 + uint32_t(8 * s), uint32_t(NWG * 4));  // one arrival per consumer warp
    }
    mbar_init_fence();
  }
  __syncthreads();

  // The copies of chunk c_begin + it into its slot, issued by lane 0 of the producer warp: it
  // arms the slot's barrier (one arrival expecting all the slot's bytes), then three TMA copies:
  // the block's row tiles' codes of the chunk (one box of kRowTiles x 512 bytes), their params
  // entries of the chunk's groups (kRowTiles x pg x 64 bytes) and the x tile. Boxes past the
  // tensors (row tiles past n, the groups of padded k-tiles, tokens past m, inputs past k)
  // arrive as zeros and count in the bytes.
  const int pg = SMALL_GROUP ? 4 >> gl2 : 1;  // params entries per row tile and chunk
  const uint32_t tx_bytes = uint32_t(T::kXBytes + T::kCodeBytes + T::kRowTiles * pg * 64);
  auto arm = [&](int slot) {
    if (lane == 0) mbar_arrive_expect_tx(full0 + uint32_t(8 * slot), tx_bytes);
  };
  auto load_weights = [&](int slot, int c) {
    const uint32_t st = smem_base + uint32_t(slot * T::kStageBytes), bar = full0 + uint32_t(8 * slot);
    if (lane == 0) {
      tma_load_3d(st + uint32_t(T::kXBytes), &code_map, 0, c, tn0, bar);
      tma_load_3d(st + uint32_t(T::kXBytes + T::kCodeBytes), &param_map, 0, (c * 4) >> gl2, tn0, bar);
    }
  };
  auto load_x = [&](int slot, int c) {
    if (lane == 0)
      tma_load_2d(smem_base + uint32_t(slot * T::kStageBytes), &x_map, c * 64, tok0, full0 + uint32_t(8 * slot));
  };
  // Chunk it into its slot once the slot's previous chunk (it - STAGES) is released.
  auto produce = [&](int it) {
    const int slot = it % STAGES;
    if (it >= STAGES) mbar_wait(empty0 + uint32_t(8 * slot), uint32_t(((it / STAGES) + 1) & 1));
    arm(slot);
    load_weights(slot, c_begin + it);
    load_x(slot, c_begin + it);
  };
  // Prologue of the producer warp: the weights of the first slots before pdl_wait (they do not
  // depend on the previous kernel), x after. Every thread waits (the consumers store y).
  const int first = min(nch, STAGES);
  if (warp == T::kProducerWarp) {
    if (lane == 0) {
      tma_prefetch_map(&x_map);
      tma_prefetch_map(&code_map);
      tma_prefetch_map(&param_map);
    }
    for (int it = 0; it < first; ++it) {
      arm(it);
      load_weights(it, c_begin + it);
    }
  }
  pdl_wait();
  pdl_trigger();
  if (warp == T::kProducerWarp)
    for (int it = 0; it < first; ++it) load_x(it, c_begin + it);

  namespace cg = cooperative_groups;
  if constexpr (PWG) {
    if (warp >= T::kProducerWarp) {
      // The producer warpgroup holds no accumulators: most of its registers go to the consumers.
      asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(T::kProducerRegs));
      if (warp == T::kProducerWarp)
        for (int it = first; it < nch; ++it) produce(it);
      if (splits > 1) {  // the consumers' two cluster barriers
        cg::cluster_group cluster = cg::this_cluster();
        cluster.sync();
        cluster.sync();
      }
      return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(T::kConsumerRegs));
  }

  // Consumers: warp w (of warpgroup w / 4) owns row tile w of the block.
  float acc[BM / 2];
#pragma unroll
  for (int i = 0; i < BM / 2; ++i) acc[i] = 0.0f;
  {
    const int rt = warp;
    uint4 w = make_uint4(0, 0, 0, 0);
    uint2 p[T::kParamSlots];
    auto fetch = [&](int it) {  // wait for chunk it's slot, read the warp's codes and params
      const int slot = it % STAGES;
      mbar_wait(full0 + uint32_t(8 * slot), uint32_t((it / STAGES) & 1));
      const unsigned char* st = smem + slot * T::kStageBytes;
      w = reinterpret_cast<const uint4*>(st + T::kXBytes)[rt * 32 + lane];
      const uint2* ps = reinterpret_cast<const uint2*>(st + T::kXBytes + T::kCodeBytes);
#pragma unroll
      for (int j = 0; j < T::kParamSlots; ++j) p[j] = ps[(rt * pg + (j >> gl2)) * 8 + lane / 4];
    };
    auto dequant_chunk = [&](uint32_t(&a)[4][4]) {  // the fetched chunk's 4 A fragments
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
    auto step = [&](int it, uint32_t(&cur)[4][4], uint32_t(&nxt)[4][4]) {
      const int slot = it % STAGES;
      wgmma_fence();  // orders the dequant's register writes (and the accumulators) before the wgmma
      const uint32_t xs = smem_base + uint32_t(slot * T::kStageBytes);
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_tokens<BM>(acc, cur[j], desc_k_major_sw128(xs + 32 * j));
      wgmma_commit();
      if (it + 1 < nch) {
        fetch(it + 1);
        if (OVL) dequant_chunk(nxt);
      }
      wgmma_wait<0>();
      __syncwarp();
      if (lane == 0) mbar_arrive(empty0 + uint32_t(8 * slot));  // this warp is done with the slot
      if (!PWG && warp == T::kProducerWarp && it >= 1 && it - 1 + STAGES < nch) produce(it - 1 + STAGES);
      if (!OVL && it + 1 < nch) dequant_chunk(nxt);
    };
    uint32_t a0[4][4], a1[4][4];  // the warp's A fragments of one chunk (4 k-tiles); two sets (OVL)
    if (nch > 0) {
      fetch(0);
      dequant_chunk(a0);
    }
    if constexpr (OVL) {
      for (int it = 0; it < nch; it += 2) {
        step(it, a0, a1);
        if (it + 1 < nch) step(it + 1, a1, a0);
      }
    } else {
      for (int it = 0; it < nch; ++it) step(it, a0, a0);
    }
    fence_operands(acc);
  }

  if (splits > 1) {
    // Every consumer is done with the ring (and so every copy into it has landed): named
    // barrier 1 over the consumer threads (the producer warpgroup is not waited for).
    asm volatile("bar.sync 1, %0;\n" ::"n"(T::kConsumerThreads) : "memory");
    reduce_split_k_in_cluster<BM, T::kConsumerThreads>(acc, smem, tid, split, splits);
  }
  store_d_fragment<BM>(acc, tn0 + warp, tiles_n, tok0, lane, split, splits, m, n, bias, y);
#else
  (void)x_map, (void)code_map, (void)param_map, (void)bias, (void)y, (void)n, (void)k, (void)m, (void)gl2;
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

template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL, bool SMALL_GROUP>
void launch_ws_kernel(int splits, const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                      __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  using T = WsTile<BM, NWG, STAGES, MINB, PWG, OVL, SMALL_GROUP>;
  const int tiles_n = (n + 15) / 16, chunks = (k + 63) / 64, ngroups = (k / 16) >> gl2;
  // x: [m, k] fp16, boxes of BM tokens x 64 inputs with the 128-byte swizzle (wgmma's B layout).
  const cuuint64_t x_dims[2] = {cuuint64_t(k), cuuint64_t(m)}, x_strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t x_box[2] = {64, cuuint32_t(BM)};
  // codes: [tiles_n][chunks][128] u32, boxes of kRowTiles tiles x 1 chunk.
  const cuuint64_t c_dims[3] = {128, cuuint64_t(chunks), cuuint64_t(tiles_n)};
  const cuuint64_t c_strides[2] = {512, cuuint64_t(chunks) * 512};
  const cuuint32_t c_box[3] = {128, 1, cuuint32_t(T::kRowTiles)};
  // params: [tiles_n][ngroups][16] u32, boxes of kRowTiles tiles x the chunk's groups.
  const cuuint64_t p_dims[3] = {16, cuuint64_t(ngroups), cuuint64_t(tiles_n)};
  const cuuint64_t p_strides[2] = {64, cuuint64_t(ngroups) * 64};
  const cuuint32_t p_box[3] = {16, cuuint32_t(SMALL_GROUP ? 4 >> gl2 : 1), cuuint32_t(T::kRowTiles)};
  const CUtensorMap x_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, x, x_dims, x_strides, x_box,
                                       CU_TENSOR_MAP_SWIZZLE_128B, "x");
  const CUtensorMap code_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, codes, c_dims, c_strides, c_box,
                                          CU_TENSOR_MAP_SWIZZLE_NONE, "the codes");
  const CUtensorMap param_map = tensor_map(CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, params, p_dims, p_strides, p_box,
                                           CU_TENSOR_MAP_SWIZZLE_NONE, "the params");
  const dim3 grid(unsigned((tiles_n + T::kRowTiles - 1) / T::kRowTiles), unsigned((m + BM - 1) / BM),
                  unsigned(splits));
  std::optional<PdlScope> no_pdl;
  if (splits > 1) no_pdl.emplace(PdlMode::Off);  // as the other GEMMs: clusters launch without PDL
  launch_kernel({grid, dim3(T::kThreads), size_t(T::kSmemBytes), s, unsigned(splits)},
                w4a16_wgmma_ws_kernel<BM, NWG, STAGES, MINB, PWG, OVL, SMALL_GROUP>, x_map, code_map, param_map, bias, y, n,
                k, m, gl2);
}

template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL>
void launch_ws(int splits, const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* y,
               int n, int k, int m, int gl2, cudaStream_t s) {
  if (gl2 < 2)
    launch_ws_kernel<BM, NWG, STAGES, MINB, PWG, OVL, true>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
  else
    launch_ws_kernel<BM, NWG, STAGES, MINB, PWG, OVL, false>(splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

// False where the kernel cannot run here: its shared memory over the device's opt-in, or fewer
// registers per thread than the setmaxnreg split assumes (the consumers' setmaxnreg.inc would
// then wait forever for registers the block does not hold).
template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL, bool SMALL_GROUP>
bool set_ws_smem(int optin) {
  using T = WsTile<BM, NWG, STAGES, MINB, PWG, OVL, SMALL_GROUP>;
  auto* kernel = w4a16_wgmma_ws_kernel<BM, NWG, STAGES, MINB, PWG, OVL, SMALL_GROUP>;
  if (T::kSmemBytes > optin) return false;
  cudaFuncAttributes attr{};
  AWQ_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  if (PWG && attr.numRegs * T::kThreads < 128 * T::kProducerRegs + T::kConsumerThreads * T::kConsumerRegs) return false;
  AWQ_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  return true;
}
template <int BM, int NWG, int STAGES, int MINB, bool PWG, bool OVL>
bool prepare_ws(int optin) {
  const bool small = set_ws_smem<BM, NWG, STAGES, MINB, PWG, OVL, true>(optin);
  const bool large = set_ws_smem<BM, NWG, STAGES, MINB, PWG, OVL, false>(optin);
  return small && large;
}

struct WsEntry {
  W4A16TiledConfig cfg;
  void (*launch)(int, const uint4*, const uint2*, const __half*, const __half*, __half*, int, int, int, int,
                 cudaStream_t);
  bool (*prepare)(int optin);
};
// In W4A16TiledConfig: tt = BM / 8 token tiles, rt = 1 chunk per slot, wt = 1 + OVL (A register
// sets), wr = 4 consumer warps per 64 rows; threads counts the producer warpgroup (PWG).
#define AWQ_W4A16_WS_CFG(BM, NWG, ST, MINB, PWG, OVL)                                                  \
  WsEntry {                                                                                           \
    W4A16TiledConfig{BM / 8, 1, 1 + OVL, NWG * 4, ST, BM, NWG * 64, NWG * 128 + (PWG ? 128 : 0), true}, \
        &launch_ws<BM, NWG, ST, MINB, PWG, OVL>, &prepare_ws<BM, NWG, ST, MINB, PWG, OVL>                \
  }
// (tokens BM = wgmma's N, consumer warpgroups NWG along the rows (64 rows each), ring slots,
// blocks per SM asked of the register allocator, producer warpgroup, overlapped dequant)
const WsEntry kWs[] = {
    AWQ_W4A16_WS_CFG(64, 1, 4, 4, 0, 1),    // 0: 64 tokens x 64 rows, warp 0 copies, overlapped dequant
    AWQ_W4A16_WS_CFG(64, 1, 4, 4, 0, 0),    // 1: the same, dequant after the wgmma
    AWQ_W4A16_WS_CFG(128, 1, 3, 3, 0, 1),   // 2: 128 x 64
    AWQ_W4A16_WS_CFG(128, 2, 4, 2, 0, 1),   // 3: 128 x 128
    AWQ_W4A16_WS_CFG(256, 1, 3, 2, 0, 1),   // 4: 256 x 64
    AWQ_W4A16_WS_CFG(64, 2, 4, 2, 0, 1),    // 5: 64 x 128
    AWQ_W4A16_WS_CFG(256, 2, 5, 1, 1, 1),   // 6: 256 x 128, producer warpgroup
};
#undef AWQ_W4A16_WS_CFG
constexpr int kNumWs = int(sizeof(kWs) / sizeof(kWs[0]));
constexpr int kWsWide = 6;    // the 256 x 128 producer-warpgroup tile (w4a16_wgmma_ws_wide)
constexpr int kWsSquare = 3;  // the 128 x 128 tile, warp 0 copies (w4a16_wgmma_ws_square)

}  // namespace

int w4a16_wgmma_ws_count() { return kNumWs; }
int w4a16_wgmma_ws_wide() { return kWsWide; }
int w4a16_wgmma_ws_square() { return kWsSquare; }
W4A16TiledConfig w4a16_wgmma_ws_config(int i) { return kWs[i].cfg; }

bool w4a16_prepare_wgmma_ws(int optin) {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [optin] {
    bool fits = true;
    for (const WsEntry& e : kWs) fits = e.prepare(optin) && fits;
    ok = fits && tensor_map_encoder() != nullptr;
  });
  return ok;
}

void launch_w4a16_wgmma_ws(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                           const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s) {
  kWs[config].launch(splits, codes, params, x, bias, y, n, k, m, gl2, s);
}

}  // namespace awq::cuda
