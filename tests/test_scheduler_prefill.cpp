// Chunked prefill in the scheduler (SchedulerOptions::prefill_chunk, `awq serve --prefill-chunk`):
// a prompt prefilled in chunks gives the text and the prompt scores of the whole prefill, and a
// long prompt admitted while another request decodes takes turns with that request's decode
// steps instead of stalling it for the whole prompt; the prompt cache (SchedulerOptions::
// cache_prompt) prefills only what a slot does not already hold. An engine wrapper records the calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "runtime/batch_engine.h"
#include "ops/cpu/w4.h"
#include "runtime/scheduler.h"
#include "support/live_server.h"
#include "support/temp_dir.h"
#include "support/tiny_rtn_w4.h"

namespace awq {
namespace {

using test::tiny_llama;
using test::tiny_tokenizer;

// The CPU engine, recording each call: a prefill as {slot, n}, a decode step as {-1, slots...},
// a truncate as {-3, slot, n}, a prefix copy as {-4, src, dst, n}.
class RecordingEngine : public BatchEngine {
 public:
  RecordingEngine(ThreadPool& pool, int slots, int64_t ctx, LlamaModel& model = tiny_llama())
      : inner_(model, pool, slots, ctx, KvType::F16) {}
  const ModelConfig& config() const override { return inner_.config(); }
  int slots() const override { return inner_.slots(); }
  int64_t ctx() const override { return inner_.ctx(); }
  int64_t n_past(int slot) const override { return inner_.n_past(slot); }
  void clear(int slot) override { inner_.clear(slot); }
  void truncate(int slot, int64_t n) override {
    record({-3, slot, int(n)});
    inner_.truncate(slot, n);
  }
  void copy_prefix(int src, int dst, int64_t n) override {
    record({-4, src, dst, int(n)});
    inner_.copy_prefix(src, dst, n);
  }
  void prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits, std::vector<float>& logits) override {
    record({slot, int(n)});
    inner_.prefill(slot, tokens, n, all_logits, logits);
  }
  void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) override {
    std::vector<int> call{-1};
    call.insert(call.end(), slots, slots + B);
    record(std::move(call));
    inner_.decode(slots, tokens, B, logits);
  }
  std::string describe() const override { return "recording " + inner_.describe(); }
  std::vector<std::vector<int>> calls() const {
    std::lock_guard<std::mutex> lk(mu_);
    return calls_;
  }

 private:
  void record(std::vector<int> call) {
    std::lock_guard<std::mutex> lk(mu_);
    calls_.push_back(std::move(call));
  }
  CpuBatchEngine inner_;
  mutable std::mutex mu_;
  std::vector<std::vector<int>> calls_;
};

struct Outcome {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  std::string finish, error;
  int64_t cached_tokens = -1;  // of the Done event
};

// Reads the stream to its end (Done or Error).
Outcome drain(RequestStream& s) {
  Outcome o;
  for (GenerationEvent ev;;) {
    if (!s.next(ev, std::chrono::milliseconds(120000))) {
      o.error = "no event in 120 s";
      return o;
    }
    if (ev.kind == GenerationEvent::Kind::Text) {
      o.text += ev.text;
      for (auto& l : ev.logprobs) o.logprobs.push_back(std::move(l));
    } else {
      if (ev.kind == GenerationEvent::Kind::Done) o.finish = ev.finish_reason, o.cached_tokens = ev.cached_tokens;
      else o.error = ev.error;
      return o;
    }
  }
}

GenerationRequest greedy(const std::string& prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = tiny_tokenizer().encode(prompt, /*add_special=*/true);
  r.max_tokens = max_tokens;
  r.sampler.temperature = 0;
  r.stop_at_eos = false;
  return r;
}

// About 80 tokens of plain English.
const std::string kLongPrompt =
    "The old lighthouse keeper climbed the narrow stairs every evening to light the lamp. "
    "For forty years he had watched the ships pass through the strait, and he knew each "
    "captain by the way their vessel turned into the wind. One winter night a storm came "
    "from the north, and the sea rose higher than anyone in the village could remember. "
    "He lit the lamp early and sat by the window, waiting";

