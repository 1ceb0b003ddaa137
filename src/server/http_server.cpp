#include "server/http_server.h"

#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <sys/socket.h>

#include "core/error.h"
#include "server/api_error.h"
#include "server/metrics.h"
#include "server/openai_format.h"
#include "server/streamed_response.h"

namespace awq::server {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

uint64_t fresh_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ uint64_t(rd());
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 503) res.set_header("Retry-After", "1");
  res.set_content(error_body(e), "application/json");
}

// One streamed response, shared by httplib's content provider and its resource releaser.
struct StreamState {
  explicit StreamState(StreamedResponse r) : response(std::move(r)) {}
  StreamedResponse response;
  std::once_flag released;
};

}  // namespace

struct HttpServer::Impl {
  Scheduler& sched;
  const Tokenizer& tok;
  ServerOptions opt;
  ChatRenderer chat;
  httplib::Server srv;
  int64_t started_at = 0;
  std::atomic<bool> stopping{false};
  std::atomic<int> open_requests{0};  // completion requests not yet fully answered
  std::mutex stats_mu;
  std::map<int, uint64_t> responses_by_code;
  std::once_flag shutdown_once;
  int listen_socket = -1;  // the socket httplib bound last (set by its socket-options hook)

  Impl(Scheduler& s, const Tokenizer& t, ServerOptions o, ChatRenderer c)
      : sched(s), tok(t), opt(std::move(o)), chat(std::move(c)) {}

  void setup_routes();
  bool authorized(const httplib::Request& req) const;
  // The engine's request for prompt `prompt` (completions; chat: its messages) and its
  // choice `choice` of n (the seed, where given, is seed + choice).
  GenerationRequest to_generation(const CompletionRequest& r, size_t prompt, int choice) const;
  void completion(const httplib::Request& req, httplib::Response& res, bool chat_api);
  void do_shutdown();
};

HttpServer::HttpServer(Scheduler& scheduler, const Tokenizer& tok, ServerOptions opt, ChatRenderer chat)
    : impl_(std::make_unique<Impl>(scheduler, tok, std::move(opt), std::move(chat))) {
  impl_->started_at = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  impl_->setup_routes();
}

HttpServer::~HttpServer() { shutdown(); }

int HttpServer::bind() {
  const ServerOptions& o = impl_->opt;
  const int port = o.port == 0 ? impl_->srv.bind_to_any_port(o.host)
                               : (impl_->srv.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0)
    throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (address in use, or not an address of this machine; pick another --host/--port)");
  // Debian's cpp-httplib 0.11 is a compiled library that listens with a backlog of 5: a burst
  // of clients overflowed the accept queue, the kernel dropped their handshakes and request
  // packets, and some connections reached the server after its 2 s wait for a first request
  // and were closed unanswered (the client saw a read error). Listening again on the bound
  // socket raises the backlog (Linux caps it at net.core.somaxconn).
  if (impl_->listen_socket < 0 || ::listen(impl_->listen_socket, kListenBacklog) != 0)
    throw Error("cannot raise the listen backlog of " + o.host + ":" + std::to_string(port));
  return port;
}

void HttpServer::run() { impl_->srv.listen_after_bind(); }

void HttpServer::shutdown() {
  std::call_once(impl_->shutdown_once, [this] { impl_->do_shutdown(); });
}

