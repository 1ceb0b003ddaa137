#include "runtime/token_logprobs.h"

#include <algorithm>
#include <cmath>

namespace awq {

LogprobsOf logprobs_of(const float* logits, int64_t vocab, int32_t chosen, int top) {
  float mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i] - mx));
  const double lse = double(mx) + std::log(sum);
  LogprobsOf r;
  r.chosen = float(double(logits[chosen]) - lse);
  top = int(std::min<int64_t>(std::max(top, 0), vocab));
  if (top == 0) return r;
  // The `top` largest by a bounded insertion (top <= 20: one pass over the vocabulary).
  std::vector<std::pair<float, int32_t>> best;
  best.reserve(size_t(top) + 1);
  auto before = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  for (int64_t i = 0; i < vocab; ++i) {
    const std::pair<float, int32_t> c{logits[i], int32_t(i)};
    if (int(best.size()) == top && !before(c, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), c, before), c);
    if (int(best.size()) > top) best.pop_back();
  }
  for (const auto& [l, id] : best) r.top.emplace_back(id, float(double(l) - lse));
  return r;
}

}  // namespace awq
