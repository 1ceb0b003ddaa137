// The CUDA engine behind the backend-neutral interfaces: SequenceModel
// (runtime/sequence_model.h; generate, chat, perplexity) is one sequence in slot 0 of a
// CudaLlama: a single new token runs the decode step (replayed from a CUDA graph), several run
// the chunked prefill, forward_nll scores on the device. BatchEngine (runtime/batch_engine.h;
// the server) is a CudaLlama of --parallel slots whose decode step batches the active ones.
#pragma once
#include "model/llama_model.h"
#include "ops/cuda/cuda_llama.h"
#include "runtime/batch_engine.h"
#include "runtime/sequence_model.h"

namespace awq::cuda {

class CudaSequence : public SequenceModel {
 public:
  // Uploads model's weights; the LlamaModel may be dropped afterwards.
  CudaSequence(const LlamaModel& model, int64_t ctx)
      : llm_(model.config(), model.weights(), options(ctx)) {}

  const ModelConfig& config() const override { return llm_.config(); }
  int64_t ctx() const override { return llm_.options().ctx; }
  int64_t n_past() const override { return llm_.n_past(0); }
  void clear() override { llm_.clear(0); }
  void truncate(int64_t n) override { llm_.truncate(0, n); }
  void forward(const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits) override {
    if (n == 1 && !all_logits)
      llm_.decode(tokens, 1, logits);
    else
      llm_.prefill(0, tokens, n, all_logits, logits);
  }
  bool forward_argmax(int32_t token, int32_t* next) override {
    llm_.decode_greedy(&token, 1, next);
    return true;
  }
  double forward_nll(const int32_t* tokens, int64_t n) override {
    return llm_.prefill_nll(0, tokens, n);
  }
  CudaLlama& engine() { return llm_; }

 private:
  static CudaLlamaOptions options(int64_t ctx) {
    CudaLlamaOptions o;
    o.slots = 1;
    o.ctx = ctx;
    return o;
  }
  CudaLlama llm_;
};

// Greedy rows are not batch-independent here, unlike the CPU engine's: the W4A16 kernel (and so
// the order of its sums) follows the number of rows, so a request's tokens can differ where
// its top two logits are within rounding of each other, depending on what else runs.
class CudaBatchEngine : public BatchEngine {
 public:
  // Uploads model's weights; the LlamaModel may be dropped afterwards.
  CudaBatchEngine(const LlamaModel& model, int slots, int64_t ctx)
      : llm_(model.config(), model.weights(), options(slots, ctx)) {}

  const ModelConfig& config() const override { return llm_.config(); }
  int slots() const override { return llm_.options().slots; }
  int64_t ctx() const override { return llm_.options().ctx; }
  int64_t n_past(int slot) const override { return llm_.n_past(slot); }
  void clear(int slot) override { llm_.clear(slot); }
  void truncate(int slot, int64_t n) override { llm_.truncate(slot, n); }
  void copy_prefix(int src, int dst, int64_t n) override { llm_.copy_prefix(src, dst, n); }
  void prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits) override {
    llm_.prefill(slot, tokens, n, all_logits, logits);
  }
  bool prefill_many(const int* slots, const int32_t* const* tokens, const int64_t* n, int count,
                    std::vector<float>& logits) override {
    llm_.prefill_many(slots, tokens, n, count, logits);
    return true;
  }
  void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) override {
    llm_.decode(slots, tokens, B, logits);
  }
  bool decode_argmax(const int* slots, const int32_t* tokens, int B, int32_t* next) override {
    llm_.decode_greedy(slots, tokens, B, next);
    return true;
  }
  std::string describe() const override { return "cuda: " + llm_.device_name(); }

  CudaLlama& engine() { return llm_; }

 private:
  static CudaLlamaOptions options(int slots, int64_t ctx) {
    CudaLlamaOptions o;
    o.slots = slots;
    o.ctx = ctx;
    return o;
  }
  CudaLlama llm_;
};

}  // namespace awq::cuda
