// A check any BatchEngine (runtime/batch_engine.h) must pass, shared by the CPU and CUDA tests:
// greedy decoding through chosen, non-contiguous, reordered slots, with sequences joining and
// leaving the batch, gives the reference's greedy ids for every prompt. Header-only helper.
#pragma once
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/batch_engine.h"
#include "runtime/sampler.h"
#include "support/shared_data.h"

namespace awq::test {

// Slots 3 and 1 start; after 10 steps slots 2 and 0 join (the batch is then 4 rows in the
// order 2, 3, 0, 1); each slot leaves after its 32 ids. e must have at least 4 slots of at
// least 64 positions.
inline void expect_chosen_slots_follow_reference(BatchEngine& e) {
  const nlohmann::json& greedy = tiny_reference()["greedy"];  // 4 prompts x 32 greedy ids
  ASSERT_GE(greedy.size(), 4u);
  ASSERT_GE(e.slots(), 4);
  const int64_t vocab = e.config().vocab_size;
  std::vector<std::vector<int32_t>> got(4);
  std::vector<int32_t> next(4);
  std::vector<bool> started(4, false);
  std::vector<float> logits;
  const auto want = [&](int s) { return greedy[size_t(s)]["greedy_ids"].get<std::vector<int32_t>>(); };
  const auto start = [&](int s) {
    const auto ids = greedy[size_t(s)]["prompt_ids"].get<std::vector<int32_t>>();
    e.clear(s);
    e.prefill(s, ids.data(), int64_t(ids.size()), false, logits);
    next[size_t(s)] = argmax(logits.data(), vocab);
    got[size_t(s)].push_back(next[size_t(s)]);
    started[size_t(s)] = true;
  };
  start(3);
  start(1);
  for (int step = 0;; ++step) {
    if (step == 10) {
      start(2);
      start(0);
    }
    std::vector<int> slots;
    std::vector<int32_t> tokens;
    for (int s : {2, 3, 0, 1})
      if (started[size_t(s)] && got[size_t(s)].size() < want(s).size()) {
        slots.push_back(s);
        tokens.push_back(next[size_t(s)]);
      }
    if (slots.empty()) break;
    // Every other step takes the engine's own argmax where it has one.
    std::vector<int32_t> ids(slots.size());
    if (step % 2 == 0 || !e.decode_argmax(slots.data(), tokens.data(), int(slots.size()), ids.data())) {
      e.decode(slots.data(), tokens.data(), int(slots.size()), logits);
      ASSERT_EQ(logits.size(), slots.size() * size_t(vocab));
      for (size_t b = 0; b < slots.size(); ++b) ids[b] = argmax(logits.data() + int64_t(b) * vocab, vocab);
    }
    for (size_t b = 0; b < slots.size(); ++b) {
      next[size_t(slots[b])] = ids[b];
      got[size_t(slots[b])].push_back(ids[b]);
    }
  }
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(got[size_t(s)], want(s)) << "slot " << s << ": " << greedy[size_t(s)]["prompt"];
    // the prompt and every fed id but the last sampled one
    EXPECT_EQ(e.n_past(s), int64_t(greedy[size_t(s)]["prompt_ids"].size() + want(s).size() - 1));
  }
  // A slot twice in one step is refused, and nothing runs.
  const int twice[2] = {1, 1};
  const int32_t toks[2] = {5, 6};
  const int64_t before = e.n_past(1);
  EXPECT_THROW(e.decode(twice, toks, 2, logits), std::exception);
  EXPECT_EQ(e.n_past(1), before);
}

}  // namespace awq::test
