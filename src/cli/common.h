// Helpers shared by the subcommands: the MODEL_DIR argument, thread count, reading files.
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "runtime/batch_engine.h"
#include "runtime/sampler.h"
#include "runtime/sequence_model.h"

#ifdef AWQ_HAVE_CUDA
namespace awq::cuda {
class CudaLlama;
}
#endif

namespace awq::cli {

// Adds the positional MODEL_DIR (must exist).
void add_model_dir(CLI::App* cmd, std::string& dir);
// Adds -t/--threads (default: all hardware threads).
void add_threads(CLI::App* cmd, int& threads);
// Adds --device cpu|cuda|cuda:N (GPU N; stored as "cuda", check_device selects the GPU).
void add_device(CLI::App* cmd, std::string& device,
                const std::string& help = "cpu, cuda, or cuda:N for GPU N (builds with -DAWQ_CUDA=ON, an NVIDIA GPU)");
// Adds --kv-type f16|f32 (default f16): the element type of the KV cache.
void add_kv_type(CLI::App* cmd, KvType& type);
// Adds the sampling options (--temp, --top-k, --top-p, --min-p, the penalties, --seed), with
// sp's values as the defaults.
void add_sampler_options(CLI::App* cmd, SamplerParams& sp);
// Throws awq::Error unless `device` names a backend this build has that takes kv_type (the
// checks of make_sequence / make_batch_engine, for commands that load other things first); for
// cuda, makes the GPU of --device cuda:N (default 0) the process's device, or says why it cannot.
void check_device(const std::string& device, KvType kv_type);
// The model on `device` with a context of ctx positions: "cpu" runs on pool with a KV cache of
// kv_type; "cuda" uploads the weights to the GPU (builds with -DAWQ_CUDA=ON; others throw
// awq::Error saying so), whose cache is always fp16 (kv_type f32 is refused there).
std::unique_ptr<SequenceModel> make_sequence(const std::string& device, LlamaModel& model,
                                             ThreadPool& pool, int64_t ctx, KvType kv_type);
// The server's engine on `device`: `slots` sequences of ctx positions each, as make_sequence.
std::unique_ptr<BatchEngine> make_batch_engine(const std::string& device, LlamaModel& model,
                                               ThreadPool& pool, int slots, int64_t ctx, KvType kv_type);
#ifdef AWQ_HAVE_CUDA
// On stderr after a CUDA engine's load (make_sequence and make_batch_engine call it; commands that
// build the engine themselves too): once a process, a warning where this build's GPU code leaves
// the GPU's fast kernels off (ops/cuda/build_arch.h); then the W4A16 tuning it did, a line a shape.
void report_cuda_load(const cuda::CudaLlama& llm);
#endif
// Whole file as bytes; awq::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace awq::cli
