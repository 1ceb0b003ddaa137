#include "ops/cuda/cuda_memory_plan.h"

#include <algorithm>

#include "core/memory_usage.h"
#include "model/kv_cache.h"  // context_fit_hint
#include "ops/cuda/cuda_attention.h"
#include "ops/cuda/w4a16.h"
#include "ops/cuda/w4a16_wgmma_ws.h"

namespace awq::cuda {

namespace {

// Device bytes of one fused linear (cuda_llama.cu make_linear) and of its upload's staging: the
// AutoAWQ qweight, qzeros and scales copied to the device before the repack.
struct LinearBytes {
  int64_t weights = 0, staging = 0;
};
LinearBytes linear_bytes(const std::vector<const Matrix*>& parts,
                         const std::vector<const std::vector<float>*>& biases) {
  LinearBytes b;
  int64_t n = 0;
  for (const Matrix* m : parts) n += m->rows;
  const int64_t k = parts[0]->cols;
  if (fuses_as_w4a16(parts)) {
    W4A16Weight w;
    w.n = n, w.k = k, w.group = parts[0]->awq.group, w.bits = parts[0]->awq.bits;
    b.weights = int64_t(w.bytes());
    const int64_t groups = k / w.group;
    b.staging = k * n / 2 + groups * n / 2 + groups * n * 2;  // qweight, qzeros, scales
  } else {
    b.weights = n * k * 2;
  }
  for (const auto* v : biases)
    if (!v->empty()) {
      b.weights += n * 2;
      break;
    }
  return b;
}

}  // namespace

bool fuses_as_w4a16(const std::vector<const Matrix*>& parts) {
  for (const Matrix* m : parts)
    if (!m->quantized() || m->awq.bits != parts[0]->awq.bits || m->awq.group != parts[0]->awq.group ||
        !m->awq.qweight || !m->awq.qzeros || !m->awq.scales)
      return false;
  return !parts.empty();
}

int64_t attention_scratch_floats_for(const AttentionDims& d, int slots, int sms, int64_t ctx) {
  int64_t most = 0;
  for (int rows = 1; rows <= slots; ++rows)
    most = std::max(most, attention_scratch_floats(rows, d, decode_splits(rows, d, sms, ctx)));
  return most;
}

int64_t CudaStepBuffers::bytes() const {
  return 4 * (x + logits + nll + ints + attn_scratch + rope) + 2 * (h + qkv + att + o + gu + act);
}

int64_t cuda_kv_cache_elems(const ModelConfig& c, const CudaLlamaOptions& opt) {
  return int64_t(opt.slots) * opt.ctx * c.kv_dim();
}

CudaStepBuffers cuda_step_buffers(const ModelConfig& c, const CudaLlamaOptions& opt, int sms) {
  CudaStepBuffers b;
  const int64_t R = b.rows = std::max<int64_t>(opt.slots, opt.prefill_chunk);
  const int64_t d = c.hidden_size, ff = c.intermediate_size;
  b.x = b.h = b.o = R * d;
  b.qkv = R * (c.q_dim() + 2 * int64_t(c.kv_dim()));
  b.att = R * c.q_dim();
  b.gu = R * 2 * ff;
  b.act = R * ff;
  b.logits = R * c.vocab_size;
  b.nll = R;
  b.ints = 5 * R;
  b.attn_scratch = attention_scratch_floats_for(attention_dims(c), opt.slots, sms, opt.ctx);
  b.rope = opt.ctx * c.head_dim;
  return b;
}

CudaMemoryPlan cuda_memory_plan(const ModelConfig& c, const LlamaWeights& w, const CudaLlamaOptions& opt,
                                int sms) {
  CudaMemoryPlan p;
  const int64_t d = c.hidden_size, vocab = c.vocab_size;
  const bool tied = w.lm_head.data == w.embed.data && w.lm_head.kind == w.embed.kind;
  p.weights = vocab * d * 2 * (tied ? 1 : 2) + int64_t(w.final_norm.size()) * 4;
  int64_t staging = 0;
  for (const LayerWeights& L : w.layers) {
    p.weights += int64_t(L.attn_norm.size() + L.ffn_norm.size() + L.q_norm.size() + L.k_norm.size()) * 4;
    for (const LinearBytes b : {linear_bytes({&L.wq, &L.wk, &L.wv}, {&L.bq, &L.bk, &L.bv}),
                                linear_bytes({&L.wo}, {&L.bo}), linear_bytes({&L.w_gate, &L.w_up}, {&L.b_gate, &L.b_up}),
                                linear_bytes({&L.w_down}, {&L.b_down})}) {
      p.weights += b.weights;
      staging = std::max(staging, b.staging);
    }
  }
  p.kv_cache = 2 * int64_t(c.num_layers) * cuda_kv_cache_elems(c, opt) * 2;
  p.per_position = p.kv_cache / opt.ctx + c.head_dim * 4;
  p.activations = cuda_step_buffers(c, opt, sms).bytes();
  p.workspaces = kCublasWorkspaceBytes + int64_t(w4a16_wgmma_ws_workspace_bytes(sms)) + staging + kCudaReserveBytes;
  return p;
}

std::string cuda_memory_refusal(const CudaMemoryPlan& p, const CudaLlamaOptions& opt, int64_t free_bytes,
                                int64_t total_bytes, const std::string& gpu) {
  if (p.total() <= free_bytes) return "";
  std::string msg = "the model does not fit in GPU memory: it needs " + gib_text(p.total()) + " GiB (weights " +
                    gib_text(p.weights) + ", KV cache " + gib_text(p.kv_cache) + " for " + std::to_string(opt.slots) +
                    (opt.slots == 1 ? " sequence" : " sequences") + " of " + std::to_string(opt.ctx) +
                    " positions, activations " + gib_text(p.activations) + ", workspaces " + gib_text(p.workspaces) +
                    ") and the " + gpu + " has " + gib_text(free_bytes) + " GiB free of " + gib_text(total_bytes) + "; ";
  // The context that fits (the attention scratch, a few MiB, is taken as it is at opt.ctx).
  const int64_t fixed = p.total() - p.per_position * opt.ctx;
  const std::string fit = context_fit_hint(free_bytes > fixed ? (free_bytes - fixed) / p.per_position : 0, opt.slots);
  if (!fit.empty())
    msg += fit + ", or run on the CPU (--device cpu)";
  else
    msg += "the weights alone need " + gib_text(p.weights) +
           " GiB: use a GPU with more free memory, a smaller model, or the CPU (--device cpu)";
  return msg;
}

}  // namespace awq::cuda
