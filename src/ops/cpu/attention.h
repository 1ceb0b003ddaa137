// Causal GQA attention of n new queries against a KV cache (f32).
// attention() dispatches: one query (decode) -> the per-(query, head) loop, attention_rows;
// several (prefill, perplexity, calibration) -> attention_blocked, which works on a block of
// queries x the heads of one KV group at a time with the GEMM micro-kernels (S = Q K^T tile,
// mask, online softmax, O += P V), so each key and value row is loaded once per block
// instead of once per (query, head).
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"

namespace awq {

// q: [n, n_heads, head_dim]; k_cache, v_cache: [ctx, n_kv_heads, head_dim];
// pos: [n] position of each query (it sees cache rows 0..pos[i], or the last `window` of them
// when window > 0); out: [n, n_heads, head_dim]. Query head h reads KV head h / (n_heads / n_kv_heads).
struct AttentionShape {
  int64_t n_heads, n_kv_heads, head_dim, ctx;
  int64_t window = 0;  // sliding window (0: none)
};
void attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* pos, int64_t n, const AttentionShape& s, float* out);

// The two implementations, same arguments (tests compare both against a naive reference).
void attention_rows(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
                    const int32_t* pos, int64_t n, const AttentionShape& s, float* out);
void attention_blocked(ThreadPool& pool, GemmIsa isa, const float* q, const float* k_cache,
                       const float* v_cache, const int32_t* pos, int64_t n, const AttentionShape& s,
                       float* out);

}  // namespace awq
