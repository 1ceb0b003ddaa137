// W4A16 linear layers on the GPU: 4-bit (or 3-bit) AutoAWQ weights, fp16 activations, fp32
// accumulation on tensor cores (mma.sync m16n8k16), and the cuBLAS FP16 linear to compare with.
//
// API contract (the `cudamodel` branch codes against it; a change here gets a note below):
//  - upload_w4a16 repacks one AutoAWQ GEMM linear into the kernel layout on the device (the
//    repack runs on the GPU; the host only copies the three checkpoint tensors once).
//  - w4a16_linear / fp16_linear are asynchronous on stream s, allocate nothing, and may be
//    captured in a CUDA graph. x, y, bias are device pointers; x and y must not overlap.
//  - Errors (bad shapes, CUDA failures) throw awq::Error.
//
// Kernel layout (internal; only w4a16.cu reads it). Output rows in blocks of 16 ("row tiles",
// n padded up to a multiple of 16), inputs in tiles of 16, four k-tiles per 16-byte chunk:
//   codes:  [n_pad / 16][ceil(k / 64)][32 lanes] uint4; word j of lane l holds the 8 codes that
//           lane l feeds into mma.sync's A fragment for k-tile 4c + j (rows l/4 and l/4 + 8,
//           columns 2(l%4) + {0, 1, 8, 9}), nibble order {r c, r+8 c, r c+8, r+8 c+8,
//           r c+1, r+8 c+1, r c+9, r+8 c+9} so that two lop3 + one shift give four fp16 pairs.
//   params: [n_pad / 16][k / group][8] x 4 fp16 = {s_r, s_r+8, 1024 + z_r, -(64 + z_r+8)} per
//           row pair (r, r + 8): the dequantized weight is fp16((q - z) * s) exactly, as AutoAWQ.
// Notes on changes:
//  - branch gpugemm: a shared-memory tiled GEMM (w4a16_tiled.cu) on the same layout takes
//    m >= 9; API unchanged. w4a16_linear reads AWQ_W4A16_KERNEL once (auto | legacy | tiled;
//    docs/gpu.md) and throws awq::Error on another value. x rows must be 4-byte aligned as
//    before; the tiled GEMM wants x 16-byte aligned and falls back to the legacy kernels if not.
//    upload_w4a16 also sets the tiled kernels' shared-memory limits and probes the device code's
//    architecture once (synchronous, like the rest of upload).
//  - branch gpu2: a Hopper wgmma GEMM (w4a16_wgmma.cu, sm_90a device code only) on the same
//    layout takes m > 32; API unchanged. AWQ_W4A16_WGMMA=0 turns it off (read once at the
//    first upload; another value than 0/1 throws awq::Error).
//  - branch gpu4: register-streaming configurations that stage x in shared memory ("xs",
//    w4a16_kernels.cu) take the decode sizes where they measured faster; API unchanged.
//    AWQ_W4A16_XSMEM=0 turns them off (read once; another value than 0/1 throws awq::Error).
//    upload_w4a16 also raises their shared-memory limit once.
//  - branch gpu8: m = 1 on a long K (k >= 8192, n < 8192: down_proj) runs 10 warps splitting K;
//    API unchanged. AWQ_W4A16_LONG_K=0 turns it off (read once; another value throws awq::Error).
//  - 2026-11-27: K-slice kernels (w4a16_kslice.cu) take m = 2..16 where they measured faster;
//    API unchanged. AWQ_W4A16_KSLICE=0 turns them off, AWQ_W4A16_KSLICE_PDL=0 launches their
//    clusters without PDL (read once; another value throws awq::Error). upload_w4a16 also sets
//    their shared-memory limit once.
//  - branch gpu11: 192-row TMA wgmma tiles (w4a16_wgmma_ws.cu) take m = 97..512 where their grid
//    fills whole waves; API unchanged. AWQ_W4A16_WAVE_TILES=0 turns them off (read once;
//    another value throws awq::Error).
//  - 2026-11-28 (session 24): their twins with split-K through L2 instead of clusters take
//    splits of 3..8 that fill one wave (down_proj at m = 64..256, o_proj at m = 193..256 on a
//    7B); API unchanged. AWQ_W4A16_L2_SPLIT=0 turns them off (read once; another value throws
//    awq::Error). Such launches share the process's stream-K workspace: not on two streams at once.
//  - 2026-11-28 (session 29): w4a16_tune_linear times the tiled GEMM's candidate tiles for a
//    weight's shape once per process and w4a16_linear then runs the fastest (w4a16_tune.h);
//    without it, the rules' picks as before. AWQ_W4A16_TUNE=0 makes it a no-op.
//  - 2026-11-28 (session 30): it also times the decode kernels at m = 1 (the register-streaming
//    variants and K-slice configurations), and saves its picks in a cache file that later
//    processes read instead of timing (AWQ_W4A16_TUNE_CACHE: a path, or 0 for none; default
//    ~/.cache/awq/w4a16-picks.tsv; w4a16_tune_cache.h). API unchanged.
#pragma once
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ops/cpu/matrix.h"

