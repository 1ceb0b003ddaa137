// The element-wise and row kernels of the Llama-family decoder on CUDA (everything but the
// linears, which are ops/cuda/w4a16.h, and attention, ops/cuda/cuda_attention.h).
// Activations: the residual stream is f32, everything a linear reads or writes is fp16;
// norms, RoPE and SiLU compute in f32. All pointers are device pointers; every launcher
// enqueues on `s` and returns without synchronising. Each kernel has a CPU reference in
// ops/cpu/ops.h that tests/test_cuda_model.cpp compares it with.
#pragma once
#include <cstdint>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace awq::cuda {

// x[r] = widen(table[ids[r]]). table: [vocab, d] fp16; ids: [rows] (checked on the host);
// x: [rows, d] f32.
void embed_rows(const __half* table, const int32_t* ids, int64_t rows, int64_t d, float* x,
                cudaStream_t s);

// The residual add fused with the next RMSNorm: x += delta (when delta is not null), then
// h = x * rsqrt(mean(x^2) + eps) * w, per row. x: [rows, d] f32 in/out; delta: [rows, d] fp16
// or null; w: [d] f32 (read before the PDL wait, pdl.h: norm weights, never written by the
// kernel before it); h: [rows, d] fp16.
void add_rmsnorm(float* x, const __half* delta, const float* w, int64_t rows, int64_t d, float eps,
                 __half* h, cudaStream_t s);

// Where the attention of each row reads and writes its keys and values:
// k, v: [slots, ctx, n_kv_heads, head_dim] fp16; row r belongs to slot[r] at position pos[r].
struct KvCacheView {
  __half* k = nullptr;
  __half* v = nullptr;
  int64_t ctx = 0;
  const int32_t* pos = nullptr;   // [rows] device
  const int32_t* slot = nullptr;  // [rows] device
};

// The rotary table cos_sin: [ctx, head_dim / 2] pairs (cos, sin) of the angle
// float(pos) * inv_freq[j], computed on the host exactly as the CPU reference (ops/cpu/ops.h
// rope_rotate_half: the angle rounded to f32, cos/sin in double), so the kernel does no
// trigonometry. inv_freq: [head_dim / 2] (rope_scaling folded in, model/rope.h).
std::vector<float> rope_cos_sin_table(const std::vector<float>& inv_freq, int64_t ctx);

// After the fused q/k/v projection: per row, optional per-head RMSNorm of q and k (qwen3;
// q_norm/k_norm: [head_dim] f32, or null), rotate-half RoPE of q and k at pos[r] from
// cos_sin (rope_cos_sin_table, on the device), q written back in place, k (rotated) and v
// copied into the cache at (slot[r], pos[r]). One warp per head, 8 heads per block.
// qkv: [rows, (n_heads + 2 n_kv_heads) * head_dim] fp16, each row q | k | v.
void qk_norm_rope_store(__half* qkv, int64_t rows, int n_heads, int n_kv_heads, int head_dim,
                        const float2* cos_sin, const float* q_norm, const float* k_norm, float eps,
                        const KvCacheView& kv, cudaStream_t s);

// out[r][j] = silu(gate[r][j]) * up[r][j]. gu: [rows, 2 ff] fp16, each row gate | up, or with
// interleaved the two in alternating packs of 8 (gate j at 16 (j / 8) + j % 8, up j 8 later:
// the CUDA engine's fused gate/up projection, which the W4A16 decode kernels can end with this
// product themselves, w4a16.h w4a16_linear_silu; needs ff % 8 == 0 and 16-byte aligned
// buffers, else awq::Error); out: [rows, ff].
void silu_mul(const __half* gu, int64_t rows, int64_t ff, __half* out, cudaStream_t s, bool interleaved = false);

// ids[r] = argmax_j logits[r][j], the lowest index on ties (as runtime/sampler.h argmax).
// logits: [rows, vocab] f32; ids: [rows].
void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids, cudaStream_t s);

// nll[r] = logsumexp(logits[r]) - logits[r][target[r]]. logits: [rows, vocab] f32;
// target: [rows]; nll: [rows] f32.
void nll_rows(const float* logits, const int32_t* target, int64_t rows, int64_t vocab, float* nll,
              cudaStream_t s);

// Throws awq::Error naming `what` when the last launch failed.
void check_launch(const char* what);

}  // namespace awq::cuda