void HttpServer::Impl::do_shutdown() {
  stopping = true;
  // In-flight requests finish (or end with "abort" after the grace period); their handlers
  // then send the last chunks, which must go out before the listener stops.
  sched.shutdown(opt.shutdown_grace);
  const auto until = Clock::now() + std::chrono::seconds(2);
  while (open_requests.load() > 0 && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  srv.stop();
}

bool HttpServer::Impl::authorized(const httplib::Request& req) const {
  if (opt.api_key.empty()) return true;
  return req.get_header_value("Authorization") == "Bearer " + opt.api_key;
}

GenerationRequest HttpServer::Impl::to_generation(const CompletionRequest& r, size_t prompt, int choice) const {
  GenerationRequest g;
  if (r.chat) {
    if (!chat.prompt_ids) throw ApiError(400, "this server has no chat template", "messages");
    try {
      g.prompt = chat.prompt_ids(r.messages);
    } catch (const Error& e) {
      throw ApiError(400, std::string("the chat template failed on these messages: ") + e.what(), "messages");
    }
    g.stop = chat.stop_strings;
    g.stop_ids = chat.stop_ids;
  } else if (r.prompts[prompt].is_ids) {
    for (int32_t id : r.prompts[prompt].ids)
      if (id >= tok.vocab_size())
        throw ApiError(400, "token id " + std::to_string(id) + " in 'prompt' is outside the vocabulary (0.." +
                                std::to_string(tok.vocab_size() - 1) + ")", "prompt", "invalid_value");
    g.prompt = r.prompts[prompt].ids;
  } else {
    g.prompt = tok.encode(r.prompts[prompt].text, true);
  }
  if (g.prompt.empty()) throw ApiError(400, "the prompt encodes to no tokens", r.chat ? "messages" : "prompt");
  const int64_t ctx = sched.options().ctx, n = int64_t(g.prompt.size());
  const bool echo_only = r.max_tokens == 0;  // the prompt may fill the whole context
  if (n > ctx || (n == ctx && !echo_only))
    throw ApiError(400, "This model's maximum context length is " + std::to_string(ctx) +
                            " tokens (--ctx); the prompt has " + std::to_string(n) + " tokens, " +
                            (n > ctx ? "more than that" : "leaving no room to generate") + ". Shorten the prompt.",
                   r.chat ? "messages" : "prompt", "context_length_exceeded");
  const int64_t room = ctx - n;
  g.max_tokens = std::min(r.max_tokens.value_or(r.chat ? room : 16), room);
  for (const std::string& s : r.stop) g.stop.push_back(s);
  g.stop_at_eos = !r.ignore_eos;
  g.cache_prompt = r.cache_prompt;
  g.top_logprobs = r.top_logprobs;
  g.echo_prompt = r.echo;
  g.sampler.temperature = float(r.temperature);
  g.sampler.top_p = float(r.top_p);
  g.sampler.top_k = 0;
  g.sampler.min_p = 0.0f;
  g.sampler.repeat_penalty = 1.0f;
  g.sampler.presence_penalty = float(r.presence_penalty);
  g.sampler.frequency_penalty = float(r.frequency_penalty);
  for (const auto& [id, bias] : r.logit_bias)
    if (id >= tok.vocab_size())
      throw ApiError(400, "token id " + std::to_string(id) + " in 'logit_bias' is outside the vocabulary (0.." +
                              std::to_string(tok.vocab_size() - 1) + ")", "logit_bias", "invalid_value");
  g.sampler.logit_bias = r.logit_bias;
  // As OpenAI: without "seed" a sampled request varies from call to call (each choice draws its
  // own seed); with it, it repeats, choice j of each prompt taking seed + j so that n > 1
  // choices differ. (The CLI keeps the sampler's fixed default seed: runs there repeat.)
  g.sampler.seed = r.seed ? *r.seed + uint64_t(choice) : fresh_seed();
  return g;
}

void HttpServer::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat_api) {
  const CompletionRequest r = parse_completion_request(req.body, chat_api);
  if (!r.model.empty() && r.model != opt.model_id)
    throw ApiError(404, "The model '" + r.model + "' does not exist; this server serves '" + opt.model_id + "'",
                   "model", "model_not_found");
  // Every choice's request first, so that a bad prompt refuses the whole request.
  const size_t prompts = r.chat ? 1 : r.prompts.size();
  std::vector<GenerationRequest> gens;
  for (size_t p = 0; p < prompts; ++p)
    for (int j = 0; j < r.n; ++j) gens.push_back(to_generation(r, p, j));
  // All choices are queued together or none: a request with more choices than free slots and
  // queue places still runs (its choices wait their turn), as in vLLM.
  Scheduler::Refusal why = Scheduler::Refusal::None;
  const std::vector<std::shared_ptr<RequestStream>> streams = sched.submit_all(std::move(gens), &why);
  if (why == Scheduler::Refusal::ShuttingDown)
    throw ApiError(503, "the server is shutting down", "", "server_shutting_down");
  if (why != Scheduler::Refusal::None)
    throw ApiError(503, "the server is busy: every slot is taken and " + std::to_string(sched.options().max_queue) +
                            " requests are already waiting (--max-queue); retry later",
                   "", "server_busy");
  const ResponseIds ids = new_response_ids(chat_api, opt.model_id);
  ++open_requests;
  if (!r.stream) {
    struct Done {
      std::atomic<int>& n;
      ~Done() { --n; }
    } done{open_requests};
    // The engine runs the choices side by side; their events wait in their streams meanwhile.
    std::vector<ChoiceResult> choices;
    Usage usage;
    for (size_t c = 0; c < streams.size(); ++c) {
      ChoiceResult choice;
      std::vector<TokenLogprob> logprobs;
      GenerationEvent ev;
      for (;;) {
        if (!streams[c]->next(ev, std::chrono::milliseconds(100))) continue;
        if (ev.kind == GenerationEvent::Kind::Text) {
          choice.text += ev.text;
          for (TokenLogprob& t : ev.logprobs) logprobs.push_back(std::move(t));
          continue;
        }
        if (ev.kind == GenerationEvent::Kind::Error) {
          for (auto& st : streams) st->cancel();
          throw ApiError(500, "generation failed: " + ev.error);
        }
        break;
      }
      choice.finish_reason = ev.finish_reason;
      if (r.top_logprobs >= 0) choice.logprobs = logprobs_json(chat_api, logprobs, 0);
      count_usage(usage, ev, c % size_t(r.n) == 0);
      choices.push_back(std::move(choice));
    }
    res.set_content(full_response(ids, choices, usage)
                        .dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
    return;
  }
  auto st = std::make_shared<StreamState>(StreamedResponse(streams, ids, r.n, r.include_usage, r.top_logprobs >= 0));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        const std::string bytes = st->response.next(std::chrono::milliseconds(100));
        // Nothing yet: keep waiting while the client is still there (returning false
        // closes the connection and the releaser cancels the request).
        if (bytes.empty()) return sink.is_writable();
        const bool ok = sink.write(bytes.data(), bytes.size());
        if (st->response.finished()) sink.done();
        return ok;
      },
      [st, this](bool) {
        std::call_once(st->released, [&] {
          st->response.cancel();  // a no-op for choices already finished
          --open_requests;
        });
      });
}

