#include "quant/scale_fold.h"

#include "core/error.h"

namespace awq {

namespace {

// w: [out, in], column k * s[k]
void scale_columns(std::vector<float>& w, int64_t in, const std::vector<float>& s) {
  for (size_t i = 0; i < w.size(); ++i) w[i] *= s[i % size_t(in)];
}
// w: [out, in], row o / s[o]
void divide_rows(std::vector<float>& w, int64_t in, const std::vector<float>& s) {
  for (size_t i = 0; i < w.size(); ++i) w[i] /= s[i / size_t(in)];
}
// v: [n] / s (empty stays empty: no bias)
void divide_vector(std::vector<float>& v, const std::vector<float>& s) {
  for (size_t i = 0; i < v.size(); ++i) v[i] /= s[i];
}

void check_size(const std::string& group, const std::vector<float>& s, int64_t want) {
  if (int64_t(s.size()) != want)
    throw Error("fold_scales(" + group + "): " + std::to_string(s.size()) + " scales, expected " + std::to_string(want));
}

}  // namespace

std::vector<float> expand_kv_to_q(const ModelConfig& c, const std::vector<float>& s) {
  const int64_t hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
  std::vector<float> out(static_cast<size_t>(c.q_dim()));
  for (int64_t h = 0; h < c.num_heads; ++h)
    for (int64_t j = 0; j < hd; ++j) out[size_t(h * hd + j)] = s[size_t((h / group) * hd + j)];
  return out;
}

std::vector<float> mean_over_group_heads(const ModelConfig& c, const std::vector<float>& v) {
  const int64_t hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
  std::vector<double> acc(static_cast<size_t>(c.kv_dim()), 0.0);
  for (int64_t h = 0; h < c.num_heads; ++h)
    for (int64_t j = 0; j < hd; ++j) acc[size_t((h / group) * hd + j)] += v[size_t(h * hd + j)];
  std::vector<float> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = float(acc[i] / double(group));
  return out;
}

void fold_scales(LayerF32& layer, const ModelConfig& c, const std::string& group, const std::vector<float>& s) {
  const int64_t d = c.hidden_size, qd = c.q_dim(), ff = c.intermediate_size;
  if (group == "qkv") {
    check_size(group, s, d);
    divide_vector(layer.L.attn_norm, s);
    for (auto* w : {&layer.wq, &layer.wk, &layer.wv}) scale_columns(*w, d, s);
  } else if (group == "o") {
    check_size(group, s, c.kv_dim());
    divide_rows(layer.wv, d, s);
    divide_vector(layer.L.bv, s);
    scale_columns(layer.wo, qd, expand_kv_to_q(c, s));
  } else if (group == "gate_up") {
    check_size(group, s, d);
    divide_vector(layer.L.ffn_norm, s);
    for (auto* w : {&layer.w_gate, &layer.w_up}) scale_columns(*w, d, s);
  } else if (group == "down") {
    check_size(group, s, ff);
    divide_rows(layer.w_up, d, s);
    divide_vector(layer.L.b_up, s);
    scale_columns(layer.w_down, ff, s);
  } else {
    throw Error("fold_scales: unknown group '" + group + "' (expected qkv, o, gate_up or down)");
  }
}

}  // namespace awq
