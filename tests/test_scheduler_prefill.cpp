// Chunked prefill in the scheduler (SchedulerOptions::prefill_chunk, `awq serve --prefill-chunk`):
// a prompt prefilled in chunks gives the text and the prompt scores of the whole prefill, and a
// long prompt admitted while another request decodes takes turns with that request's decode
// steps instead of stalling it for the whole prompt. An engine wrapper records the calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/batch_engine.h"
#include "runtime/scheduler.h"
#include "support/live_server.h"

namespace awq {
namespace {

using test::tiny_llama;
using test::tiny_tokenizer;

// The CPU engine, recording each call: a prefill as {slot, n}, a decode step as {-1, slots...}.
class RecordingEngine : public BatchEngine {
 public:
  RecordingEngine(ThreadPool& pool, int slots, int64_t ctx) : inner_(tiny_llama(), pool, slots, ctx, KvType::F16) {}
  const ModelConfig& config() const override { return inner_.config(); }
  int slots() const override { return inner_.slots(); }
  int64_t ctx() const override { return inner_.ctx(); }
  int64_t n_past(int slot) const override { return inner_.n_past(slot); }
  void clear(int slot) override { inner_.clear(slot); }
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
      if (ev.kind == GenerationEvent::Kind::Done) o.finish = ev.finish_reason;
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
  for (int64_t chunk : {0, 7, 32}) {
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
  // On the CPU a row's result does not depend on how many rows run with it (BatchDecoder's and
  // the W4/GEMM kernels' guarantee), and the attention of a chunk reads the cache as stored, so
  // the text is the same to the character and the scores to the bit.
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

TEST(SchedulerPrefill, NegativeChunkIsRefused) {
  ThreadPool pool(1);
  RecordingEngine engine(pool, 1, 64);
  SchedulerOptions opt;
  opt.prefill_chunk = -1;
  EXPECT_THROW(Scheduler(engine, tiny_tokenizer(), opt), Error);
}

}  // namespace
}  // namespace awq
