// Log-probabilities in the server's responses (the OpenAI API's `logprobs`, and `echo`'s
// scored prompt): their values against the PyTorch reference, their shape in whole and
// streamed, completions and chat responses. Request errors: test_server_errors.cpp. Unit test of the arithmetic: test_sampler.cpp
// (TokenLogprobs).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "runtime/perplexity.h"
#include "support/live_server.h"

namespace awq {
namespace {

using nlohmann::json;
using test::LiveServer;

// Greedy completions of the reference prompts with logprobs = 2: at every step the chosen
// token is the most likely, and its log-probability minus the runner-up's is PyTorch's top-1
// logit margin (log-softmax keeps logit differences). Tolerance 0.01: the margins are stored to
// 5 significant digits, and this engine's f32 CPU path with its f16 KV cache moves logits by
// ~1e-3 against PyTorch's f32 (largest difference measured over the 4 x 32 steps: 0.0015).
TEST(ServerLogprobs, GreedyMarginsMatchPyTorch) {
  LiveServer s;
  for (const auto& g : test::tiny_reference()["greedy"]) {
    const auto prompt = g["prompt_ids"].get<std::vector<int32_t>>();
    const auto margins = g["top1_margins"].get<std::vector<double>>();
    json body = {{"prompt", prompt}, {"max_tokens", margins.size()}, {"temperature", 0}, {"ignore_eos", true},
                 {"logprobs", 2}};
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json choice = json::parse(r->body)["choices"][0];
    const json& lp = choice["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), margins.size());
    std::string joined;
    for (size_t i = 0; i < margins.size(); ++i) {
      const std::string tok = lp["tokens"][i];
      const double chosen = lp["token_logprobs"][i];
      EXPECT_LE(chosen, 0.0);
      EXPECT_EQ(lp["text_offset"][i].get<size_t>(), joined.size());
      joined += tok;
      const json& top = lp["top_logprobs"][i];
      ASSERT_EQ(top.size(), 2u) << "step " << i << ": " << top.dump();
      ASSERT_TRUE(top.contains(tok)) << "step " << i << ": " << top.dump();
      EXPECT_DOUBLE_EQ(top[tok].get<double>(), chosen);
      double runner_up = 0.0;
      for (const auto& [t, v] : top.items())
        if (t != tok) runner_up = v.get<double>();
      EXPECT_GE(chosen, runner_up) << "step " << i;
      EXPECT_NEAR(chosen - runner_up, margins[i], 0.01) << g["prompt"] << " step " << i;
    }
    EXPECT_EQ(joined, choice["text"].get<std::string>());
  }
}

// "echo" with logprobs scores the prompt (how evaluation harnesses compute log-likelihoods):
// the reference prompts followed by their 32 greedy tokens, sent as one prompt in the batch
// form [[ids]], come back with every prompt token; each greedy token is the most likely at its
// position, with PyTorch's top-1 margin over the runner-up (tolerance as above: this is the
// chunked all-position prefill, not the decode steps).
TEST(ServerLogprobs, EchoScoresThePromptLikePyTorch) {
  LiveServer s;
  for (const auto& g : test::tiny_reference()["greedy"]) {
    std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
    const size_t n0 = ids.size();
    for (int32_t id : g["greedy_ids"]) ids.push_back(id);
    const auto margins = g["top1_margins"].get<std::vector<double>>();
    json body = {{"prompt", json::array({ids})}, {"max_tokens", 1}, {"temperature", 0}, {"ignore_eos", true},
                 {"logprobs", 2}, {"echo", true}};
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json choice = json::parse(r->body)["choices"][0];
    const json& lp = choice["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), ids.size() + 1);
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    std::string joined;
    for (const json& t : lp["tokens"]) joined += t.get<std::string>();
    EXPECT_EQ(joined, choice["text"].get<std::string>());
    for (size_t j = 0; j < margins.size(); ++j) {
      const size_t i = n0 + j;
      const std::string tok = lp["tokens"][i];
      const double chosen = lp["token_logprobs"][i];
      const json& top = lp["top_logprobs"][i];
      ASSERT_TRUE(top.contains(tok)) << "position " << i << ": " << top.dump();
      double runner_up = 0.0;
      for (const auto& [t, v] : top.items())
        if (t != tok) runner_up = v.get<double>();
      EXPECT_NEAR(chosen - runner_up, margins[j], 0.01) << g["prompt"] << " position " << i;
    }
  }
  // Streamed, the prompt is the first text chunk.
  json body = {{"prompt", "The history of"}, {"max_tokens", 2}, {"echo", true}, {"stream", true}};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  const test::SseBody sse = test::parse_sse(r->body);
  ASSERT_FALSE(sse.events.empty());
  EXPECT_EQ(sse.events[0]["choices"][0]["text"], "The history of");
  EXPECT_EQ(sse.text.rfind("The history of", 0), 0u) << sse.text;
}

// lm-evaluation-harness's log-likelihood request: echo with logprobs and max_tokens 0 returns
// the prompt alone, scored exactly as when a token follows (the same prefill), nothing
// generated, finish_reason "length"; a batch of prompts gets one such choice each; a prompt
// may then fill the whole context (ctx 64), which with max_tokens 1 leaves no room.
TEST(ServerLogprobs, EchoWithZeroMaxTokensReturnsOnlyTheScoredPrompt) {
  SchedulerOptions so;
  so.ctx = 64;
  LiveServer s(so);
  json body = {{"prompt", "The history of"}, {"max_tokens", 0}, {"temperature", 0}, {"logprobs", 1}, {"echo", true},
               {"seed", 1234}};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["text"], "The history of");
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 0);
  const int64_t n = j["usage"]["prompt_tokens"];
  const json& lp = choice["logprobs"];
  ASSERT_EQ(int64_t(lp["tokens"].size()), n);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());

