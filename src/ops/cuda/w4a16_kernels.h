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

// y: [m, n] = x: [m, k] W^T (+ bias: [n]). Kernel chosen by m.
void launch_w4a16(const uint4* codes, const uint2* params, const __half* x, const __half* bias,
                  __half* y, int64_t n, int64_t k, int group, int64_t m, cudaStream_t s);

// Tuning (tests and bench): the kernel configurations compiled in. A block computes wn x rt
// row tiles (16 wn rt outputs) for mt token tiles (8 mt tokens): wn groups of wk warps, the wk
// warps of a group split K, each warp holds rt row tiles.
struct W4A16Variant {
  int mt, wk, wn, rt;
};
int w4a16_variant_count();
W4A16Variant w4a16_variant(int i);
int w4a16_default_variant(int64_t m, int64_t n);  // what launch_w4a16 picks for m tokens, n outputs
void launch_w4a16_variant(int variant, const uint4* codes, const uint2* params, const __half* x,
                          const __half* bias, __half* y, int64_t n, int64_t k, int group, int64_t m,
                          cudaStream_t s);

// y: [m, n] += bias: [n] (fp16).
void launch_add_bias(__half* y, const __half* bias, int64_t m, int64_t n, cudaStream_t s);

}  // namespace awq::cuda
