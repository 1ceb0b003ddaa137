#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace awq {

double PerplexityResult::ppl() const { return std::exp(nll_mean()); }

double token_nll(const float* logits, int64_t vocab, int32_t target) {
  float mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - mx);
  return (std::log(sum) + mx) - double(logits[target]);
}

PerplexityResult perplexity(LlamaModel& model, ThreadPool& pool, const std::vector<int32_t>& ids,
                            const PerplexityOptions& opt,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>&
                                on_window) {
  CpuSequence seq(model, pool, opt.ctx);
  return perplexity(seq, ids, opt, on_window);
}

PerplexityResult perplexity(SequenceModel& model, const std::vector<int32_t>& ids,
                            const PerplexityOptions& opt,
                            const std::function<void(int64_t, int64_t, const PerplexityResult&)>&
                                on_window) {
  const bool bos = opt.bos_id >= 0;
  const int64_t chunk = bos ? opt.ctx - 1 : opt.ctx;
  if (chunk < (bos ? 1 : 2)) throw Error("perplexity: --ctx " + std::to_string(opt.ctx) + " is too small");
  const int64_t n = int64_t(ids.size());
  if (n < (bos ? 1 : 2)) throw Error("perplexity: the text has too few tokens (" + std::to_string(n) + ")");
  int64_t total = (n + chunk - 1) / chunk;
  if (opt.max_windows > 0) total = std::min(total, opt.max_windows);
  if (model.ctx() < opt.ctx)
    throw Error("perplexity: the model's context holds " + std::to_string(model.ctx()) +
                " positions, less than --ctx " + std::to_string(opt.ctx));

  PerplexityResult r;
  std::vector<int32_t> window;
  for (int64_t w = 0; w < total; ++w) {
    const int64_t b = w * chunk, e = std::min(n, b + chunk);
    window.clear();
    if (bos) window.push_back(opt.bos_id);
    window.insert(window.end(), ids.begin() + b, ids.begin() + e);
    model.clear();
    r.nll_sum += model.forward_nll(window.data(), int64_t(window.size()));
    r.tokens += int64_t(window.size()) - 1;
    r.windows++;
    if (on_window) on_window(w + 1, total, r);
  }
  return r;
}

}  // namespace awq