namespace awq::cuda {

struct W4A16Weight {
  int64_t n = 0, k = 0;  // out_features, in_features
  int group = 0;         // input channels per scale / zero point
  int bits = 4;          // 4 or 3 (same nibble layout)
  void* codes = nullptr;   // device: the repacked codes (layout above)
  void* params = nullptr;  // device: scales and zero points (layout above)
  size_t bytes() const;    // device bytes of codes + params (what one linear reads)
};

// Repacks one AutoAWQ GEMM linear (m.qweight [k_in, n_out/8], m.qzeros [k_in/group, n_out/8],
// m.scales [k_in/group, n_out] fp16, host memory) into the kernel layout on the device.
// Needs n_out % 8 == 0, a power-of-two group >= 16 that divides k_in, bits 3 or 4; otherwise
// awq::Error. Synchronizes s before returning (the host buffers may be freed then).
W4A16Weight upload_w4a16(const AwqMatrix& m, int64_t n_out, int64_t k_in, cudaStream_t s);
void free_w4a16(W4A16Weight& w);

// y[m, n] = x[m, k] W^T (+ bias[n] if non-null), fp16 in/out, fp32 accumulate.
// x: [m, k] fp16 row-major, bias: [n] fp16 or nullptr, y: [m, n] fp16 row-major (device).
// Picks the kernel configuration by m and n (w4a16_kernels.cu). m == 0: no-op.
void w4a16_linear(const W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y,
                  cudaStream_t s);

// Measured picks (w4a16_tune.h): times the candidate kernels for the shape of ws (weights of one
// shape, e.g. every layer's o_proj; the timed calls cycle through them so that each reads its
// weights from memory, as in a model's step) at m = 1, at 4-token buckets of m = 2..16 and at the
// tiled GEMM's buckets of m = 17..min(m_max, 512) (64 tokens wide on sm_90a wgmma devices, 16 to 64
// elsewhere: w4a16_tune_bucket) on this GPU, once per process and shape, or reads them from the
// cache file (AWQ_W4A16_TUNE_CACHE; w4a16_tune_cache.h); w4a16_linear (and w4a16_linear_silu)
// then run the fastest there. x: [m_max, k] (overwritten with pseudo-random values where anything
// is timed) and y: [m_max, n] (overwritten) device scratch. Not while s is being captured. A
// no-op with AWQ_W4A16_TUNE=0, or where tuned already. Times under the caller's PDL
// mode (pdl.h PdlScope; PDL applies on a created stream s). Synchronizes s. Returns a line for a
// log ("" where nothing was timed or read from the cache).
std::string w4a16_tune_linear(const std::vector<const W4A16Weight*>& ws, int64_t m_max, __half* x, __half* y,
                              cudaStream_t s);

// The fused gate/up projection and its SiLU product: w's n rows are gate and up in alternating
// packs of 8 (cuda_ops.h silu_mul, interleaved), act: [m, n / 2] = silu(x gate^T (+ bias)) *
// (x up^T (+ bias)). The decode kernels (m <= 16 by default) make act in their epilogue, one
// launch; elsewhere the projection goes to gu: [m, n] (scratch) and silu_mul follows. The same
// bits either way. n % 16 == 0.
void w4a16_linear_silu(const W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* gu,
                       __half* act, cudaStream_t s);

// FP16 weights via cuBLAS: y[m, n] = x[m, k] W^T (+ bias[n] if non-null), fp32 accumulate.
// w: [n, k] fp16 row-major (nn.Linear layout), x: [m, k], y: [m, n] (device). Sets h's stream to s.
void fp16_linear(cublasHandle_t h, const __half* w, int64_t n, int64_t k, const __half* x,
                 int64_t m, const __half* bias, __half* y, cudaStream_t s);

}  // namespace awq::cuda
