// awq chat MODEL_DIR: an interactive conversation using the model's chat template.
// Replies stream to stdout (one line break after each); the prompt, notices and errors go to
// stderr. Reads user messages line by line from stdin, so it also works with piped input.
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "runtime/chat_session.h"

namespace awq::cli {

namespace {

struct ChatArgs {
  std::string model_dir, chat_template, system, device = "cpu";
  int64_t n_predict = 512;
  int64_t ctx = 0;
  int threads = 1;
  bool verbose = false;
  KvType kv_type = KvType::F16;
  SamplerParams sp;
};

// Ctrl-C while a reply streams ends that reply; at the prompt it quits.
volatile std::sig_atomic_t g_replying = 0;
volatile std::sig_atomic_t g_stop_reply = 0;

void on_sigint(int) {
  if (g_replying) {
    g_stop_reply = 1;
    return;
  }
  const char nl = '\n';
  (void)!::write(STDERR_FILENO, &nl, 1);
  ::_exit(130);
}

void install_sigint() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

const char* kHelp =
    "commands: /reset (forget the conversation), /exit or /quit (or end of input), /help;\n"
    "end a line with \\ to continue the message on the next line; Ctrl-C stops a reply.\n";

// Reads one message (lines ending in '\' continue it). false at end of input.
bool read_message(std::string& msg, bool interactive) {
  msg.clear();
  std::string line;
  for (bool first = true;; first = false) {
    if (interactive) {
      std::fputs(first ? "> " : ". ", stderr);
      std::fflush(stderr);
    }
    if (!std::getline(std::cin, line)) return !first;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      msg += line;
      msg += '\n';
      continue;
    }
    msg += line;
    return true;
  }
}

void run(const ChatArgs& a) {
  check_device(a.device, a.kv_type);
  LlamaModel model(a.model_dir);
  const Tokenizer tok = Tokenizer::load(a.model_dir);
  const ChatTemplate tmpl = ChatTemplate::load(a.model_dir, a.chat_template);
  if (tmpl.fallback())
    std::fprintf(stderr,
                 "note: %s has no chat template (no chat_template in tokenizer_config.json, no "
                 "chat_template.jinja); using ChatML. Pick another with --chat-template NAME|FILE.\n",
                 a.model_dir.c_str());
  const int64_t max_pos = model.config().max_position_embeddings;
  const int64_t ctx = a.ctx > 0 ? a.ctx : std::min<int64_t>(max_pos, 4096);
  if (ctx > max_pos)
    std::fprintf(stderr, "warning: --ctx %lld exceeds the model's max_position_embeddings (%lld)\n", (long long)ctx,
                 (long long)max_pos);
  ThreadPool pool(a.threads);
  ChatSessionOptions opt;
  opt.max_new_tokens = a.n_predict;
  opt.sampler = a.sp;
  opt.system_prompt = a.system;
  const std::unique_ptr<SequenceModel> seq = make_sequence(a.device, model, pool, ctx, a.kv_type);
  ChatSession session(*seq, tok, tmpl, opt);

  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) std::fprintf(stderr, "chat with %s on %s (template: %s, context %lld tokens). /help for commands.\n",
                                a.model_dir.c_str(), a.device.c_str(), tmpl.origin().c_str(), (long long)ctx);
  install_sigint();
  std::string msg;
  while (read_message(msg, interactive)) {
    if (msg.empty()) continue;
    if (msg == "/exit" || msg == "/quit") break;
    if (msg == "/reset") {
      session.reset();
      std::fputs("[conversation reset]\n", stderr);
      continue;
    }
    if (msg == "/help") {
      std::fputs(kHelp, stderr);
      continue;
    }
    if (msg[0] == '/' && msg.find(' ') == std::string::npos && msg.find('\n') == std::string::npos) {
      std::fprintf(stderr, "unknown command %s\n%s", msg.c_str(), kHelp);
      continue;
    }
    g_stop_reply = 0;
    g_replying = 1;
    ChatSession::Reply r;
    try {
      r = session.send(
          msg,
          [](const std::string& piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
          },
          [] { return g_stop_reply != 0; });
    } catch (const Error& e) {
      g_replying = 0;
      std::fprintf(stderr, "error: %s\n", e.what());
      continue;
    }
    g_replying = 0;
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (r.dropped_turns > 0)
      std::fprintf(stderr, "[dropped the %d oldest exchange%s to fit the context of %lld tokens]\n", r.dropped_turns,
                   r.dropped_turns == 1 ? "" : "s", (long long)ctx);
    if (r.stop_reason == "interrupted") std::fputs("[reply stopped]\n", stderr);
    if (r.stop_reason == "length") std::fprintf(stderr, "[reply cut at %lld tokens (-n)]\n", (long long)a.n_predict);
    if (r.stop_reason == "context") std::fputs("[context full: reply cut; /reset or raise -c]\n", stderr);
    if (a.verbose)
      std::fprintf(stderr,
                   "[prompt %lld tokens (%lld reused from the cache) in %.1f ms | %lld tokens in %.1f ms (%.1f tok/s) "
                   "| stop: %s]\n",
                   (long long)r.prompt_tokens, (long long)r.reused_tokens, r.prefill_seconds * 1e3,
                   (long long)r.generated_tokens, r.decode_seconds * 1e3,
                   double(r.generated_tokens) / std::max(r.decode_seconds, 1e-9), r.stop_reason.c_str());
  }
}

}  // namespace

void add_chat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chat",
      "Chat with a model using its chat template: one message per line on stdin, replies streamed to "
      "stdout; /reset, /exit; Ctrl-C stops a reply");
  add_model_dir(cmd, args->model_dir);
  cmd->add_option("--chat-template", args->chat_template,
                  "Template to use instead of the model's: chatml, llama2, llama3, mistral, or a .jinja file");
  cmd->add_option("--system", args->system, "System prompt");
  cmd->add_option("-n,--n-predict", args->n_predict, "Tokens per reply at most")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  add_sampler_options(cmd, args->sp);
  cmd->add_option("-c,--ctx", args->ctx,
                  "Context length in tokens; the oldest exchanges are dropped when the conversation outgrows it "
                  "(default: the model's max_position_embeddings, at most 4096)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  add_device(cmd, args->device);
  add_kv_type(cmd, args->kv_type);
  cmd->add_flag("-v,--verbose", args->verbose, "Print token counts and speed after each reply (stderr)");
  add_threads(cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
