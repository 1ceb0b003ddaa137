// The GPU memory a CudaLlama will take, part by part, computed from the config and the host
// weights before anything is uploaded; CudaLlama refuses at once, with the figures and what to
// change, a model that does not fit the device's free memory. Without it a model too large for
// the GPU failed after seconds or minutes of uploading, on whichever cudaMalloc ran out first
// ("CUDA error in cudaMalloc(...) at w4a16.cu:45: out of memory"), and an oversized --ctx only
// after every weight was on the device.
// Host code (no CUDA types): testable without a GPU.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/llama_weights.h"
#include "ops/cuda/cuda_llama.h"

namespace awq::cuda {

struct AttentionDims;

struct CudaMemoryPlan {
  int64_t weights = 0;      // embedding, lm_head unless tied, the linears (W4A16 codes + params, or
                            // fp16), biases, norms
  int64_t kv_cache = 0;     // fp16 keys and values: 2 x layers x slots x ctx x kv_dim x 2 bytes
  int64_t activations = 0;  // the step's buffers (CudaStepBuffers): activations and logits for
                            // max(slots, prefill_chunk) rows, attention scratch, the RoPE table
  int64_t workspaces = 0;   // cuBLAS's, the W4A16 split-K / stream-K workspace, the staging of the
                            // largest AWQ linear during its upload, and a reserve (below)
  int64_t per_position = 0;  // what one position of --ctx costs: the KV cache's and the RoPE table's
  int64_t total() const { return weights + kv_cache + activations + workspaces; }
};

// The decode / prefill step's device buffers, in elements, for R = max(slots, prefill_chunk) rows:
// CudaLlama allocates exactly these, and cuda_memory_plan counts their bytes, so a buffer added
// here is both allocated and planned (one list, not two that can drift apart).
struct CudaStepBuffers {
  int64_t rows = 0;          // R
  int64_t x = 0;             // f32 [R, d] residual stream
  int64_t h = 0;             // fp16 [R, d] normed input of the linears
  int64_t qkv = 0;           // fp16 [R, q + 2 kv]
  int64_t att = 0;           // fp16 [R, q] attention out
  int64_t o = 0;             // fp16 [R, d] o_proj / down_proj out
  int64_t gu = 0;            // fp16 [R, 2 ff] gate | up
  int64_t act = 0;           // fp16 [R, ff] SiLU(gate) * up
  int64_t logits = 0;        // f32 [R, vocab]
  int64_t nll = 0;           // f32 [R]
  int64_t ints = 0;          // int32 [5, R]: token, pos, slot, target, argmax
  int64_t attn_scratch = 0;  // f32, the split-K attention's partials (largest over batches 1..slots)
  int64_t rope = 0;          // f32 [ctx, head_dim / 2, 2] (cos, sin)
  int64_t bytes() const;
};
CudaStepBuffers cuda_step_buffers(const ModelConfig& c, const CudaLlamaOptions& opt, int sms);

// fp16 elements of one layer's key cache, and of its value cache: [slots, ctx, kv_dim]. CudaLlama
// allocates these; the plan's kv_cache counts 2 x layers of them.
int64_t cuda_kv_cache_elems(const ModelConfig& c, const CudaLlamaOptions& opt);

// cuBLAS's workspace, fixed so that it allocates nothing while a decode graph is captured.
constexpr int64_t kCublasWorkspaceBytes = int64_t(32) << 20;

// Device memory the process holds besides the plan's buffers: cuBLAS's handle, the kernels'
// code loaded at first use, the decode step's CUDA graphs (a few MiB each).
constexpr int64_t kCudaReserveBytes = int64_t(128) << 20;

// Whether a fused linear of these parts (q | k | v, gate | up, or one matrix) runs as W4A16: every
// part an AutoAWQ matrix with its tensors bound and the same bits and group; otherwise the whole
// linear is dequantized to fp16 for cuBLAS (cuda_llama.cu make_linear).
bool fuses_as_w4a16(const std::vector<const Matrix*>& parts);

// Floats of attention scratch the decode step needs for batches of 1..slots rows (the largest).
int64_t attention_scratch_floats_for(const AttentionDims& d, int slots, int sms, int64_t ctx);

// sms: the device's multiprocessors (attention splits and the W4A16 workspace depend on them).
CudaMemoryPlan cuda_memory_plan(const ModelConfig& c, const LlamaWeights& w, const CudaLlamaOptions& opt,
                                int sms);

// "" where the plan fits in free_bytes; else a one-line refusal: the total and its parts, the
// device's free and total memory, and what to change (a --ctx that fits, --parallel for the
// server's slots, or --device cpu where the weights alone do not fit).
std::string cuda_memory_refusal(const CudaMemoryPlan& p, const CudaLlamaOptions& opt, int64_t free_bytes,
                                int64_t total_bytes, const std::string& gpu);

}  // namespace awq::cuda
