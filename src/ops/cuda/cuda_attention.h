// Causal GQA attention on CUDA against the fp16 KV cache (ops/cuda/cuda_ops.h KvCacheView),
// one kernel for decode and prefill: every row is one query token that sees the cache rows
// 0..pos[r] of its slot (the last `window` of them with a sliding window). The keys of a row
// are cut into n_splits consecutive chunks (split-K over the cache, flash-decoding style), one
// block per (split, group of query heads sharing a KV head, row), each with an online
// softmax; a second kernel combines the splits. The chunk length is computed on the device
// from pos[r], so a CUDA graph captured once serves every decode step.
// Decode: rows = the batch, one token per sequence, n_splits ~ enough blocks to fill the GPU.
// Prefill: rows = the prompt's tokens (one slot, consecutive positions), n_splits = 1.
#pragma once
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "io/model_config.h"
#include "ops/cuda/cuda_ops.h"

namespace awq::cuda {

struct AttentionDims {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int window = 0;  // sliding window (0: none)
};

// The model's attention shape (sliding_window unset: 0).
inline AttentionDims attention_dims(const ModelConfig& c) {
  return {c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window.value_or(0)};
}

// Floats of scratch attention() needs for `rows` rows at n_splits > 1 (0 for n_splits == 1).
int64_t attention_scratch_floats(int64_t rows, const AttentionDims& d, int n_splits);

// True when head_dim is one the kernel is built for (64, 128, 256).
bool attention_supports(int head_dim);

// What qk_norm_rope_store does (cuda_ops.h), for attention() to do itself in decode: the
// rotary table cos_sin ([ctx, head_dim / 2] (cos, sin), rope_cos_sin_table) and qwen3's
// per-head q/k norms ([head_dim] f32, or null).
struct RopeStore {
  const float2* cos_sin = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  float eps = 0.0f;
};

// q: [rows, q_stride] fp16, head h of row r at q + r * q_stride + h * head_dim;
// out: [rows, n_heads * head_dim] fp16; scratch: attention_scratch_floats(...) f32.
// rope (decode only: every row the one new token of its own slot): q is the q | k | v
// projection as it came out (q_stride >= (n_heads + 2 n_kv_heads) head_dim), not yet rotated,
// and the row's own key and value are not yet in the cache: the kernel applies the norms and
// RoPE at pos[r] to q and k, writes k and v into the cache at pos[r], and attends to them, as
// qk_norm_rope_store followed by attention() would (the same bits without the q/k norms), in
// one launch instead of two. Null: q is rotated and the cache holds every key (prefill).
void attention(const __half* q, int64_t q_stride, int64_t rows, const AttentionDims& d,
               const KvCacheView& kv, int n_splits, float* scratch, __half* out, cudaStream_t s,
               const RopeStore* rope = nullptr);

// The split count of a decode batch of `rows` rows whose longest row sees max_keys keys: about
// two blocks per multiprocessor, but no split shorter than 128 keys (1 for short contexts:
// no partials, no combine kernel), at most 32. (A grid of no more blocks than SMs, as batch 1
// at short contexts makes, runs blocks of 16 warps instead of 8: cuda_attention.cu.)
int decode_splits(int64_t rows, const AttentionDims& d, int multiprocessors, int64_t max_keys);

}  // namespace awq::cuda
