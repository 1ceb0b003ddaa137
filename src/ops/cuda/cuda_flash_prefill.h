// Causal GQA attention of a prefill on tensor cores (FlashAttention-2 style): a block takes 64
// (query row, head) items of one KV head, whose query vectors it holds as mma fragments, and
// walks the keys in tiles of 64 through a double-buffered shared-memory ring (cp.async); the
// scores Q K^T and the product P V are m16n8k16 mma.sync with f32 accumulators, the softmax is
// online (f32), and P is rounded to fp16 for its product with V, as FlashAttention does.
//
// Why: cuda_attention.h's kernel gives each query row its own blocks, which read every key of
// the row from L2 again; at a 4096-token prompt that is ~34 GB of key and value reads per layer
// for the last 512-row chunk alone. Here the 64 items of a block share each key tile, and the
// items of one KV head's query heads (GQA) share it too.
#pragma once
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "ops/cuda/cuda_attention.h"

namespace awq::cuda {

// One sequence's rows of a prefill pass: rows row0 .. row0 + rows - 1 of q and out are the tokens
// at positions first_pos .. first_pos + rows - 1 of KV-cache slot `slot`. The engine's prefill
// chunk is one segment, or several when the server packs admitted prompts into one pass; the GPU
// AWQ search runs its calibration sequences as one segment each.
struct PrefillSegment {
  int32_t row0 = 0, rows = 0, slot = 0, first_pos = 0;
};

// head_dim 64 or 128 (other sizes take attention()), and not turned off by
// AWQ_CUDA_FLASH_PREFILL=0 (the per-row kernel then runs every prefill, as before).
bool flash_prefill_supports(const AttentionDims& d);

// q: [rows, q_stride] fp16, head h of row r at q + r q_stride + h head_dim, already rotated
// (qk_norm_rope_store); k_cache, v_cache: [slots, ctx, n_kv_heads head_dim] fp16 holding every
// key up to each row's position; out: [rows, n_heads head_dim] fp16, rows being those of the
// segs[0 .. n_segs) (host memory, any number: kernel parameters carry up to 64 a launch).
// Needs flash_prefill_supports(d) (else awq::Error).
void flash_prefill_attention(const __half* q, int64_t q_stride, const PrefillSegment* segs, int n_segs,
                             const AttentionDims& d, const __half* k_cache, const __half* v_cache, int64_t ctx,
                             __half* out, cudaStream_t s);

}  // namespace awq::cuda
