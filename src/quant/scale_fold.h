// Folding AWQ scales into the operation before the scaled linears, so the scaled model costs
// nothing at run time: x W^T = (x / s) (W * s)^T, and x / s is produced by the previous
// RMSNorm weight or the previous linear's output rows.
//   "qkv":     input_layernorm / s,          q, k, v columns * s      s: [d]
//   "o":       v_proj rows (and bias) / s,   o_proj columns * s_q     s: [kv_dim]
//   "gate_up": post_attention_layernorm / s, gate, up columns * s     s: [d]
//   "down":    up_proj rows (and bias) / s,  down_proj columns * s   s: [d_ff]
// v -> o under GQA (awq.cpp extension; llm-awq and AutoAWQ fold it only where v_proj and o_proj
// have the same shape): the v_proj output channel (kv head g, dim j) feeds the o_proj input
// channel (q head h, dim j) of every q head h of group g (h / (n_heads / n_kv_heads) == g),
// so one scale per v_proj channel, repeated over the group's heads (s_q = expand_kv_to_q(s)),
// folds exactly. Under MHA the group has one head and this is llm-awq's v -> o fold.
#pragma once
#include <string>
#include <vector>

#include "io/model_config.h"
#include "quant/layer_f32.h"

namespace awq {

// s: [kv_dim] -> [q_dim], s_q[h * head_dim + j] = s[(h / group) * head_dim + j]
std::vector<float> expand_kv_to_q(const ModelConfig& c, const std::vector<float>& s);

// v: [q_dim] per o_proj input channel -> [kv_dim], the mean over the heads of each KV group
std::vector<float> mean_over_group_heads(const ModelConfig& c, const std::vector<float>& v);

// Folds the scales s of `group` ("qkv", "o", "gate_up", "down"; shapes above) into `layer`;
// the layer computes the same function (up to float rounding).
void fold_scales(LayerF32& layer, const ModelConfig& c, const std::string& group, const std::vector<float>& s);

}  // namespace awq
