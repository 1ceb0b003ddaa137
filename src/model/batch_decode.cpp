#include "model/batch_decode.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "model/batch_linear.h"
#include "model/rope.h"
#include "model/scratch_util.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"
#include "ops/cpu/q8_rows.h"

namespace awq {

void append_and_attend(ThreadPool& pool, const ModelConfig& c, const float* q, const float* k,
                       const float* v, KvCache& cache, int layer, int32_t pos, float* out) {
  const KvLayer kv = cache.layer(layer);  // k, v: [ctx, kv_dim] of the cache's type
  kv.store(pos, 1, k, v);
  const AttentionShape shape{c.num_heads, c.num_kv_heads, c.head_dim, cache.ctx,
                             c.sliding_window.value_or(0)};
  attention(pool, q, kv.view(), &pos, 1, shape, out);
}

void BatchDecoder::Scratch::reserve(int64_t B, const ModelConfig& c) {
  grow(x, B * c.hidden_size);
  grow(h, B * c.hidden_size);
  if (int64_t(pos.size()) < B) pos.resize(static_cast<size_t>(B));
  layer.reserve(B, c);
}

BatchDecoder::BatchDecoder(const LlamaModel& model, Linears logits)
    : model_(model), logits_lin_(logits), inv_freq_(rope_inv_freq(model.config())) {}

void BatchDecoder::attention_block(ThreadPool& pool, int layer, KvCache* const* caches, int64_t B,
                                   float* out) {
  const ModelConfig& c = model_.config();
  const LayerWeights& L = model_.weights().layers[size_t(layer)];
  const int64_t hd = c.head_dim, kvd = c.kv_dim(), qd = c.q_dim();
  const float* h = s_.h.data();                   // [B, d]
  LayerScratch& ls = s_.layer;
  batch_linear(pool, h, B, L.wq, bias_or_null(L.bq), ls.q.data());  // [B, q_dim]
  batch_linear(pool, h, B, L.wk, bias_or_null(L.bk), ls.k.data());  // [B, kv_dim]
  batch_linear(pool, h, B, L.wv, bias_or_null(L.bv), ls.v.data());  // [B, kv_dim]
  if (c.qk_norm) {  // qwen3: RMSNorm over each head before RoPE
    rmsnorm(ls.q.data(), L.q_norm.data(), B * c.num_heads, hd, c.rms_norm_eps, ls.q.data());
    rmsnorm(ls.k.data(), L.k_norm.data(), B * c.num_kv_heads, hd, c.rms_norm_eps, ls.k.data());
  }
  // Each row at its own position.
  rope_rotate_half(ls.q.data(), B, c.num_heads, hd, s_.pos.data(), inv_freq_.data());
  rope_rotate_half(ls.k.data(), B, c.num_kv_heads, hd, s_.pos.data(), inv_freq_.data());
  for (int64_t b = 0; b < B; ++b)
    append_and_attend(pool, c, ls.q.data() + b * qd, ls.k.data() + b * kvd, ls.v.data() + b * kvd,
                      *caches[b], layer, s_.pos[size_t(b)], ls.att.data() + b * qd);
  batch_linear(pool, ls.att.data(), B, L.wo, bias_or_null(L.bo), out);  // [B, d]
}

void BatchDecoder::mlp_block(ThreadPool& pool, int layer, int64_t B, float* out) {
  const ModelConfig& c = model_.config();
  const LayerWeights& L = model_.weights().layers[size_t(layer)];
  const float* h = s_.h.data();  // [B, d]
  LayerScratch& ls = s_.layer;
  batch_linear(pool, h, B, L.w_gate, bias_or_null(L.b_gate), ls.gate.data());  // [B, d_ff]
  batch_linear(pool, h, B, L.w_up, bias_or_null(L.b_up), ls.up.data());        // [B, d_ff]
  silu_mul(ls.gate.data(), ls.up.data(), B * c.intermediate_size, ls.gate.data());
  batch_linear(pool, ls.gate.data(), B, L.w_down, bias_or_null(L.b_down), out);  // [B, d]
}

void BatchDecoder::step(ThreadPool& pool, const int32_t* tokens, KvCache* const* caches, int64_t B,
                        std::vector<float>& logits) {
  const ModelConfig& c = model_.config();
  const LlamaWeights& W = model_.weights();
  if (B <= 0) throw Error("batch decode: no sequences to run");
  for (int64_t b = 0; b < B; ++b) {
    if (tokens[b] < 0 || tokens[b] >= c.vocab_size)
      throw Error("token id " + std::to_string(tokens[b]) + " is outside the vocabulary (0.." +
                  std::to_string(c.vocab_size - 1) + ")");
    const KvCache& cache = *caches[b];
    if (cache.n_past + 1 > cache.ctx)
      throw Error("context overflow: sequence " + std::to_string(b) + " already holds " +
                  std::to_string(cache.n_past) + " of " + std::to_string(cache.ctx) + " positions");
    if (cache.kv_dim != c.kv_dim() || cache.n_layers() != c.num_layers)
      throw Error("batch decode: a KV cache was made for another model");
  }
  const int64_t d = c.hidden_size;
  s_.reserve(B, c);
  float* x = s_.x.data();  // [B, d] residual stream
  float* h = s_.h.data();  // [B, d] normed input / sublayer output
  for (int64_t b = 0; b < B; ++b) {
    widen_row(W.embed, tokens[b], x + b * d);
    s_.pos[size_t(b)] = int32_t(caches[b]->n_past);
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = W.layers[size_t(l)];
    rmsnorm(x, L.attn_norm.data(), B, d, c.rms_norm_eps, h);
    attention_block(pool, l, caches, B, h);
    add_inplace(x, h, B * d);
    rmsnorm(x, L.ffn_norm.data(), B, d, c.rms_norm_eps, h);
    mlp_block(pool, l, B, h);
    add_inplace(x, h, B * d);
  }
  for (int64_t b = 0; b < B; ++b) caches[b]->n_past += 1;
  rmsnorm(x, W.final_norm.data(), B, d, c.rms_norm_eps, h);
  logits.resize(static_cast<size_t>(B * c.vocab_size));
  if (const Q8Rows* q8 = model_.lm_head_q8(pool)) {
    q8_rows_matmul(pool, h, B, *q8, nullptr, logits.data());  // [B, vocab], row by row as forward
  } else {
    logits_linear(pool, logits_lin_, h, B, W.lm_head, logits.data());  // [B, vocab]
  }
}

}  // namespace awq
