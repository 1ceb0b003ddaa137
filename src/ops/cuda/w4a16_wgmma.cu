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

// wgmma needs the arch-specific sm_90a target (CMAKE_CUDA_ARCHITECTURES=90a); any other device
// code (sm_80, plain sm_90) compiles the kernel to a trap and the host never launches it
// (w4a16_wgmma_available reads what the device code was built for).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AWQ_W4A16_WGMMA 1
#else
#define AWQ_W4A16_WGMMA 0
#endif

namespace awq::cuda {

namespace {

using namespace w4a16_device;
using namespace pdl_device;
using namespace w4a16_pipeline;

#if AWQ_W4A16_WGMMA
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared memory written by cp.async (the generic proxy) and read next by wgmma (the async proxy).
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving accesses of an accumulator across a wgmma wait.
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// Descriptor of a K-major B operand with the 128-byte swizzle: rows of 128 bytes, 8-row groups
// 1024 bytes apart (stride byte offset), addr = the k-tile's first byte in row 0 of a tile that
// starts at a 1024-byte boundary. Bits: 0-13 addr >> 4, 16-29 leading byte offset >> 4 (unused
// for swizzled K-major; 1), 32-45 stride byte offset >> 4, 62-63 swizzle (1 = 128 bytes).
__device__ __forceinline__ uint64_t desc_k_major_sw128(uint32_t addr) {
  return uint64_t((addr & 0x3FFFFu) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

// d[32] += A (64 x 16, registers) * B (16 x 64, shared memory, descriptor b).
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

// d[64] += A (64 x 16, registers) * B (16 x 128, shared memory, descriptor b).
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

// d[128] += A (64 x 16, registers) * B (16 x 256, shared memory, descriptor b).
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63,"
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79,"
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95,"
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111,"
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, {%128, %129, %130, %131}, %132, 1, 1, 1, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}

template <int BM>
__device__ __forceinline__ void wgmma_tokens(float (&d)[BM / 2], const uint32_t (&a)[4], uint64_t b) {
  if constexpr (BM == 64) wgmma_m64n64k16(d, a, b);
  else if constexpr (BM == 128) wgmma_m64n128k16(d, a, b);
  else wgmma_m64n256k16(d, a, b);
}
#endif  // AWQ_W4A16_WGMMA

constexpr int round_up(int a, int b) { return (a + b - 1) / b * b; }

template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
struct WgTile {
  static constexpr int kBN = NWG * 64;  // output rows per block
  static constexpr int kRowTiles = NWG * 4;
  static constexpr int kThreads = NWG * 128;
  static constexpr int kParamSlots = SMALL_GROUP ? 4 : 1;
  static constexpr int kXBytes = BM * 128;
  static constexpr int kCodeBytes = kRowTiles * 32 * 16;
  static constexpr int kParamBytes = kRowTiles * kParamSlots * 64;
  static constexpr int kStageBytes = round_up(kXBytes + kCodeBytes + kParamBytes, 1024);  // x at 1024 B
  static constexpr int kPipeBytes = STAGES * CPS * kStageBytes;  // STAGES slots of CPS chunks
  static constexpr int kReduceBytes = BM * kBN * 4;
  // + 1024: the dynamic shared memory is aligned up to 1024 bytes inside the kernel.
  static constexpr int kSmemBytes = (kPipeBytes > kReduceBytes ? kPipeBytes : kReduceBytes) + 1024;
  static constexpr int kMinBlocks = kThreads <= 256 && BM <= 128 ? 2 : 1;  // register cap 128 (or 255)
  static_assert(BM == 64 || BM == 128 || BM == 256, "wgmma N = BM tokens: 64, 128 or 256");
  static_assert(STAGES >= 2, "cp.async pipeline needs two stages or more");
};

// codes: [tiles_n][chunks][32] uint4, params: [tiles_n][k / group][8] uint2 (w4a16.h);
// x: [m, k] fp16 (16-byte aligned rows), bias: [n] or null, y: [m, n]. gl2 = log2(group / 16).
// Grid: (ceil(tiles_n / kRowTiles), ceil(m / BM), splits); splits > 1: clusters (1, 1, splits).
template <int BM, int NWG, int STAGES, int CPS, bool SMALL_GROUP>
__global__ void __launch_bounds__(NWG * 128, (WgTile<BM, NWG, STAGES, CPS, SMALL_GROUP>::kMinBlocks))
    w4a16_wgmma_kernel(const uint4* __restrict__ codes, const uint2* __restrict__ params,
                       const __half* __restrict__ x, const __half* __restrict__ bias,
                       __half* __restrict__ y, int n, int k, int m, int gl2) {
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

  if (splits > 1) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __syncthreads();  // every warpgroup is done with the pipeline's shared memory
    float* part = reinterpret_cast<float*>(smem);  // [BM / 2][kThreads] f32
#pragma unroll
    for (int i = 0; i < BM / 2; ++i) part[i * T::kThreads + tid] = acc[i];
    cluster.sync();
#pragma unroll
    for (int t = 0; t < BM / 8; ++t) {
      if (t % splits != split) continue;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float sum = 0.0f;
        for (int z = 0; z < splits; ++z)
          sum += cluster.map_shared_rank(part, z)[(t * 4 + e) * T::kThreads + tid];
        acc[t * 4 + e] = sum;
      }
    }
    cluster.sync();
  }

  // D fragment: acc[4 t + e] is row lane/4 + 8 (e >= 2) of the warp's row tile, token
  // 8 t + 2 (lane % 4) + (e & 1) of the block.
  const int tn = tn0 + rt;
  if (tn < tiles_n) {
#pragma unroll
    for (int t = 0; t < BM / 8; ++t) {
      if (t % splits != split) continue;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int tok = tok0 + t * 8 + (lane % 4) * 2 + (e & 1);
        const int row = tn * 16 + lane / 4 + (e >= 2 ? 8 : 0);
        if (tok < m && row < n) {
          float v = acc[t * 4 + e];
          if (bias) v += __half2float(bias[row]);
          y[size_t(tok) * size_t(n) + row] = __float2half(v);
        }
      }
    }
  }
#else
  (void)codes, (void)params, (void)x, (void)bias, (void)y, (void)n, (void)k, (void)m, (void)gl2;
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
                kernel, codes, params, x, bias, y, n, k, m, gl2);
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
    W4A16TiledConfig{BM / 8, CPS, 1, NWG * 4, ST, BM, NWG * 64, NWG * 128, true},                       \
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
};
#undef AWQ_W4A16_WGMMA_CFG
constexpr int kNumWgmma = int(sizeof(kWgmma) / sizeof(kWgmma[0]));

bool wgmma_ok = false;
int wgmma_optin = 0;

}  // namespace

int w4a16_wgmma_count() { return kNumWgmma; }
W4A16TiledConfig w4a16_wgmma_config(int i) { return kWgmma[i].cfg; }

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
    if (wgmma_ok)
      for (const WgmmaEntry& e : kWgmma) e.prepare(wgmma_optin);
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
  kWgmma[config].launch(splits, codes, params, x, bias, y, int(n), int(k), int(m), w4a16_group_tiles_log2(group), s);
}

}  // namespace awq::cuda
