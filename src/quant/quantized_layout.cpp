#include "quant/quantized_layout.h"

namespace awq {

std::vector<TensorSpec> quantized_linear_specs(const std::string& prefix, int64_t rows, int64_t cols,
                                               const QuantParams& qp) {
  return {TensorSpec{prefix + ".qweight", DType::I32, {cols, rows / 8}},
          TensorSpec{prefix + ".qzeros", DType::I32, {cols / qp.group, rows / 8}},
          TensorSpec{prefix + ".scales", DType::F16, {cols / qp.group, rows}}};
}

namespace {
// An F16 vector, present only where the source has it (empty: absent).
void add_vector(std::vector<TensorSpec>& out, const std::string& name, const std::vector<float>& v) {
  if (!v.empty()) out.push_back(TensorSpec{name, DType::F16, {int64_t(v.size())}});
}
void add_linear(std::vector<TensorSpec>& out, const std::string& prefix, int64_t rows, int64_t cols,
                const QuantParams& qp) {
  for (TensorSpec& s : quantized_linear_specs(prefix, rows, cols, qp)) out.push_back(std::move(s));
}
}  // namespace

std::vector<TensorSpec> quantized_checkpoint_specs(const ModelConfig& c, const LlamaWeights& w,
                                                   const QuantParams& qp) {
  const int64_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
  std::vector<TensorSpec> out;
  out.push_back(TensorSpec{"model.embed_tokens.weight", DType::F16, {c.vocab_size, d}});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& L = w.layers[size_t(l)];
    add_vector(out, p + "input_layernorm.weight", L.attn_norm);
    add_vector(out, p + "post_attention_layernorm.weight", L.ffn_norm);
    add_linear(out, p + "self_attn.q_proj", qd, d, qp);
    add_linear(out, p + "self_attn.k_proj", kvd, d, qp);
    add_linear(out, p + "self_attn.v_proj", kvd, d, qp);
    add_linear(out, p + "self_attn.o_proj", d, qd, qp);
    add_vector(out, p + "self_attn.q_proj.bias", L.bq);
    add_vector(out, p + "self_attn.k_proj.bias", L.bk);
    add_vector(out, p + "self_attn.v_proj.bias", L.bv);
    add_vector(out, p + "self_attn.o_proj.bias", L.bo);
    add_vector(out, p + "self_attn.q_norm.weight", L.q_norm);
    add_vector(out, p + "self_attn.k_norm.weight", L.k_norm);
    add_linear(out, p + "mlp.gate_proj", ff, d, qp);
    add_linear(out, p + "mlp.up_proj", ff, d, qp);
    add_linear(out, p + "mlp.down_proj", d, ff, qp);
    add_vector(out, p + "mlp.gate_proj.bias", L.b_gate);
    add_vector(out, p + "mlp.up_proj.bias", L.b_up);
    add_vector(out, p + "mlp.down_proj.bias", L.b_down);
  }
  add_vector(out, "model.norm.weight", w.final_norm);
  if (!c.tie_word_embeddings) out.push_back(TensorSpec{"lm_head.weight", DType::F16, {c.vocab_size, d}});
  return out;
}

}  // namespace awq