TEST(SchedulerPrefill, ChunksGiveTheWholePromptsTextAndScores) {
  ThreadPool pool(2);
  std::vector<Outcome> texts, scored;
  for (int64_t chunk : {0, 5, 7, 32, 41}) {  // of 83 tokens, 5 leaves a last piece of 3 rows, 41 one of 1
    SCOPED_TRACE("prefill_chunk " + std::to_string(chunk));
    RecordingEngine engine(pool, 1, 512);
    SchedulerOptions opt;
    opt.prefill_chunk = chunk;
    Scheduler sched(engine, tiny_tokenizer(), opt);
    GenerationRequest gen = greedy(kLongPrompt, 24);
    const int64_t n = int64_t(gen.prompt.size());
    ASSERT_GT(n, 64);
    texts.push_back(drain(*sched.submit(gen)));
    GenerationRequest score = greedy(kLongPrompt, 0);  // the prompt's own log-probabilities
    score.echo_prompt = true;
    score.top_logprobs = 2;
    scored.push_back(drain(*sched.submit(score)));
    EXPECT_EQ(texts.back().error, "");
    EXPECT_EQ(scored.back().error, "");
    // The prompt went in as chunks of at most `chunk` tokens (the scored one also in pieces of
    // at most 128 rows of logits), covering it exactly.
    int64_t covered = 0;
    for (const auto& c : engine.calls())
      if (c[0] == 0) {
        if (chunk > 0) {
          EXPECT_LE(c[1], chunk);
        }
        covered += c[1];
      }
    EXPECT_EQ(covered, 2 * n);
  }
  // On the CPU a row's result does not depend on how many rows run with it (the engine's prefill
  // runs Linears::RowExact, as BatchDecoder does; a dense GEMV of 1-3 rows would not), and the
  // attention of a chunk reads the cache as stored, so the text is the same to the character and
  // the scores to the bit.
  for (size_t i = 1; i < texts.size(); ++i) {
    EXPECT_EQ(texts[i].text, texts[0].text);
    EXPECT_EQ(scored[i].text, scored[0].text);
    ASSERT_EQ(scored[i].logprobs.size(), scored[0].logprobs.size());
    for (size_t t = 1; t < scored[0].logprobs.size(); ++t) {
      EXPECT_EQ(scored[i].logprobs[t].logprob, scored[0].logprobs[t].logprob) << "token " << t;
      EXPECT_EQ(scored[i].logprobs[t].top, scored[0].logprobs[t].top) << "token " << t;
    }
  }
}

TEST(SchedulerPrefill, LongPromptTakesTurnsWithRunningDecode) {
  ThreadPool pool(2);
  RecordingEngine engine(pool, 2, 512);
  SchedulerOptions opt;
  opt.prefill_chunk = 16;
  Scheduler sched(engine, tiny_tokenizer(), opt);
  const GenerationRequest short_req = greedy("Once upon a time", 80);
  auto a = sched.submit(short_req);
  GenerationEvent first;
  ASSERT_TRUE(a->next(first, std::chrono::milliseconds(60000)));  // A decodes now
  const GenerationRequest long_req = greedy(kLongPrompt, 4);
  auto b = sched.submit(long_req);
  const Outcome ob = drain(*b);
  Outcome oa = drain(*a);
  oa.text = first.text + oa.text;
  ASSERT_EQ(oa.error, "");
  ASSERT_EQ(ob.error, "");

  // B's prompt went in as ceil(n / 16) chunks, and between each two of them A took a decode step.
  const auto calls = engine.calls();
  const int64_t n = int64_t(long_req.prompt.size());
  std::vector<size_t> b_chunks;  // indices into calls
  for (size_t i = 0; i < calls.size(); ++i)
    if (calls[i][0] == 1) b_chunks.push_back(i);
  ASSERT_EQ(int64_t(b_chunks.size()), (n + 15) / 16);
  for (size_t k = 0; k + 1 < b_chunks.size(); ++k) {
    bool a_decoded = false;
    for (size_t i = b_chunks[k] + 1; i < b_chunks[k + 1]; ++i)
      if (calls[i][0] == -1 && std::find(calls[i].begin() + 1, calls[i].end(), 0) != calls[i].end()) a_decoded = true;
    EXPECT_TRUE(a_decoded) << "no decode step of A between B's chunks " << k << " and " << k + 1;
  }
  // B's prefill took no decode step of B until its prompt was in.
  for (size_t i = 0; i < b_chunks.back(); ++i)
    if (calls[i][0] == -1) {
      EXPECT_EQ(std::find(calls[i].begin() + 1, calls[i].end(), 1), calls[i].end()) << "call " << i;
    }

  // Taking turns changes neither text: each equals its request alone on a fresh scheduler.
  RecordingEngine alone_engine(pool, 1, 512);
  Scheduler alone(alone_engine, tiny_tokenizer(), opt);
  EXPECT_EQ(drain(*alone.submit(short_req)).text, oa.text);
  EXPECT_EQ(drain(*alone.submit(long_req)).text, ob.text);
}

