// The two sublayers of a Llama-family decoder layer, shared by inference (LlamaModel) and
// by the AWQ search, which runs them on calibration activations with trial weights.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "model/kv_cache.h"
#include "model/llama_weights.h"

namespace awq {

// Row-wise element work (norms, RoPE, SiLU-mul, residual adds) of a prompt over the pool, in
// chunks of at least kRowsParallelMin rows: single-threaded it left the other cores idle for
// ~4 % of a 512-token prompt. Fewer rows (decode) run inline. Each row's arithmetic is the
// same either way. fn(b, e): rows [b, e).
inline constexpr int64_t kRowsParallelMin = 16;
void rows_parallel(ThreadPool& pool, int64_t n, const ThreadPool::RangeFn& fn);

// How a forward pass's linears and attention sum. Fast: matmul (ops/cpu/gemm.h), whose dense
// GEMV for 1-3 rows sums in another order than its GEMM, and attention(), which takes the decode
// kernel for 1 row; so a row's bits depend on how many rows run with it. RowExact: batch_linear
// (model/batch_linear.h) and the blocked attention for every n: the same bits for a row whatever
// the row count. The server's prefill uses it, so that the pieces a prompt is cut into (chunks
// that follow the load, a cached or copied prefix's rest) give a whole prefill's results. The
// two are the same for W4 weights on the int8 kernels and for 4 rows or more but for 1-row
// attention; RowExact's dense kernel for 1-3 rows is ~3x slower than the GEMV.
// RowExactGemvLogits: RowExact, but the logits summed in the GEMV's order for every row count
// (logits_linear): faster than RowExact's for up to 8 rows, slower from 16 (engines of few slots).
enum class Linears { Fast, RowExact, RowExactGemvLogits };

// Activation buffers of one layer call, grown on demand and reused.
struct LayerScratch {
  std::vector<float> q, k, v;  // [n, q_dim], [n, kv_dim], [n, kv_dim]
  std::vector<float> att;      // [n, q_dim]  attention output = o_proj input
  std::vector<float> gate, up; // [n, d_ff]   after mlp(): gate holds silu(gate) * up = down_proj input
  void reserve(int64_t n, const ModelConfig& c);
};

// Self-attention of n tokens of one sequence: q/k/v projections (+bias, +qwen3 q/k norm),
// RoPE, keys/values written to cache rows pos[0..n) (rounded to the cache's type), causal GQA
// attention, o_proj.
// h: [n, d] (the input_layernorm output); pos: [n] consecutive positions;
// kv: the layer's cache, k and v [kv.ctx, kv_dim], holding rows 0..pos[0]-1 already; out: [n, d].
void attention_sublayer(ThreadPool& pool, const ModelConfig& c, const LayerWeights& L,
                        const float* inv_freq, const float* h, int64_t n, const int32_t* pos,
                        const KvLayer& kv, LayerScratch& s, float* out, Linears lin = Linears::Fast);

// SiLU-gated MLP. h: [n, d] (the post_attention_layernorm output); out: [n, d].
void mlp_sublayer(ThreadPool& pool, const ModelConfig& c, const LayerWeights& L, const float* h,
                  int64_t n, LayerScratch& s, float* out, Linears lin = Linears::Fast);

// y = x W^T (+ bias) the `lin` way. x: [n, w.cols]; bias: [w.rows] or nullptr; y: [n, w.rows].
void linear(ThreadPool& pool, Linears lin, const float* x, int64_t n, const Matrix& w, const float* bias, float* y);

// The logits: logits = h lm_head^T the `lin` way; RowExactGemvLogits with a dense lm_head takes
// the GEMV's order for every row count (gemv_order_matmul): the server's decode steps run 1-3
// rows under a light load, where batch_linear's dense kernel is ~3x slower than the GEMV, and the
// lm_head is the one dense matrix of an AWQ model (1.1B W4: 0.9 s of 2.9 for 128 tokens). The
// same bits as `awq generate`'s logits, given the same h. h: [n, d]; logits: [n, vocab].
void logits_linear(ThreadPool& pool, Linears lin, const float* h, int64_t n, const Matrix& lm_head, float* logits);

}  // namespace awq
