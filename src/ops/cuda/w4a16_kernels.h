// Host launchers of the W4A16 kernels (w4a16_kernels.cu); layout: w4a16.h. Internal to
// src/ops/cuda: callers use w4a16.h.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace awq::cuda {

// AutoAWQ GEMM tensors on the device -> kernel layout. qweight: [k, n/8], qzeros: [k/group, n/8],
// scales: [k/group, n] fp16; codes: [ceil(n/16)][ceil(k/64)][32] uint4, params:
// [ceil(n/16)][k/group][8] uint2.
void launch_repack(const int32_t* qweight, const int32_t* qzeros, const __half* scales, int64_t n,
                   int64_t k, int group, uint4* codes, uint2* params, cudaStream_t s);

// Which kernel family launch_w4a16 uses (environment variable AWQ_W4A16_KERNEL, read once by
// w4a16_linear): Auto = the K-slice kernels (w4a16_kslice.cu) where w4a16_default_kslice picks
// one (m = 2..16), else the register-streaming kernels (w4a16_kernels.cu) for m <= 8 and the
// shared-memory tiled GEMM (w4a16_tiled.cu) above; Legacy = the register-streaming kernels for
// every m (the fallback if the tiled one misbehaves); Tiled = the tiled GEMM for every m.
// The K-slice kernels and the tiled GEMM need x 16-byte aligned; an x that is not falls back to
// the legacy kernels.
enum class W4A16Path { Auto, Legacy, Tiled };
// log2(group / 16): the kernels index a k-tile's scale/zero pair by kt >> this (w4a16.cu
// checks that group / 16 is a power of two).
inline int w4a16_group_tiles_log2(int group) {
  int gl2 = 0;
  while ((16 << gl2) < group) ++gl2;
  return gl2;
}
constexpr int64_t kW4A16TiledMinTokens = 9;  // Auto: the tiled GEMM from this m on, except:
// Auto at m = 9..16 on a small layer (n < 8192 and k < 8192: o_proj), where a register-streaming
// kernel with two token tiles measured faster (x staged in shared memory; AWQ_W4A16_XSMEM=0 gives
// the tiled GEMM there, as before). True where Auto runs the tiled GEMM (x 16-byte aligned).
bool w4a16_auto_uses_tiled(int64_t m, int64_t n, int64_t k);
// AWQ_W4A16_KERNEL's value: null or "" or "auto", "legacy", "tiled"; anything else: awq::Error.
W4A16Path parse_w4a16_path(const char* value);
W4A16Path w4a16_path_from_env();  // parse_w4a16_path(getenv("AWQ_W4A16_KERNEL")), cached

// y: [m, n] = x: [m, k] W^T (+ bias: [n]). Kernel chosen by path and m (and n).
// gated (where w4a16_gated_output_available): the n rows are gate and up in alternating packs
// of 8 and y: [m, n / 2] = silu(gate) * up, made in the kernel's epilogue (w4a16_device.cuh
// store_c_fragment; the same bits as y followed by silu_mul); awq::Error where the pick is
// the tiled GEMM, which has no such epilogue.
void launch_w4a16(const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                  __half* y, int64_t n, int64_t k, int group, int64_t m, W4A16Path path,
                  cudaStream_t s, bool gated = false);
// The gate/up projection (rows interleaved in packs of 8, n % 16 == 0) and its SiLU product
// act: [m, n / 2], the kernel picked once: with the gated epilogue where the pick has one, else
// the projection into gu: [m, n] and silu_mul (w4a16.h w4a16_linear_silu).
void launch_w4a16_silu(const uint4* codes, const uint2* params, const __half* x, const __half* bias, __half* gu,
                       __half* act, int64_t n, int64_t k, int group, int64_t m, W4A16Path path, cudaStream_t s);
