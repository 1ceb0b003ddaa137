// The tensors of the AutoAWQ GEMM checkpoint `awq quantize` writes, in file order, known
// before any layer is searched (so model.safetensors can be streamed: header first, then
// each tensor as it is produced, io/safetensors_stream.h):
//   model.embed_tokens.weight                                   F16 [vocab, d]
//   per layer l, prefix model.layers.l.:
//     input_layernorm.weight, post_attention_layernorm.weight   F16 [d]
//     self_attn.{q,k,v,o}_proj.{qweight, qzeros, scales}        (quantized_linear_specs)
//     self_attn.{q,k,v,o}_proj.bias, self_attn.{q,k}_norm.weight  F16, where the source has them
//     mlp.{gate,up,down}_proj.{qweight, qzeros, scales}
//     mlp.{gate,up,down}_proj.bias                              F16, where the source has them
//   model.norm.weight                                           F16 [d]
//   lm_head.weight                                              F16 [vocab, d], untied models only
// quantize_model produces them in this order; the stream writer checks each one against it.
#pragma once
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors_writer.h"
#include "model/llama_weights.h"
#include "quant/autoawq_pack.h"

namespace awq {

// PREFIX.qweight I32 [cols, rows / 8], PREFIX.qzeros I32 [cols / group, rows / 8],
// PREFIX.scales F16 [cols / group, rows] of a linear W: [rows = out, cols = in].
std::vector<TensorSpec> quantized_linear_specs(const std::string& prefix, int64_t rows, int64_t cols,
                                               const QuantParams& qp);

// The whole file. w: the source's weights (which optional biases / q_norm / k_norm it has,
// and their lengths; the AWQ fold changes their values, never their sizes).
std::vector<TensorSpec> quantized_checkpoint_specs(const ModelConfig& c, const LlamaWeights& w,
                                                   const QuantParams& qp);

}  // namespace awq
