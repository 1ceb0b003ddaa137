// awq export-gguf MODEL_DIR -o FILE [--type f16|q4_0]: the model as a GGUF file for
// llama.cpp / ollama (io/gguf_export.h says which tensor gets which type, and why).
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "io/gguf_export.h"

namespace awq::cli {

namespace {

struct ExportArgs {
  GgufExportOptions o;
  int threads = 1;
};

void run(ExportArgs& a) {
  install_interrupt_handler();
  ThreadPool pool(a.threads);
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("export-gguf", 100);
  const GgufExportReport r = export_gguf(pool, a.o, [&](uint64_t done, uint64_t total) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f / %.2f GB", double(done) / 1e9, double(total) / 1e9);
    bar.update(int64_t(100.0 * double(done) / double(total)), buf);
  });
  bar.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s: %s%s, architecture %s, %d tensors, %.2f GB of tensor data, %.1f s\n",
               a.o.out_path.c_str(), a.o.type.c_str(), r.from_awq ? " (from AWQ weights, dequantized)" : "",
               r.architecture.c_str(), r.tensors, double(r.bytes) / 1e9, s);
}

}  // namespace

void add_export_gguf(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export-gguf", "Write a Llama/Mistral model (FP16/BF16 or AWQ) as a GGUF file for llama.cpp / ollama");
  add_model_dir(cmd, args->o.model_dir);
  cmd->add_option("-o,--out", args->o.out_path, "Output .gguf file (written atomically; must not exist unless --force)")->required();
  cmd->add_option("--type", args->o.type, "f16, or q4_0 (linears Q4_0, lm_head Q8_0, norms F32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "q4_0"}));
  cmd->add_flag("--force", args->o.force, "Replace the output file if it exists");
  add_threads(cmd, args->threads);
  cmd->footer(
      "AWQ input: the AWQ scales and clipping are already folded into the checkpoint's weights\n"
      "and norms, so each linear is dequantized (W = (q - z) * s) and written as F16 or\n"
      "re-quantized to Q4_0. Q/K rows are permuted to ggml's interleaved RoPE order, as\n"
      "llama.cpp's convert_hf_to_gguf.py does. Types: --type f16: all F16 (norms F32);\n"
      "--type q4_0: linears Q4_0, output Q8_0, token_embd Q4_0 (Q8_0 when tied to the output).\n"
      "Supported: model_type llama / mistral with a SentencePiece-style BPE tokenizer.json\n"
      "(Llama-2, Mistral, TinyLlama); others are refused with the reason.");
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
