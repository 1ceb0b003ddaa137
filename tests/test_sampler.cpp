// The sampler: greedy, temperature, top-k / top-p / min-p filtering, repetition penalty, seed.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "runtime/sampler.h"
#include "runtime/token_logprobs.h"

namespace awq {
namespace {

SamplerParams plain(float temp) {
  SamplerParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

TEST(Sampler, GreedyIsArgmaxFirstOnTies) {
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  Sampler s(plain(0.0f));
  EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
  EXPECT_EQ(argmax(l.data(), 4), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> l = {1.0f, 1.1f, 0.9f, 1.05f, 0.3f};
  Sampler a(plain(1.0f)), b(plain(1.0f));
  for (int i = 0; i < 50; ++i) {
    auto la = l, lb = l;
    EXPECT_EQ(a.sample(la.data(), 5, {}), b.sample(lb.data(), 5, {}));
  }
}

// At temperature 1 with no filtering the frequencies follow softmax(logits): 20000 draws,
// each frequency within 0.015 of its probability (> 4 standard deviations).
TEST(Sampler, TemperatureOneFollowsSoftmax) {
  const std::vector<float> l = {0.0f, 1.0f, 2.0f};
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  Sampler s(plain(1.0f));
  std::map<int, int> n;
  for (int i = 0; i < 20000; ++i) {
    auto c = l;
    n[s.sample(c.data(), 3, {})]++;
  }
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(n[k] / 20000.0, std::exp(double(k)) / z, 0.015) << k;
}

TEST(Sampler, FiltersKeepOnlyAllowedTokens) {
  const std::vector<float> l = {3.0f, 2.9f, 0.0f, -1.0f, 2.0f};
  auto draw_set = [&](SamplerParams p) {
    Sampler s(p);
    std::map<int, int> n;
    for (int i = 0; i < 2000; ++i) {
      auto c = l;
      n[s.sample(c.data(), 5, {})]++;
    }
    return n;
  };
  SamplerParams k = plain(1.0f);
  k.top_k = 2;
  for (const auto& [id, cnt] : draw_set(k)) EXPECT_TRUE(id == 0 || id == 1) << id;
  SamplerParams p = plain(1.0f);
  p.top_p = 0.3f;  // p(0) ~ 0.41 alone exceeds 0.3
  for (const auto& [id, cnt] : draw_set(p)) EXPECT_EQ(id, 0);
  SamplerParams m = plain(1.0f);
  m.min_p = 0.5f;  // keeps p >= 0.5 p_max: ids 0, 1 (e^-0.1 = 0.90) but not 4 (e^-1 = 0.37)
  auto n = draw_set(m);
  EXPECT_GT(n[0], 0);
  EXPECT_GT(n[1], 0);
  EXPECT_EQ(n.count(4), 0u);
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {2.0f, 1.5f, -0.5f};
  EXPECT_EQ(s.sample(l.data(), 3, {0}), 1);  // 2.0 / 2 = 1.0 < 1.5
  EXPECT_FLOAT_EQ(l[0], 1.0f);
  std::vector<float> neg = {-0.5f, -0.8f};
  s.sample(neg.data(), 2, {0});
  EXPECT_FLOAT_EQ(neg[0], -1.0f);  // negative logits are multiplied
}

// OpenAI's penalties count the tokens the sampler returned: logit -= presence * [count > 0] +
// frequency * count (exact in float for these values).
TEST(Sampler, PresenceAndFrequencyPenaltiesCountReturnedTokens) {
  SamplerParams p = plain(0.0f);
  p.presence_penalty = 0.25f;
  p.frequency_penalty = 0.5f;
  Sampler s(p);
  auto fresh = [] { return std::vector<float>{2.0f, 1.5f, 1.0f}; };
  std::vector<float> l = fresh();
  EXPECT_EQ(s.sample(l.data(), 3, {}), 0);  // nothing returned yet: no penalty
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  l = fresh();
  EXPECT_EQ(s.sample(l.data(), 3, {}), 1);  // 0: 2 - 0.25 - 0.5 = 1.25 < 1.5
  EXPECT_FLOAT_EQ(l[0], 1.25f);
  l = fresh();
  EXPECT_EQ(s.sample(l.data(), 3, {}), 0);  // 0: 1.25, 1: 0.75, 2: 1.0
  l = fresh();
  EXPECT_EQ(s.sample(l.data(), 3, {}), 2);  // 0: 2 - 0.25 - 1.0 = 0.75, 1: 0.75, 2: 1.0
  EXPECT_FLOAT_EQ(l[0], 0.75f);
  EXPECT_FLOAT_EQ(l[1], 0.75f);
  s.start_reply();  // a new reply: no penalty again
  l = fresh();
  EXPECT_EQ(s.sample(l.data(), 3, {}), 0);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  // A negative penalty promotes returned tokens.
  SamplerParams q = plain(0.0f);
  q.presence_penalty = -1.0f;
  Sampler t(q);
  l = {1.0f, 1.5f};
  EXPECT_EQ(t.sample(l.data(), 2, {}), 1);
  l = {2.0f, 1.5f};
  EXPECT_EQ(t.sample(l.data(), 2, {}), 1);  // 1: 1.5 + 1 = 2.5 > 2
  EXPECT_FLOAT_EQ(l[1], 2.5f);
}

// logit_bias is added to its ids' logits before anything else (out-of-vocabulary ids ignored).
TEST(Sampler, LogitBiasShiftsItsTokens) {
  SamplerParams p = plain(0.0f);
  p.logit_bias = {{0, 5.0f}, {7, 100.0f}};
  Sampler s(p);
  std::vector<float> l = {1.0f, 2.0f, 3.0f};
  EXPECT_EQ(s.sample(l.data(), 3, {}), 0);
  EXPECT_FLOAT_EQ(l[0], 6.0f);
  p.logit_bias = {{2, -100.0f}};
  Sampler ban(p);
  l = {1.0f, 2.0f, 3.0f};
  EXPECT_EQ(ban.sample(l.data(), 3, {}), 1);
}

// log-softmax at the chosen id and the top alternatives, most likely first, ties by lower id;
// against the formula in double (tolerance 1e-6: the function sums in double too).
TEST(TokenLogprobs, LogSoftmaxAndTopAlternatives) {
  const std::vector<float> l = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  double z = 0.0;
  for (float v : l) z += std::exp(double(v));
  const auto want = [&](int i) { return double(l[size_t(i)]) - std::log(z); };
  const LogprobsOf r = logprobs_of(l.data(), 5, 4, 3);
  EXPECT_NEAR(r.chosen, want(4), 1e-6);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].first, 1);  // 3.0 at ids 1 and 3: the lower id first
  EXPECT_EQ(r.top[1].first, 3);
  EXPECT_EQ(r.top[2].first, 0);
  EXPECT_NEAR(r.top[0].second, want(1), 1e-6);
  EXPECT_NEAR(r.top[2].second, want(0), 1e-6);
  EXPECT_TRUE(logprobs_of(l.data(), 5, 0, 0).top.empty());
  EXPECT_EQ(logprobs_of(l.data(), 5, 0, 20).top.size(), 5u);  // at most the vocabulary
  // Large logits do not overflow (the max is subtracted first).
  const std::vector<float> big = {1000.0f, 1000.0f};
  EXPECT_NEAR(logprobs_of(big.data(), 2, 0, 0).chosen, -std::log(2.0), 1e-6);
}

// is_plain_greedy: what lets an engine take the argmax itself (no bias, no penalty).
TEST(Sampler, PlainGreedyIsArgmaxOnly) {
  SamplerParams p;
  p.temperature = 0.0f;
  EXPECT_TRUE(is_plain_greedy(p));
  std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  Sampler s(p);
  EXPECT_EQ(s.sample(logits.data(), 4, {1, 1, 1}), argmax(logits.data(), 4));  // first of the tie
  for (auto edit : std::vector<std::function<void(SamplerParams&)>>{
           [](SamplerParams& q) { q.temperature = 0.7f; }, [](SamplerParams& q) { q.repeat_penalty = 1.1f; },
           [](SamplerParams& q) { q.presence_penalty = 0.5f; }, [](SamplerParams& q) { q.frequency_penalty = -0.5f; },
           [](SamplerParams& q) { q.logit_bias = {{3, 5.0f}}; }}) {
    SamplerParams q = p;
    edit(q);
    EXPECT_FALSE(is_plain_greedy(q));
  }
}

}  // namespace
}  // namespace awq
