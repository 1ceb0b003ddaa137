#include "model/decoder_layer.h"

#include <algorithm>

#include "model/batch_linear.h"
#include "model/scratch_util.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/ops.h"

namespace awq {

void rows_parallel(ThreadPool& pool, int64_t n, const ThreadPool::RangeFn& fn) {
  pool.parallel_for(n, fn, kRowsParallelMin);
}

void linear(ThreadPool& pool, Linears lin, const float* x, int64_t n, const Matrix& w, const float* bias, float* y) {
  if (lin != Linears::Fast) return batch_linear(pool, x, n, w, bias, y);
  matmul(pool, x, n, w, bias, y);
}

void logits_linear(ThreadPool& pool, Linears lin, const float* h, int64_t n, const Matrix& lm_head, float* logits) {
  if (lin == Linears::RowExactGemvLogits && gemv_order_matmul(pool, h, n, lm_head, nullptr, logits)) return;
  linear(pool, lin, h, n, lm_head, nullptr, logits);
}

namespace {

// The products of one input (q/k/v, gate/up): Fast shares the W4 kernels' quantized x
// (matmul_many); RowExact runs each through batch_linear.
void linear_many(ThreadPool& pool, Linears lin, const float* x, int64_t n, const W4Product* ps, int count) {
  if (lin == Linears::Fast) return matmul_many(pool, x, n, ps, count);
  for (int j = 0; j < count; ++j) batch_linear(pool, x, n, *ps[j].w, ps[j].bias, ps[j].y);
}

}  // namespace

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
                        const KvLayer& kv, LayerScratch& s, float* out, Linears lin) {
  const int64_t hd = c.head_dim;
  s.reserve(n, c);
  const W4Product qkv[] = {{&L.wq, bias_or_null(L.bq), s.q.data()},   // [n, q_dim]
                           {&L.wk, bias_or_null(L.bk), s.k.data()},   // [n, kv_dim]
                           {&L.wv, bias_or_null(L.bv), s.v.data()}};  // [n, kv_dim]
  linear_many(pool, lin, h, n, qkv, 3);
  if (c.qk_norm) {  // qwen3: RMSNorm over each head before RoPE
    rmsnorm(s.q.data(), L.q_norm.data(), n * c.num_heads, hd, c.rms_norm_eps, s.q.data());
    rmsnorm(s.k.data(), L.k_norm.data(), n * c.num_kv_heads, hd, c.rms_norm_eps, s.k.data());
  }
  rows_parallel(pool, n, [&](int64_t b, int64_t e) {
    rope_rotate_half(s.q.data() + b * c.q_dim(), e - b, c.num_heads, hd, pos + b, inv_freq);
    rope_rotate_half(s.k.data() + b * c.kv_dim(), e - b, c.num_kv_heads, hd, pos + b, inv_freq);
  });
  kv.store(pos[0], n, s.k.data(), s.v.data());
  const AttentionShape shape{c.num_heads, c.num_kv_heads, hd, kv.ctx, c.sliding_window.value_or(0)};
  if (lin != Linears::Fast)  // one order for every n (attention() takes the decode kernel at 1 row)
    attention_blocked(pool, gemm_best_isa(), s.q.data(), kv.view(), pos, n, shape, s.att.data());  // [n, q_dim]
  else
    attention(pool, s.q.data(), kv.view(), pos, n, shape, s.att.data());  // [n, q_dim]
  linear(pool, lin, s.att.data(), n, L.wo, bias_or_null(L.bo), out);                  // [n, d]
}

void mlp_sublayer(ThreadPool& pool, const ModelConfig& c, const LayerWeights& L, const float* h,
                  int64_t n, LayerScratch& s, float* out, Linears lin) {
  const int64_t ff = c.intermediate_size;
  s.reserve(n, c);
  const W4Product gate_up[] = {{&L.w_gate, bias_or_null(L.b_gate), s.gate.data()},  // [n, d_ff]
                               {&L.w_up, bias_or_null(L.b_up), s.up.data()}};        // [n, d_ff]
  linear_many(pool, lin, h, n, gate_up, 2);
  rows_parallel(pool, n, [&](int64_t b, int64_t e) {
    silu_mul(s.gate.data() + b * ff, s.up.data() + b * ff, (e - b) * ff, s.gate.data() + b * ff);
  });
  linear(pool, lin, s.gate.data(), n, L.w_down, bias_or_null(L.b_down), out);  // [n, d]
}

}  // namespace awq
