#include "model/llama_model.h"

#include <algorithm>
#include <cstdlib>

#include "core/env_choice.h"
#include "core/error.h"
#include "model/decoder_layer.h"
#include "model/rope.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"

namespace awq {

LlamaModel::LlamaModel(const std::string& dir)
    : config_(load_model_config(dir)), ckpt_(std::make_unique<Checkpoint>(dir)) {
  weights_ = load_llama_weights(*ckpt_, config_);
  inv_freq_ = rope_inv_freq(config_);
}

KvCache LlamaModel::new_cache(int64_t ctx, KvType type) const {
  check_kv_caches_fit(config_.num_layers, config_.kv_dim(), 1, ctx, type);
  return KvCache(config_.num_layers, ctx, config_.kv_dim(), type);
}

void LlamaModel::Scratch::reserve(int64_t n, const ModelConfig& c) {
  if (int64_t(x.size()) < n * c.hidden_size) x.resize(size_t(n * c.hidden_size));
  if (int64_t(h.size()) < n * c.hidden_size) h.resize(size_t(n * c.hidden_size));
  if (int64_t(pos.size()) < n) pos.resize(size_t(n));
}

void LlamaModel::forward(ThreadPool& pool, const int32_t* tokens, int64_t n, KvCache& cache,
                         bool all_logits, std::vector<float>& logits, Linears lin) {
  const ModelConfig& c = config_;
  if (n <= 0) throw Error("forward: no tokens to run");
  if (cache.kv_dim != c.kv_dim() || cache.n_layers() != c.num_layers)
    throw Error("forward: the KV cache was made for another model");
  if (cache.n_past + n > cache.ctx)
    throw Error("context overflow: " + std::to_string(cache.n_past) + " cached + " +
                std::to_string(n) + " new tokens exceed the context of " +
                std::to_string(cache.ctx) + " positions");
  const int64_t d = c.hidden_size;
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
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = weights_.layers[size_t(l)];
    // x += sublayer output (h), then h = RMSNorm(x) with `norm` for the next sublayer.
    auto add_then_norm = [&](const std::vector<float>* norm, bool add) {
      rows_parallel(pool, n, [&](int64_t b, int64_t e) {
        if (add) add_inplace(x + b * d, h + b * d, (e - b) * d);
        if (norm) rmsnorm(x + b * d, norm->data(), e - b, d, c.rms_norm_eps, h + b * d);
      });
    };
    add_then_norm(&L.attn_norm, false);
    attention_sublayer(pool, c, L, inv_freq_.data(), h, n, s_.pos.data(), cache.layer(l), s_.layer, h, lin);
    add_then_norm(&L.ffn_norm, true);
    mlp_sublayer(pool, c, L, h, n, s_.layer, h, lin);
    add_then_norm(nullptr, true);
  }
  cache.n_past += n;

  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  rmsnorm(x + first * d, weights_.final_norm.data(), rows, d, c.rms_norm_eps, h);
  logits.resize(size_t(rows * c.vocab_size));
  if (const Q8Rows* q8 = lm_head_q8(pool)) {
    q8_rows_matmul(pool, h, rows, *q8, nullptr, logits.data());  // [rows, vocab]
  } else {
    logits_linear(pool, lin, h, rows, weights_.lm_head, logits.data());  // [rows, vocab]
  }
}

namespace {
bool lm_head_q8_from_env() {  // AWQ_LM_HEAD
  static const bool q8 = env_choice("AWQ_LM_HEAD", std::getenv("AWQ_LM_HEAD"),
                                    {{"f16", "the default: the checkpoint's FP16 lm_head"},
                                     {"q8", "an int8 copy made at the first use: half the bytes a token"}},
                                    0) == 1;
  return q8;
}
}  // namespace

const Q8Rows* LlamaModel::lm_head_q8(ThreadPool& pool) const {
  if (!lm_head_q8_from_env() || !q8_rows_fit(weights_.lm_head)) return nullptr;
  std::call_once(lm_head_q8_once_,
                 [&] { lm_head_q8_ = std::make_unique<Q8Rows>(q8_rows_from(pool, weights_.lm_head)); });
  return lm_head_q8_.get();
}

}  // namespace awq
