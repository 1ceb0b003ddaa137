// The warp-specialized wgmma W4A16 GEMM (w4a16_wgmma_ws.cu): its configurations and launch, for
// w4a16_wgmma.cu, which lists them after its own (w4a16_wgmma_count / _config / launch_w4a16_wgmma
// cover both). Internal to src/ops/cuda.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/w4a16_kernels.h"

namespace awq::cuda {

int w4a16_wgmma_ws_count();
W4A16TiledConfig w4a16_wgmma_ws_config(int i);
// The configuration w4a16_default_tiled picks for m > 512 on wide layers (and where its prefill
// rules say so): 256 tokens x 128 rows with a producer warpgroup (its index in this file's list).
int w4a16_wgmma_ws_wide();
// The 128 tokens x 128 rows tile (warp 0 of the consumers copies; 2 blocks per SM): what the
// prefill rules of w4a16_default_tiled pick in some cases (docs/gpu.md).
int w4a16_wgmma_ws_square();
// Their stream-K twins (W4A16TiledConfig::stream_k; indices in this file's list): what the
// dispatch picks with AWQ_W4A16_STREAM_K on (docs/gpu.md).
int w4a16_wgmma_ws_wide_sk();
int w4a16_wgmma_ws_square_sk();
// The 192-row tiles with a producer warpgroup (one block per SM) of 64 or 128 tokens (`tokens`):
// what the wave rule of w4a16_default_tiled picks (docs/gpu.md).
int w4a16_wgmma_ws_rows192(int tokens);
// Their twins with split-K through L2 (W4A16TiledConfig::l2_split).
int w4a16_wgmma_ws_rows192_l2(int tokens);
// Device bytes of the process's stream-K / L2 split-K workspace (partial sums and counters) on a
// GPU of `sms` multiprocessors, which w4a16_prepare_wgmma_ws allocates once.
size_t w4a16_wgmma_ws_workspace_bytes(int sms);
// Sets the kernels' shared-memory limits (optin: the device's opt-in bytes per block) and looks
// up the driver's tensor-map encoder, once; false where a kernel does not fit or the driver has
// no encoder (then the launch is never asked for: w4a16_wgmma.cu runs another configuration).
bool w4a16_prepare_wgmma_ws(int optin);
// y: [m, n] = x: [m, k] W^T (+ bias: [n]); x 16-byte aligned with k % 16 == 0 (the tensor map's
// row stride); codes/params: w4a16.h; splits 1 .. 8 (a cluster per output tile when > 1).
void launch_w4a16_wgmma_ws(int config, int splits, const uint4* codes, const uint2* params, const __half* x,
                           const __half* bias, __half* y, int n, int k, int m, int gl2, cudaStream_t s);

}  // namespace awq::cuda
