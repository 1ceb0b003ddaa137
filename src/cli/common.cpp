#include "cli/common.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/thread_pool.h"
#ifdef AWQ_HAVE_CUDA
#include "ops/cuda/build_arch.h"
#include "ops/cuda/cuda_sequence.h"
#endif

namespace awq::cli {

void add_model_dir(CLI::App* cmd, std::string& dir) {
  cmd->add_option("MODEL_DIR", dir,
                  "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)")
      ->required()
      ->check(CLI::ExistingPath);
}

void add_threads(CLI::App* cmd, int& threads) {
  threads = ThreadPool::default_threads();
  cmd->add_option("-t,--threads", threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 1024));
}

namespace {
int requested_gpu = -1;  // N of --device cuda:N (check_device selects it); -1: plain cuda, GPU 0
}  // namespace

void add_device(CLI::App* cmd, std::string& device, const std::string& help) {
  cmd->add_option("--device", device, help)
      ->capture_default_str()
      ->transform(
          [](std::string v) {
            // cuda:N -> cuda, N kept; anything else as given (check_device names what is wrong).
            if (v.rfind("cuda:", 0) == 0 && v.size() > 5 && v.size() <= 8 &&
                v.find_first_not_of("0123456789", 5) == std::string::npos) {
              requested_gpu = std::stoi(v.substr(5));
              return std::string("cuda");
            }
            return v;
          },
          "");
}

void add_kv_type(CLI::App* cmd, KvType& type) {
  cmd->add_option_function<std::string>(
         "--kv-type", [&type](const std::string& name) { type = parse_kv_type(name); },
         "KV cache element type: f16 (half the memory and attention reads; keys and values rounded "
         "to fp16 when stored) or f32 (exact, twice the memory)")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->default_str(kv_type_name(type));
}

void check_device(const std::string& device, KvType kv_type) {
  if (device == "cpu") return;
  if (device != "cuda") throw Error("--device " + device + ": unknown device (cpu, cuda or cuda:N for GPU N)");
  if (kv_type != KvType::F16)
    throw Error("--kv-type f32: the CUDA engine's KV cache is fp16 only; use --kv-type f16 with "
                "--device cuda, or --device cpu");
#ifndef AWQ_HAVE_CUDA
  throw Error("--device cuda: this build has only the cpu backend (rebuild with -DAWQ_CUDA=ON "
              "on a machine with the CUDA toolkit)");
#else
  try {
    cuda::cuda_select_device(std::max(requested_gpu, 0));
  } catch (const Error& e) {
    throw Error("--device " + (requested_gpu < 0 ? std::string("cuda") : "cuda:" + std::to_string(requested_gpu)) +
                ": " + e.what());
  }
#endif
}

#ifdef AWQ_HAVE_CUDA
void report_cuda_load(const cuda::CudaLlama& llm) {
  static bool advised = false;
  if (!advised) {
    advised = true;
    const std::string advice = cuda::cuda_build_advice_here();
    if (!advice.empty()) std::fprintf(stderr, "cuda: warning: %s\n", advice.c_str());
  }
  std::istringstream lines(llm.tuning_log());
  for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "cuda: %s (AWQ_W4A16_TUNE=0 skips)\n", line.c_str());
}
#endif

std::unique_ptr<SequenceModel> make_sequence(const std::string& device, LlamaModel& model,
                                             ThreadPool& pool, int64_t ctx, KvType kv_type) {
  check_device(device, kv_type);
  if (device == "cpu") return std::make_unique<CpuSequence>(model, pool, ctx, kv_type);
#ifdef AWQ_HAVE_CUDA
  auto seq = std::make_unique<cuda::CudaSequence>(model, ctx);
  report_cuda_load(seq->engine());
  return seq;
#else
  return nullptr;  // not reached: check_device threw
#endif
}

std::unique_ptr<BatchEngine> make_batch_engine(const std::string& device, LlamaModel& model,
                                               ThreadPool& pool, int slots, int64_t ctx, KvType kv_type) {
  check_device(device, kv_type);
  if (device == "cpu") return std::make_unique<CpuBatchEngine>(model, pool, slots, ctx, kv_type);
#ifdef AWQ_HAVE_CUDA
  auto engine = std::make_unique<cuda::CudaBatchEngine>(model, slots, ctx);
  report_cuda_load(engine->engine());
  return engine;
#else
  return nullptr;  // not reached: check_device threw
#endif
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void add_sampler_options(CLI::App* cmd, SamplerParams& sp) {
  cmd->add_option("--temp", sp.temperature, "Temperature; 0 = greedy (argmax)")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", sp.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", sp.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", sp.min_p, "Drop tokens below min-p x p(top token) (0 = off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repeat-penalty", sp.repeat_penalty, "Penalty for recent tokens (1 = off)")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--presence-penalty", sp.presence_penalty,
                  "Subtracted from the logit of every token the reply already has (0 = off; OpenAI's)")
      ->capture_default_str()->check(CLI::Range(-2.0, 2.0));
  cmd->add_option("--frequency-penalty", sp.frequency_penalty,
                  "Subtracted once per earlier use of a token in the reply (0 = off; OpenAI's)")
      ->capture_default_str()->check(CLI::Range(-2.0, 2.0));
  cmd->add_option("--repeat-last-n", sp.repeat_last_n, "Window of the repetition penalty (-1 = all)")->capture_default_str();
  cmd->add_option("--seed", sp.seed, "Sampling seed")->capture_default_str();
}

}  // namespace awq::cli
