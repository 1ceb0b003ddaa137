// SequenceModel (runtime/sequence_model.h) on the CUDA engine: one sequence in slot 0 of a
// CudaLlama. A single new token runs the decode step (replayed from a CUDA graph), several
// run the chunked prefill; forward_nll scores on the device.
#pragma once
#include "model/llama_model.h"
#include "ops/cuda/cuda_llama.h"
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
  void forward(const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits) override {
    if (n == 1 && !all_logits)
      llm_.decode(tokens, 1, logits);
    else
      llm_.prefill(0, tokens, n, all_logits, logits);
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

}  // namespace awq::cuda
