// Hopper warpgroup MMA (wgmma) helpers shared by the wgmma W4A16 GEMMs (w4a16_wgmma.cu: the
// warpgroups copy their own tiles with cp.async; w4a16_wgmma_ws.cu: a producer warp loads them
// with TMA into an mbarrier ring). sm_90a device code only: include it where
// AWQ_W4A16_WGMMA is 1 (the instructions exist for no other target). Internal to src/ops/cuda.
#pragma once
#include <cooperative_groups.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

// wgmma needs the arch-specific sm_90a target (CMAKE_CUDA_ARCHITECTURES=90a); any other device
// code (sm_80, plain sm_90) compiles the kernels to a trap and the host never launches them
// (w4a16_wgmma_available reads what the device code was built for).
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AWQ_W4A16_WGMMA 1
#else
#define AWQ_W4A16_WGMMA 0
#endif

namespace awq::cuda::w4a16_wgmma_device {

// Shared memory the split-K reduction needs (store_split_k_in_cluster, push form below): its
// [tp][splits][threads] float4 for splits 2..8, tp = ceil(T / splits) of the T = bm / 8 token tiles.
constexpr int split_k_reduce_bytes(int bm, int threads) {
  int most = 0;
  for (int s = 2; s <= 8; ++s) {
    const int need = (bm / 8 + s - 1) / s * s;
    most = need > most ? need : most;
  }
  return most * threads * 16;
}

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

// wgmma.mma_async m64nNk16, f32 += f16 x f16: d[N / 2] += A (64 x 16, registers a) * B (16 x N,
// shared memory, descriptor b). In the instruction the accumulators are %0 .. %(N / 2 - 1), in
// groups of 16 (AWQ_WGMMA_D<g>; their operands AWQ_WGMMA_F16(16 g)), then a[4] and b.
#define AWQ_WGMMA_D0 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
#define AWQ_WGMMA_D1 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define AWQ_WGMMA_D2 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define AWQ_WGMMA_D3 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define AWQ_WGMMA_D4 "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define AWQ_WGMMA_D5 "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define AWQ_WGMMA_D6 "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111"
#define AWQ_WGMMA_D7 "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define AWQ_WGMMA_F4(i) "+f"(d[(i)]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3])
#define AWQ_WGMMA_F16(i) AWQ_WGMMA_F4(i), AWQ_WGMMA_F4((i) + 4), AWQ_WGMMA_F4((i) + 8), AWQ_WGMMA_F4((i) + 12)
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
               AWQ_WGMMA_D0 ", " AWQ_WGMMA_D1
               "}, {%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
               : AWQ_WGMMA_F16(0), AWQ_WGMMA_F16(16)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
               AWQ_WGMMA_D0 ", " AWQ_WGMMA_D1
               ", " AWQ_WGMMA_D2 ", " AWQ_WGMMA_D3
               "}, {%64, %65, %66, %67}, %68, 1, 1, 1, 0;\n"
               : AWQ_WGMMA_F16(0), AWQ_WGMMA_F16(16), AWQ_WGMMA_F16(32), AWQ_WGMMA_F16(48)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_m64n192k16(float (&d)[96], const uint32_t (&a)[4], uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n192k16.f32.f16.f16 {"
               AWQ_WGMMA_D0 ", " AWQ_WGMMA_D1
               ", " AWQ_WGMMA_D2 ", " AWQ_WGMMA_D3
               ", " AWQ_WGMMA_D4 ", " AWQ_WGMMA_D5
               "}, {%96, %97, %98, %99}, %100, 1, 1, 1, 0;\n"
               : AWQ_WGMMA_F16(0), AWQ_WGMMA_F16(16), AWQ_WGMMA_F16(32),
                 AWQ_WGMMA_F16(48), AWQ_WGMMA_F16(64), AWQ_WGMMA_F16(80)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], const uint32_t (&a)[4], uint64_t b) {
  asm volatile("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {"
               AWQ_WGMMA_D0 ", " AWQ_WGMMA_D1
               ", " AWQ_WGMMA_D2 ", " AWQ_WGMMA_D3
               ", " AWQ_WGMMA_D4 ", " AWQ_WGMMA_D5
               ", " AWQ_WGMMA_D6 ", " AWQ_WGMMA_D7
               "}, {%128, %129, %130, %131}, %132, 1, 1, 1, 0;\n"
               : AWQ_WGMMA_F16(0), AWQ_WGMMA_F16(16), AWQ_WGMMA_F16(32), AWQ_WGMMA_F16(48),
                 AWQ_WGMMA_F16(64), AWQ_WGMMA_F16(80), AWQ_WGMMA_F16(96), AWQ_WGMMA_F16(112)
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
}
#undef AWQ_WGMMA_D0
#undef AWQ_WGMMA_D1
#undef AWQ_WGMMA_D2
#undef AWQ_WGMMA_D3
#undef AWQ_WGMMA_D4
#undef AWQ_WGMMA_D5
#undef AWQ_WGMMA_D6
#undef AWQ_WGMMA_D7
#undef AWQ_WGMMA_F4
#undef AWQ_WGMMA_F16

template <int BM>
__device__ __forceinline__ void wgmma_tokens(float (&d)[BM / 2], const uint32_t (&a)[4], uint64_t b) {
  if constexpr (BM == 64) wgmma_m64n64k16(d, a, b);
  else if constexpr (BM == 128) wgmma_m64n128k16(d, a, b);
  else if constexpr (BM == 192) wgmma_m64n192k16(d, a, b);
  else wgmma_m64n256k16(d, a, b);
}

// mbarrier (shared-memory transaction barrier) and bulk-copy helpers for the producer/consumer
// ring of w4a16_wgmma_ws.cu. bar: the barrier's shared-memory address (8-byte aligned).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialised barriers visible to the other threads and to the async proxy (TMA).
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// One arrival that also expects `bytes` of copies (complete_tx) in the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Returns once the phase of parity `parity` has completed. CLUSTER: acquire at cluster scope, for
// a barrier that other blocks of the cluster complete (st.async); else the default, CTA scope.
template <bool CLUSTER = false>
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    if constexpr (CLUSTER)
      asm volatile(
          "{\n.reg .pred p;\n"
          "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\n"
          "selp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(bar), "r"(parity)
          : "memory");
    else
      asm volatile(
          "{\n.reg .pred p;\n"
          "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
          "selp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(bar), "r"(parity)
          : "memory");
  } while (!done);
}
// The split-K reduction's mbarrier (store_split_k_in_cluster): one arrival (the expected bytes),
// made visible to the cluster's other blocks, whose st.async complete on it. Thread 0, at the
// kernel's start (racecheck flagged an init next to its first use as a hazard, session 23).
__device__ __forceinline__ void init_split_k_barrier(uint32_t bar) {
  mbar_init(bar, 1);
  mbar_init_fence();
}
// bytes (a multiple of 16; both addresses 16-byte aligned) global -> shared, completing on bar.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
// The box at (c0 inner, c1 outer) of the 2-D tensor map (a __grid_constant__ kernel parameter)
// -> shared dst, completing on bar; elements outside the tensor arrive as zeros.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(map), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
// The same for a 3-D tensor map, box at (c0 inner, c1, c2 outer).
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const void* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          dst),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const void* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(map) : "memory");
}
// Where a thread's D fragment goes in y: acc[4 t + e] is row lane/4 + 8 (e >= 2) of row tile tn,
// token tok0 + 8 t + 2 (lane % 4) + (e & 1), plus the row's bias. Built once per thread, so that
// storing a token tile costs a few instructions (the epilogue's code and instruction count
// showed in ncu: a per-element form with a runtime split filter took ~1600 instructions a warp,
// fetch-bound, docs/results/gpu.md, session 23).
struct DFragmentOut {
  __half* y;          // the lane's first token, row r0 = tn * 16 + lane / 4 (never dereferenced unless stored)
  int n;              // y's row stride (outputs)
  int tok_left;       // tokens from the lane's first to m: tokens 8 t + j with 8 t + j < tok_left exist
  bool row0, row1;    // rows r0 and r0 + 8 exist (and the row tile: tn < tiles_n)
  bool has_bias;
  float b0, b1;       // their bias
  // Token tile t of the fragment: v = (row r0, token j), (r0, j + 1), (r0 + 8, j), (r0 + 8, j + 1).
  __device__ __forceinline__ void put(float4 v, int t) const {
    const int j = 8 * t;
    __half* p = y + size_t(j) * size_t(n);
    if (has_bias) {
      v.x += b0, v.y += b0;
      v.z += b1, v.w += b1;
    }
    if (j < tok_left) {
      if (row0) p[0] = __float2half(v.x);
      if (row1) p[8] = __float2half(v.z);
    }
    if (j + 1 < tok_left) {
      if (row0) p[n] = __float2half(v.y);
      if (row1) p[n + 8] = __float2half(v.w);
    }
  }
};
// y: [m, n] f16; bias: [n] or null.
__device__ __forceinline__ DFragmentOut d_fragment_out(int tn, int tiles_n, int tok0, int lane, int m, int n,
                                                       const __half* bias, __half* y) {
  const int r0 = tn * 16 + lane / 4, first = tok0 + (lane % 4) * 2;
  DFragmentOut o;
  o.y = y + size_t(first) * size_t(n) + r0;
  o.n = n;
  o.tok_left = m - first;
  o.row0 = tn < tiles_n && r0 < n;
  o.row1 = tn < tiles_n && r0 + 8 < n;
  o.has_bias = bias != nullptr;
  o.b0 = o.has_bias && o.row0 ? __half2float(bias[r0]) : 0.0f;
  o.b1 = o.has_bias && o.row1 ? __half2float(bias[r0 + 8]) : 0.0f;
  return o;
}
// acc's token tile t as a float4.
template <int BM>
__device__ __forceinline__ float4 d_token_tile(const float (&acc)[BM / 2], int t) {
  return make_float4(acc[4 * t], acc[4 * t + 1], acc[4 * t + 2], acc[4 * t + 3]);
}
// Writes the whole fragment (an unsplit tile).
template <int BM>
__device__ __forceinline__ void store_d_fragment(const float (&acc)[BM / 2], const DFragmentOut& out) {
#pragma unroll
  for (int t = 0; t < BM / 8; ++t) out.put(d_token_tile<BM>(acc, t), t);
}

