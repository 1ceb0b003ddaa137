// Token sampling from logits: greedy, or temperature with top-k / top-p / min-p filtering,
// and a repetition penalty, all seeded for reproducibility.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace awq {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax)
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1: off; HF style: logit > 0 divided, else multiplied
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at (-1: all)
  uint64_t seed = 0xA0A0A0A0ULL;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // logits: [vocab] (modified in place by the penalty); history: the tokens so far.
  int32_t sample(float* logits, int64_t vocab, const std::vector<int32_t>& history);
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // (logit, id), reused
};

// Index of the largest element (first one on ties). logits: [n].
int32_t argmax(const float* logits, int64_t n);

}  // namespace awq
