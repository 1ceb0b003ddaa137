// Perplexity over a token stream, with the windows of the reference figures
// (shared/models/tiny-llama-gqa/reference.json, definitions.perplexity):
// the text's ids (no special tokens) are cut into consecutive chunks of ctx - 1 tokens;
// each window is [BOS] + chunk, with no overlap and no carried context, and every chunk token
// is scored (the first from BOS alone). ppl = exp(sum NLL / scored tokens).
// A model without BOS uses chunks of ctx tokens and scores all but the first of each.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "runtime/sequence_model.h"

namespace awq {

struct PerplexityResult {
  double nll_sum = 0.0;
  int64_t tokens = 0;   // scored tokens
  int64_t windows = 0;
  double nll_mean() const { return tokens ? nll_sum / double(tokens) : 0.0; }
  double ppl() const;
};

struct PerplexityOptions {
  int64_t ctx = 512;          // window length including BOS
  int32_t bos_id = -1;        // -1: no BOS
  int64_t max_windows = 0;    // 0: all; else only the first max_windows windows (a prefix)
};

// ids: [n] the whole text. on_window(done, total, result so far) after each window.
// The model's context must hold opt.ctx positions; its cache is cleared before each window.
PerplexityResult perplexity(SequenceModel& model, const std::vector<int32_t>& ids,
                            const PerplexityOptions& opt,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>&
                                on_window = nullptr);
// The same on the CPU engine.
PerplexityResult perplexity(LlamaModel& model, ThreadPool& pool, const std::vector<int32_t>& ids,
                            const PerplexityOptions& opt,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>&
                                on_window = nullptr);

// -log softmax(logits)[target] in double. logits: [vocab].
double token_nll(const float* logits, int64_t vocab, int32_t target);

}  // namespace awq