// True where launch_w4a16 runs a kernel with the gated epilogue for these sizes (the K-slice
// and register-streaming kernels: m <= 16 by default) and n % 16 == 0.
bool w4a16_gated_output_available(const __half* x, int64_t m, int64_t n, int64_t k, W4A16Path path);

// Tuning (tests and bench): the kernel configurations compiled in. A block computes wn x rt
// row tiles (16 wn rt outputs) for mt token tiles (8 mt tokens): wn groups of wk warps, the wk
// warps of a group split K, each warp holds rt row tiles.
// xs: x staged in the block's shared memory (one copy per block) instead of each warp loading
// its fragments from L2; the launch runs the xs = false kernel where x is not 16-byte aligned or
// min(m, 8 mt) rows of k would not fit (w4a16_kernels.cu, kXsMaxBytes).
// sa: a chunk's products are made from the unscaled codes and multiplied by the scale in f32
// afterwards (groups >= 64; w4a16_kernels.cu).
struct W4A16Variant {
  int mt, wk, wn, rt;
  bool xs = false;
  bool sa = false;
};
int w4a16_variant_count();
W4A16Variant w4a16_variant(int i);
int w4a16_default_variant(int64_t m, int64_t n, int64_t k);  // what launch_w4a16 picks for m x k -> n
// AWQ_W4A16_XSMEM: "0" = the decode sizes (m <= 8) take the kernels that read x from L2 (as
// before the xs variants; the baseline for comparisons), "1" or unset = the xs variants;
// anything else: awq::Error. parse_w4a16_xsmem parses a value, w4a16_xsmem_from_env reads once.
bool parse_w4a16_xsmem(const char* value);
bool w4a16_xsmem_from_env();
// AWQ_W4A16_SCALE_AFTER: "0" = the decode sizes (m <= 8) run the kernels that scale the weights
// before the mma (the choices before the sa variants; the baseline for comparisons), "1" or
// unset = the sa variants where they measured faster (m = 1; (1, 8, 1, 2) xs at m = 2..8);
// anything else: awq::Error. Read once.
bool parse_w4a16_scale_after(const char* value);
bool w4a16_scale_after_from_env();
// AWQ_W4A16_LONG_K: "0" = m = 1 on a long K (k >= 8192, n < 8192: down_proj) runs 8 warps
// splitting K as before branch gpu8 (the baseline for comparisons), "1" or unset = 10 warps
// (with xs and sa on; measured faster on the H100); anything else: awq::Error. Read once.
bool parse_w4a16_long_k(const char* value);
bool w4a16_long_k_from_env();
// Raises the xs kernels' shared-memory limit once (upload_w4a16 calls it outside any capture).
void w4a16_prepare_streaming();
void launch_w4a16_variant(int variant, const uint4* codes, const uint2* params, const __half* x,
                          const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                          cudaStream_t s, bool gated = false);  // gated: as launch_w4a16's

