// awq bench MODEL_DIR: prefill / decode tokens/s, weight and KV-cache bytes per token, achieved
// GB/s and % of the memory bandwidth measured in the same run (runtime/bench.h).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/w4.h"
#include "runtime/bandwidth.h"
#include "runtime/bench.h"
#ifdef AWQ_HAVE_CUDA
#include "ops/cuda/cuda_sequence.h"
#endif

namespace awq::cli {

namespace {

struct BenchArgs {
  std::string model_dir, device = "cpu";
  BenchOptions opt;
  int threads = 1;
  bool json = false;
};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o;
}

// What one run measured besides the timings: where, and the bandwidth line's words.
struct BenchSetting {
  std::string engine;     // "14 threads, kernels: ..." or "cuda: NVIDIA H100 ..."
  std::string bandwidth;  // how the bandwidth was measured
};

#ifdef AWQ_HAVE_CUDA
// On the GPU: the bytes per token are those of the device layout (CudaLlama's), the bandwidth
// a 1 GiB device-to-device copy (bytes read + written, median of 10), the cache fp16.
BenchResult run_bench_cuda(LlamaModel& model, const BenchOptions& opt, BenchSetting& s) {
  check_bench_options(model.config(), opt);
  cuda::CudaSequence seq(model, opt.prompt + opt.gen);
  report_cuda_load(seq.engine());
  BenchResult r;
  time_prefill_decode(seq, opt, r);
  r.weight_bytes_per_token = double(seq.engine().weight_bytes_per_step());
  r.kv_bytes_per_token = kv_bytes_per_token(model.config(), KvType::F16, opt.prompt, opt.gen);
  r.bandwidth_gbs = cuda::measure_copy_bandwidth(int64_t(1) << 30, 10) / 1e9;
  s.engine = "cuda: " + seq.engine().device_name();
  s.bandwidth = "device memory bandwidth (measured: 1 GiB device-to-device copy, bytes read + written, median of 10)";
  return r;
}
#endif

void run(const BenchArgs& a) {
  check_device(a.device, a.opt.kv_type);
  LlamaModel model(a.model_dir);
  ThreadPool pool(a.threads);
  const bool quantized = model.config().quant.present();
  BenchSetting set;
  set.engine = std::to_string(a.threads) + " threads, kernels: gemm " + gemm_isa_name(gemm_best_isa()) + ", w4 " +
               w4_isa_name(w4_best_isa()) + (a.device == "cpu" && model.lm_head_q8(pool) ? ", lm_head q8" : "");
  set.bandwidth = "memory read bandwidth (measured: " + std::to_string(a.threads) + " threads stream a " +
                  std::to_string(BandwidthOptions{}.bytes >> 20) + " MiB buffer, best of " +
                  std::to_string(BandwidthOptions{}.passes) + ")";
  if (!a.json)
    std::fprintf(stderr, "%s: %s on %s; KV cache %s; prompt %lld, gen %lld, %d repeats\n", a.model_dir.c_str(),
                 quantized ? "AWQ" : "floating point", a.device == "cpu" ? set.engine.c_str() : "cuda",
                 kv_type_name(a.opt.kv_type), (long long)a.opt.prompt, (long long)a.opt.gen, a.opt.repeat);
  BenchResult r;
#ifdef AWQ_HAVE_CUDA
  if (a.device == "cuda") r = run_bench_cuda(model, a.opt, set);
#endif
  if (a.device == "cpu") r = run_bench(model, pool, a.opt);
  const double dec_med = median_of(r.decode_tps);
  const double bytes_per_token = r.weight_bytes_per_token + r.kv_bytes_per_token;
  const double gbs = bytes_per_token * dec_med / 1e9;
  const double pct = 100.0 * gbs / r.bandwidth_gbs;
  if (a.json) {
    std::printf("{\"model\": \"%s\", \"engine\": \"%s\", \"threads\": %d, \"prompt\": %lld, \"gen\": %lld, \"kv_type\": \"%s\", "
                "\"prefill_tps\": {\"min\": %.3f, \"median\": %.3f}, "
                "\"decode_tps\": {\"min\": %.3f, \"median\": %.3f}, "
                "\"weight_bytes_per_token\": %.0f, \"kv_bytes_per_token\": %.0f, \"decode_gbs\": %.3f, "
                "\"bandwidth_gbs\": %.3f, "
                "\"roofline_pct\": %.2f}\n",
                json_escape(a.model_dir).c_str(), json_escape(set.engine).c_str(), a.threads, (long long)a.opt.prompt,
                (long long)a.opt.gen, kv_type_name(a.opt.kv_type), min_of(r.prefill_tps), median_of(r.prefill_tps),
                min_of(r.decode_tps), dec_med, r.weight_bytes_per_token, r.kv_bytes_per_token, gbs,
                r.bandwidth_gbs, pct);
    return;
  }
  std::printf("prefill %lld tokens: min %.1f  median %.1f tok/s\n", (long long)a.opt.prompt,
              min_of(r.prefill_tps), median_of(r.prefill_tps));
  std::printf("decode  %lld tokens: min %.2f  median %.2f tok/s\n", (long long)a.opt.gen,
              min_of(r.decode_tps), dec_med);
  std::printf("read per decode token: weights %.1f MB + KV cache %.1f MB (%s, mean over the steps); "
              "at the median decode speed %.2f GB/s\n",
              r.weight_bytes_per_token / 1e6, r.kv_bytes_per_token / 1e6, kv_type_name(a.opt.kv_type), gbs);
  std::printf("%s: %.2f GB/s\n", set.bandwidth.c_str(), r.bandwidth_gbs);
  std::printf("decode at %.1f %% of the bandwidth roofline\n", pct);
}

}  // namespace

void add_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Prefill / decode tokens/s and % of the memory-bandwidth roofline");
  cmd->footer(
      "Runs a warm-up, then --repeat times: prefill --prompt tokens (one forward call, fixed\n"
      "pseudo-random ids) and decode --gen tokens greedily one at a time. Reports min and median\n"
      "tokens/s, the bytes one decode step reads (weights, plus the keys and values its attention\n"
      "reads, at the --kv-type element size, averaged over the decode positions), the GB/s that\n"
      "makes at the median decode speed, and that as a % of the read bandwidth measured by the\n"
      "bench itself (the same threads streaming a 1 GiB buffer, best of 5 passes; with --device cuda\n"
      "the GPU's bytes (its weight layout, fp16 KV cache) against a 1 GiB device-to-device copy).\n"
      "AWQ_CPU_ISA=portable|avx2|avxvnni caps the kernels; AWQ_MATMUL=reference runs the reference matmul;\n"
      "AWQ_W4_ACT picks the W4 kernels' activations: int8x2 (default, close to exact), auto\n"
      "(int8x2 for decode, int8 for prefill), int8 (fastest, lossy) or f32 (exact).");
  add_model_dir(cmd, args->model_dir);
  cmd->add_option("--prompt", args->opt.prompt, "Prefill length in tokens")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--gen", args->opt.gen, "Decode steps")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("--repeat", args->opt.repeat, "Repeats (min and median reported)")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", args->json, "Print one JSON object (model, engine, threads, prompt, gen, kv_type, prefill_tps, decode_tps, weight_bytes_per_token, kv_bytes_per_token, decode_gbs, bandwidth_gbs, roofline_pct)");
  add_kv_type(cmd, args->opt.kv_type);
  add_device(cmd, args->device);
  add_threads(cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
