// Log-probabilities of generated tokens (the OpenAI API's `logprobs`): the chosen token's
// log-softmax value under the model's raw distribution (before temperature, filters and
// penalties, as OpenAI and vLLM report them) and the most likely alternatives.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace awq {

struct TokenLogprob {
  std::string token;  // the text this token adds (empty while a UTF-8 sequence is unfinished)
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // the most likely tokens, most likely first
};

// Up to this many alternatives per token (OpenAI's limit for top_logprobs).
inline constexpr int kMaxTopLogprobs = 20;

struct LogprobsOf {
  float chosen = 0.0f;                         // log p(chosen)
  std::vector<std::pair<int32_t, float>> top;  // (id, log p), `top` of them, most likely first
};
// logits: [vocab], the model's raw scores. top: 0..kMaxTopLogprobs (ties: the lower id first).
LogprobsOf logprobs_of(const float* logits, int64_t vocab, int32_t chosen, int top);

}  // namespace awq
