#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <unordered_set>

namespace awq {

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

bool is_plain_greedy(const SamplerParams& p) {
  return p.temperature <= 0.0f && p.logit_bias.empty() && p.presence_penalty == 0.0f &&
         p.frequency_penalty == 0.0f && p.repeat_penalty == 1.0f;
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}

int32_t Sampler::sample(float* logits, int64_t vocab, const std::vector<int32_t>& history) {
  const int32_t tok = choose(logits, vocab, history);
  if (p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) ++returned_[tok];
  return tok;
}

int32_t Sampler::choose(float* logits, int64_t vocab, const std::vector<int32_t>& history) {
  for (const auto& [id, bias] : p_.logit_bias)
    if (id >= 0 && id < vocab) logits[id] += bias;
  for (const auto& [id, count] : returned_)
    if (id >= 0 && id < vocab) logits[id] -= p_.presence_penalty + p_.frequency_penalty * float(count);
  if (p_.repeat_penalty != 1.0f && !history.empty()) {
    const size_t n = p_.repeat_last_n < 0 ? history.size()
                                          : std::min(history.size(), size_t(p_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - std::ptrdiff_t(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= vocab) continue;
      float& l = logits[id];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f) return argmax(logits, vocab);

  cand_.clear();
  cand_.reserve(size_t(vocab));
  for (int64_t i = 0; i < vocab; ++i) cand_.emplace_back(logits[i] / p_.temperature, int32_t(i));
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + std::ptrdiff_t(keep), cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(keep);
  // softmax over the kept candidates (sorted, so cand_[0] holds the max)
  const float mx = cand_[0].first;
  std::vector<double> prob(keep);
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(double(cand_[i].first - mx));
  for (double& q : prob) q /= sum;
  if (p_.min_p > 0.0f) {
    size_t k = 1;
    while (k < keep && prob[k] >= double(p_.min_p) * prob[0]) ++k;
    keep = k;
  }
  if (p_.top_p < 1.0f) {
    double cum = 0.0;
    size_t k = 0;
    while (k < keep) {
      cum += prob[k++];
      if (cum >= double(p_.top_p)) break;
    }
    keep = k;
  }
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += prob[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r < 0.0) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace awq
