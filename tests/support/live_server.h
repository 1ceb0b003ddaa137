// An awq HTTP server running in-process on a free port (tiny model), plus small client
// helpers: POST JSON, parse a Server-Sent Events body. Header-only test helper.
#pragma once
#include <httplib.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/llama_model.h"
#include "runtime/scheduler.h"
#include "server/chat_renderer.h"
#include "server/http_server.h"
#include "support/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace awq::test {

inline LlamaModel& tiny_llama() {
  static LlamaModel m(tiny_model_dir());
  return m;
}
inline const Tokenizer& tiny_tokenizer() {
  static const Tokenizer t = Tokenizer::load(tiny_model_dir());
  return t;
}

// The continuation text of `ids` after `prompt` as the server's stream decoder yields it (what
// a completion request of prompt ids returns for generated ids).
inline std::string continuation(const std::vector<int32_t>& prompt, const std::vector<int32_t>& ids) {
  StreamDecoder d(tiny_tokenizer(), true);
  for (int32_t id : prompt) d.push(id);
  std::string s;
  for (int32_t id : ids) s += d.push(id);
  return s + d.flush();
}

class LiveServer {
 public:
  // serving = false: bound (the kernel queues connections) but not accepting until serve().
  explicit LiveServer(SchedulerOptions so = {}, server::ServerOptions ho = {}, int threads = 2, bool serving = true)
      : pool_(threads), sched_(tiny_llama(), tiny_tokenizer(), pool_, so) {
    start(std::move(ho), serving);
  }
  // The server on `engine` (not owned; its slots and context), e.g. the CUDA engine.
  explicit LiveServer(BatchEngine& engine, SchedulerOptions so = {}, server::ServerOptions ho = {})
      : pool_(1), sched_(engine, tiny_tokenizer(), so) {
    start(std::move(ho), true);
  }
  ~LiveServer() {
    if (!thread_.joinable()) serve();  // shutdown() stops only a listener that runs
    http_->shutdown();
    thread_.join();
  }
  // Starts accepting and returns once the server answers (so that a shutdown() after it
  // finds the listener running).
  void serve() {
    thread_ = std::thread([this] { http_->run(); });
    for (int i = 0; i < 1000 && !client()->Get("/health"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  int port() const { return port_; }
  Scheduler& scheduler() { return sched_; }
  server::HttpServer& http() { return *http_; }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(120);
    c->set_write_timeout(30);
    return c;
  }
  // POST of a JSON body (the server's API requests).
  httplib::Result post_json(const std::string& path, const nlohmann::json& body) const {
    return client()->Post(path.c_str(), body.dump(), "application/json");
  }

 private:
  void start(server::ServerOptions ho, bool serving) {
    ho.host = "127.0.0.1";
    ho.port = 0;
    ho.model_id = "tiny";
    http_ = std::make_unique<server::HttpServer>(sched_, tiny_tokenizer(), ho,
                                                 server::load_chat_renderer(tiny_model_dir(), "", tiny_tokenizer()));
    port_ = http_->bind();
    if (serving) serve();
  }

  ThreadPool pool_;
  Scheduler sched_;
  std::unique_ptr<server::HttpServer> http_;
  int port_ = 0;
  std::thread thread_;
};

struct SseBody {
  std::vector<nlohmann::json> events;  // every data: JSON object, in order
  bool done = false;                   // ended with data: [DONE]
  std::string text;                    // choice 0's concatenated deltas / texts
  std::string finish_reason;           // choice 0's
  std::map<int, std::string> texts;            // every choice's, by its "index"
  std::map<int, std::string> finish_reasons;   // every choice's, by its "index"
};

// Parses a complete text/event-stream body; records a failure for anything malformed.
inline SseBody parse_sse(const std::string& body) {
  SseBody r;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated event: " << body.substr(at);
      break;
    }
    const std::string ev = body.substr(at, end - at);
    at = end + 2;
    if (ev.rfind("data: ", 0) != 0) {
      ADD_FAILURE() << "event without 'data: ': " << ev;
      continue;
    }
    const std::string data = ev.substr(6);
    EXPECT_FALSE(r.done) << "event after [DONE]";
    if (data == "[DONE]") {
      r.done = true;
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(data);
    if (j.contains("choices"))
      for (const auto& c : j["choices"]) {
        const int index = c["index"].get<int>();
        std::string& text = r.texts[index];
        if (c.contains("delta") && c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
        if (c.contains("text")) text += c["text"].get<std::string>();
        if (!c["finish_reason"].is_null()) {
          EXPECT_EQ(r.finish_reasons.count(index), 0u) << "choice " << index << " finished twice";
          r.finish_reasons[index] = c["finish_reason"].get<std::string>();
        }
      }
    r.events.push_back(std::move(j));
  }
  r.text = r.texts[0];
  r.finish_reason = r.finish_reasons[0];
  return r;
}

}  // namespace awq::test