// An engine that packs prefills (as the GPU's does), emulated on the CPU engine: prefill_many
// runs each piece through the inner engine and records {-2, slot, n, slot, n, ...}. decode() can
// be held at its start until the test lets it go, so that requests submitted meanwhile are all
// admitted in the same step.
class PackingEngine : public RecordingEngine {
 public:
  using RecordingEngine::RecordingEngine;
  bool prefill_many(const int* slots, const int32_t* const* tokens, const int64_t* n, int count,
                    std::vector<float>& logits) override {
    std::vector<int> call{-2};
    for (int i = 0; i < count; ++i) call.push_back(slots[i]), call.push_back(int(n[i]));
    packed_.push_back(call);
    const int64_t vocab = config().vocab_size;
    logits.assign(size_t(count * vocab), 0.0f);
    for (int i = 0; i < count; ++i) {
      std::vector<float> one;
      RecordingEngine::prefill(slots[i], tokens[i], n[i], false, one);
      std::copy(one.begin(), one.end(), logits.begin() + i * vocab);
    }
    return true;
  }
  void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) override {
    {
      std::unique_lock<std::mutex> lk(gate_mu_);
      in_decode_ = true;
      gate_cv_.notify_all();
      gate_cv_.wait(lk, [&] { return !hold_; });
    }
    RecordingEngine::decode(slots, tokens, B, logits);
  }
  void hold() {
    std::lock_guard<std::mutex> lk(gate_mu_);
    hold_ = true, in_decode_ = false;
  }
  void wait_in_decode() {
    std::unique_lock<std::mutex> lk(gate_mu_);
    gate_cv_.wait(lk, [&] { return in_decode_; });
  }
  void release() {
    std::lock_guard<std::mutex> lk(gate_mu_);
    hold_ = false;
    gate_cv_.notify_all();
  }
  std::vector<std::vector<int>> packed() const { return packed_; }  // read after the requests end

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool hold_ = false, in_decode_ = false;
  std::vector<std::vector<int>> packed_;
};

// Requests admitted in the same step have their prompt pieces prefilled in one prefill_many
// call (BatchEngine: one shared pass on the GPU), each piece once, and each text is the same as
// the request's alone (the emulation runs the CPU engine, whose rows are bit-exact). With
// pack_prefill off, or a request that scores its prompt, the pieces go one prefill() each.
TEST(SchedulerPrefill, RequestsAdmittedTogetherArePrefilledInOnePack) {
  ThreadPool pool(2);
  const std::vector<std::string> prompts = {"The cat sat on", "Once upon a time there", "The lighthouse keeper"};
  for (const bool pack : {true, false}) {
    SCOPED_TRACE(pack ? "pack_prefill on" : "pack_prefill off");
    PackingEngine engine(pool, 5, 256);  // A, the three and the scored one
    SchedulerOptions opt;
    opt.pack_prefill = pack;
    Scheduler sched(engine, tiny_tokenizer(), opt);
    engine.hold();
    auto a = sched.submit(greedy("It was a dark and stormy night", 6));
    engine.wait_in_decode();  // A's first decode step is held: the next three wait for one step
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (const auto& p : prompts) streams.push_back(sched.submit(greedy(p, 8)));
    GenerationRequest scored = greedy("A scored prompt", 0);
    scored.echo_prompt = true;
    scored.top_logprobs = 1;
    auto s = sched.submit(scored);
    engine.release();
    std::vector<std::string> texts;
    for (auto& st : streams) {
      const Outcome o = drain(*st);
      EXPECT_EQ(o.error, "");
      texts.push_back(o.text);
    }
    EXPECT_EQ(drain(*a).error, "");
    EXPECT_EQ(drain(*s).error, "");
    const auto packed = engine.packed();
    if (pack) {
      ASSERT_EQ(packed.size(), 1u);
      ASSERT_EQ(packed[0].size(), 1 + 2 * prompts.size());  // the three, not the scored one
      for (size_t i = 0; i < prompts.size(); ++i)
        EXPECT_EQ(packed[0][2 + 2 * i], int(tiny_tokenizer().encode(prompts[i], true).size())) << prompts[i];
    } else {
      EXPECT_TRUE(packed.empty());
    }
    PackingEngine alone_engine(pool, 1, 256);
    Scheduler alone(alone_engine, tiny_tokenizer(), opt);
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(drain(*alone.submit(greedy(prompts[i], 8))).text, texts[i]);
  }
}

