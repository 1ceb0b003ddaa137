// The OpenAI-compatible server in-process on a free port with the tiny model: response and
// stream shapes, greedy text against the PyTorch reference, stop strings, continuous batching
// (N concurrent streaming clients get the serial client's exact text), the 503 of a full
// queue, a disconnecting client freeing its slot, shutdown with requests in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "support/live_server.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

using nlohmann::json;
using test::LiveServer;
using test::continuation;
using test::parse_sse;

json completion_body(const std::string& prompt, int max_tokens, bool stream) {
  return {{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", stream}};
}

// Each prompt's text from its own greedy completion request of max_tokens tokens (what every
// choice for that prompt in a batched request must equal); *prompt_tokens adds up their usage.
std::vector<std::string> lone_texts(const LiveServer& s, const std::vector<std::string>& prompts, int max_tokens,
                                    int64_t* prompt_tokens = nullptr) {
  std::vector<std::string> texts;
  for (const std::string& p : prompts) {
    auto r = s.post_json("/v1/completions", completion_body(p, max_tokens, false));
    if (!r || r->status != 200) {
      ADD_FAILURE() << "the lone request for '" << p << "' failed: " << (r ? r->body : httplib::to_string(r.error()));
      texts.emplace_back();
      continue;
    }
    const json j = json::parse(r->body);
    texts.push_back(j["choices"][0]["text"].get<std::string>());
    if (prompt_tokens) *prompt_tokens += j["usage"]["prompt_tokens"].get<int64_t>();
  }
  return texts;
}

// One non-streamed completion request of every prompt x n choices (greedy, max_tokens each);
// the response, or, after a failure is recorded, one without choices.
json batched_completion(const LiveServer& s, const std::vector<std::string>& prompts, int n, int max_tokens) {
  json body = completion_body("", max_tokens, false);
  body["prompt"] = prompts;
  body["n"] = n;
  auto r = s.post_json("/v1/completions", body);
  if (!r || r->status != 200) {
    ADD_FAILURE() << "the batched request failed: " << (r ? r->body : httplib::to_string(r.error()));
    return json{{"choices", json::array()}};
  }
  return json::parse(r->body);
}

uint64_t metric(const LiveServer& s, const std::string& name) {
  auto r = s.client()->Get("/metrics");
  EXPECT_TRUE(r && r->status == 200);
  const std::string key = "\n" + name + " ";
  const size_t at = r->body.find(key);
  EXPECT_NE(at, std::string::npos) << name;
  return at == std::string::npos ? 0 : uint64_t(std::stod(r->body.substr(at + key.size())));
}

TEST(Server, ModelsHealthMetricsAndPage) {
  LiveServer s;
  auto models = s.client()->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "tiny");
  EXPECT_EQ(m["data"][0]["object"], "model");
  auto one = s.client()->Get("/v1/models/tiny");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  auto health = s.client()->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto page = s.client()->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  ASSERT_TRUE(s.post_json("/v1/completions", completion_body("Hello", 3, false)));
  auto metrics = s.client()->Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name : {"awq_requests_total 1", "awq_generated_tokens_total", "awq_queue_length 0",
                           "awq_generation_tokens_per_second", "awq_http_responses_total{code=\"200\"}"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  // "model" may be left out (as llama.cpp's and vLLM's servers allow): the served model answers.
  json no_model = completion_body("Hello", 2, false);
  no_model.erase("model");
  auto r = s.post_json("/v1/completions", no_model);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["model"], "tiny");
}

// Token-id prompts of the reference: 32 greedy tokens equal PyTorch's greedy ids.
TEST(Server, GreedyCompletionMatchesReference) {
  LiveServer s;
  for (const auto& g : test::tiny_reference()["greedy"]) {
    const auto prompt = g["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = g["greedy_ids"].get<std::vector<int32_t>>();
    json body = {{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", want.size()}, {"temperature", 0},
                 {"ignore_eos", true}};
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
    EXPECT_EQ(j["model"], "tiny");
    EXPECT_EQ(j["choices"][0]["text"], continuation(prompt, want)) << g["prompt"];
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
    EXPECT_EQ(j["usage"]["completion_tokens"], want.size());
    EXPECT_EQ(j["usage"]["total_tokens"], prompt.size() + want.size());
  }
}

TEST(Server, ChatStreamShapeAndUsage) {
  LiveServer s;
  json body = {{"model", "tiny"},
               {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Tell me a story."}}}},
               {"max_tokens", 6}, {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  auto r = s.post_json("/v1/chat/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const test::SseBody sse = parse_sse(r->body);
  ASSERT_TRUE(sse.done);
  ASSERT_GE(sse.events.size(), 3u);
  const std::string id = sse.events[0]["id"];
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  for (const json& e : sse.events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], id);
    EXPECT_EQ(e["model"], "tiny");
    EXPECT_TRUE(e.contains("usage"));  // null on all but the last with include_usage
  }
  EXPECT_EQ(sse.events[0]["choices"][0]["delta"]["role"], "assistant");
  const json& fin = sse.events[sse.events.size() - 2];
  EXPECT_FALSE(fin["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(fin["choices"][0]["delta"], json::object());
  const json& usage = sse.events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_LE(usage["usage"]["completion_tokens"].get<int>(), 6);
  EXPECT_GT(usage["usage"]["prompt_tokens"].get<int>(), 5);

  // The same request without streaming gives the same text.
  body["stream"] = false;
  body.erase("stream_options");
  auto whole = s.post_json("/v1/chat/completions", body);
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  const json w = json::parse(whole->body);
  EXPECT_EQ(w["object"], "chat.completion");
  EXPECT_EQ(w["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(w["choices"][0]["message"]["content"], sse.text);
  EXPECT_EQ(w["choices"][0]["finish_reason"], sse.finish_reason);
}

TEST(Server, StopStringEndsTheText) {
  LiveServer s;
  auto full = s.post_json("/v1/completions", completion_body("The history of", 24, true));
  ASSERT_TRUE(full);
  const std::string text = parse_sse(full->body).text;
  ASSERT_GT(text.size(), 12u) << text;
  const std::string stop = text.substr(8, 3);
  json body = completion_body("The history of", 24, true);
  body["stop"] = {"never-appears", stop};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  const test::SseBody sse = parse_sse(r->body);
  EXPECT_EQ(sse.text, text.substr(0, text.find(stop)));
  EXPECT_EQ(sse.finish_reason, "stop");
  EXPECT_TRUE(sse.done);
}

// presence_penalty / frequency_penalty reach the sampler (their arithmetic: test_sampler.cpp):
// the greedy text of this prompt repeats words ("the", "people"), and penalised it changes.
TEST(Server, PenaltiesChangeTheGreedyText) {
  LiveServer s;
  auto plain = s.post_json("/v1/completions", completion_body("The history of", 24, false));
  json body = completion_body("The history of", 24, false);
  body["presence_penalty"] = 2.0;
  body["frequency_penalty"] = 2.0;
  auto penalised = s.post_json("/v1/completions", body);
  ASSERT_TRUE(plain && penalised);
  ASSERT_EQ(penalised->status, 200) << penalised->body;
  const std::string a = json::parse(plain->body)["choices"][0]["text"], b = json::parse(penalised->body)["choices"][0]["text"];
  EXPECT_NE(a, b) << a;
}

// logit_bias reaches the sampler: +100 on one token makes every greedy token that one, and
// -100 on the plain greedy text's first token changes the first token.
TEST(Server, LogitBiasForcesAndBansTokens) {
  LiveServer s;
  json body = completion_body("The history of", 4, false);
  body["logprobs"] = 0;
  auto plain = s.post_json("/v1/completions", body);
  ASSERT_TRUE(plain);
  const json plain_lp = json::parse(plain->body)["choices"][0]["logprobs"];
  const std::string first = plain_lp["tokens"][0];
  const int32_t forced = test::tiny_tokenizer().encode(" river", false).back();
  body["logit_bias"] = {{std::to_string(forced), 100}};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json lp = json::parse(r->body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 4u);
  for (const json& t : lp["tokens"]) EXPECT_EQ(t, lp["tokens"][0]) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], " river river river river");

  const int32_t greedy_first = test::tiny_tokenizer().encode("The history of" + first, false).back();
  body["logit_bias"] = {{std::to_string(greedy_first), -100}};
  auto banned = s.post_json("/v1/completions", body);
  ASSERT_TRUE(banned);
  ASSERT_EQ(banned->status, 200) << banned->body;
  EXPECT_NE(json::parse(banned->body)["choices"][0]["logprobs"]["tokens"][0].get<std::string>(), first);
}

// Several prompts and n > 1 in one request (not streamed): the choices come in order, prompt by
// prompt and n per prompt, each greedy one equal to its own single request's text; sampled
// choices of one prompt get seeds seed, seed + 1, ... (so they differ, reproducibly).
TEST(Server, SeveralPromptsAndChoicesInOneRequest) {
  LiveServer s;
  const std::vector<std::string> prompts = {"The history of", "Once upon a time", "She opened the door"};
  int64_t prompt_tokens = 0;
  const std::vector<std::string> single = lone_texts(s, prompts, 8, &prompt_tokens);
  ASSERT_FALSE(HasFailure());
  const json j = batched_completion(s, prompts, 2, 8);
  ASSERT_EQ(j["choices"].size(), 6u);
  for (size_t c = 0; c < 6; ++c) {
    EXPECT_EQ(j["choices"][c]["index"], c);
    EXPECT_EQ(j["choices"][c]["text"].get<std::string>(), single[c / 2]) << "choice " << c;
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt_tokens);  // each prompt once
  EXPECT_EQ(j["usage"]["completion_tokens"], 6 * 8);

  json sampled = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"max_tokens", 16},
                  {"temperature", 1.0}, {"seed", 11}, {"n", 2}};
  auto a = s.post_json("/v1/chat/completions", sampled);
  auto b = s.post_json("/v1/chat/completions", sampled);
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->status, 200) << a->body;
  const json ja = json::parse(a->body), jb = json::parse(b->body);
  ASSERT_EQ(ja["choices"].size(), 2u);
  EXPECT_NE(ja["choices"][0]["message"]["content"].get<std::string>(), ja["choices"][1]["message"]["content"].get<std::string>());
  EXPECT_EQ(ja["choices"][1]["message"]["content"].get<std::string>(), jb["choices"][1]["message"]["content"].get<std::string>());
}

// One slot and one queue place, idle: a request of 2 prompts x n = 3 (6 choices, more than the
// 2 places) runs whole, its choices taking the slot in turn (it was a 503 "busy").
TEST(Server, MoreChoicesThanSlotsAndQueueRunOnAnIdleServer) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  LiveServer s(so);
  const std::vector<std::string> prompts = {"The history of", "Once upon a time"};
  const std::vector<std::string> single = lone_texts(s, prompts, 6);
  ASSERT_FALSE(HasFailure());
  const json j = batched_completion(s, prompts, 3, 6);
  ASSERT_EQ(j["choices"].size(), 6u);
  for (size_t c = 0; c < 6; ++c) EXPECT_EQ(j["choices"][c]["text"].get<std::string>(), single[c / 3]) << "choice " << c;
  EXPECT_EQ(metric(s, "awq_requests_rejected_total"), 0u);
}

// Without "seed" every sampled request (and every choice of one) draws a fresh seed, so
// identical requests vary, as OpenAI's do. Two 24-token texts at temperature 1.5 from the
// tiny model are equal by chance with a negligible probability (a fixed seed makes them
// equal every time).
TEST(Server, SampledRequestsWithoutSeedVary) {
  LiveServer s;
  json body = completion_body("Once upon a time", 24, false);
  body["temperature"] = 1.5;
  std::set<std::string> texts;
  for (int i = 0; i < 2; ++i) {
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    texts.insert(json::parse(r->body)["choices"][0]["text"].get<std::string>());
  }
  EXPECT_GT(texts.size(), 1u) << "two sampled requests without a seed gave the same text";
  body["n"] = 2;
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_NE(j["choices"][0]["text"].get<std::string>(), j["choices"][1]["text"].get<std::string>());
}

// Every chunk's choices in a stream hold one choice, and no choice has text after its finish chunk.
void expect_choices_end_with_their_finish(const test::SseBody& sse) {
  std::set<int> finished;
  for (const json& e : sse.events) {
    ASSERT_LE(e["choices"].size(), 1u) << e.dump();
    if (e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    const int index = c["index"];
    EXPECT_EQ(finished.count(index), 0u) << "a chunk of choice " << index << " after its finish: " << e.dump();
    if (!c["finish_reason"].is_null()) finished.insert(index);
  }
}

// Streamed n > 1 and several prompts (OpenAI's shape): chunks carry their choice's "index", each
// choice ends with its own finish_reason chunk, then the usage (each prompt counted once) and
// one [DONE]. Greedy, each choice's text is its prompt's non-streamed text; sampled chat
// choices with a seed are the non-streamed response's choices.
TEST(Server, StreamedChoicesCarryTheirIndex) {
  LiveServer s;
  const std::vector<std::string> prompts = {"The history of", "Once upon a time"};
  json body = completion_body("", 8, false);
  body["prompt"] = prompts;
  body["n"] = 2;
  auto whole = s.post_json("/v1/completions", body);
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  const json w = json::parse(whole->body);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const test::SseBody sse = parse_sse(r->body);
  EXPECT_TRUE(sse.done);
  ASSERT_EQ(sse.texts.size(), 4u);
  ASSERT_EQ(sse.finish_reasons.size(), 4u);
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(sse.texts.at(c), w["choices"][c]["text"].get<std::string>()) << "choice " << c;
    EXPECT_EQ(sse.finish_reasons.at(c), "length") << "choice " << c;
  }
  expect_choices_end_with_their_finish(sse);
  const json& usage = sse.events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], w["usage"]["prompt_tokens"]);
  EXPECT_EQ(usage["usage"]["completion_tokens"], w["usage"]["completion_tokens"]);
  EXPECT_EQ(usage["usage"]["total_tokens"], w["usage"]["total_tokens"]);
  // The prompt cache: the first request's choices left both prompts in the 4 slots, so each
  // prompt's first choice (the one usage counts) found all but its last token there.
  EXPECT_EQ(w["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"], usage["usage"]["prompt_tokens"].get<int>() - 2);

  json chat = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"max_tokens", 12},
               {"temperature", 1.0}, {"seed", 3}, {"n", 3}};
  auto whole_chat = s.post_json("/v1/chat/completions", chat);
  ASSERT_TRUE(whole_chat);
  ASSERT_EQ(whole_chat->status, 200) << whole_chat->body;
  const json wc = json::parse(whole_chat->body);
  chat["stream"] = true;
  auto streamed_chat = s.post_json("/v1/chat/completions", chat);
  ASSERT_TRUE(streamed_chat);
  ASSERT_EQ(streamed_chat->status, 200) << streamed_chat->body;
  const test::SseBody sc = parse_sse(streamed_chat->body);
  EXPECT_TRUE(sc.done);
  ASSERT_EQ(sc.texts.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(sc.events[size_t(c)]["choices"][0]["index"], c);  // the role chunks come first
    EXPECT_EQ(sc.events[size_t(c)]["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(sc.texts.at(c), wc["choices"][c]["message"]["content"].get<std::string>()) << "choice " << c;
    EXPECT_EQ(sc.finish_reasons.at(c), wc["choices"][c]["finish_reason"].get<std::string>()) << "choice " << c;
  }
  expect_choices_end_with_their_finish(sc);
}

// A client that hangs up on a streamed request of 3 choices frees all three slots.
TEST(Server, DisconnectEndsEveryStreamedChoice) {
  SchedulerOptions so;
  so.ctx = 2048;
  LiveServer s(so);
  std::atomic<bool> got_chunk{false};
  auto c = s.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = json{{"prompt", "Once"}, {"max_tokens", 2000}, {"n", 3}, {"stream", true}, {"ignore_eos", true}}.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    got_chunk = true;
    return false;  // hang up at the first chunk
  };
  c->send(req);
  ASSERT_TRUE(got_chunk);
  for (int i = 0; i < 2000 && metric(s, "awq_requests_cancelled_total") < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(metric(s, "awq_requests_cancelled_total"), 3u);
  EXPECT_LT(metric(s, "awq_generated_tokens_total"), 3u * 2000u);
}

// Continuous batching: N clients at once, greedy, each text equal to a serial client's.
TEST(Server, ConcurrentStreamingClientsGetTheSerialText) {
  SchedulerOptions so;
  so.parallel = 32;
  so.ctx = 256;
  LiveServer s(so);
  const std::vector<std::string> prompts = {
      "The history of", "Once upon a time", "In the beginning", "The old man said",
      "It was a dark and stormy night, and", "She opened the door", "Why", "A long, long time ago, in a land far away,"};
  std::vector<std::string> serial;
  for (const std::string& p : prompts) {
    auto r = s.post_json("/v1/completions", completion_body(p, 16, true));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    serial.push_back(parse_sse(r->body).text);
    EXPECT_FALSE(serial.back().empty());
  }
  for (int n : {1, 8, 32}) {
    std::vector<std::future<std::string>> clients;
    for (int i = 0; i < n; ++i)
      clients.push_back(std::async(std::launch::async, [&, i] {
        auto r = s.post_json("/v1/completions", completion_body(prompts[size_t(i) % prompts.size()], 16, true));
        if (!r) return "<failed: " + httplib::to_string(r.error()) + ">";
        if (r->status != 200) return "<status " + std::to_string(r->status) + ": " + r->body + ">";
        const test::SseBody sse = parse_sse(r->body);
        return sse.done ? sse.text : std::string("<no [DONE]>");
      }));
    for (int i = 0; i < n; ++i) EXPECT_EQ(clients[size_t(i)].get(), serial[size_t(i) % prompts.size()]) << "N=" << n << " client " << i;
  }
  EXPECT_EQ(metric(s, "awq_requests_cancelled_total"), 0u);
}

// One slot, one queue place: a long request holds the slot, a second waits, a third gets 503.
// Then the first client hangs up: its slot is freed and the waiting request completes.
TEST(Server, FullQueueGets503AndDisconnectFreesTheSlot) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  so.ctx = 2048;
  LiveServer s(so);
  std::atomic<bool> got_chunk{false}, hang_up{false};
  std::thread long_client([&] {
    auto c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"model", "tiny"}, {"prompt", "Once"}, {"max_tokens", 2000}, {"stream", true}, {"ignore_eos", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      got_chunk = true;
      return !hang_up.load();
    };
    c->send(req);
  });
  while (!got_chunk) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto waiting = std::async(std::launch::async, [&] { return s.post_json("/v1/completions", completion_body("Hi", 4, false)); });
  while (s.scheduler().stats().queued < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto refused = s.post_json("/v1/completions", completion_body("Hi", 4, false));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  const json e = json::parse(refused->body);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("busy"), std::string::npos);
  EXPECT_EQ(e["error"]["type"], "server_error");

  hang_up = true;
  long_client.join();
  auto done = waiting.get();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200);
  EXPECT_EQ(metric(s, "awq_requests_cancelled_total"), 1u);
  EXPECT_LT(metric(s, "awq_generated_tokens_total"), 2000u);
  EXPECT_EQ(metric(s, "awq_requests_rejected_total"), 1u);
}

// shutdown() with a stream in flight: the client gets finish_reason "abort" and [DONE].
TEST(Server, ShutdownEndsInFlightStreams) {
  SchedulerOptions so;
  so.ctx = 2048;
  server::ServerOptions ho;
  ho.shutdown_grace = std::chrono::milliseconds(0);
  LiveServer s(so, ho);
  std::atomic<bool> got_chunk{false};
  std::string body;
  std::thread client([&] {
    auto c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"model", "tiny"}, {"prompt", "Once"}, {"max_tokens", 2000}, {"stream", true}, {"ignore_eos", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      body.append(d, n);
      got_chunk = true;
      return true;
    };
    c->send(req);
  });
  while (!got_chunk) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.http().shutdown();
  client.join();
  const test::SseBody sse = parse_sse(body);
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(sse.finish_reason, "abort");
  auto after = s.client()->Get("/health");
  EXPECT_FALSE(after);  // the listener is gone
}

}  // namespace
}  // namespace awq
