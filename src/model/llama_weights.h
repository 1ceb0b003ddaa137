// The weights of a Llama-family decoder, bound to a checkpoint: matrices point into the
// mmapped safetensors (or into owned aligned copies when the file leaves them unaligned);
// norms and biases are widened to f32. AWQ checkpoints (quantization_config.quant_method
// "awq", version "gemm", bits 4 or 3): the decoder linears bind PREFIX.qweight / .qzeros /
// .scales as MatrixKind::AwqGemm matrices, repacked at load into an output-row-major copy
// (AwqRows, held in `owned`); modules in modules_to_not_convert, embeddings, norms and
// lm_head stay floating point.
#pragma once
#include <memory>
#include <vector>

#include "io/checkpoint.h"
#include "io/model_config.h"
#include "ops/cpu/matrix.h"

namespace awq {

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;  // [d_model]
  std::vector<float> q_norm, k_norm;       // [head_dim] (qwen3), else empty
  Matrix wq, wk, wv, wo;                   // [q_dim, d], [kv_dim, d], [kv_dim, d], [d, q_dim]
  Matrix w_gate, w_up, w_down;             // [d_ff, d], [d_ff, d], [d, d_ff]
  std::vector<float> bq, bk, bv, bo;       // biases where the architecture has them, else empty
  std::vector<float> b_gate, b_up, b_down;
};

struct LlamaWeights {
  Matrix embed;    // [vocab, d_model]
  Matrix lm_head;  // [vocab, d_model]; the same data as embed when tied
  std::vector<float> final_norm;  // [d_model]
  std::vector<LayerWeights> layers;
  std::vector<std::shared_ptr<void>> owned;  // aligned copies of unaligned tensors, AWQ row repacks
};

// Binds every tensor the config calls for, checking names, dtypes and shapes. Throws
// awq::Error naming the checkpoint folder and the tensor on a missing/misshapen tensor, and
// naming quantization_config's field for an unsupported AWQ version / bits / group size.
LlamaWeights load_llama_weights(const Checkpoint& ckpt, const ModelConfig& c);

}  // namespace awq
