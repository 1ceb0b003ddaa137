// Causal GQA attention of n new queries against one layer's KV cache, fp16 or f32
// (core/kv_type.h). attention() dispatches: one query (decode) -> the per-(query, head) loop,
// attention_rows; several (prefill, perplexity, calibration) -> attention_blocked, which works
// on a block of queries x the heads of one KV group at a time with the GEMM micro-kernels
// (S = Q K^T tile, mask, online softmax, O += P V), so each key and value row is loaded once
// per block instead of once per (query, head).
//
// fp16 caches are read widened to f32: the decode loop converts in registers (F16C /
// AVX-512 vcvtph2ps, ops/cpu/attention_kernels.h; core/half.h on CPUs without them), the
// blocked path widens the key and value rows of each block into its per-thread scratch and
// packs them for the same f32 micro-kernels. All arithmetic is f32 for both cache types.
#pragma once
#include <cstdint>

#include "core/kv_type.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"

namespace awq {

// q: [n, n_heads, head_dim]; the cache's k, v: [ctx, n_kv_heads, head_dim];
// pos: [n] position of each query (it sees cache rows 0..pos[i], or the last `window` of them
// when window > 0); out: [n, n_heads, head_dim]. Query head h reads KV head h / (n_heads / n_kv_heads).
struct AttentionShape {
  int64_t n_heads, n_kv_heads, head_dim, ctx;
  int64_t window = 0;  // sliding window (0: none)
};

// One layer's keys and values as attention reads them, with their element type:
// k, v: [ctx, n_kv_heads * head_dim] of uint16_t (IEEE fp16 bits) when type == F16, of float
// when F32.
struct KvView {
  KvType type;
  const void* k;
  const void* v;
  static KvView f32(const float* k, const float* v) { return {KvType::F32, k, v}; }
  static KvView f16(const uint16_t* k, const uint16_t* v) { return {KvType::F16, k, v}; }
};

void attention(ThreadPool& pool, const float* q, const KvView& kv, const int32_t* pos, int64_t n,
               const AttentionShape& s, float* out);

// The two implementations, same arguments (tests compare both against a naive reference).
// attention_rows: `isa` picks the fp16 decode kernels (f16_isa_supported(isa) must hold, see
// ops/cpu/f16_rows.h); f32 caches run target-clone loops that pick their own ISA.
// attention_blocked: `isa` picks the GEMM micro-kernels (gemm_isa_supported(isa) must hold).
void attention_rows(ThreadPool& pool, GemmIsa isa, const float* q, const KvView& kv,
                    const int32_t* pos, int64_t n, const AttentionShape& s, float* out);
void attention_blocked(ThreadPool& pool, GemmIsa isa, const float* q, const KvView& kv,
                       const int32_t* pos, int64_t n, const AttentionShape& s, float* out);

}  // namespace awq
