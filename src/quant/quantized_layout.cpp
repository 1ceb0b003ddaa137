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
  const int64_t d = c.hidden_size;
  std::vector<TensorSpec> out;
  out.push_back(TensorSpec{"model.embed_tokens.weight", DType::F16, {c.vocab_size, d}});
  for (int l = 0; l < c.num_layers; ++l)
    visit_layer_tensors(
        c, w.layers[size_t(l)], l, [&](const std::string& name, const std::vector<float>& v) { add_vector(out, name, v); },
        [&](const std::string& prefix, LayerLinear, int64_t rows, int64_t cols) { add_linear(out, prefix, rows, cols, qp); });
  add_vector(out, "model.norm.weight", w.final_norm);
  if (!c.tie_word_embeddings) out.push_back(TensorSpec{"lm_head.weight", DType::F16, {c.vocab_size, d}});
  return out;
}

}  // namespace awq
