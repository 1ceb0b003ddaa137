// Issue 5's criterion, end to end: greedy tokens of the reference model as an RTN W4 g128
// checkpoint on the default W4 kernels (int8x2 activations where the CPU has AVX2) equal those
// of the exact kernels (f32 activations, the reference's weights: the same tokens as
// AWQ_MATMUL=reference), or differ only where the exact path's top-2 logits are within 1e-3
// at the first differing step; 64 tokens after the prompt and after each of
// reference.json's 4 greedy prompts. On the prompt the int8 kernels (AWQ_W4_ACT=int8)
// are run too and reported (not asserted): they break the criterion there (step 27, exact
// top-2 gap 0.031), which is why they are not the default.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "model/llama_model.h"
#include "ops/cpu/w4.h"
#include "runtime/sampler.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "support/tiny_rtn_w4.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

constexpr int kSteps = 64;
constexpr float kGapLimit = 1e-3f;

struct Greedy {
  std::vector<int32_t> tokens;  // [kSteps]
  std::vector<float> gap;       // [kSteps] top-1 minus top-2 logit at each step
};

// kSteps greedy tokens after `prompt` with the W4 kernels w4_best_isa() gives now.
Greedy run_greedy(LlamaModel& m, ThreadPool& pool, const std::vector<int32_t>& prompt) {
  KvCache cache = m.new_cache(int64_t(prompt.size()) + kSteps);
  const int64_t vocab = m.config().vocab_size;
  std::vector<float> logits;
  m.forward(pool, prompt.data(), int64_t(prompt.size()), cache, false, logits);
  Greedy g;
  for (int s = 0; s < kSteps; ++s) {
    const int32_t top = argmax(logits.data(), vocab);  // the sampler's greedy choice
    float second = -1e30f;
    for (int64_t i = 0; i < vocab; ++i)
      if (i != top) second = std::max(second, logits[size_t(i)]);
    g.tokens.push_back(top);
    g.gap.push_back(logits[size_t(top)] - second);
    m.forward(pool, &top, 1, cache, false, logits);
  }
  return g;
}

// Runs with `isa` forced (nullopt: the default dispatch), then restores the default.
Greedy run_with(std::optional<W4Isa> isa, LlamaModel& m, ThreadPool& pool, const std::vector<int32_t>& prompt) {
  w4_override_isa(isa);
  Greedy g;
  try {
    g = run_greedy(m, pool, prompt);
  } catch (...) {
    w4_override_isa(std::nullopt);
    throw;
  }
  w4_override_isa(std::nullopt);
  return g;
}

// First step where the tokens differ, or kSteps.
int first_difference(const Greedy& a, const Greedy& b) {
  int s = 0;
  while (s < kSteps && a.tokens[size_t(s)] == b.tokens[size_t(s)]) ++s;
  return s;
}

TEST(W4Greedy, DefaultKernelsFollowExactTokens) {
  test::TempDir tmp;
  ThreadPool pool(2);
  LlamaModel m(test::quantize_tiny_rtn_w4(pool, tmp));
  const Tokenizer tok = Tokenizer::load(test::tiny_model_dir());

  const W4Isa exact = w4_isa_supported(W4Isa::Avx512) ? W4Isa::Avx512 : W4Isa::Scalar;
  const W4Isa deflt = w4_best_isa();
  std::printf("[ info ] default W4 kernels: %s; exact: %s\n", w4_isa_name(deflt), w4_isa_name(exact));
  // (A plain ISA and a flag: GCC 12 warns -Wmaybe-uninitialized on an optional here.)
  const W4Isa int8 = w4_isa_supported(W4Isa::Avx512Vnni) ? W4Isa::Avx512Vnni : W4Isa::Avx2;
  const bool have_int8 = w4_isa_supported(int8);
  // The prompt first, then the reference.json greedy prompts' texts.
  std::vector<std::string> prompts = {"The history of the old city"};
  for (const auto& g : test::tiny_reference()["greedy"]) prompts.push_back(g["prompt"].get<std::string>());
  // Prompts longer than kW4DecodeRows tokens (under AWQ_W4_ACT=auto their prefill takes the
  // single-int8 kernels; in the ASan build that flipped the first one's token 14, exact gap 0.014).
  const std::string val = test::read_text(test::shared_path("data/val.txt"));
  for (size_t at : {size_t(0), size_t(5000), size_t(20000), size_t(40000)}) {
    std::string excerpt = val.substr(at, 600);
    excerpt = excerpt.substr(0, excerpt.rfind(' '));  // whole words
    prompts.push_back(excerpt);
  }
  for (const std::string& p : prompts) {
    const std::vector<int32_t> ids = tok.encode(p, true);  // with BOS, as `awq generate`
    const Greedy ref = run_with(exact, m, pool, ids), fast = run_with(std::nullopt, m, pool, ids);
    const int d = first_difference(ref, fast);
    float min_gap = 1e30f;
    for (int s = 0; s < d; ++s) min_gap = std::min(min_gap, ref.gap[size_t(s)]);
    if (d == kSteps) {
      std::printf("[ info ] \"%.40s\" (%zu tokens): default = exact for all %d tokens (smallest exact top-2 gap %.3g)\n",
                  p.c_str(), ids.size(), kSteps, double(min_gap));
    } else {
      std::printf("[ info ] \"%.40s\" (%zu tokens): default differs from exact at step %d, exact top-2 gap there %.3g\n",
                  p.c_str(), ids.size(), d, double(ref.gap[size_t(d)]));
      EXPECT_LT(ref.gap[size_t(d)], kGapLimit)
          << "\"" << p << "\": the default W4 kernels (" << w4_isa_name(deflt) << ") chose token "
          << fast.tokens[size_t(d)] << " at step " << d << " where the exact kernels chose "
          << ref.tokens[size_t(d)] << " with a top-2 logit gap of " << ref.gap[size_t(d)];
    }
    if (have_int8 && p == prompts[0]) {  // what the criterion says of the int8 kernels (reported only)
      const Greedy q8 = run_with(int8, m, pool, ids);
      const int d8 = first_difference(ref, q8);
      if (d8 == kSteps) std::printf("[ info ]   %s: equal for all %d tokens\n", w4_isa_name(int8), kSteps);
      else std::printf("[ info ]   %s: differs at step %d, exact top-2 gap there %.3g (%s)\n", w4_isa_name(int8), d8,
                       double(ref.gap[size_t(d8)]), ref.gap[size_t(d8)] < kGapLimit ? "within 1e-3" : "criterion broken");
    }
  }
}

}  // namespace
}  // namespace awq