// The K-slice kernels (w4a16_kslice.cu; m = 2..16 by default): register-streaming weights like
// the variants above, but a block covers wn row tiles (16 wn rows), wk warps each, over one slice
// of K, and its warps share one shared-memory copy of that slice of x (mt token tiles: 8 mt
// tokens); u chunks of 64 inputs a register stage; the `splits` slices of a row group are a thread block cluster that sums
// through distributed shared memory in rank order (deterministic; splits > 1 needs
// w4a16_split_k_available()).
struct W4A16KSliceConfig {
  int mt, wn, wk, u;  // token tiles, row tiles a block, warps a row tile (splitting its slice), chunks a stage
};
int w4a16_kslice_count();
W4A16KSliceConfig w4a16_kslice_config(int i);
// Sets the kernels' shared-memory limit once (upload_w4a16 calls it outside any capture).
void w4a16_prepare_kslice();
// True where configuration `config` with `splits` slices (1..8) runs on this device and build
// for m tokens of k inputs (the slice of x and the partial sums fit in a block's shared memory).
bool w4a16_kslice_fits(int config, int splits, int64_t m, int64_t k);
// y: [m, n] = x: [m, k] W^T (+ bias: [n]); any m >= 1; x 16-byte aligned, k % 16 == 0.
// awq::Error where !w4a16_kslice_fits.
void launch_w4a16_kslice(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                         const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                         cudaStream_t s, bool gated = false);  // gated: as launch_w4a16's
struct W4A16KSliceChoice {
  int config = -1, splits = 1;  // config -1: launch_w4a16 runs the register-streaming variants or the tiled GEMM
};
// What launch_w4a16 (Auto) runs for m tokens, n outputs, k inputs, with AWQ_W4A16_KSLICE on
// (H100 sweeps; docs/gpu.md), for x 16-byte aligned.
W4A16KSliceChoice w4a16_default_kslice(int64_t m, int64_t n, int64_t k);
// AWQ_W4A16_KSLICE: "0" = the dispatch never picks the K-slice kernels (the picks before them:
// the baseline for comparisons, or a fallback without a rebuild), "1" or unset = it does where
// they measured faster; anything else: awq::Error. Read once.
bool parse_w4a16_kslice(const char* value);
bool w4a16_kslice_from_env();
// AWQ_W4A16_KSLICE_PDL: "1" or unset = the K-slice kernels' cluster launches (splits > 1) carry
// the PDL attribute where PDL is on (H100 decode at batch 2-16: 1-3 % faster than without);
// "0" = they do not (as the tiled GEMM's split-K). Anything else: awq::Error. Read once.
bool parse_w4a16_kslice_pdl(const char* value);
bool w4a16_kslice_pdl_from_env();
// AWQ_W4A16_KSLICE_THIN: "1" or unset = on wide layers where the K-slice rule's grid is too thin
// (qkv of a 7B at m = 2..16), 2 splits of a narrower configuration (w4a16_kslice.cu
// thin_grid_pick; H200 sweep); "0" = the picks before session 26 there (the register-streaming
// kernels, the tiled GEMM). Anything else: awq::Error. Read once.
bool parse_w4a16_kslice_thin(const char* value);
bool w4a16_kslice_thin_from_env();
// The device's SM count (queried once; 132 where it cannot be read).
int w4a16_sm_count();

