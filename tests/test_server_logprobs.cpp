// Log-probabilities in the server's responses (the OpenAI API's `logprobs`): their values
// against the PyTorch reference, their shape in whole and streamed, completions and chat
// responses, and the request errors. Unit test of the arithmetic: test_sampler.cpp
// (TokenLogprobs).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "support/live_server.h"

namespace awq {
namespace {

using nlohmann::json;
using test::LiveServer;

httplib::Result post_logprobs(const LiveServer& s, const std::string& path, const json& body) {
  return s.client()->Post(path.c_str(), body.dump(), "application/json");
}

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
    auto r = post_logprobs(s, "/v1/completions", body);
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

// Streamed chat: each chunk's logprobs cover the tokens of its delta, top_logprobs has the asked
// number of entries, most likely first; without the request, "logprobs" is null.
TEST(ServerLogprobs, ChatStreamChunksCarryTheirTokens) {
  LiveServer s;
  json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about the history of the city."}}}},
               {"max_tokens", 12}, {"temperature", 0.8}, {"seed", 5}, {"stream", true},
               {"logprobs", true}, {"top_logprobs", 3}};
  auto r = post_logprobs(s, "/v1/chat/completions", body);
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
  auto plain = post_logprobs(s, "/v1/chat/completions", body);
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
  auto r = post_logprobs(s, "/v1/chat/completions", body);
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
