// The OpenAI-compatible HTTP server (cpp-httplib): GET /v1/models, POST /v1/completions and
// /v1/chat/completions (streaming through Server-Sent Events or whole), GET /health,
// GET /metrics (Prometheus text) and the chat web page at /. Requests go to a Scheduler
// (runtime/scheduler.h), which batches them on the model.
// Safety: binds 127.0.0.1 unless told otherwise; with an API key every /v1/ route wants
// "Authorization: Bearer KEY"; bodies over max_body get 413; prompts that do not fit the
// context get 400; every error is OpenAI's JSON error object with a 4xx/5xx status.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "server/request.h"
#include "tokenizer/tokenizer.h"

namespace awq::server {

// Connections the kernel holds for the server before it accepts them (a burst of clients).
inline constexpr int kListenBacklog = 1024;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (bind() returns it)
  std::string api_key;             // empty: no authentication
  std::string model_id = "model";  // what /v1/models lists and requests must name
  size_t max_body = size_t(1) << 20;  // bytes
  int http_threads = 0;            // 0: parallel + max_queue + 8 (every waiting client holds one)
  std::chrono::milliseconds shutdown_grace{5000};  // in-flight requests may finish within this
};

// Turns chat messages into prompt ids (the model's chat template, server/chat_renderer.h) and
// names what ends an assistant turn. prompt_ids throws awq::Error when the template fails.
struct ChatRenderer {
  std::function<std::vector<int32_t>(const std::vector<ChatTurn>&)> prompt_ids;
  std::vector<std::string> stop_strings;  // matched in the generated text
  std::vector<int32_t> stop_ids;          // special tokens (skipped in the text)
};

class HttpServer {
 public:
  // scheduler and tokenizer must outlive the server.
  HttpServer(Scheduler& scheduler, const Tokenizer& tok, ServerOptions opt, ChatRenderer chat);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; returns the port. Throws awq::Error when it cannot.
  int bind();
  // Serves until shutdown() (call bind() first). Blocks.
  void run();
  // Stops taking requests, lets in-flight ones finish within shutdown_grace (then ends them
  // with finish_reason "abort"), sends their last chunks and stops the listener so run()
  // returns. Callable from any thread; idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The page served at / (src/server/web/index.html, compiled in by cmake/embed_file.cmake).
std::string_view web_page();

}  // namespace awq::server
