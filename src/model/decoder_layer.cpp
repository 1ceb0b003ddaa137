#include "model/decoder_layer.h"

#include <algorithm>

#include "model/scratch_util.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops.h"

namespace awq {

void LayerScratch::reserve(int64_t n, const ModelConfig& c) {
  grow(q, n * c.q_dim());
  grow(k, n * c.kv_dim());
  grow(v, n * c.kv_dim());
  grow(att, n * c.q_dim());
  grow(gate, n * c.intermediate_size);
  grow(up, n * c.intermediate_size);
}

void attention_sublayer(ThreadPool& pool, const ModelConfig& c, const LayerWeights& L,
                        const float* inv_freq, const float* h, int64_t n, const int32_t* pos,
                        const KvLayer& kv, LayerScratch& s, float* out) {
  const int64_t hd = c.head_dim;
  s.reserve(n, c);
  matmul(pool, h, n, L.wq, bias_or_null(L.bq), s.q.data());  // [n, q_dim]
  matmul(pool, h, n, L.wk, bias_or_null(L.bk), s.k.data());  // [n, kv_dim]
  matmul(pool, h, n, L.wv, bias_or_null(L.bv), s.v.data());  // [n, kv_dim]
  if (c.qk_norm) {  // qwen3: RMSNorm over each head before RoPE
    rmsnorm(s.q.data(), L.q_norm.data(), n * c.num_heads, hd, c.rms_norm_eps, s.q.data());
    rmsnorm(s.k.data(), L.k_norm.data(), n * c.num_kv_heads, hd, c.rms_norm_eps, s.k.data());
  }
  rope_rotate_half(s.q.data(), n, c.num_heads, hd, pos, inv_freq);
  rope_rotate_half(s.k.data(), n, c.num_kv_heads, hd, pos, inv_freq);
  kv.store(pos[0], n, s.k.data(), s.v.data());
  const AttentionShape shape{c.num_heads, c.num_kv_heads, hd, kv.ctx, c.sliding_window.value_or(0)};
  attention(pool, s.q.data(), kv.view(), pos, n, shape, s.att.data());  // [n, q_dim]
  matmul(pool, s.att.data(), n, L.wo, bias_or_null(L.bo), out);                        // [n, d]
}

void mlp_sublayer(ThreadPool& pool, const ModelConfig& c, const LayerWeights& L, const float* h,
                  int64_t n, LayerScratch& s, float* out) {
  const int64_t ff = c.intermediate_size;
  s.reserve(n, c);
  matmul(pool, h, n, L.w_gate, bias_or_null(L.b_gate), s.gate.data());  // [n, d_ff]
  matmul(pool, h, n, L.w_up, bias_or_null(L.b_up), s.up.data());        // [n, d_ff]
  silu_mul(s.gate.data(), s.up.data(), n * ff, s.gate.data());
  matmul(pool, s.gate.data(), n, L.w_down, bias_or_null(L.b_down), out);  // [n, d]
}

}  // namespace awq
