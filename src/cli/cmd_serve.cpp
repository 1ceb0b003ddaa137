// awq serve MODEL_DIR: the OpenAI-compatible HTTP server (src/server/) with continuous
// batching (runtime/scheduler.h). Ctrl-C / SIGTERM: stop taking requests, let in-flight ones
// finish within --shutdown-grace, exit 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/env_choice.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "runtime/scheduler.h"
#include "server/chat_renderer.h"
#include "server/http_server.h"
#include "tokenizer/chat_template.h"

namespace awq::cli {

namespace {

struct ServeArgs {
  std::string model_dir, chat_template, model_name, device = "cpu";
  server::ServerOptions http;
  SchedulerOptions sched;
  double grace_seconds = 5.0;
  int threads = 1;
  bool no_cache_prompt = false;  // a plain flag: CLI11's "!--flag" form prints "{false}" in --help
};

std::string default_model_id(const std::string& dir) {
  std::filesystem::path p(dir);
  if (!p.has_filename()) p = p.parent_path();  // "models/x/"
  const std::string name = std::filesystem::absolute(p).lexically_normal().filename().string();
  return name.empty() ? "model" : name;
}

void run(ServeArgs a) {
  check_device(a.device, a.sched.kv_type);
  a.sched.cache_prompt = !a.no_cache_prompt;
  install_interrupt_handler();
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  LlamaModel model(a.model_dir);
  const Tokenizer tok = Tokenizer::load(a.model_dir);
  server::ChatRenderer chat = server::load_chat_renderer(a.model_dir, a.chat_template, tok);
  const int64_t max_pos = model.config().max_position_embeddings;
  if (a.sched.ctx <= 0) a.sched.ctx = std::min<int64_t>(2048, max_pos);
  if (a.sched.ctx > max_pos)
    std::fprintf(stderr, "warning: --ctx %lld exceeds the model's max_position_embeddings (%lld)\n",
                 (long long)a.sched.ctx, (long long)max_pos);
  a.http.model_id = a.model_name.empty() ? default_model_id(a.model_dir) : a.model_name;
  a.http.shutdown_grace = std::chrono::milliseconds(int64_t(a.grace_seconds * 1000));
  ThreadPool pool(a.threads);
  const std::unique_ptr<BatchEngine> engine =
      make_batch_engine(a.device, model, pool, a.sched.parallel, a.sched.ctx, a.sched.kv_type);
  // Prefill chunks: the CPU's prefill speed per token hardly depends on the chunk (its kernels
  // take 8 rows at a time, and a chunk re-reads the weights once), so small chunks keep the
  // running streams' stalls short at little cost to the prompt (1.1B W4: 0.9 s worst gap at 64
  // against 8.6 s for a whole 580-token prompt, docs/results/serve.md); the GPU's GEMM needs
  // hundreds of rows to reach its speed.
  if (a.sched.prefill_chunk < 0) a.sched.prefill_chunk = a.device == "cuda" ? 512 : 64;
  a.sched.pack_prefill =
      env_choice("AWQ_SERVE_PACK_PREFILL", std::getenv("AWQ_SERVE_PACK_PREFILL"),
                 {{"0", "one prefill per request, as before session 33"},
                  {"1", "the GPU packs a step's prompt pieces into shared passes (default)"}},
                 1) == 1;
  Scheduler sched(*engine, tok, a.sched);
  server::HttpServer http(sched, tok, a.http, std::move(chat));
  const int port = http.bind();
  const double kv_mib = double(kv_cache_bytes(model.config().num_layers, model.config().kv_dim(), a.sched.ctx,
                                              a.sched.kv_type)) *
                        a.sched.parallel / (1 << 20);
  std::fprintf(stderr,
               "awq serve: model '%s' at http://%s:%d/ (OpenAI API under /v1; %d slots x %lld "
               "positions, KV caches %.0f MiB %s, prefill chunks of %lld tokens, prompt cache %s; %s%s)\n",
               a.http.model_id.c_str(), a.http.host.c_str(), port, a.sched.parallel,
               (long long)a.sched.ctx, kv_mib, kv_type_name(a.sched.kv_type), (long long)a.sched.prefill_chunk,
               a.sched.cache_prompt ? "on" : "off", engine->describe().c_str(),
               a.http.api_key.empty() ? "" : "; API key required");
  std::atomic<bool> listening_done{false};
  std::thread listener([&] {
    http.run();
    listening_done = true;
  });
  while (!interrupted() && !listening_done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::fprintf(stderr, "awq serve: shutting down (in-flight requests get %.1f s to finish)\n", a.grace_seconds);
  http.shutdown();
  listener.join();
  std::fprintf(stderr, "awq serve: stopped\n");
}

}  // namespace

void add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  args->sched.ctx = 0;
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models) with a chat page at /");
  add_model_dir(cmd, args->model_dir);
  cmd->add_option("--host", args->http.host, "Address to listen on (0.0.0.0: every interface; mind --api-key)")->capture_default_str();
  cmd->add_option("--port", args->http.port, "TCP port (0: any free one, printed at start)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", args->http.api_key, "Require 'Authorization: Bearer KEY' on /v1/ routes (or set AWQ_API_KEY, which ps does not show)")
      ->envname("AWQ_API_KEY");
  cmd->add_option("--parallel", args->sched.parallel, "Requests decoded together (KV-cache slots)")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("-c,--ctx", args->sched.ctx, "Positions per slot, prompt + completion (default: min(2048, max_position_embeddings))")->check(CLI::Range(int64_t(2), int64_t(1) << 24));
  args->sched.prefill_chunk = -1;  // by device, in run()
  cmd->add_option("--prefill-chunk", args->sched.prefill_chunk,
                  "Prompt tokens prefilled per step between the running requests' decode steps (0: whole prompts; default 64 on the CPU, 512 with --device cuda)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  cmd->add_flag("--no-cache-prompt", args->no_cache_prompt,
               "Prefill every prompt whole: by default a free slot keeps its keys and values, and a request "
               "whose prompt starts with them (the next turn of a chat) prefills only the rest");
  cmd->add_option("--max-queue", args->sched.max_queue, "Requests that may wait for a slot; more get 503")->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--max-body", args->http.max_body, "Largest request body in bytes; larger get 413")->capture_default_str()->check(CLI::Range(size_t(1024), size_t(1) << 30));
  std::string builtins;
  for (const std::string& n : ChatTemplate::builtin_names()) builtins += (builtins.empty() ? "" : ", ") + n;
  cmd->add_option("--chat-template", args->chat_template,
                  "Chat template: a .jinja file or a builtin (" + builtins + "); default: the model's own, else ChatML");
  cmd->add_option("--model-name", args->model_name, "Model id in the API (default: the folder's name)");
  cmd->add_option("--shutdown-grace", args->grace_seconds, "Seconds in-flight requests may run on after SIGINT/SIGTERM")->capture_default_str()->check(CLI::Range(0.0, 3600.0));
  add_kv_type(cmd, args->sched.kv_type);
  add_device(cmd, args->device);
  add_threads(cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
