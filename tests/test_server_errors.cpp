// Every malformed request gets a 4xx with OpenAI's error object and a message, and the
// server stays up: bad JSON, wrong types, missing fields, values out of range, unknown
// model or route, huge bodies, over-long prompts, missing or wrong API keys.
#include <gtest/gtest.h>

#include "support/live_server.h"

namespace awq {
namespace {

using nlohmann::json;
using test::LiveServer;

struct BadRequestCase {
  const char* what;
  const char* path;
  std::string body;
  int status;
  const char* message_part;  // must appear in error.message
};

void expect_error(const httplib::Result& r, int status, const std::string& part, const std::string& what) {
  ASSERT_TRUE(r) << what << ": no response";
  EXPECT_EQ(r->status, status) << what << ": " << r->body;
  json j;
  ASSERT_NO_THROW(j = json::parse(r->body)) << what << ": body is not JSON: " << r->body;
  ASSERT_TRUE(j.contains("error")) << what;
  const json& e = j["error"];
  ASSERT_TRUE(e["message"].is_string()) << what;
  EXPECT_NE(e["message"].get<std::string>().find(part), std::string::npos) << what << ": " << e["message"];
  EXPECT_TRUE(e["type"].is_string()) << what;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << what;
}

TEST(ServerErrors, MalformedRequestsGet4xxAndTheServerStaysUp) {
  SchedulerOptions so;
  so.ctx = 64;
  server::ServerOptions ho;
  ho.max_body = 4096;
  LiveServer s(so, ho);
  const std::string long_prompt(2000, 'a');  // ~ hundreds of tokens, over ctx 64, under max_body
  const std::vector<BadRequestCase> cases = {
      {"malformed JSON", "/v1/completions", R"({"model": "tiny", "prompt": )", 400, "not valid JSON"},
      {"empty body", "/v1/chat/completions", "", 400, "not valid JSON"},
      {"not an object", "/v1/completions", "[1, 2]", 400, "JSON object"},
      {"model wrong type", "/v1/completions", R"({"model": 5, "prompt": "hi"})", 400, "'model' must be a string"},
      {"missing prompt", "/v1/completions", R"({"model": "tiny"})", 400, "'prompt' is required"},
      {"prompt wrong type", "/v1/completions", R"({"model": "tiny", "prompt": {"a": 1}})", 400, "'prompt' must be"},
      {"empty prompt", "/v1/completions", R"({"model": "tiny", "prompt": ""})", 400, "must not be empty"},
      {"a prompt list with a bad item", "/v1/completions", R"({"model": "tiny", "prompt": ["a", 5]})", 400, "'prompt' must be"},
      {"empty prompt list", "/v1/completions", R"({"model": "tiny", "prompt": []})", 400, "'prompt' must be"},
      {"too many choices", "/v1/completions", R"({"model": "tiny", "prompt": ["a","b","c","d","e","f","g","h","i","j"], "n": 7})", 400, "at most 64 choices"},
      {"token id out of vocab", "/v1/completions", R"({"model": "tiny", "prompt": [1, 99999]})", 400, "outside the vocabulary"},
      {"missing messages", "/v1/chat/completions", R"({"model": "tiny"})", 400, "'messages' is required"},
      {"messages not array", "/v1/chat/completions", R"({"model": "tiny", "messages": "hi"})", 400, "'messages' must be an array"},
      {"empty messages", "/v1/chat/completions", R"({"model": "tiny", "messages": []})", 400, "at least one"},
      {"message without role", "/v1/chat/completions", R"({"model": "tiny", "messages": [{"content": "hi"}]})", 400, "role' is required"},
      {"bad role", "/v1/chat/completions", R"({"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]})", 400, "must be one of"},
      {"content wrong type", "/v1/chat/completions", R"({"model": "tiny", "messages": [{"role": "user", "content": 3}]})", 400, "content' must be"},
      {"image content", "/v1/chat/completions", R"({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})", 400, "not supported"},
      {"max_tokens wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "max_tokens": "ten"})", 400, "'max_tokens' must be an integer"},
      {"max_tokens zero", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "max_tokens": 0})", 400, "0 only with 'echo': true"},
      {"max_tokens negative", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "max_tokens": -1, "echo": true})", 400, "at least 1, got -1"},
      {"chat max_completion_tokens zero", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 0})", 400, "'max_completion_tokens' must be at least 1, got 0 (0 only with 'echo': true, which chat"},
      {"temperature wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "temperature": "hot"})", 400, "'temperature' must be a number"},
      {"temperature out of range", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "temperature": 7})", 400, "between"},
      {"top_p zero", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "top_p": 0})", 400, "greater than 0"},
      {"logprobs wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logprobs": true})", 400, "'logprobs' must be an integer"},
      {"logprobs too many", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logprobs": 21})", 400, "between 0 and 20"},
      {"echo wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "echo": 1})", 400, "'echo' must be a boolean"},
      {"chat logprobs wrong type", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": 3})", 400, "'logprobs' must be a boolean"},
      {"top_logprobs without logprobs", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", 400, "needs 'logprobs': true"},
      {"logit_bias not an object", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logit_bias": [1]})", 400, "'logit_bias' must be an object"},
      {"logit_bias key not an id", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logit_bias": {"abc": 1}})", 400, "keys must be token ids"},
      {"logit_bias value out of range", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logit_bias": {"5": 101}})", 400, "between -100 and 100"},
      {"logit_bias id outside the vocabulary", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "logit_bias": {"99999": 1}})", 400, "outside the vocabulary"},
      {"presence_penalty out of range", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "presence_penalty": 3})", 400, "'presence_penalty' must be between -2"},
      {"frequency_penalty wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "frequency_penalty": "x"})", 400, "'frequency_penalty' must be a number"},
      {"seed wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "seed": 1.5})", 400, "'seed' must be an integer"},
      {"n = 0", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "n": 0})", 400, "'n' must be between 1 and 64"},
      {"stop wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "stop": 5})", 400, "'stop' must be"},
      {"five stops", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "stop": ["a","b","c","d","e"]})", 400, "at most 4"},
      {"empty stop", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "stop": [""]})", 400, "must not be empty"},
      {"stream wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "stream": "yes"})", 400, "'stream' must be a boolean"},
      {"cache_prompt wrong type", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "cache_prompt": "no"})", 400, "'cache_prompt' must be a boolean"},
      {"stream_options without stream", "/v1/completions", R"({"model": "tiny", "prompt": "hi", "stream_options": {"include_usage": true}})", 400, "only allowed"},
      {"unknown model", "/v1/completions", R"({"model": "gpt-4", "prompt": "hi"})", 404, "does not exist"},
      {"over-long prompt", "/v1/completions", json{{"model", "tiny"}, {"prompt", long_prompt}}.dump(), 400, "maximum context length"},
      {"echo-only prompt over the context", "/v1/completions", json{{"prompt", std::vector<int32_t>(65, 1000)}, {"max_tokens", 0}, {"echo", true}}.dump(), 400, "the prompt has 65 tokens, more than that"},
      {"over-long chat", "/v1/chat/completions", json{{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", long_prompt}}}}}.dump(), 400, "maximum context length"},
      {"huge body", "/v1/completions", json{{"model", "tiny"}, {"prompt", std::string(10000, 'x')}}.dump(), 413, "larger than 4096 bytes"},
      {"unknown route", "/v1/embeddings", R"({"model": "tiny", "input": "hi"})", 404, "Unknown endpoint"},
  };
  for (const BadRequestCase& c : cases) {
    auto r = s.client()->Post(c.path, c.body, "application/json");
    expect_error(r, c.status, c.message_part, c.what);
  }
  expect_error(s.client()->Get("/v1/models/gpt-4"), 404, "does not exist", "unknown model id");
  // Still serving.
  auto ok = s.client()->Post("/v1/completions", R"({"model": "tiny", "prompt": "Hello", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto health = s.client()->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerErrors, ApiKeyGuardsTheApiButNotHealth) {
  server::ServerOptions ho;
  ho.api_key = "sekrit";
  LiveServer s({}, ho);
  const std::string body = R"({"model": "tiny", "prompt": "Hello", "max_tokens": 2})";
  expect_error(s.client()->Post("/v1/completions", body, "application/json"), 401, "API key", "no key");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  expect_error(s.client()->Post("/v1/completions", wrong, body, "application/json"), 401, "API key", "wrong key");
  expect_error(s.client()->Get("/v1/models"), 401, "API key", "models without key");
  httplib::Headers right = {{"Authorization", "Bearer sekrit"}};
  auto ok = s.client()->Post("/v1/completions", right, body, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto models = s.client()->Get("/v1/models", right);
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  auto health = s.client()->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace awq
