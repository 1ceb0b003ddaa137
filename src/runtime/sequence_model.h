// One sequence's model and KV cache, as generate() and perplexity() drive it, on whichever
// backend: CpuSequence (model/llama_model.h on the thread pool) here, CudaSequence
// (ops/cuda/cuda_sequence.h) in -DAWQ_CUDA=ON builds.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"

namespace awq {

class SequenceModel {
 public:
  virtual ~SequenceModel() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int64_t ctx() const = 0;     // capacity in positions
  virtual int64_t n_past() const = 0;  // positions filled
  virtual void clear() = 0;            // empties the cache
  virtual void truncate(int64_t n) = 0;  // keeps positions [0, n), n <= n_past()
  // Runs tokens: [n] at positions n_past().. and appends them to the cache.
  // logits: [n, vocab] when all_logits, else [1, vocab] for the last token.
  virtual void forward(const int32_t* tokens, int64_t n, bool all_logits,
                       std::vector<float>& logits) = 0;
  // Runs one token like forward and sets *next to argmax of its logits (first on ties), where
  // the engine can do that itself (the GPU: no logits cross to the host); false: it cannot,
  // nothing ran, use forward.
  virtual bool forward_argmax(int32_t token, int32_t* next) {
    (void)token;
    (void)next;
    return false;
  }
  // Runs tokens: [n] like forward and returns sum_i -log p(tokens[i + 1] | tokens[..i]) over
  // i < n - 1. The default takes all logits and scores them on the host.
  virtual double forward_nll(const int32_t* tokens, int64_t n);
};

// The CPU engine: a LlamaModel (not owned) on a thread pool (not owned) with a KV cache that
// is either borrowed or owned.
class CpuSequence : public SequenceModel {
 public:
  CpuSequence(LlamaModel& model, ThreadPool& pool, KvCache& cache)
      : model_(model), pool_(pool), cache_(&cache) {}
  CpuSequence(LlamaModel& model, ThreadPool& pool, int64_t ctx, KvType kv_type = KvType::F16)
      : model_(model), pool_(pool), owned_(model.new_cache(ctx, kv_type)), cache_(&*owned_) {}

  const ModelConfig& config() const override { return model_.config(); }
  int64_t ctx() const override { return cache_->ctx; }
  int64_t n_past() const override { return cache_->n_past; }
  void clear() override { cache_->clear(); }
  void truncate(int64_t n) override;
  void forward(const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits) override {
    model_.forward(pool_, tokens, n, *cache_, all_logits, logits);
  }

 private:
  LlamaModel& model_;
  ThreadPool& pool_;
  std::optional<KvCache> owned_;
  KvCache* cache_;
};

}  // namespace awq
