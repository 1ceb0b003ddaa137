// The FP engine against the PyTorch reference (reference.json of tiny-llama-gqa, computed in
// f32 with TF32 off): final-position logits and greedy continuations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "model/llama_model.h"
#include "runtime/sampler.h"
#include "support/shared_data.h"
#include "support/tiny_model.h"

namespace awq {
namespace {

using test::tiny_model_dir;
using test::tiny_reference;

using test::tiny_model;

TEST(Model, ConfigOfTinyModel) {
  const ModelConfig& c = tiny_model().config();
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_layers, 8);
  EXPECT_EQ(c.num_heads, 6);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
}

// Top-5 ids equal and logits within 1e-2 absolute (the bound). f32 compute with a
// different summation order than PyTorch gives ~1e-5 differences, so 1e-3 is also asserted
// to catch subtle bugs (a wrong eps or RoPE rounding shows up at ~1e-3 .. 1e-1). Both KV
// cache types: the reference keeps keys and values in f32, the fp16 cache rounds them.
TEST(Model, LastPromptLogitsMatchReference) {
  ThreadPool pool(2);
  for (KvType type : {KvType::F32, KvType::F16})
  for (const auto& g : tiny_reference()["greedy"]) {
    SCOPED_TRACE(kv_type_name(type));
    std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
    KvCache cache = tiny_model().new_cache(64, type);
    std::vector<float> logits;
    tiny_model().forward(pool, ids.data(), int64_t(ids.size()), cache, false, logits);
    const auto& ref = g["last_prompt_position"];
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(order[i], ref["top5_ids"][i].get<int32_t>()) << g["prompt"];
      EXPECT_NEAR(logits[order[i]], ref["top5_logits"][i].get<float>(), 1e-3) << g["prompt"];
    }
    for (int i = 0; i < 8; ++i)
      EXPECT_NEAR(logits[i], ref["first8_logits"][i].get<float>(), 1e-3) << g["prompt"];
  }
}

// 32 greedy tokens with the KV cache equal the reference's full-recompute greedy ids, with
// the default fp16 cache and with an f32 one.
TEST(Model, GreedyTokensMatchReference) {
  ThreadPool pool(2);
  for (KvType type : {KvType::F16, KvType::F32})
  for (const auto& g : tiny_reference()["greedy"]) {
    SCOPED_TRACE(kv_type_name(type));
    std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = g["greedy_ids"].get<std::vector<int32_t>>();
    KvCache cache = tiny_model().new_cache(128, type);
    std::vector<float> logits;
    tiny_model().forward(pool, ids.data(), int64_t(ids.size()), cache, false, logits);
    std::vector<int32_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      int32_t t = argmax(logits.data(), int64_t(logits.size()));
      got.push_back(t);
      tiny_model().forward(pool, &t, 1, cache, false, logits);
    }
    EXPECT_EQ(got, want) << g["prompt"];
  }
}

// Prefill of n tokens at once gives the same logits as feeding them one at a time.
// Tolerance: f32 cache 1e-4 (the two paths sum in different orders, ~1e-6 relative per dot
// product). fp16 cache 1e-3: a key or value whose f32 value differs by those ~1e-6 between
// the paths can round to the neighbouring fp16 value on one side only (a step of 2^-11
// relative on that element); the worst logit difference this gives is printed (2.2e-4 when
// this test was written), a wrong widening or mask moves logits by O(0.1 .. 1).
TEST(Model, BatchedPrefillEqualsIncremental) {
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 415, 3340, 302, 272, 2556, 905};
  for (KvType type : {KvType::F32, KvType::F16}) {
    KvCache a = tiny_model().new_cache(16, type), b = tiny_model().new_cache(16, type);
    std::vector<float> all, one;
    tiny_model().forward(pool, ids.data(), int64_t(ids.size()), a, true, all);
    const int64_t V = tiny_model().config().vocab_size;
    const float tol = type == KvType::F32 ? 1e-4f : 1e-3f;
    float worst = 0.0f;
    for (size_t i = 0; i < ids.size(); ++i) {
      tiny_model().forward(pool, &ids[i], 1, b, false, one);
      for (int64_t j = 0; j < V; ++j) worst = std::max(worst, std::fabs(one[size_t(j)] - all[i * V + j]));
    }
    EXPECT_LE(worst, tol) << kv_type_name(type);
    std::printf("[ info ] prefill vs incremental, %s KV cache: max |logit difference| %.2e\n", kv_type_name(type),
                double(worst));
  }
}

TEST(Model, ErrorsOnBadTokenAndOverflow) {
  ThreadPool pool(1);
  KvCache cache = tiny_model().new_cache(4);
  std::vector<float> logits;
  const int32_t bad = 32000;
  EXPECT_THROW(tiny_model().forward(pool, &bad, 1, cache, false, logits), Error);
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5};
  try {
    tiny_model().forward(pool, ids.data(), 5, cache, false, logits);
    FAIL() << "expected a context overflow error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace awq