// Split-K across the cluster's blocks, then the store: every block of the cluster calls it with
// its partial sums (acc: the calling thread's D fragment, [BM / 2] f32), and each token tile of
// the output is summed and stored by one block, its owner, in a fixed order: rank 0, 1, .. from
// 0.0f (deterministic, and the same bits in both forms below). smem (free once the caller has
// synchronized its threads): split_k_reduce_bytes(BM, THREADS) above; red_bar: an mbarrier
// outside it, initialized by the kernel (init_split_k_barrier) before its threads' last
// __syncthreads ahead of this call.
//  - push: block o owns the token tiles [o tp, (o + 1) tp), tp = ceil(BM / 8 / splits). Each
//    block writes its own tiles' partials locally and arms its mbarrier for the bytes the peers
//    will send; after one cluster barrier (every block is done with its pipeline's shared memory,
//    which the partials overwrite, and its mbarrier is armed) it sends its partials of every other
//    tile straight into the owner's shared memory, [tp local tiles][splits sources][THREADS]
//    float4 there, with st.async, which counts the bytes on the owner's mbarrier; each owner
//    waits on its own mbarrier for them, sums and stores. One cluster barrier: no block reads
//    another's shared memory, and a block's memory is written only before its own wait returns.
//    The rank loops run at run time and acc is read only by compile-time index, so the code stays
//    small whatever splits is. (Session 23: the push form before unrolled every rank loop to
//    BM / 8 under a runtime predicate, ~3000 instructions a warp, fetch-bound, 11-14 us on the
//    128 x 192 tile; then plain remote stores and a second cluster barrier, whose GPU-scope fence
//    waited for them: st.async is 4-9 % faster on every split pick, docs/results/gpu.md. The
//    zeros that the plain stores needed for racecheck, written where the peers' partials go, are
//    not needed with st.async: 0 hazards.)
//  - else (the form before branch gpu10, AWQ_W4A16_CLUSTER_PUSH=0): each block leaves its
//    partials in its own shared memory and the owner of token tile t (rank t % splits) loads
//    them from every rank, one remote round trip after another: BM / 2 per thread. Two cluster
//    barriers.
// Every thread of every block of the cluster calls it; any other thread of the block (a producer
// warpgroup) must take part in the cluster barriers: one (push) or two.
template <int BM, int THREADS>
__device__ __forceinline__ void store_split_k_in_cluster(const float (&acc)[BM / 2], void* smem, uint32_t red_bar,
                                                         int tid, int split, int splits, bool push,
                                                         const DFragmentOut& out) {
  constexpr int T = BM / 8;  // token tiles: a float4 of each per thread
  cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  if (push) {
    float4* part = reinterpret_cast<float4*>(smem);
    const uint32_t part_addr = static_cast<uint32_t>(__cvta_generic_to_shared(part));
    const int tp = (T + splits - 1) / splits;
    const int first = split * tp, count = max(0, min(T, first + tp) - first);
    const auto slot = [&](int lt, int z) { return (lt * splits + z) * THREADS + tid; };
#pragma unroll
    for (int t = 0; t < T; ++t)
      if (t >= first && t < first + count) part[slot(t - first, split)] = d_token_tile<BM>(acc, t);
    if (tid == 0) mbar_arrive_expect_tx(red_bar, uint32_t(count * (splits - 1) * THREADS * 16));
    cluster.sync();  // every block is done with its pipeline's shared memory and has armed its barrier
    for (int o = 0; o < splits; ++o) {
      if (o == split) continue;
      uint32_t peer_part, peer_bar;
      asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(peer_part) : "r"(part_addr), "r"(o));
      asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(peer_bar) : "r"(red_bar), "r"(o));
      const int f = o * tp;
#pragma unroll
      for (int t = 0; t < T; ++t)
        if (t >= f && t < f + tp) {
          const float4 v = d_token_tile<BM>(acc, t);
          asm volatile(
              "st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];\n" ::"r"(
                  peer_part + uint32_t(slot(t - f, split)) * 16u),
              "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(peer_bar)
              : "memory");
        }
    }
    mbar_wait<true>(red_bar, 0);  // the peers' partials of this block's tiles have landed (phase 0)
    for (int lt = 0; lt < count; ++lt) {
      float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int z = 0; z < splits; ++z) {
        const float4 v = part[slot(lt, z)];
        sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
      }
      out.put(sum, first + lt);
    }
    return;
  }
  // part: [BM / 2][THREADS] f32, this block's own partials.
  float* part = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int i = 0; i < BM / 2; ++i) part[i * THREADS + tid] = acc[i];
  cluster.sync();
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t % splits != split) continue;
    float e4[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float sum = 0.0f;
      for (int z = 0; z < splits; ++z) sum += cluster.map_shared_rank(part, z)[(t * 4 + e) * THREADS + tid];
      e4[e] = sum;
    }
    out.put(make_float4(e4[0], e4[1], e4[2], e4[3]), t);
  }
  cluster.sync();
}

