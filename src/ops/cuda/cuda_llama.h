// The Llama-family decoder (llama, mistral, qwen2, qwen3) on one CUDA device, with the same
// semantics as the CPU forward (model/llama_model.cpp, model/decoder_layer.cpp):
// weights uploaded once (AWQ linears as W4A16 through ops/cuda/w4a16.h, dense ones as fp16 run
// by cuBLAS; q/k/v and gate/up fused into one linear each), an fp16 KV cache for `slots`
// sequences of `ctx` positions, prefill of one sequence (in chunks), and a batched decode
// step (one token for each of sequences 0..B-1) that is captured into a CUDA graph on its
// second call and replayed afterwards: token ids and positions are copied into device
// buffers the graph reads, so nothing is re-captured per step and nothing waits for the host
// between layers. The residual stream is f32, linear inputs/outputs fp16, logits f32.
// Header free of CUDA types, so CPU-only translation units (the CLI) can include it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/llama_weights.h"

namespace awq::cuda {

struct CudaLlamaOptions {
  int slots = 1;            // sequences the KV cache holds (the largest decode batch)
  int64_t ctx = 2048;       // positions per sequence
  int64_t prefill_chunk = 512;  // prompt tokens run per forward pass at most
  bool use_graphs = true;   // capture the decode step into a CUDA graph
  // Programmatic dependent launch of the step's kernels (ops/cuda/pdl.h; sm_90+ only, ignored
  // elsewhere): -1 = the environment's AWQ_CUDA_PDL (default 1), 0 = off, 1 = on, 2 = on with
  // an L2 prefetch of the W4A16 weights. Results are bit-identical in every mode.
  int pdl = -1;
};

class CudaLlama {
 public:
  // Uploads w (host weights bound by load_llama_weights or built in memory) to the current
  // device. Throws awq::Error when no usable GPU is present, when the model with this context
  // does not fit the device's free memory (before anything is allocated, with the figures and a
  // context that fits: cuda_memory_plan.h), when memory runs out anyway, or when the model has a
  // shape the kernels do not support (head_dim other than 64/128/256).
  CudaLlama(const ModelConfig& c, const LlamaWeights& w, const CudaLlamaOptions& opt);
  ~CudaLlama();
  CudaLlama(const CudaLlama&) = delete;
  CudaLlama& operator=(const CudaLlama&) = delete;

  const ModelConfig& config() const;
  const CudaLlamaOptions& options() const;
  int64_t n_past(int slot) const;
  void clear(int slot);
  void clear_all();
  // Keeps positions [0, n) of the slot's sequence (n <= n_past): later tokens overwrite the rest.
  void truncate(int slot, int64_t n);
  // Positions [0, n) of slot src's keys and values become slot dst's whole sequence (src != dst,
  // n <= n_past(src)): device-to-device copies on the engine's stream, ordered with its steps.
  void copy_prefix(int src, int dst, int64_t n);

  // Runs tokens: [n] of sequence `slot` at positions n_past(slot)..; logits: [n, vocab] when
  // all_logits, else [1, vocab] (the last token). Throws awq::Error on an id outside the
  // vocabulary or a context overflow.
  void prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
               std::vector<float>& logits);
  // As prefill, but returns sum_i -log p(tokens[i + 1] | tokens[..i]) over i < n - 1, the
  // log-softmax computed on the device (perplexity without copying logits back).
  double prefill_nll(int slot, const int32_t* tokens, int64_t n);
  // Several sequences' tokens in shared forward passes (the server's admitted prompts): piece i,
  // tokens[i][0 .. n[i]), goes to slot slots[i] at positions n_past(slots[i]).. (slots distinct);
  // the pieces are packed in order into passes of at most max(slots, prefill_chunk) rows, a
  // longer piece split between passes. logits: [count, vocab], each piece's last token. One
  // pass reads the weights once for all of its pieces, where prefill() would read them per piece.
  // Everything is checked (tokens, room, distinct slots) before anything runs.
  void prefill_many(const int* slots, const int32_t* const* tokens, const int64_t* n, int count,
                    std::vector<float>& logits);

  // One decode step of sequences 0..B-1: tokens: [B] (token b goes to slot b at position
  // n_past(b)); logits: [B, vocab]. B <= slots.
  void decode(const int32_t* tokens, int B, std::vector<float>& logits);
  // The same for any B distinct slots: token b goes to slot slots[b] (the server's active
  // requests). The slot of each row is read from a device buffer, so the step's graph for B
  // rows serves every choice of slots.
  void decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits);
  // The same step with the argmax taken on the device; next: [B].
  void decode_greedy(const int32_t* tokens, int B, int32_t* next);
  // The same for B distinct slots (as decode with slots).
  void decode_greedy(const int* slots, const int32_t* tokens, int B, int32_t* next);

  // Device bytes of weights one decode step reads (every decoder linear, the final norm and
  // lm_head; the embedding rows are negligible), for roofline figures.
  int64_t weight_bytes_per_step() const;
  // True once a decode step ran from a captured graph.
  bool graph_used() const;
  // Changes the programmatic-dependent-launch mode (as CudaLlamaOptions::pdl; -1 = the
  // environment's) for later steps; captured graphs are dropped (re-captured on later steps).
  void set_pdl(int mode);
  // The mode the kernels actually launch with: 0 where the device or build lacks PDL (sm_80).
  int pdl_mode() const;
  std::string device_name() const;
  // What the W4A16 tuning at load did (w4a16.h w4a16_tune_linear): a line per layer shape whose
  // kernels were timed or read from the cache file, "" where none were (AWQ_W4A16_TUNE=0, a dense
  // model, or the shapes were tuned earlier in this process).
  const std::string& tuning_log() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Device memory bandwidth in bytes/s, counting bytes read plus bytes written, from the median
// of `reps` device-to-device copies of `bytes` bytes (after a warm-up copy).
double measure_copy_bandwidth(int64_t bytes, int reps);

// Whether a CUDA device is usable (ops/cuda/cuda_check.h cuda_available, from a header free of
// CUDA types); when not, *why says what is missing.
bool cuda_device_available(std::string* why);

// Makes GPU `index` (0-based, as nvidia-smi and CUDA_VISIBLE_DEVICES count) the process's CUDA
// device (`--device cuda:N`), before anything else runs on CUDA: the kernels' one-time
// preparations and the engine use the current device. awq::Error naming the GPUs there are where
// index is out of range, or saying why the runtime finds none. (Defined in cuda_check.cpp.)
void cuda_select_device(int index);

}  // namespace awq::cuda
