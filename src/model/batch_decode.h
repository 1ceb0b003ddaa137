// One decode step for B independent sequences at once (continuous batching): each sequence
// brings one new token, its own KvCache and its own position (cache.n_past). The linears run
// once on the B stacked rows through the blocked GEMM; RoPE and attention run per row.
//
// Batch-composition independence: every linear goes through batch_linear (model/batch_linear.h):
// the blocked GEMM from 4 rows on, below that a streaming kernel with the GEMM's exact
// per-element FMA order. A row's logits are then bit-identical whether it runs alone or beside
// 31 others (matmul()'s GEMV for n < 4 sums in another order and would break that), so the
// server's greedy outputs do not depend on load. The logits may instead take the GEMV's order
// for every row count (Linears::RowExactGemvLogits: logits_linear), which is as independent.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/decoder_layer.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"

namespace awq {

class BatchDecoder {
 public:
  // The model must outlive the decoder. logits: RowExact (the GEMM's order) or
  // RowExactGemvLogits (the GEMV's: faster at the 1-8 rows of an engine of few slots).
  explicit BatchDecoder(const LlamaModel& model, Linears logits = Linears::RowExact);

  // tokens: [B] one new token per sequence; caches: [B] distinct caches of this model, each
  // with room for one more position. Runs token b at position caches[b]->n_past, appends its
  // key/value rows and advances n_past. logits: [B, vocab].
  // Throws awq::Error for an id outside the vocabulary or a full cache (nothing is changed then).
  void step(ThreadPool& pool, const int32_t* tokens, KvCache* const* caches, int64_t B,
            std::vector<float>& logits);

 private:
  // Buffers of one step, grown on demand and reused.
  struct Scratch {
    std::vector<float> x, h;         // [B, d] residual stream, sublayer input/output
    std::vector<int32_t> pos;        // [B]
    LayerScratch layer;              // q, k, v, att, gate, up of B rows
    void reserve(int64_t B, const ModelConfig& c);
  };

  void attention_block(ThreadPool& pool, int layer, KvCache* const* caches, int64_t B, float* out);
  void mlp_block(ThreadPool& pool, int layer, int64_t B, float* out);

  const LlamaModel& model_;
  Linears logits_lin_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  Scratch s_;
};

// One sequence's new token in one layer: stores its key and value rows at position pos of
// the cache, then attends its query to the cache's positions 0..pos (causal, GQA, sliding
// window). q: [n_heads * head_dim]; k, v: [kv_dim] (rounded to the cache's type when stored);
// out: [n_heads * head_dim]. The one place the batched decode touches the cache; sequences of
// one batch may have caches of different types.
void append_and_attend(ThreadPool& pool, const ModelConfig& c, const float* q, const float* k,
                       const float* v, KvCache& cache, int layer, int32_t pos, float* out);

}  // namespace awq
