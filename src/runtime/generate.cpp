#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/clock.h"
#include "core/error.h"

namespace awq {

GenerateResult generate(LlamaModel& model, ThreadPool& pool, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, KvCache& cache,
                        const GenerateOptions& opt,
                        const std::function<bool(const std::string&)>& on_text) {
  CpuSequence seq(model, pool, cache);
  return generate(seq, tok, prompt, opt, on_text);
}

GenerateResult generate(SequenceModel& model, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<bool(const std::string&)>& on_text) {
  if (prompt.empty()) throw Error("empty prompt: there is nothing to continue (give some text)");
  if (int64_t(prompt.size()) > model.ctx() - model.n_past())
    throw Error("the prompt is " + std::to_string(prompt.size()) +
                " tokens but the context holds " + std::to_string(model.ctx() - model.n_past()) +
                " (raise --ctx, up to the model's max_position_embeddings, or shorten the prompt)");
  GenerateResult res;
  res.prompt_tokens = int64_t(prompt.size());
  const int64_t vocab = model.config().vocab_size;
  const auto& eos = tok.eos_ids();
  Sampler sampler(opt.sampler);
  // The stream decoder sees the prompt too, so the first piece carries its leading space.
  StreamDecoder stream(tok, /*skip_special=*/true);
  for (int32_t id : prompt) stream.push(id);
  std::vector<int32_t> history = prompt;

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;
  model.forward(prompt.data(), int64_t(prompt.size()), false, logits);
  res.prefill_seconds = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  res.stop_reason = "length";
  const bool plain_greedy = is_plain_greedy(opt.sampler);
  std::optional<int32_t> chosen;  // the next token, when the engine took the argmax itself
  while (int64_t(res.tokens.size()) < opt.max_new_tokens) {
    const int32_t next = chosen ? *chosen : sampler.sample(logits.data(), vocab, history);
    chosen.reset();
    if (opt.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) {
      res.stop_reason = "eos";
      break;
    }
    res.tokens.push_back(next);
    history.push_back(next);
    const std::string piece = stream.push(next);
    if (!piece.empty() && on_text && !on_text(piece)) {
      res.stop_reason = "callback";
      break;
    }
    if (int64_t(res.tokens.size()) >= opt.max_new_tokens) break;
    if (model.n_past() >= model.ctx()) {
      res.stop_reason = "context";
      break;
    }
    int32_t argmax_id = 0;
    if (plain_greedy && model.forward_argmax(next, &argmax_id)) {
      chosen = argmax_id;
      continue;
    }
    model.forward(&next, 1, false, logits);
  }
  const std::string rest = stream.flush();
  if (!rest.empty() && on_text) on_text(rest);
  res.decode_seconds = seconds_since(t0);
  return res;
}

int64_t default_generate_ctx(int64_t prompt_tokens, int64_t max_new_tokens, int64_t max_positions) {
  // A run feeds the prompt and all but the last generated token: prompt + max_new positions hold it.
  const int64_t want = prompt_tokens + std::max<int64_t>(max_new_tokens, 1);
  return std::max<int64_t>(1, std::min(want, max_positions));
}

size_t stop_holdback(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops)
    for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len)
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
  return hold;
}

}  // namespace awq