  body["max_tokens"] = 1;
  auto one = s.post_json("/v1/completions", body);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  const json lp1 = json::parse(one->body)["choices"][0]["logprobs"];
  ASSERT_EQ(int64_t(lp1["tokens"].size()), n + 1);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(lp["tokens"][i], lp1["tokens"][i]) << i;
    EXPECT_EQ(lp["token_logprobs"][i], lp1["token_logprobs"][i]) << i;  // same prefill, same bits
  }

  body["max_tokens"] = 0;
  body["prompt"] = {"The history of", "Once upon a time"};
  auto batch = s.post_json("/v1/completions", body);
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->status, 200) << batch->body;
  const json b = json::parse(batch->body);
  ASSERT_EQ(b["choices"].size(), 2u);
  EXPECT_EQ(b["choices"][0]["text"], "The history of");
  EXPECT_EQ(b["choices"][1]["text"], "Once upon a time");
  EXPECT_EQ(b["choices"][1]["finish_reason"], "length");

  std::vector<int32_t> full = test::tiny_tokenizer().encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 2000), true);
  ASSERT_GE(full.size(), 64u);
  full.resize(64);
  body["prompt"] = full;
  auto whole_ctx = s.post_json("/v1/completions", body);
  ASSERT_TRUE(whole_ctx);
  ASSERT_EQ(whole_ctx->status, 200) << whole_ctx->body;
  EXPECT_EQ(json::parse(whole_ctx->body)["choices"][0]["logprobs"]["tokens"].size(), 64u);
  body["max_tokens"] = 1;
  auto no_room = s.post_json("/v1/completions", body);
  ASSERT_TRUE(no_room);
  EXPECT_EQ(no_room->status, 400) << no_room->body;

  // Streamed: the prompt chunk, then the finish chunk.
  body = {{"prompt", "The history of"}, {"max_tokens", 0}, {"echo", true}, {"stream", true}};
  auto streamed = s.post_json("/v1/completions", body);
  ASSERT_TRUE(streamed);
  const test::SseBody sse = test::parse_sse(streamed->body);
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(sse.text, "The history of");
  EXPECT_EQ(sse.finish_reason, "length");
}

