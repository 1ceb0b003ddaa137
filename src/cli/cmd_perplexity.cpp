// awq perplexity MODEL_DIR -f FILE: perplexity with the reference windows (runtime/perplexity.h).
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/progress.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace awq::cli {

namespace {

struct PerplexityArgs {
  std::string model_dir, file, device = "cpu";
  int64_t ctx = 512;
  int64_t max_windows = 0;
  int threads = 1;
  bool json = false;
  KvType kv_type = KvType::F16;
};

void run(const PerplexityArgs& a) {
  const std::string text = read_file(a.file);
  if (text.empty()) throw Error(a.file + ": the file is empty");
  LlamaModel model(a.model_dir);
  const Tokenizer tok = Tokenizer::load(a.model_dir);
  if (a.ctx > model.config().max_position_embeddings)
    throw Error("--ctx " + std::to_string(a.ctx) + " exceeds the model's max_position_embeddings (" +
                std::to_string(model.config().max_position_embeddings) + ")");
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, /*add_special=*/false);
  PerplexityOptions opt;
  opt.ctx = a.ctx;
  opt.bos_id = tok.add_bos() ? tok.bos_id() : -1;
  opt.max_windows = a.max_windows;
  ThreadPool pool(a.threads);
  std::unique_ptr<SequenceModel> seq = make_sequence(a.device, model, pool, a.ctx, a.kv_type);
  const int64_t chunk = opt.bos_id >= 0 ? a.ctx - 1 : a.ctx;
  int64_t total = (int64_t(ids.size()) + chunk - 1) / chunk;
  if (a.max_windows > 0) total = std::min(total, a.max_windows);
  std::fprintf(stderr, "%s: %zu tokens, %lld windows of %lld (%s), device %s, KV cache %s, %d threads\n", a.file.c_str(),
               ids.size(), (long long)total, (long long)a.ctx,
               opt.bos_id >= 0 ? "BOS + chunk" : "no BOS", a.device.c_str(), kv_type_name(a.kv_type), a.threads);
  ProgressBar bar("perplexity", total);
  PerplexityResult r = perplexity(*seq, ids, opt, [&](int64_t done, int64_t, const PerplexityResult& so_far) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "ppl %.4f", so_far.ppl());
    bar.update(done, buf);
  });
  bar.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.json) {
    std::printf("{\"ppl\": %.6f, \"nll_mean\": %.8f, \"tokens\": %lld, \"windows\": %lld, \"ctx\": %lld, \"seconds\": %.2f}\n",
                r.ppl(), r.nll_mean(), (long long)r.tokens, (long long)r.windows, (long long)a.ctx, secs);
  } else {
    std::printf("perplexity %.4f  (nll %.6f over %lld tokens, %lld windows of %lld, %.1f s, %.0f tok/s)\n",
                r.ppl(), r.nll_mean(), (long long)r.tokens, (long long)r.windows, (long long)a.ctx,
                secs, double(r.tokens) / std::max(secs, 1e-9));
  }
}

}  // namespace

void add_perplexity(CLI::App& app) {
  auto args = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a text file (windows as in reference.json)");
  cmd->footer(
      "Windows: the whole file is encoded without special tokens and cut into consecutive chunks\n"
      "of ctx-1 tokens; each window is [BOS] + chunk (no overlap, no carried context) and every\n"
      "chunk token is scored; ppl = exp(mean NLL). Models without BOS use chunks of ctx tokens\n"
      "and score all but the first token of each. W4 models on the CPU: AWQ_W4_ACT=int8x2\n"
      "(default), auto (windows are prefill, so int8), int8 or f32 (exact) picks the\n"
      "activations of the W4 kernels.");
  add_model_dir(cmd, args->model_dir);
  cmd->add_option("-f,--file", args->file, "Text file (UTF-8)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-c,--ctx", args->ctx, "Window length in tokens, BOS included")->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 24));
  cmd->add_option("--max-windows", args->max_windows, "Score only the first N windows (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  add_device(cmd, args->device);
  add_kv_type(cmd, args->kv_type);
  add_threads(cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
