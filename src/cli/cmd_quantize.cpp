// awq quantize MODEL_DIR -o OUT_DIR: AWQ (or RTN) INT4/INT3 group-wise quantization into the
// AutoAWQ GEMM checkpoint format.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "quant/quantize_model.h"

namespace awq::cli {

namespace {

struct QuantizeArgs {
  QuantizeOptions q;
  int threads = 1;
  bool no_clip = false, no_zero_point = false, gqa_o_scale = false;
  bool log_layers = false;
};

void print_report(const QuantizeArgs& a, const QuantizeReport& r) {
  const bool awq = a.q.method == "awq";
  std::fprintf(stderr, "\n%-5s %-31s %-12s %-12s %s\n", "layer", awq ? "alpha (qkv o gate_up down)" : "", "err RTN", "err AWQ", "time");
  for (size_t l = 0; l < r.layers.size(); ++l) {
    const LayerReport& lr = r.layers[l];
    std::string ratios;
    for (const ScaleChoice& s : lr.scales) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s=%.2f ", s.group.c_str(), s.ratio);
      ratios += buf;
    }
    if (awq)
      std::fprintf(stderr, "%-5zu %-31s %-12.4e %-12.4e %.1f s\n", l, ratios.c_str(), lr.out_err_rtn, lr.out_err_awq, lr.seconds);
  }
  std::fprintf(stderr,
               "\nquantized %s -> %s: %s W%d g%d, %zu layers in %.1f s, peak RSS %.0f MiB, output %.1f MiB%s\n",
               a.q.model_dir.c_str(), a.q.out_dir.c_str(), a.q.method.c_str(), a.q.search.qp.bits,
               a.q.search.qp.group, r.layers.size(), r.seconds, r.peak_rss_mib, double(r.output_bytes) / 1048576.0,
               awq ? (", " + std::to_string(r.calib_tokens) + " calibration tokens").c_str() : "");
  std::fprintf(stderr, "memory: largest RSS after a layer %.0f MiB heap (RssAnon) + %.0f MiB mapped model file (RssFile)\n",
               r.max_rss_anon_mib, r.max_rss_file_mib);
  if (awq)
    std::fprintf(stderr, "err = MSE of each layer's output vs FP16 on the search sequences, with RTN weights and with AWQ weights\n");
  if (!r.gpu_name.empty())
    std::fprintf(stderr, "GPU search on %s: peak GPU memory in use %.0f MiB (cudaMemGetInfo), search buffers %.0f MiB\n",
                 r.gpu_name.c_str(), r.peak_gpu_used_mib, r.gpu_allocated_mib);
}

void run(QuantizeArgs& a) {
  if (a.q.search.qp.bits != 3 && a.q.search.qp.bits != 4)
    throw Error("--w-bit " + std::to_string(a.q.search.qp.bits) + ": supported bit widths are 4 and 3");
  a.q.search.qp.zero_point = !a.no_zero_point;
  a.q.search.clip = !a.no_clip;
  a.q.search.gqa_o_scale = a.gqa_o_scale;
  if (a.q.method == "rtn") {
    a.q.search.search_scales = false;
    a.q.search.clip = false;
  } else if (a.q.method == "awq") {
    if (a.q.calib.files.empty()) throw Error("--method awq needs calibration text: --calib FILE (e.g. ../shared/data/calib.txt)");
  } else {
    throw Error("--method " + a.q.method + ": expected awq or rtn");
  }
  // The GPU of --device cuda:N, for the search (RTN and the packing run on the CPU whatever --device says).
  if (a.q.device == "cuda" && a.q.method == "awq") check_device(a.q.device, KvType::F16);
  install_interrupt_handler();
  ThreadPool pool(a.threads);
  ProgressBar bar("quantize", 0);
  bool bar_started = false;
  const QuantizeReport r = quantize_model(pool, a.q, [&](int done, int total, const LayerReport& lr) {
    if (!bar_started) bar = ProgressBar("quantize", total), bar_started = true;
    char buf[96];
    std::snprintf(buf, sizeof buf, "layer %d: %.1f s", done - 1, lr.seconds);
    bar.update(done, buf);
    if (a.log_layers) {
      const RssBreakdown now = current_rss();
      std::fprintf(stderr, "\nlayer %d/%d: %.2f s (search), peak RSS %.0f MiB, now %.0f MiB heap + %.0f MiB mapped file\n",
                   done - 1, total, lr.seconds, peak_rss_mib(), now.anon_mib, now.file_mib);
    }
  });
  bar.finish();
  print_report(a, r);
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face model with AWQ (or RTN) into the AutoAWQ GEMM format");
  QuantizeOptions& q = args->q;
  add_model_dir(cmd, q.model_dir);
  cmd->add_option("-o,--out", q.out_dir, "Output folder (written atomically; must not exist unless --force)")->required();
  cmd->add_option("--method", q.method, "awq: activation-aware scales + clipping; rtn: plain round-to-nearest")->capture_default_str()->check(CLI::IsMember({"awq", "rtn"}));
  cmd->add_option("--w-bit", q.search.qp.bits, "Weight bits: 4 (AutoAWQ GEMM) or 3 (awq.cpp extension)")->capture_default_str();
  cmd->add_option("--group", q.search.qp.group, "Input channels per quantization group")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--no-zero-point", args->no_zero_point, "Symmetric quantization (stored with a constant zero point 2^(bits-1))");
  cmd->add_flag("--no-clip", args->no_clip, "Skip the clipping search");
  cmd->add_flag("--gqa-o-scale", args->gqa_o_scale,
                 "Under GQA, also scale v_proj -> o_proj (one scale per v_proj channel, tied over its KV group's heads; an awq.cpp extension, off by default: llm-awq/AutoAWQ skip it)");
  cmd->add_flag("--duo-scaling", q.search.duo_scaling, "AutoAWQ's duo scaling: s = mean|x|^a / mean|w|^(1-a)");
  cmd->add_option("--calib", q.calib.files, "Calibration text file(s) (UTF-8); required for --method awq")->check(CLI::ExistingFile);
  cmd->add_option("--n-samples", q.calib.n_samples, "Calibration windows")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seqlen", q.calib.seqlen, "Tokens per calibration window (BOS included)")->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  cmd->add_option("--seed", q.calib.seed, "Seed of the window sampling")->capture_default_str();
  cmd->add_option("--search-tokens", q.search.search_tokens, "Calibration tokens on which each candidate scale's loss is measured (0 = all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--clip-tokens", q.search.clip_tokens, "Calibration tokens on which the clipping errors are measured (0 = all; llm-awq/AutoAWQ use 512)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--force", q.force, "Replace the output folder if it exists");
  add_device(cmd, q.device,
             "Where the AWQ search runs: cpu, or cuda / cuda:N for GPU N (a build with -DAWQ_CUDA=ON and an "
             "NVIDIA GPU: the calibration forward passes, scale and clip searches on the GPU in fp16 with f32 "
             "accumulation; the fold, the packing and --method rtn stay on the CPU)");
  cmd->add_flag("--log-layers", args->log_layers, "Print one line per finished layer (time, peak RSS, RSS now as heap + mapped model file), e.g. for logs");
  add_threads(cmd, args->threads);
  cmd->footer(
      "Calibration: the files are joined and encoded once; the token stream is cut into\n"
      "consecutive chunks of seqlen-1 tokens, each window is [BOS] + chunk, and n-samples chunks\n"
      "are drawn at random with --seed. The next layer's inputs are the FP outputs of the\n"
      "current one, as in llm-awq and AutoAWQ.\n"
      "Scaled groups: input_layernorm -> q,k,v; v_proj -> o_proj (only where v_proj and o_proj\n"
      "have the same shape, as in llm-awq/AutoAWQ, or under GQA with --gqa-o-scale: each v_proj\n"
      "output channel feeds the same channel of every q head of its group, so one scale tied over\n"
      "those heads folds exactly into v_proj); post_attention_layernorm -> gate,up; up -> down.\n"
      "Clipping: each (output row, group) of v, o, gate, up, down gets the clip of its max |w|\n"
      "(0-45 %) with the least error of its partial output, computed from the Gram blocks of\n"
      "the inputs over --clip-tokens calibration tokens (llm-awq/AutoAWQ: 512 sampled tokens).\n"
      "--device cuda: the same search on the GPU with fp16 weights and activations (f32\n"
      "accumulation, f32 losses), so near-tied candidates may be chosen differently; see docs/gpu.md.");
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
