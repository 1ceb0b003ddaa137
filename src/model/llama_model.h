// The Llama-family decoder forward on the CPU (llama, mistral, qwen2, qwen3): embedding,
// N x [RMSNorm -> GQA attention with RoPE -> residual -> RMSNorm -> SiLU-gated MLP -> residual],
// final RMSNorm, lm_head. f32 activations; weights F32/F16/BF16.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "model/decoder_layer.h"
#include "model/kv_cache.h"
#include "model/llama_weights.h"
#include "ops/cpu/q8_rows.h"

namespace awq {

class LlamaModel {
 public:
  // Opens DIR (config.json + safetensors). Throws awq::Error on any defect of either.
  explicit LlamaModel(const std::string& dir);

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return *ckpt_; }
  const LlamaWeights& weights() const { return weights_; }

  // An empty cache of ctx positions for this model, elements of `type` (model/kv_cache.h).
  KvCache new_cache(int64_t ctx, KvType type = KvType::F16) const;

  // Runs tokens: [n] at positions cache.n_past .. cache.n_past + n - 1 and appends their keys
  // and values to the cache. logits: [n, vocab] when all_logits, else [1, vocab] for the last
  // token. Throws awq::Error for an id outside the vocabulary or a cache overflow.
  // lin: how the linears sum (model/decoder_layer.h); RowExact makes every row's logits and
  // keys/values independent of n (the server's prefill).
  void forward(ThreadPool& pool, const int32_t* tokens, int64_t n, KvCache& cache,
               bool all_logits, std::vector<float>& logits, Linears lin = Linears::Fast);

  // The int8 copy of lm_head (ops/cpu/q8_rows.h) that every logits product uses with
  // AWQ_LM_HEAD=q8, made by the first call (on `pool`); null with AWQ_LM_HEAD=f16 (the default:
  // the checkpoint's FP16 lm_head) or where lm_head does not fit (its width not a multiple of 32).
  // Throws awq::Error for another value of the variable.
  const Q8Rows* lm_head_q8(ThreadPool& pool) const;

 private:
  // Activation buffers, grown on demand and reused across calls.
  struct Scratch {
    std::vector<float> x, h;     // [n, d_model] residual stream, sublayer input/output
    std::vector<int32_t> pos;    // [n]
    LayerScratch layer;
    void reserve(int64_t n, const ModelConfig& c);
  };

  ModelConfig config_;
  std::unique_ptr<Checkpoint> ckpt_;
  LlamaWeights weights_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  Scratch s_;
  mutable std::once_flag lm_head_q8_once_;
  mutable std::unique_ptr<Q8Rows> lm_head_q8_;
};

}  // namespace awq
