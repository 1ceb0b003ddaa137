// awq random-model --shape tinyllama-1.1b|llama2-7b -o DIR: a random-weight FP16/BF16
// checkpoint of a real model's shape, for speed measurements without downloads.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "io/random_checkpoint.h"

namespace awq::cli {

namespace {

// Where the shared tiny model lives relative to a checkout (the documented default).
constexpr const char* kDefaultTokenizerDir = "../shared/models/tiny-llama-gqa";

struct RandomModelArgs {
  std::string shape, out_dir, tokenizer_dir, dtype = "f16";
  uint64_t seed = 0;
  bool force = false;
  int threads = 1;
};

void run(RandomModelArgs& a) {
  if (a.tokenizer_dir.empty()) {
    if (!std::filesystem::is_regular_file(std::string(kDefaultTokenizerDir) + "/tokenizer.json"))
      throw Error(std::string("no tokenizer: the default --tokenizer ") + kDefaultTokenizerDir +
                  " does not exist here; pass --tokenizer DIR, a folder with tokenizer.json of a 32000-token "
                  "Llama-2/Mistral vocabulary");
    a.tokenizer_dir = kDefaultTokenizerDir;
  }
  RandomModelOptions opt;
  opt.dtype = a.dtype == "bf16" ? DType::BF16 : DType::F16;
  opt.config = random_model_config(a.shape, opt.dtype);
  opt.out_dir = a.out_dir;
  opt.tokenizer_dir = a.tokenizer_dir;
  opt.seed = a.seed;
  opt.force = a.force;
  install_interrupt_handler();
  ThreadPool pool(a.threads);
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("random-model", 100);
  const RandomModelReport r = write_random_model(pool, opt, [&](uint64_t done, uint64_t total) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f / %.2f GB", double(done) / 1e9, double(total) / 1e9);
    bar.update(int64_t(100.0 * double(done) / double(total)), buf);
  });
  bar.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s: %s shape, %.3f B parameters, %s, %.2f GB in %d shard(s), %.1f s (seed %llu)\n",
               a.out_dir.c_str(), a.shape.c_str(), double(r.parameters) / 1e9, a.dtype.c_str(), double(r.bytes) / 1e9,
               r.shards, s, static_cast<unsigned long long>(a.seed));
}

}  // namespace

void add_random_model(CLI::App& app) {
  auto args = std::make_shared<RandomModelArgs>();
  CLI::App* cmd = app.add_subcommand("random-model", "Write a random-weight FP16/BF16 checkpoint of a real model's shape (for benchmarks)");
  cmd->add_option("--shape", args->shape, "tinyllama-1.1b (TinyLlama-1.1B-Chat-v1.0) or llama2-7b (Llama-2-7b-hf)")
      ->required()
      ->check(CLI::IsMember(random_model_shapes()));
  cmd->add_option("-o,--out", args->out_dir, "Output folder (written atomically; must not exist unless --force)")->required();
  cmd->add_option("--seed", args->seed, "Seed of the weights (same seed, same bytes)")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "Weight dtype")->capture_default_str()->check(CLI::IsMember({"f16", "bf16"}));
  cmd->add_option("--tokenizer", args->tokenizer_dir,
                  std::string("Folder whose tokenizer files are copied (a 32000-token Llama-2/Mistral vocabulary); default ") +
                      kDefaultTokenizerDir + " when it exists")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--force", args->force, "Replace the output folder if it exists");
  add_threads(cmd, args->threads);
  cmd->footer(
      "Weights ~ N(0, 0.02^2) (linears, embeddings, untied lm_head), RMSNorm weights = 1: the\n"
      "model produces finite activations but no meaningful text. config.json holds the real\n"
      "model's hyper-parameters. Sizes: tinyllama-1.1b 2.2 GB, llama2-7b 13.5 GB (fp16), written\n"
      "streamed in shards of at most 2 GiB. An AWQ variant: awq quantize DIR --method rtn -o DIR-w4");
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
