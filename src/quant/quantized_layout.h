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

// The seven projections of a decoder layer, in file order.
enum class LayerLinear { Q, K, V, O, Gate, Up, Down };
// Its name under "model.layers.N.", e.g. "self_attn.q_proj".
inline const char* layer_linear_name(LayerLinear w) {
  static constexpr const char* kNames[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                           "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  return kNames[int(w)];
}

// Visits decoder layer l's tensors in file order: vec(name, values) for each norm and bias the
// layer has (empty vectors are absent and skipped), lin(prefix, which, rows, cols) for each
// projection. The one statement of the per-layer order, for the layout and for the writer.
template <class Vec, class Lin>
void visit_layer_tensors(const ModelConfig& c, const LayerWeights& L, int l, Vec&& vec, Lin&& lin) {
  const int64_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  auto v = [&](const char* name, const std::vector<float>& x) {
    if (!x.empty()) vec(p + name, x);
  };
  auto w = [&](LayerLinear which, int64_t rows, int64_t cols) { lin(p + layer_linear_name(which), which, rows, cols); };
  v("input_layernorm.weight", L.attn_norm);
  v("post_attention_layernorm.weight", L.ffn_norm);
  w(LayerLinear::Q, qd, d);
  w(LayerLinear::K, kvd, d);
  w(LayerLinear::V, kvd, d);
  w(LayerLinear::O, d, qd);
  v("self_attn.q_proj.bias", L.bq);
  v("self_attn.k_proj.bias", L.bk);
  v("self_attn.v_proj.bias", L.bv);
  v("self_attn.o_proj.bias", L.bo);
  v("self_attn.q_norm.weight", L.q_norm);
  v("self_attn.k_norm.weight", L.k_norm);
  w(LayerLinear::Gate, ff, d);
  w(LayerLinear::Up, ff, d);
  w(LayerLinear::Down, d, ff);
  v("mlp.gate_proj.bias", L.b_gate);
  v("mlp.up_proj.bias", L.b_up);
  v("mlp.down_proj.bias", L.b_down);
}

// The whole file. w: the source's weights (which optional biases / q_norm / k_norm it has,
// and their lengths; the AWQ fold changes their values, never their sizes).
std::vector<TensorSpec> quantized_checkpoint_specs(const ModelConfig& c, const LlamaWeights& w,
                                                   const QuantParams& qp);

}  // namespace awq
