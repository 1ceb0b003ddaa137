// awq generate MODEL_DIR -p TEXT: continue a prompt; only the generated text goes to stdout.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "runtime/generate.h"

namespace awq::cli {

namespace {

struct GenerateArgs {
  std::string model_dir, prompt, prompt_file, device = "cpu";
  int64_t n_predict = 128;
  int64_t ctx = 0;
  int threads = 1;
  bool ignore_eos = false, no_bos = false;
  KvType kv_type = KvType::F16;
  SamplerParams sp;
};

void run(const GenerateArgs& a) {
  std::string text = a.prompt_file.empty() ? a.prompt : read_file(a.prompt_file);
  if (text.empty()) throw Error("empty prompt: give the text to continue with -p TEXT or -f FILE");
  LlamaModel model(a.model_dir);
  const Tokenizer tok = Tokenizer::load(a.model_dir);
  std::vector<int32_t> ids = tok.encode(text, !a.no_bos);
  const int64_t ctx = a.ctx > 0 ? a.ctx : default_generate_ctx(int64_t(ids.size()), a.n_predict,
                                                              model.config().max_position_embeddings);
  if (ctx > model.config().max_position_embeddings)
    std::fprintf(stderr, "warning: --ctx %lld exceeds the model's max_position_embeddings (%d)\n",
                 (long long)ctx, model.config().max_position_embeddings);
  if (int64_t(ids.size()) > ctx)
    throw Error("the prompt is " + std::to_string(ids.size()) + " tokens but the context holds " +
                std::to_string(ctx) + " (--ctx); shorten the prompt");
  ThreadPool pool(a.threads);
  std::unique_ptr<SequenceModel> seq = make_sequence(a.device, model, pool, ctx, a.kv_type);
  GenerateOptions opt;
  opt.max_new_tokens = a.n_predict;
  opt.stop_at_eos = !a.ignore_eos;
  opt.sampler = a.sp;
  GenerateResult r = generate(*seq, tok, ids, opt, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);  // the text's last line before the timings on stderr (piped stdout is buffered)
  const double gen = double(r.tokens.size());
  std::fprintf(stderr,
               "prompt: %lld tokens in %.1f ms (%.1f tok/s) | generated: %lld tokens in %.1f ms "
               "(%.1f tok/s) | stop: %s | device: %s | kv: %s | threads: %d\n",
               (long long)r.prompt_tokens, r.prefill_seconds * 1e3,
               double(r.prompt_tokens) / std::max(r.prefill_seconds, 1e-9), (long long)gen,
               r.decode_seconds * 1e3, gen / std::max(r.decode_seconds, 1e-9),
               r.stop_reason.c_str(), a.device.c_str(), kv_type_name(a.kv_type), a.threads);
}

}  // namespace

void add_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt (generated text on stdout, timings on stderr)");
  add_model_dir(cmd, args->model_dir);
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "Prompt text");
  cmd->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", args->n_predict, "Tokens to generate at most")->capture_default_str()->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  add_sampler_options(cmd, args->sp);
  cmd->add_option("-c,--ctx", args->ctx, "Context length in tokens (default: the prompt's tokens + --n-predict, at most the model's max_position_embeddings)")->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  add_device(cmd, args->device);
  add_kv_type(cmd, args->kv_type);
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Keep generating after an end-of-sequence token");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the model's special tokens (BOS) to the prompt");
  add_threads(cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