// Prompt tokens the recorded calls from index `from` on prefilled into `slot`.
int64_t prefilled_into(const std::vector<std::vector<int>>& calls, size_t from, int slot) {
  int64_t n = 0;
  for (size_t i = from; i < calls.size(); ++i)
    if (calls[i][0] == slot) n += calls[i][1];
  return n;
}

// a's text equals b's, and its logprobs too: to the bit where tol is 0, else within tol.
void expect_same_output(const Outcome& a, const Outcome& b, float tol = 0.0f) {
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.text, b.text);
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
  for (size_t t = 0; t < a.logprobs.size(); ++t) {
    EXPECT_NEAR(a.logprobs[t].logprob, b.logprobs[t].logprob, tol) << "token " << t;
    ASSERT_EQ(a.logprobs[t].top.size(), b.logprobs[t].top.size()) << "token " << t;
    for (size_t j = 0; j < a.logprobs[t].top.size(); ++j) {
      EXPECT_EQ(a.logprobs[t].top[j].first, b.logprobs[t].top[j].first) << "token " << t;
      EXPECT_NEAR(a.logprobs[t].top[j].second, b.logprobs[t].top[j].second, tol) << "token " << t;
    }
  }
}

// The next turn of a conversation goes to the slot that holds the conversation, although
// another request ran since, and prefills only its new tokens; its text and logprobs are those
// of the whole prompt prefilled on a fresh scheduler (within tol; 0: to the bit). With the cache
// off (for the server or the request) or for a request that scores its prompt, the whole prompt
// is prefilled.
void check_next_turn(LlamaModel& model, float tol) {
  ThreadPool pool(2);
  GenerationRequest turn1 = greedy(kLongPrompt, 8);
  GenerationRequest turn2 = turn1;
  for (int32_t id : tiny_tokenizer().encode(" by the window. Then he heard a knock at the door", false))
    turn2.prompt.push_back(id);
  turn2.top_logprobs = 2;
  const int64_t n1 = int64_t(turn1.prompt.size()), n2 = int64_t(turn2.prompt.size());

  RecordingEngine fresh_engine(pool, 1, 512, model);
  Outcome alone;
  {
    Scheduler fresh(fresh_engine, tiny_tokenizer(), SchedulerOptions{});
    alone = drain(*fresh.submit(turn2));
  }
  EXPECT_EQ(alone.cached_tokens, 0);
  EXPECT_EQ(prefilled_into(fresh_engine.calls(), 0, 0), n2);

  for (const int off : {0, 1, 2}) {  // 0: cache on; 1: off for the server; 2: off for the request
    SCOPED_TRACE(off == 0 ? "cache on" : off == 1 ? "SchedulerOptions::cache_prompt off" : "request's cache_prompt off");
    RecordingEngine engine(pool, 2, 512, model);
    SchedulerOptions opt;
    opt.prefill_chunk = 16;
    opt.cache_prompt = off != 1;
    Scheduler sched(engine, tiny_tokenizer(), opt);
    const Outcome o1 = drain(*sched.submit(turn1));
    ASSERT_EQ(o1.error, "");
    EXPECT_EQ(o1.cached_tokens, 0);
    // Another request in between: it shares only the BOS with turn 1, so it takes the unused slot.
    const Outcome other = drain(*sched.submit(greedy("Once upon a time", 4)));
    ASSERT_EQ(other.error, "");
    EXPECT_EQ(other.cached_tokens, 0);
    const size_t mark = engine.calls().size();
    GenerationRequest next = turn2;
    next.cache_prompt = off != 2;
    const Outcome o2 = drain(*sched.submit(next));
    expect_same_output(o2, alone, off == 0 ? tol : 0.0f);
    const auto calls = engine.calls();
    if (off == 0) {
      // Turn 1's prompt (and perhaps the first of its generated tokens, where they match) was
      // in slot 0: it was kept and only the rest prefilled.
      EXPECT_GE(o2.cached_tokens, n1);
      EXPECT_LT(o2.cached_tokens, n2);
      EXPECT_EQ(prefilled_into(calls, mark, 0), n2 - o2.cached_tokens);
      EXPECT_EQ(prefilled_into(calls, mark, 1), 0);
      EXPECT_NE(std::find(calls.begin() + int64_t(mark), calls.end(), std::vector<int>{-3, 0, int(o2.cached_tokens)}),
                calls.end());
    } else {
      EXPECT_EQ(o2.cached_tokens, 0);
      EXPECT_EQ(prefilled_into(calls, mark, 0) + prefilled_into(calls, mark, 1), n2);
    }
    const SchedulerStats st = sched.stats();
    EXPECT_EQ(st.prompt_tokens_total, uint64_t(n1 + int64_t(tiny_tokenizer().encode("Once upon a time", true).size()) + n2));
    EXPECT_EQ(st.prompt_tokens_cached_total, uint64_t(o2.cached_tokens));

    // Scoring the prompt takes every position's logits: prefilled whole, cache or not.
    GenerationRequest scored = turn2;
    scored.max_tokens = 0;
    scored.echo_prompt = true;
    const size_t mark2 = engine.calls().size();
    const Outcome os = drain(*sched.submit(scored));
    EXPECT_EQ(os.error, "");
    EXPECT_EQ(os.cached_tokens, 0);
    const auto calls2 = engine.calls();
    EXPECT_EQ(prefilled_into(calls2, mark2, 0) + prefilled_into(calls2, mark2, 1), n2);
  }
}