// The tiled GEMM (w4a16_tiled.cu): block tile bm tokens x bn output rows, wt x wr warps, each
// warp tt token tiles (8 tokens) x rt row tiles (16 rows), a `stages`-deep cp.async pipeline.
// wgmma: a configuration of the Hopper wgmma GEMM (w4a16_wgmma.cu; tt = bm / 8 token tiles,
// rt = chunks of 64 inputs per pipeline slot, wr = 4 warps per 64 rows); it runs only where
// w4a16_wgmma_available().
// stream_k: a persistent TMA wgmma configuration (w4a16_wgmma_ws.cu) that splits the whole
// (output tile x 64-input chunk) range evenly over the SMs' resident blocks; it takes no K
// splits (the `splits` of a launch are ignored).
struct W4A16TiledConfig {
  int tt, rt, wt, wr, stages;
  int bm, bn, threads;
  bool wgmma = false;
  bool stream_k = false;
  bool l2_split = false;  // a TMA configuration whose K splits reduce through L2, not in a cluster
};
// Indices 0 .. w4a16_tiled_count() - 1 cover the mma.sync tiled configurations and then the
// wgmma ones (launch_w4a16_tiled runs a wgmma index as the 128 x 128 mma.sync tile where
// wgmma is unavailable).
int w4a16_tiled_count();
W4A16TiledConfig w4a16_tiled_config(int i);
// Split-K of the tiled GEMM: the splits of an output tile form a thread block cluster and
// reduce through distributed shared memory (sm_90 and code built for it; else unavailable).
bool w4a16_split_k_available();
struct W4A16TiledChoice {
  int config, splits;
};
// What the tiled dispatch decides by: the GPU's facts and the AWQ_W4A16_* switches (each true =
// on, the default). w4a16_pick_context() reads them from this device and the environment; a
// test may set them (the picks of a 132-SM Hopper checked without one).
struct W4A16PickContext {
  int sms = 132;                 // streaming multiprocessors
  int smem_optin = 232448;       // opt-in shared memory per block, bytes
  bool split_ok = true;          // cluster split-K (w4a16_split_k_available)
  bool wgmma = true;             // the sm_90a wgmma GEMM (w4a16_wgmma_available)
  bool tma = true;               // its TMA kernels usable and AWQ_W4A16_TMA on
  bool wave_tiles = true;        // AWQ_W4A16_WAVE_TILES
  bool l2_split = true;          // AWQ_W4A16_L2_SPLIT
  bool stream_k = true;          // AWQ_W4A16_STREAM_K
  bool wgmma_from_17 = true;     // AWQ_W4A16_WGMMA_FROM_17
  bool split3 = true;            // AWQ_W4A16_SPLIT3
  bool wave_mid = true;          // AWQ_W4A16_WAVE_MID
  bool t256_from_161 = true;     // AWQ_W4A16_T256_FROM_161
  bool wide_mid = true;          // AWQ_W4A16_WIDE_MID
};
W4A16PickContext w4a16_pick_context();
// The tile and split for m tokens, n outputs and k inputs under `ctx` (no device access).
W4A16TiledChoice w4a16_pick_tiled(int64_t m, int64_t n, int64_t k, const W4A16PickContext& ctx);
// What launch_w4a16 picks for m >= kW4A16TiledMinTokens (Auto) or any m (Tiled):
// w4a16_pick_tiled under w4a16_pick_context().
W4A16TiledChoice w4a16_default_tiled(int64_t m, int64_t n, int64_t k);
// Raises the dynamic shared-memory limit of every tiled kernel once (upload_w4a16 calls it, so
// that the first launch may be inside a CUDA graph capture).
void w4a16_prepare_tiled();
// y: [m, n] = x: [m, k] W^T (+ bias: [n]) with tiled configuration `config` and `splits` K
// splits (1 .. 8; taken as 1 where split-K is unavailable); any m >= 1; x 16-byte aligned,
// k % 16 == 0.
void launch_w4a16_tiled(int config, int splits, const uint4* codes, const uint2* params,
                        const __half* x, const __half* bias, __half* y, int64_t n, int64_t k,
                        int group, int64_t m, cudaStream_t s);

