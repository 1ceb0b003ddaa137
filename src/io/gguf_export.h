// `awq export-gguf`: a Hugging Face Llama/Mistral folder (FP16/BF16/FP32, or AWQ: the AWQ
// scales and clipping are already folded into its weights and norms, so every linear is
// simply dequantized) written as one GGUF v3 file of llama.cpp's "llama" architecture.
//
// Tensor types:
//   --type f16:  embeddings, linears and output F16; RMSNorm weights F32.
//   --type q4_0: linears Q4_0; output (lm_head) Q8_0 (llama.cpp's own Q4_0 files use Q6_K
//                there: the logits are the most quantization-sensitive matmul); token_embd
//                Q4_0 when lm_head is separate (a row lookup, as llama.cpp does), Q8_0 when
//                tied (it is then the output matrix too); RMSNorm weights F32.
// Q and K rows are permuted from Hugging Face's rotate-half RoPE layout (the two halves of a
// head rotate together) to ggml's interleaved one (rows 2i and 2i+1 rotate together), as
// llama.cpp's convert_hf_to_gguf.py does for llama: see ggml_rope_source_row.
//
// Refused with an error naming the reason: qwen2/qwen3 (biases, q/k norms), attention or
// MLP biases, llama3 RoPE scaling, byte-level BPE tokenizers (io/gguf_vocab.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "core/thread_pool.h"

namespace awq {

struct GgufExportOptions {
  std::string model_dir, out_path;
  std::string type = "f16";  // f16 | q4_0
  bool force = false;        // replace an existing out_path
};

struct GgufExportReport {
  std::string architecture;  // written general.architecture
  int tensors = 0;
  uint64_t bytes = 0;        // tensor data
  bool from_awq = false;
};

GgufExportReport export_gguf(ThreadPool& pool, const GgufExportOptions& opt,
                             const std::function<void(uint64_t done, uint64_t total)>& progress = nullptr);

// Within one head of head_dim rows: row p of the GGUF (interleaved-RoPE) q/k weight is row
// ggml_rope_source_row(p) of the Hugging Face one: p = 2i + j (i < head_dim/2, j in {0, 1})
// comes from j * head_dim/2 + i. hf_row_destination is its inverse.
int64_t ggml_rope_source_row(int64_t p, int64_t head_dim);
int64_t hf_row_destination(int64_t r, int64_t head_dim);

}  // namespace awq
