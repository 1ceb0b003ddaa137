// Every supported architecture feature against transformers 5.17 (fp32 eager attention):
// tiny random checkpoints made by scripts/ref/make_references.py with save_pretrained, so the
// config.json spellings (rope_parameters, layer_types, ...) and the storage dtypes are real.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "model/llama_model.h"
#include "runtime/sampler.h"
#include "support/shared_data.h"

namespace awq {
namespace {

std::string arch_dir(const std::string& name) {
  std::string dir = AWQ_TEST_DATA_DIR;
  dir += "/arch/";  // += rather than string + literal: GCC 12's -Warray-bounds false positive
  dir += name;
  return dir;
}

class Arch : public ::testing::TestWithParam<std::string> {};

// Logits at all 24 positions within 2e-4 absolute with an f32 KV cache: the weights are
// identical (read from the same file), the math is f32 in both; the differences are summation
// order (~1e-6 relative on logits of magnitude ~1-10). Any wrong feature (rope scaling, bias,
// norm, window) moves logits by 1e-2 or more. With the fp16 cache (the default), keys and
// values are rounded to 2^-11 relative, which moves these random models' logits by up to
// ~1.4e-3 (measured when this test was written): bound 5e-3, still below what a wrong feature does.
TEST_P(Arch, LogitsMatchTransformers) {
  const std::string dir = arch_dir(GetParam());
  LlamaModel model(dir);
  const auto ref = test::read_json(dir + "/expected.json");
  const auto ids = ref["ids"].get<std::vector<int32_t>>();
  ThreadPool pool(2);
  for (KvType type : {KvType::F32, KvType::F16}) {
    KvCache cache = model.new_cache(64, type);
    std::vector<float> logits;
    model.forward(pool, ids.data(), int64_t(ids.size()), cache, true, logits);
    const int64_t V = model.config().vocab_size;
    double max_err = 0;
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t j = 0; j < V; ++j)
        max_err = std::max(max_err, std::abs(double(logits[i * V + j]) - ref["logits"][i][j].get<double>()));
    EXPECT_LT(max_err, type == KvType::F32 ? 2e-4 : 5e-3) << GetParam() << " kv " << kv_type_name(type);
  }
}

// Greedy ids with the KV cache, one token at a time, equal transformers' generate(), with an
// f32 cache. With the fp16 cache, free-running greedy is not comparable on these random-weight
// models: mistral_swa_f16 reaches a step whose top two logits are 1e-5 apart, and fp16 rounding
// (which moves logits by ~1e-3) picks the other one. So the fp16 cache is checked teacher-forced
// (fed the reference tokens, so the decode path with windows, biases, norms runs on every step):
// its argmax must be the reference token wherever the f32 run's top-2 margin exceeds 1e-2.
TEST_P(Arch, GreedyMatchesTransformersGenerate) {
  const std::string dir = arch_dir(GetParam());
  LlamaModel model(dir);
  const auto ref = test::read_json(dir + "/expected.json");
  auto prompt = ref["greedy_prompt"].get<std::vector<int32_t>>();
  const auto want = ref["greedy_ids"].get<std::vector<int32_t>>();
  ThreadPool pool(1);
  KvCache cache = model.new_cache(64, KvType::F32);
  std::vector<float> logits;
  model.forward(pool, prompt.data(), int64_t(prompt.size()), cache, false, logits);
  std::vector<int32_t> got;
  for (size_t i = 0; i < want.size(); ++i) {
    int32_t t = argmax(logits.data(), int64_t(logits.size()));
    got.push_back(t);
    model.forward(pool, &t, 1, cache, false, logits);
  }
  EXPECT_EQ(got, want) << GetParam();

  KvCache c32 = model.new_cache(64, KvType::F32), c16 = model.new_cache(64, KvType::F16);
  std::vector<float> l32, l16;
  model.forward(pool, prompt.data(), int64_t(prompt.size()), c32, false, l32);
  model.forward(pool, prompt.data(), int64_t(prompt.size()), c16, false, l16);
  int checked = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    std::vector<float> top(l32);
    std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
    if (top[0] - top[1] > 1e-2f) {
      EXPECT_EQ(argmax(l16.data(), int64_t(l16.size())), want[i]) << GetParam() << " fp16 cache, step " << i;
      ++checked;
    }
    int32_t t = want[i];
    model.forward(pool, &t, 1, c32, false, l32);
    model.forward(pool, &t, 1, c16, false, l16);
  }
  EXPECT_GE(checked, int(want.size()) / 2) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Transformers, Arch,
                         ::testing::Values("llama3_rope_bf16", "llama_bias_linear_f32", "mistral_swa_f16",
                                           "qwen2_bias_bf16", "qwen3_qknorm_bf16"));

}  // namespace
}  // namespace awq