// The FP16 reference model: turn 1's prompt went in as pieces of 16, 16, ..., 3 tokens, where a
// fresh prefill of turn 2 cuts 64 + 32. The engine's prefill sums each row the same way
// whatever the piece (Linears::RowExact), so the logprobs are the same to the bit. (With the
// GEMV that `awq generate` uses for 1-3 rows they differed by 1.2e-4.)
TEST(SchedulerPromptCache, NextTurnPrefillsOnlyItsNewTokens) { check_next_turn(tiny_llama(), 0.0f); }

// W4: the same with the CPU's int8-activation W4 kernels.
TEST(SchedulerPromptCache, NextTurnOfAW4ModelIsBitExact) {
  if (!w4_isa_int8(w4_best_isa())) GTEST_SKIP() << "no int8 W4 kernel on this CPU: its rows depend on the row count";
  test::TempDir tmp;
  ThreadPool pool(2);
  LlamaModel w4(test::quantize_tiny_rtn_w4(pool, tmp));
  check_next_turn(w4, 0.0f);
}

// The same prompt again reuses all of it but its last token, whose logits start the completion;
// a request that fails in the engine leaves its slot's cache empty, so nothing after it reuses
// what the engine may have half written.
TEST(SchedulerPromptCache, RepeatReusesAllButTheLastTokenAndFailureEmptiesTheSlot) {
  ThreadPool pool(2);
  RecordingEngine engine(pool, 1, 512);
  Scheduler sched(engine, tiny_tokenizer(), SchedulerOptions{});
  GenerationRequest req = greedy(kLongPrompt, 6);
  req.top_logprobs = 2;  // the 1-token rest's logits to the bit
  const int64_t n = int64_t(req.prompt.size());
  const Outcome a = drain(*sched.submit(req));
  const size_t mark = engine.calls().size();
  const Outcome b = drain(*sched.submit(req));
  expect_same_output(b, a);
  EXPECT_EQ(b.cached_tokens, n - 1);
  EXPECT_EQ(prefilled_into(engine.calls(), mark, 0), 1);

  GenerationRequest bad = req;
  bad.prompt.push_back(int32_t(tiny_llama().config().vocab_size));  // outside the vocabulary
  const Outcome failed = drain(*sched.submit(bad));
  EXPECT_NE(failed.error, "");
  const size_t mark2 = engine.calls().size();
  const Outcome c = drain(*sched.submit(req));
  expect_same_output(c, a);
  EXPECT_EQ(c.cached_tokens, 0);
  EXPECT_EQ(prefilled_into(engine.calls(), mark2, 0), n);
}

// Prompt tokens prefilled (into any slot) and prefix copies among the recorded calls.
int64_t prefilled_total(const std::vector<std::vector<int>>& calls) {
  int64_t n = 0;
  for (const auto& c : calls)
    if (c[0] >= 0) n += c[1];
  return n;
}
std::vector<std::vector<int>> copies(const std::vector<std::vector<int>>& calls) {
  std::vector<std::vector<int>> out;
  for (const auto& c : calls)
    if (c[0] == -4) out.push_back(c);
  return out;
}

