// AWQ for one decoder layer (arXiv 2306.00978; the algorithm of llm-awq's auto_scale.py and
// auto_clip.py, with AutoAWQ's optional duo scaling):
//  1. run the FP layer on the calibration activations, capturing the input of every linear
//     group; the layer's FP output becomes the next layer's input (as llm-awq and AutoAWQ do);
//  2. per group of linears sharing an input (input_layernorm -> q,k,v; v -> o; post_attention_
//     layernorm -> gate,up; up -> down). llm-awq scales v -> o only where the shapes match (MHA);
//     awq.cpp can under GQA too (gqa_o_scale, off by default): one scale per v_proj output
//     channel, tied over the o_proj input channels of its group's heads, searched with mean|x|
//     averaged over those heads (scale_fold.h); under MHA this is exactly llm-awq's v -> o:
//     s = mean|x|^alpha (duo: / (mean|w~|^(1-alpha) + 1e-4)), clamped at 1e-4 and normalised by
//     sqrt(max * min), for alpha = i / n_grid, i = 0..n_grid-1; the loss is the MSE of the
//     module's output (self_attn, mlp, o_proj, down_proj) with Q(W * s) / s in place of W;
//     the best s is folded into the previous RMSNorm weight or linear (zero run-time cost);
//  3. clip search for every linear but q and k: per output row and group, shrink the max
//     |w| by 0, 5, ..., 45 % and keep the one with the least error of the group's partial
//     output; clamp the weights there. llm-awq/AutoAWQ measure that error on 512 sampled
//     tokens; awq.cpp computes it from the Gram block X_g^T X_g of each group's inputs
//     (the same loss, exactly, at a cost independent of the token count), on clip_tokens
//     evenly spaced tokens, by default all of them: each (row, group) picks its own clip, so
//     thousands of choices per linear rest on these statistics.
// The candidate losses are measured on `search_tokens` calibration tokens (whole sequences
// for attention, evenly spaced rows for the per-token modules); 0 uses all, as AutoAWQ does.
// mean|x| always uses every calibration token.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "quant/autoawq_pack.h"
#include "quant/layer_f32.h"

namespace awq {

struct AwqSearchOptions {
  QuantParams qp;
  bool search_scales = true;   // false: no scaling (RTN, or clip only)
  bool clip = true;
  bool duo_scaling = false;
  bool gqa_o_scale = false;    // v -> o scales also under GQA, tied over each KV group's heads
  int n_grid = 20;
  int64_t search_tokens = 4096;  // 0: all calibration tokens
  int64_t clip_tokens = 0;        // 0: all calibration tokens
  double max_shrink = 0.5;       // shrink steps i / n_grid for i < max_shrink * n_grid
};

struct ScaleChoice {
  std::string group;       // "qkv", "o", "gate_up", "down"
  double ratio = 0;        // chosen alpha
  double loss_rtn = 0;     // loss at alpha = 0 (plain RTN)
  double loss_best = 0;
  std::vector<double> losses;  // the loss of every candidate, alpha = i / n_grid
};

struct LayerReport {
  std::vector<ScaleChoice> scales;
  double out_err_rtn = 0;  // MSE of the layer output, RTN weights vs FP (search sequences)
  double out_err_awq = 0;  // the same with the AWQ (scaled + clipped) weights
  double seconds = 0;
};

// Inputs of the linear groups over all calibration tokens (T = n_seq * seqlen), kept from
// layer to layer by the caller: hundreds of MiB, which freshly allocated per layer cost a
// quarter of the run in page faults.
struct AwqCaptures {
  std::vector<float> h_attn;  // [T, d]     input_layernorm output (q, k, v input)
  std::vector<float> att;     // [T, q_dim] attention output (o_proj input)
  std::vector<float> h_mlp;   // [T, d]     post_attention_layernorm output (gate, up input)
  std::vector<float> act;     // [T, d_ff]  silu(gate) * up (down_proj input)
};

// x: [n_seq * seqlen, d_model] the layer's calibration input, replaced by the FP layer's
// output. layer: scales folded and weights clipped in place (still full precision).
// captures: overwritten (sized on first use).
LayerReport awq_search_layer(ThreadPool& pool, const ModelConfig& c, const float* inv_freq,
                             LayerF32& layer, std::vector<float>& x, int64_t n_seq,
                             int64_t seqlen, const AwqSearchOptions& opt, AwqCaptures& captures);

// The best clipping of one linear. w: [out, in] in place; x: [n, in] its (scaled) input rows.
// The plain version: each candidate's partial outputs x_g Q(clamp(w_g))^T, compared with the
// original's (the reference for awq_clip_linear_gram).
void awq_clip_linear(ThreadPool& pool, float* w, int64_t out, int64_t in, const float* x,
                     int64_t n, const AwqSearchOptions& opt);

// Gram blocks of the input of a linear, one per quantization group of G input channels:
// H_g = X_g^T X_g / n over the rows `rows` of x (all n_all rows if empty).
// x: [n_all, in] -> [in / G, G, G]
std::vector<float> group_grams(ThreadPool& pool, const float* x, int64_t n_all, int64_t in, int G,
                               const std::vector<int64_t>& rows);

// The same search as awq_clip_linear with each candidate's loss mean_t (x_t . dw)^2 computed
// as dw H_g dw^T (dw = Q(clamp(w_g)) - w_g): the cost no longer grows with the token count,
// so every calibration token can count. w: [out, in] in place; grams: group_grams of the input.
void awq_clip_linear_gram(ThreadPool& pool, float* w, int64_t out, int64_t in, const float* grams,
                          const AwqSearchOptions& opt);

}  // namespace awq