// A prompt longer than the scoring chunk (128 positions): the echoed log-probabilities of a
// 300-token window of val.txt sum to minus the engine's perplexity NLL of the same window (the
// same model and kernels, prefilled whole instead of in chunks: tolerance 1e-4 relative).
TEST(ServerLogprobs, EchoOfALongPromptSumsToThePerplexityNll) {
  const Tokenizer& tok = test::tiny_tokenizer();
  std::vector<int32_t> text = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 4000), false);
  ASSERT_GE(text.size(), 299u);
  text.resize(299);
  PerplexityOptions po;
  po.ctx = 300;
  po.bos_id = tok.bos_id();
  po.max_windows = 1;
  ThreadPool pool(2);
  const PerplexityResult want = perplexity(test::tiny_llama(), pool, text, po);
  ASSERT_EQ(want.tokens, 299);

  std::vector<int32_t> window = {tok.bos_id()};
  window.insert(window.end(), text.begin(), text.end());
  LiveServer s;
  json body = {{"prompt", window}, {"max_tokens", 1}, {"logprobs", 0}, {"echo", true}};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json resp = json::parse(r->body);
  const json& lp = resp["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), 301u) << r->body.substr(0, 500);
  double sum = 0.0;
  for (size_t i = 1; i < 300; ++i) sum += lp["token_logprobs"][i].get<double>();
  EXPECT_NEAR(-sum, want.nll_sum, 1e-4 * want.nll_sum);
}

// Streamed chat: each chunk's logprobs cover the tokens of its delta, top_logprobs has the asked
// number of entries, most likely first; without the request, "logprobs" is null.
TEST(ServerLogprobs, ChatStreamChunksCarryTheirTokens) {
  LiveServer s;
  json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about the history of the city."}}}},
               {"max_tokens", 12}, {"temperature", 0.8}, {"seed", 5}, {"stream", true},
               {"logprobs", true}, {"top_logprobs", 3}};
  auto r = s.post_json("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const test::SseBody sse = test::parse_sse(r->body);
  size_t tokens = 0;
  for (const json& ev : sse.events) {
    if (ev["choices"].empty()) continue;
    const json& c = ev["choices"][0];
    if (!c["delta"].contains("content") || c["delta"]["content"] == "") continue;  // role / finish
    ASSERT_TRUE(c["logprobs"].is_object()) << ev.dump();
    std::string joined;
    for (const json& t : c["logprobs"]["content"]) {
      ++tokens;
      joined += t["token"].get<std::string>();
      EXPECT_EQ(t["bytes"].size(), t["token"].get<std::string>().size());
      ASSERT_EQ(t["top_logprobs"].size(), 3u);
      EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
      EXPECT_GE(t["top_logprobs"][1]["logprob"].get<double>(), t["top_logprobs"][2]["logprob"].get<double>());
      EXPECT_LE(t["logprob"].get<double>(), t["top_logprobs"][0]["logprob"].get<double>());
    }
    EXPECT_EQ(joined, c["delta"]["content"].get<std::string>());
  }
  EXPECT_EQ(tokens, 12u) << r->body;

  body.erase("logprobs");
  body.erase("top_logprobs");
  auto plain = s.post_json("/v1/chat/completions", body);
  ASSERT_TRUE(plain);
  for (const json& ev : test::parse_sse(plain->body).events)
    if (!ev["choices"].empty()) {
      EXPECT_TRUE(ev["choices"][0]["logprobs"].is_null()) << ev.dump();
    }
}

TEST(ServerLogprobs, WholeChatResponse) {
  LiveServer s;
  json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 5}, {"temperature", 0},
               {"ignore_eos", true}, {"logprobs", true}};
  auto r = s.post_json("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json c = json::parse(r->body)["choices"][0];
  const json& content = c["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u) << r->body;
  std::string joined;
  for (const json& t : content) {
    joined += t["token"].get<std::string>();
    EXPECT_TRUE(t["top_logprobs"].empty());  // top_logprobs defaults to 0
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
  }
  EXPECT_EQ(joined, c["message"]["content"].get<std::string>());
}

}  // namespace
}  // namespace awq