// Split-K through global memory (L2) instead of a cluster: the same owners (block z sums token
// tiles [z tp, (z + 1) tp), tp = ceil(BM / 8 / splits)) and the same order of additions (rank 0,
// 1, .. from 0.0f) as store_split_k_in_cluster's push form, so the same bits. Each block writes
// its partials of the other owners' tiles to `parts`, counts itself on the tile's `arrived`
// counter and, if it owns tiles, waits until every split has counted, then reads the peers'
// partials of its tiles (its own from shared memory) and stores their sums. Why: a cluster
// needs its blocks on the SMs of one GPC, and clusters of 3 or 6 one-block-per-SM tiles fit only
// 117 or 102 of the H100's 132 SMs, so the grids of 132 blocks that split 3 or 6 make on the
// 7B's narrow layers (22 row blocks of 192) would take two waves as clusters.
// The owners wait for their peers: every block of the grid must be resident at once (the host
// launches this form only for grids of at most one block per SM, as a cooperative launch, which
// the driver refuses where the blocks could not all be resident; w4a16_wgmma_ws.cu).
// parts: this output tile's [splits sources][BM / 8 token tiles][THREADS] float4 (global);
// counters: this tile's [2] u32 (arrived, departed), zero before the launch; the last block to
// leave sets both back to zero. smem: free shared memory (the caller has synchronized its
// threads after the pipeline), ceil(BM / 8 / splits) * THREADS float4. sync: a barrier over the
// THREADS threads that call this (every thread of the block's consumers).
// Timing experiments only (never the product; the results are then wrong): a build with
// -DAWQ_W4A16_L2_ABLATE=1 leaves out the owners' wait for their peers, =2 the partials' stores
// and loads (docs/results/gpu.md, session 24).
#ifndef AWQ_W4A16_L2_ABLATE
#define AWQ_W4A16_L2_ABLATE 0
#endif
template <int BM, int THREADS, class Sync>
__device__ __forceinline__ void store_split_k_through_l2(const float (&acc)[BM / 2], float4* parts,
                                                         unsigned* counters, void* smem, int tid, int split,
                                                         int splits, Sync sync, const DFragmentOut& out) {
  constexpr int T = BM / 8;  // token tiles: a float4 of each per thread
  const int tp = (T + splits - 1) / splits;
  const int first = split * tp, count = max(0, min(T, first + tp) - first);
  float4* own = reinterpret_cast<float4*>(smem);  // [count][THREADS]: this block's partials of its tiles
  const auto part = [&](int z, int t) { return parts + (size_t(z) * T + size_t(t)) * THREADS + tid; };
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t >= first && t < first + count) own[(t - first) * THREADS + tid] = d_token_tile<BM>(acc, t);
    else if (!(AWQ_W4A16_L2_ABLATE & 2)) __stcg(part(split, t), d_token_tile<BM>(acc, t));
  }
  // Release and acquire as CUTLASS's generic barrier does: the block's barrier orders its
  // threads' stores before thread 0's GPU-scope release (fence.acq_rel + the count), and thread
  // 0's acquire of the peers' counts before the block's loads (the barrier after the wait).
  sync();
  if (tid == 0) {
    unsigned* arrived = counters;
    unsigned* departed = counters + 1;
    asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
    asm volatile("red.relaxed.gpu.global.add.u32 [%0], 1;\n" ::"l"(arrived) : "memory");
    if (count > 0 && !(AWQ_W4A16_L2_ABLATE & 1)) {
      for (;;) {
        unsigned seen;
        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(seen) : "l"(arrived) : "memory");
        if (seen >= unsigned(splits)) break;
        __nanosleep(32);
      }
    }
    // Every owner of the tile has seen all the arrivals once all splits have left: reset.
    if (atomicAdd(departed, 1u) == unsigned(splits - 1)) {
      atomicExch(arrived, 0u);
      atomicExch(departed, 0u);
    }
  }
  if (count == 0) return;
  sync();
  // The sums, (tile, source) pairs in order, 16 loads in flight per thread at a time.
  const int pairs = count * splits;
  float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  int lt = 0, z = 0;  // the pair of the next addition
  for (int i0 = 0; i0 < pairs; i0 += 16) {
    float4 v[16];
    int ll = lt, zz = z;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      if (i0 + j < pairs)
        v[j] = zz == split || (AWQ_W4A16_L2_ABLATE & 2) ? own[ll * THREADS + tid] : __ldcg(part(zz, first + ll));
      if (++zz == splits) zz = 0, ++ll;
    }
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      if (i0 + j < pairs) {
        sum.x += v[j].x, sum.y += v[j].y, sum.z += v[j].z, sum.w += v[j].w;
        if (z == splits - 1) {
          out.put(sum, first + lt);
          sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
      }
      if (++z == splits) z = 0, ++lt;
    }
  }
}

#endif  // AWQ_W4A16_WGMMA

}  // namespace awq::cuda::w4a16_wgmma_device