// n choices of one prompt (one API request) prefill it once: the first choice's slot prefills
// it, the others wait and copy all of it but the last token from that slot, and each choice's
// text and logprobs are those of the prompt alone on a fresh scheduler, to the bit.
TEST(SchedulerPromptCache, ChoicesOfOnePromptPrefillItOnce) {
  ThreadPool pool(2);
  GenerationRequest req = greedy(kLongPrompt, 8);
  req.top_logprobs = 2;
  const int64_t n = int64_t(req.prompt.size());
  Outcome alone;
  {
    RecordingEngine engine(pool, 1, 512);
    Scheduler fresh(engine, tiny_tokenizer(), SchedulerOptions{});
    alone = drain(*fresh.submit(req));
  }
  for (const bool cache : {true, false}) {
    SCOPED_TRACE(cache ? "cache on" : "cache off");
    RecordingEngine engine(pool, 4, 512);
    SchedulerOptions opt;
    opt.cache_prompt = cache;
    Scheduler sched(engine, tiny_tokenizer(), opt);
    auto streams = sched.submit_all(std::vector<GenerationRequest>(4, req));
    ASSERT_EQ(streams.size(), 4u);
    for (size_t c = 0; c < streams.size(); ++c) {
      const Outcome o = drain(*streams[c]);
      expect_same_output(o, alone);
      EXPECT_EQ(o.cached_tokens, cache && c > 0 ? n - 1 : 0) << "choice " << c;
    }
    const auto calls = engine.calls();
    if (cache) {
      EXPECT_EQ(prefilled_total(calls), n + 3);  // the prompt once, and each copy's last token
      const auto cp = copies(calls);
      ASSERT_EQ(cp.size(), 3u);
      for (const auto& c : cp) EXPECT_EQ(c[3], n - 1);
    } else {
      EXPECT_EQ(prefilled_total(calls), 4 * n);
      EXPECT_TRUE(copies(calls).empty());
    }
  }
}

// A donor that fails leaves its waiter to prefill its prompt itself: the waiter's prompt shares
// all but the last token with a prompt whose last id is outside the vocabulary, which fails in
// the engine after its first chunk went in.
TEST(SchedulerPromptCache, WaiterPrefillsItselfWhenItsDonorFails) {
  ThreadPool pool(2);
  const GenerationRequest good = greedy(kLongPrompt, 6);
  GenerationRequest bad = good;
  bad.prompt.back() = int32_t(tiny_llama().config().vocab_size);
  Outcome alone;
  {
    RecordingEngine engine(pool, 1, 512);
    Scheduler fresh(engine, tiny_tokenizer(), SchedulerOptions{});
    alone = drain(*fresh.submit(good));
  }
  RecordingEngine engine(pool, 2, 512);
  Scheduler sched(engine, tiny_tokenizer(), SchedulerOptions{});  // chunks of 64 < the prompt
  auto streams = sched.submit_all({bad, good});
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_NE(drain(*streams[0]).error, "");
  const Outcome o = drain(*streams[1]);
  expect_same_output(o, alone);
  EXPECT_EQ(o.cached_tokens, 0);
  EXPECT_TRUE(copies(engine.calls()).empty());
}

// Choices that wait for their donor and whose client goes away are dropped while they wait
// (their slots free again), and the donor's request runs to its end.
TEST(SchedulerPromptCache, CancelledWaitersAreDropped) {
  ThreadPool pool(2);
  RecordingEngine engine(pool, 3, 512);
  SchedulerOptions opt;
  opt.prefill_chunk = 16;  // the donor takes six steps, the waiters wait
  Scheduler sched(engine, tiny_tokenizer(), opt);
  auto streams = sched.submit_all(std::vector<GenerationRequest>(3, greedy(kLongPrompt, 4)));
  ASSERT_EQ(streams.size(), 3u);
  streams[1]->cancel();
  streams[2]->cancel();
  const Outcome o = drain(*streams[0]);
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.finish, "length");
  for (int i = 0; i < 200 && sched.stats().active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.cancelled_total, 2u);
  // Cancelled before the donor's six steps were over (unless this thread slept through them):
  // nothing copied, the prompt prefilled once.
  const int64_t n = int64_t(greedy(kLongPrompt, 4).prompt.size());
  EXPECT_LE(copies(engine.calls()).size(), 2u);
  EXPECT_LE(prefilled_total(engine.calls()), n + 2);
  EXPECT_GE(prefilled_total(engine.calls()), n);
}

TEST(SchedulerPrefill, NegativeChunkIsRefused) {
  ThreadPool pool(1);
  RecordingEngine engine(pool, 1, 64);
  SchedulerOptions opt;
  opt.prefill_chunk = -1;
  EXPECT_THROW(Scheduler(engine, tiny_tokenizer(), opt), Error);
}

}  // namespace
}  // namespace awq
