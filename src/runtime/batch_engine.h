// The server's engine (runtime/scheduler.h): slots() sequences, each with its own KV cache of
// ctx() positions, prefilled one at a time (or, on the GPU, several in one pass) and decoded
// together, one token per sequence per step (continuous batching). CpuBatchEngine (below) runs
// LlamaModel + BatchDecoder on the thread pool; CudaBatchEngine (ops/cuda/cuda_sequence.h) runs
// CudaLlama in -DAWQ_CUDA=ON builds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "model/batch_decode.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"

namespace awq {

class BatchEngine {
 public:
  virtual ~BatchEngine() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int slots() const = 0;
  virtual int64_t ctx() const = 0;              // positions per slot
  virtual int64_t n_past(int slot) const = 0;   // positions the slot holds
  virtual void clear(int slot) = 0;             // empties the slot's cache
  // Keeps positions [0, n) of the slot's cache (0 <= n <= n_past(slot)), so that a request
  // whose prompt starts with what the slot holds prefills only the rest (the scheduler's prompt
  // cache).
  virtual void truncate(int slot, int64_t n) = 0;
  // Positions [0, n) of slot src's cache become slot dst's whole cache (src != dst,
  // n <= n_past(src); src unchanged), so that requests that share a prompt prefix compute it
  // once (the scheduler's prompt sharing).
  virtual void copy_prefix(int src, int dst, int64_t n) = 0;
  // Runs tokens: [n] of `slot` at positions n_past(slot).. and appends them to its cache.
  // logits: [n, vocab] when all_logits, else [1, vocab] for the last token.
  virtual void prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
                       std::vector<float>& logits) = 0;
  // Several slots' prompt pieces in shared forward passes, where the engine can (the GPU: one
  // pass reads the weights once for all of them): piece i, tokens[i][0 .. n[i]), goes to slot
  // slots[i] (distinct) as prefill() would put it; logits: [count, vocab], each piece's last
  // token. Everything is checked before anything runs, so an error leaves every slot as it was.
  // false: the engine has no such path (the CPU: prefill() per slot), nothing ran.
  virtual bool prefill_many(const int* slots, const int32_t* const* tokens, const int64_t* n, int count,
                            std::vector<float>& logits) {
    (void)slots, (void)tokens, (void)n, (void)count, (void)logits;
    return false;
  }
  // One step: token b goes to slot slots[b] at position n_past(slots[b]); slots: [B] distinct;
  // logits: [B, vocab]. Throws awq::Error for an id outside the vocabulary or a full slot.
  virtual void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) = 0;
  // The same step with next: [B] = argmax of each row's logits (first on ties), where the engine
  // can take it itself (the GPU: no logits cross to the host); false: it cannot, nothing ran.
  virtual bool decode_argmax(const int* slots, const int32_t* tokens, int B, int32_t* next) {
    (void)slots, (void)tokens, (void)B, (void)next;
    return false;
  }
  // What runs the model ("cpu, 4 threads", "cuda: NVIDIA H100 ..."), for logs.
  virtual std::string describe() const = 0;
};

// The CPU engine. A row's logits do not depend on what else is in the batch (BatchDecoder's
// guarantee), nor on the pieces a prompt is prefilled in (LlamaModel::forward with
// Linears::RowExact), so greedy outputs do not depend on the load, nor on a prompt prefix taken
// from a cache or another slot (but see SchedulerOptions::cache_prompt for generated positions).
class CpuBatchEngine : public BatchEngine {
 public:
  // Engines of at most this many slots sum the logits in the GEMV's order
  // (Linears::RowExactGemvLogits), larger ones in the GEMM's. A decode step has at most `slots`
  // rows; the lm_head (FP16 even in an AWQ model) measured, 32000 x 2048 fp16 on 2 cores of an
  // AVX-512 EPYC, GEMV's order against GEMM's: 2.2 / 4.0 / 5.3 / 6.8 ms against 5.2 / 6.1 / 7.6 /
  // 8.4 at 1 / 3 / 4 / 8 rows, but 19.7 against 11.7 at 16 (bench/bench_gemm.cpp).
  static constexpr int kGemvLogitsMaxSlots = 8;

  // model and pool must outlive the engine; allocates slots caches of ctx positions of kv_type.
  CpuBatchEngine(LlamaModel& model, ThreadPool& pool, int slots, int64_t ctx, KvType kv_type);

  const ModelConfig& config() const override { return model_.config(); }
  int slots() const override { return int(caches_.size()); }
  int64_t ctx() const override { return ctx_; }
  int64_t n_past(int slot) const override { return caches_.at(size_t(slot)).n_past; }
  void clear(int slot) override { caches_.at(size_t(slot)).clear(); }
  void truncate(int slot, int64_t n) override { caches_.at(size_t(slot)).truncate(n); }
  void copy_prefix(int src, int dst, int64_t n) override;
  void prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits) override;
  void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) override;
  std::string describe() const override;

 private:
  LlamaModel& model_;
  ThreadPool& pool_;
  int64_t ctx_;
  std::vector<KvCache> caches_;  // [slots]
  Linears lin_;                  // RowExact, or RowExactGemvLogits for few slots
  BatchDecoder decoder_;
  std::vector<KvCache*> step_caches_;  // [B] of the current step
};

}  // namespace awq