void HttpServer::Impl::setup_routes() {
  const int threads = opt.http_threads > 0
                          ? opt.http_threads
                          : sched.options().parallel + sched.options().max_queue + 8;
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  srv.set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_socket = sock;  // bind() listens on it again with a larger backlog
  });
  srv.set_payload_max_length(opt.max_body);
  srv.set_keep_alive_timeout(2);
  srv.set_read_timeout(30);

  srv.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1/", 0) == 0 && !authorized(req)) {
      send_error(res, ApiError(401,
                               "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' "
                               "with the key given to awq serve --api-key", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib raises itself (unknown route, body too large, bad request line) in
  // OpenAI's shape too.
  srv.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = "HTTP " + std::to_string(res.status);
    std::string code;
    if (res.status == 404) {
      msg = "Unknown endpoint: " + req.method + " " + req.path;
      code = "unknown_url";
    } else if (res.status == 413) {
      msg = "The request body is larger than " + std::to_string(opt.max_body) + " bytes (--max-body)";
      code = "request_too_large";
    } else if (res.status == 400) {
      msg = "Malformed HTTP request";
    }
    res.set_content(error_body(res.status, msg, "", code), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  srv.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, "internal error: " + what));
  });
  srv.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard<std::mutex> lk(stats_mu);
    ++responses_by_code[res.status];
  });

  auto guarded = [](auto fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(400, e.what()));
      }
    };
  };
  auto model_json = [this] {
    return json{{"id", opt.model_id}, {"object", "model"}, {"created", started_at}, {"owned_by", "awq.cpp"}};
  };

  srv.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(web_page()), "text/html; charset=utf-8");
  });
  srv.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping) {
      res.status = 503;
      res.set_content(R"({"status":"shutting down"})", "application/json");
    } else {
      res.set_content(R"({"status":"ok"})", "application/json");
    }
  });
  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::map<int, uint64_t> codes;
    {
      std::lock_guard<std::mutex> lk(stats_mu);
      codes = responses_by_code;
    }
    res.set_content(prometheus_text(sched.stats(), codes), "text/plain; version=0.0.4");
  });
  srv.Get("/v1/models", [model_json](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"object", "list"}, {"data", json::array({model_json()})}}.dump(), "application/json");
  });
  srv.Get(R"(/v1/models/(.+))", guarded([this, model_json](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != opt.model_id)
      throw ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist", "model", "model_not_found");
    res.set_content(model_json().dump(), "application/json");
  }));
  srv.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, false);
  }));
  srv.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, true);
  }));
}

}  // namespace awq::server
