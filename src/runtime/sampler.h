// Token sampling from logits: greedy, or temperature with top-k / top-p / min-p filtering,
// a repetition penalty (HF / llama.cpp) and OpenAI's presence / frequency penalties, all seeded
// for reproducibility.
#pragma once
#include <cstdint>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

namespace awq {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax)
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1: off; HF style: logit > 0 divided, else multiplied
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at (-1: all)
  // OpenAI's penalties (0: off; the API allows -2..2), over the tokens this sampler has returned
  // (the completion so far, not the prompt, as in vLLM): logit -= presence * [count > 0] +
  // frequency * count.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // OpenAI's logit_bias: (id, bias) added to those logits first (-100 bans a token, 100 forces it).
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0xA0A0A0A0ULL;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // logits: [vocab] (modified in place by the penalties); history: the tokens so far (the
  // repetition penalty's view). The returned token counts for the presence / frequency penalties.
  int32_t sample(float* logits, int64_t vocab, const std::vector<int32_t>& history);
  const SamplerParams& params() const { return p_; }
  // Forgets the returned tokens (the presence / frequency penalties start over: a new reply of a
  // chat); the random stream goes on.
  void start_reply() { returned_.clear(); }

 private:
  int32_t choose(float* logits, int64_t vocab, const std::vector<int32_t>& history);

  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // (logit, id), reused
  std::unordered_map<int32_t, int> returned_;     // id -> times returned (presence / frequency)
};

// Index of the largest element (first one on ties). logits: [n].
int32_t argmax(const float* logits, int64_t n);

// True when p picks argmax(logits) unchanged: greedy with no bias and no penalty, so an engine
// may take the argmax itself (on the GPU: no logits copied to the host).
bool is_plain_greedy(const SamplerParams& p);

}  // namespace awq