// The wgmma GEMM (w4a16_wgmma.cu; sm_90a device code on an sm_90 GPU only): its own
// configuration list, the check (a probe kernel, once; also sets the kernels' shared-memory
// limits), and the launch (awq::Error where unavailable; splits as launch_w4a16_tiled).
int w4a16_wgmma_count();
W4A16TiledConfig w4a16_wgmma_config(int i);
void w4a16_prepare_wgmma();
bool w4a16_wgmma_available();
// The wgmma configurations from w4a16_wgmma_ws_first() on are the warp-specialized kernel
// (w4a16_wgmma_ws.cu: a producer warp loads x by TMA and the weights by bulk copies into an
// mbarrier ring; the consumer warpgroups only dequantize and issue wgmma). They need the driver's
// tensor-map encoder too: w4a16_wgmma_ws_available() (else they run as the 128 x 128 cp.async tile).
int w4a16_wgmma_ws_first();
bool w4a16_wgmma_ws_available();
// The tiled configuration index (as w4a16_tiled_config) of the TMA kernel's 256 x 128 tile with a
// producer warpgroup: what w4a16_default_tiled picks for m > 512 tokens on layers of
// n >= kW4A16TmaMinRows outputs, and where the prefill rules say so below (H100; docs/gpu.md).
int w4a16_tma_wide_config();
// The same for its 128 x 128 tile (warp 0 copies, 2 blocks per SM): picked by the prefill rules
// (129 <= m <= 512, and m = 97..128 on n >= 16384) where they say so (docs/gpu.md).
int w4a16_tma_square_config();
constexpr int64_t kW4A16TmaMinTokens = 160, kW4A16TmaMinRows = 8192;
// The stream-K twins of the 256 x 128 and 128 x 128 TMA tiles (W4A16TiledConfig::stream_k): the
// grid is the SMs' resident blocks and each block takes an equal share of all (tile, chunk)
// iterations (w4a16_wgmma_ws.cu). Picked with AWQ_W4A16_STREAM_K on where the rules of
// w4a16_default_tiled say so (docs/gpu.md).
int w4a16_tma_wide_sk_config();
int w4a16_tma_square_sk_config();
// AWQ_W4A16_STREAM_K: "0" = the dispatch never picks the stream-K tiles (the picks before them:
// the baseline for comparisons, or a fallback without a rebuild), "1" or unset = it does where
// they measured faster; anything else: awq::Error. Read once.
bool parse_w4a16_stream_k(const char* value);
bool w4a16_stream_k_from_env();
// The TMA tiles of 192 rows (three consumer warpgroups and a producer warpgroup, one block per
// SM) of tokens = 64 or 128 (w4a16_wgmma_ws.cu), and the dispatch's wave rule that picks them at
// m = 97..512 (w4a16_default_tiled: where their grid fills one, or for 128 x 192 two, whole waves
// of the SMs to >= 85 %; docs/gpu.md).
int w4a16_tma_rows192_config(int tokens);
// AWQ_W4A16_WAVE_TILES: "0" = the dispatch never picks the 192-row tiles (the picks before them:
// the baseline for comparisons, or a fallback without a rebuild), "1" or unset = the wave rule
// picks them; anything else: awq::Error. Read once.
bool parse_w4a16_wave_tiles(const char* value);
// Their twins whose K splits sum through L2 (a global workspace) instead of in a cluster, where
// the grid is at most one block per SM (W4A16TiledConfig::l2_split; w4a16_wgmma_ws.cu; the
// cluster form elsewhere, with the same bits): picked by the wave rule where splits of 3 or 6
// fill the SMs (docs/gpu.md).
int w4a16_tma_rows192_l2_config(int tokens);
// AWQ_W4A16_L2_SPLIT: "0" = the wave rule never picks them (the picks before session 24: the
// baseline for comparisons, or a fallback without a rebuild), "1" or unset = it does; anything
// else: awq::Error. Read once.
bool parse_w4a16_l2_split(const char* value);
bool w4a16_l2_split_from_env();
// AWQ_W4A16_WGMMA_FROM_17: "1" or unset = m = 17..32 take the wgmma tiles' picks of m = 33 (one
// 64-token tile, the same grid: H200 sweep of session 25, 21-38 % faster than the mma.sync
// tiles there); "0" = the mma.sync 32-token tiles as before. Anything else: awq::Error. Read once.
bool parse_w4a16_wgmma_from_17(const char* value);
bool w4a16_wgmma_from_17_from_env();
bool w4a16_wave_tiles_from_env();
// AWQ_W4A16_SPLIT3: "1" or unset = where the rule for the cp.async 64 x 64 wgmma tile (m = 17..128)
// would split K 4 ways, it splits 3 ways where that grid is 1.4-1.7 blocks per SM (the 7B's
// o_proj and Qwen2-7B's qkv at m = 17..64; w4a16_default_tiled); "0" = splits of 1, 2, 4 only, as
// before session 27. Anything else: awq::Error. Read once.
bool parse_w4a16_split3(const char* value);
bool w4a16_split3_from_env();
// AWQ_W4A16_WAVE_MID: "1" or unset = the wave rule also takes m = 65..96, as one partly filled
// 128-token block (its split-K and 128 x 192 picks; H200 wsweeps of session 28: down_proj-sized
// and a 13B's layers 14-35 % faster than the cp.async 64 x 64 tile there); "0" = it leaves them
// out, as before session 28. Anything else: awq::Error. Read once.
bool parse_w4a16_wave_mid(const char* value);
bool w4a16_wave_mid_from_env();
// AWQ_W4A16_T256_FROM_161: "1" or unset = on wide layers (n >= kW4A16TmaMinRows) at m = 161..192
// the 256 x 128 TMA tile split 2 where that grid is one wave (a 70B's n = 8192 layers), as at
// m = 193..256; "0" = the wave rule's 64 x 192 tile there, as before session 28. Anything else:
// awq::Error. Read once.
bool parse_w4a16_t256_from_161(const char* value);
bool w4a16_t256_from_161_from_env();
// AWQ_W4A16_WIDE_MID: "1" or unset = at m = 33..128, on layers the wave rule does not take
// (Llama-3-8B's and Qwen2.5-7B's fused gate+up, a 13B's qkv), the rules from session 28's H200
// wsweeps of those layers: m <= 64 the 64 x 128 cp.async tile at 1.6-2 blocks per SM and the 64 x 64
// tile up to 5 per SM; m = 65..128 on n >= 8192 the 128 x 128 TMA tile split 2 / unsplit while it
// fits 2 blocks per SM, else 128 x 192 (w4a16_default_tiled); "0" = the picks before session 28
// there. Anything else: awq::Error. Read once.
bool parse_w4a16_wide_mid(const char* value);
bool w4a16_wide_mid_from_env();
// AWQ_W4A16_TMA: "0" = w4a16_linear never picks the TMA configurations, and the prefill rules
// (m = 97..512) are off too (the cp.async wgmma tiles by the rules before branch gpu6: the
// baseline for comparisons, or a fallback without a rebuild), "1" or unset = it does where they
// measured faster; anything else: awq::Error. Read once.
bool parse_w4a16_tma(const char* value);
// AWQ_W4A16_CLUSTER_PUSH: the split-K reduction of the wgmma GEMMs' clusters (cp.async and TMA
// tiles, splits a power of two): "1" or unset = each block stores its partial sums into the
// shared memory of the block that sums them (remote stores, no waiting on replies), "0" = each
// block sums by loading the others' partials (remote loads; the form before branch gpu10: the
// baseline for comparisons). Same bits either way. Anything else: awq::Error. Read once.
bool parse_w4a16_cluster_push(const char* value);
bool w4a16_cluster_push_from_env();
bool w4a16_tma_from_env();
void launch_w4a16_wgmma(int config, int splits, const uint4* codes, const uint2* params,
                        const __half* x, const __half* bias, __half* y, int64_t n, int64_t k,
                        int group, int64_t m, cudaStream_t s);

// What launch_w4a16 runs for m tokens of k inputs -> n outputs (group: the weights' group size)
// on `path`, x 16-byte aligned or not: one kernel family and its configuration, and whether a
// measured pick (w4a16_tune.h) chose it. The bench names its kernel column from it.
struct W4A16Dispatch {
  enum class Kind { KSlice, Tiled, Streaming };
  Kind kind = Kind::Streaming;
  W4A16KSliceChoice ks;       // Kind::KSlice
  W4A16TiledChoice tiled{};   // Kind::Tiled
  int variant = -1;           // Kind::Streaming: the register-streaming variant (w4a16_variant)
  bool tuned = false;         // a measured pick, not the rules'
  bool has_gated_epilogue() const { return kind != Kind::Tiled; }  // the tiled GEMM has none
};
W4A16Dispatch w4a16_dispatch(bool x_aligned, int64_t m, int64_t n, int64_t k, int group, W4A16Path path);

// y: [m, n] += bias: [n] (fp16).
void launch_add_bias(__half* y, const __half* bias, int64_t m, int64_t n, cudaStream_t s);

}  // namespace awq::cuda
