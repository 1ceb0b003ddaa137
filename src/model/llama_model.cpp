#include "model/llama_model.h"

#include <algorithm>

#include "core/error.h"
#include "model/rope.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"

namespace awq {

namespace {

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

LlamaModel::LlamaModel(const std::string& dir)
    : config_(load_model_config(dir)), ckpt_(std::make_unique<Checkpoint>(dir)) {
  weights_ = load_llama_weights(*ckpt_, config_);
  inv_freq_ = rope_inv_freq(config_);
}

KvCache LlamaModel::new_cache(int64_t ctx) const {
  return KvCache(config_.num_layers, ctx, config_.kv_dim());
}

void LlamaModel::Scratch::reserve(int64_t n, const ModelConfig& c) {
  auto grow = [](std::vector<float>& v, int64_t size) {
    if (int64_t(v.size()) < size) v.resize(size_t(size));
  };
  grow(x, n * c.hidden_size);
  grow(h, n * std::max(c.hidden_size, c.q_dim()));
  grow(q, n * c.q_dim());
  grow(k, n * c.kv_dim());
  grow(v, n * c.kv_dim());
  grow(att, n * c.q_dim());
  grow(ff_gate, n * c.intermediate_size);
  grow(ff_up, n * c.intermediate_size);
  if (int64_t(pos.size()) < n) pos.resize(size_t(n));
}

void LlamaModel::forward(ThreadPool& pool, const int32_t* tokens, int64_t n, KvCache& cache,
                         bool all_logits, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  if (n <= 0) throw Error("forward: no tokens to run");
  if (cache.n_past + n > cache.ctx)
    throw Error("context overflow: " + std::to_string(cache.n_past) + " cached + " +
                std::to_string(n) + " new tokens exceed the context of " +
                std::to_string(cache.ctx) + " positions");
  const int64_t d = c.hidden_size, hd = c.head_dim, kvd = c.kv_dim(),
                ff = c.intermediate_size;
  s_.reserve(n, c);
  float* x = s_.x.data();  // [n, d] residual stream
  float* h = s_.h.data();  // [n, d] normed input / sublayer output
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                  std::to_string(c.vocab_size - 1) + ")");
    widen_row(weights_.embed, tokens[i], x + i * d);
    s_.pos[size_t(i)] = int32_t(cache.n_past + i);
  }
  const AttentionShape ashape{c.num_heads, c.num_kv_heads, hd, cache.ctx,
                              c.sliding_window.value_or(0)};
  auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };

  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = weights_.layers[size_t(l)];
    // --- attention ---
    rmsnorm(x, L.attn_norm.data(), n, d, c.rms_norm_eps, h);
    matmul_ref(pool, h, n, L.wq, bias(L.bq), s_.q.data());  // [n, qd]
    matmul_ref(pool, h, n, L.wk, bias(L.bk), s_.k.data());  // [n, kvd]
    matmul_ref(pool, h, n, L.wv, bias(L.bv), s_.v.data());  // [n, kvd]
    if (c.qk_norm) {  // qwen3: RMSNorm over each head before RoPE
      rmsnorm(s_.q.data(), L.q_norm.data(), n * c.num_heads, hd, c.rms_norm_eps, s_.q.data());
      rmsnorm(s_.k.data(), L.k_norm.data(), n * c.num_kv_heads, hd, c.rms_norm_eps, s_.k.data());
    }
    rope_rotate_half(s_.q.data(), n, c.num_heads, hd, s_.pos.data(), inv_freq_.data());
    rope_rotate_half(s_.k.data(), n, c.num_kv_heads, hd, s_.pos.data(), inv_freq_.data());
    float* kc = cache.k[size_t(l)].data();  // [ctx, kvd]
    float* vc = cache.v[size_t(l)].data();
    std::copy(s_.k.data(), s_.k.data() + n * kvd, kc + cache.n_past * kvd);
    std::copy(s_.v.data(), s_.v.data() + n * kvd, vc + cache.n_past * kvd);
    attention(pool, s_.q.data(), kc, vc, s_.pos.data(), n, ashape, s_.att.data());  // [n, qd]
    matmul_ref(pool, s_.att.data(), n, L.wo, bias(L.bo), h);  // [n, d]
    add_inplace(x, h, n * d);
    // --- MLP ---
    rmsnorm(x, L.ffn_norm.data(), n, d, c.rms_norm_eps, h);
    matmul_ref(pool, h, n, L.w_gate, bias(L.b_gate), s_.ff_gate.data());  // [n, ff]
    matmul_ref(pool, h, n, L.w_up, bias(L.b_up), s_.ff_up.data());        // [n, ff]
    silu_mul(s_.ff_gate.data(), s_.ff_up.data(), n * ff, s_.ff_gate.data());
    matmul_ref(pool, s_.ff_gate.data(), n, L.w_down, bias(L.b_down), h);  // [n, d]
    add_inplace(x, h, n * d);
  }
  cache.n_past += n;

  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  rmsnorm(x + first * d, weights_.final_norm.data(), rows, d, c.rms_norm_eps, h);
  logits.resize(size_t(rows * c.vocab_size));
  matmul_ref(pool, h, rows, weights_.lm_head, nullptr, logits.data());  // [rows, vocab]
}

}  // namespace awq
