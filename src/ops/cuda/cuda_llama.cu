#include "ops/cuda/cuda_llama.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include <cublas_v2.h>  // types; the calls go through cublas_loader.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "core/error.h"
#include "core/half.h"
#include "model/rope.h"
#include "ops/cpu/matmul.h"
#include "ops/cuda/cuda_attention.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_flash_prefill.h"
#include "ops/cuda/cuda_memory_plan.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16.h"
#include "quant/autoawq_pack.h"

namespace awq::cuda {

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}
void ok(cublasStatus_t e, const char* what) {
  if (e != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS: ") + what + " failed (status " + std::to_string(int(e)) + ")");
}

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
template <class T>
using DevPtr = std::unique_ptr<T, CudaFree>;

template <class T>
DevPtr<T> dev_alloc(int64_t count, const char* what) {
  void* p = nullptr;
  if (count > 0) ok(cudaMalloc(&p, size_t(count) * sizeof(T)), what);
  return DevPtr<T>(static_cast<T*>(p));
}

template <class T>
DevPtr<T> upload(const T* host, int64_t count, const char* what) {
  DevPtr<T> d = dev_alloc<T>(count, what);
  if (count > 0) ok(cudaMemcpy(d.get(), host, size_t(count) * sizeof(T), cudaMemcpyHostToDevice), what);
  return d;
}

// Rows [0, m.rows) of a dense or AWQ matrix as fp16 (dequantized / rounded). out: [rows, cols].
void to_fp16(const Matrix& m, uint16_t* out) {
  if (!m.quantized() && m.dtype == DType::F16) {
    std::memcpy(out, m.data, size_t(m.rows * m.cols) * 2);
    return;
  }
  std::vector<float> row(static_cast<size_t>(m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    widen_row(m, r, row.data());
    for (int64_t j = 0; j < m.cols; ++j) out[r * m.cols + j] = f32_to_fp16(row[size_t(j)]);
  }
}

// A linear on the device: y = x W^T + b, W: [n, k].
struct Linear {
  int64_t n = 0, k = 0;
  bool awq = false;
  W4A16Weight q{};
  DevPtr<__half> w;     // [n, k] when dense
  DevPtr<__half> bias;  // [n] or null
  int64_t bytes = 0;    // weight bytes one pass reads

  Linear() = default;
  Linear(Linear&& o) noexcept { *this = std::move(o); }
  Linear& operator=(Linear&& o) noexcept {
    std::swap(n, o.n), std::swap(k, o.k), std::swap(awq, o.awq), std::swap(q, o.q);
    std::swap(w, o.w), std::swap(bias, o.bias), std::swap(bytes, o.bytes);
    return *this;
  }
  ~Linear() {
    if (awq) free_w4a16(q);
  }
};

// Several linears over the same input fused into one: the AutoAWQ tensors joined along the
// output dimension (quant/autoawq_pack.h join_gemm_outputs: whole packed words and scale
// columns), dense ones as rows. In order (part 0's outputs, then part 1's, ...), or with
// interleave8 (two parts of equal size, rows % 8 == 0: the gate/up projection) in alternating
// packs of 8 outputs, part 0's pack p at 16 p and part 1's at 16 p + 8, the layout whose SiLU
// product the W4A16 decode kernels make in their epilogue (w4a16.h w4a16_linear_silu). Mixed
// kinds are all dequantized to fp16 (correct, not fast; no supported checkpoint mixes them in
// one group).
Linear make_linear(const std::vector<const Matrix*>& parts,
                   const std::vector<const std::vector<float>*>& biases, cudaStream_t s, bool interleave8 = false) {
  Linear L;
  L.k = parts[0]->cols;
  std::vector<int64_t> outs;
  for (const Matrix* m : parts) outs.push_back(m->rows);
  const JoinedOutputs joined(outs, interleave8);
  L.n = joined.total();
  if (fuses_as_w4a16(parts)) {
    std::vector<GemmPart> gp;
    for (const Matrix* m : parts) gp.push_back({m->awq.qweight, m->awq.qzeros, m->awq.scales, m->rows});
    QuantParams qp;
    qp.bits = parts[0]->awq.bits;
    qp.group = parts[0]->awq.group;
    const PackedGemm g = join_gemm_outputs(gp, L.k, qp, interleave8);
    AwqMatrix merged;
    merged.bits = qp.bits;
    merged.group = qp.group;
    merged.qweight = g.qweight.data();
    merged.qzeros = g.qzeros.data();
    merged.scales = g.scales.data();
    L.q = upload_w4a16(merged, L.n, L.k, s);
    ok(cudaStreamSynchronize(s), "uploading AWQ weights");
    L.awq = true;
    L.bytes = int64_t(L.q.bytes());
  } else {
    std::vector<uint16_t> w(size_t(L.n * L.k));
    for (size_t pi = 0; pi < parts.size(); ++pi) {
      const Matrix* m = parts[pi];
      if (!interleave8) {  // in order: the part's rows are one block of the joined rows
        to_fp16(*m, w.data() + joined.pack_at(pi, 0) * L.k);
        continue;
      }
      std::vector<uint16_t> part(size_t(m->rows * L.k));
      to_fp16(*m, part.data());
      for (int64_t r = 0; r < m->rows; r += 8)
        std::memcpy(w.data() + joined.pack_at(pi, r / 8) * L.k, part.data() + r * L.k, size_t(8 * L.k) * 2);
    }
    L.w.reset(reinterpret_cast<__half*>(upload(w.data(), L.n * L.k, "uploading weights").release()));
    L.bytes = L.n * L.k * 2;
  }
  bool any_bias = false;
  for (const auto* b : biases) any_bias = any_bias || !b->empty();
  if (any_bias) {
    std::vector<uint16_t> b(size_t(L.n), 0);
    for (size_t i = 0; i < parts.size(); ++i)
      for (size_t j = 0; j < biases[i]->size(); ++j)
        b[size_t(joined.pack_at(i, int64_t(j) / 8) + int64_t(j) % 8)] = f32_to_fp16((*biases[i])[j]);
    L.bias.reset(reinterpret_cast<__half*>(upload(b.data(), L.n, "uploading biases").release()));
  }
  return L;
}

struct Layer {
  DevPtr<float> attn_norm, ffn_norm, q_norm, k_norm;  // [d], [d], [head_dim] (qwen3)
  Linear qkv, o, gu, down;  // [q + 2 kv, d], [d, q], [2 ff, d], [d, ff]
  DevPtr<__half> k_cache, v_cache;  // [slots, ctx, kv_dim]
};

DevPtr<float> upload_vec(const std::vector<float>& v) {
  return v.empty() ? DevPtr<float>() : upload(v.data(), int64_t(v.size()), "uploading norms");
}

}  // namespace

struct CudaLlama::Impl {
  ModelConfig c;
  CudaLlamaOptions opt;
  cudaStream_t s = nullptr;
  cublasHandle_t blas = nullptr;
  DevPtr<uint8_t> blas_ws;
  int sms = 0;
  std::string name;
  std::string tuning_log;  // w4a16_tune_linear's lines, one per layer shape tuned at load

  DevPtr<__half> embed, lm_head_own;  // [vocab, d]
  const __half* lm_head = nullptr;    // embed when tied
  DevPtr<float> final_norm, rope;  // [d], [ctx, head_dim / 2, 2] (cos, sin)
  std::vector<Layer> layers;
  int64_t weight_bytes = 0;
  // The gate/up projection's outputs in alternating packs of 8 (make_linear's interleave8), so
  // that the decode kernels can end with the SiLU product (every model with ff % 8 == 0).
  bool gu_interleaved = false;

  // Activations for R = max(slots, prefill_chunk) rows.
  int64_t R = 0;
  DevPtr<float> x;         // [R, d] residual stream
  DevPtr<__half> h, qkv, att, o, gu, act;  // [R, d], [R, q+2kv], [R, q], [R, d], [R, 2ff], [R, ff]
  DevPtr<float> logits;    // [R, vocab]
  DevPtr<float> nll;       // [R]
  DevPtr<float> attn_scratch;
  // Device ints [5][R]: token, pos, slot, target, argmax; host mirror (pinned) of the first 4.
  DevPtr<int32_t> ints;
  int32_t* h_ints = nullptr;
  float* h_logits = nullptr;   // [slots, vocab] pinned
  int32_t* h_ids = nullptr;    // [slots] pinned
  float* h_nll = nullptr;      // [R] pinned

  std::vector<int64_t> n_past;
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    bool failed = false;
  };
  std::map<std::tuple<int, bool, int>, Graph> graphs;  // (batch, greedy, attention splits)
  bool graph_used = false;
  PdlMode pdl = PdlMode::On;  // what forward passes launch with (PdlScope; Off where unsupported)

  void set_pdl(int mode) {
    if (mode < -1 || mode > 2)
      throw Error("CudaLlama: pdl mode " + std::to_string(mode) + " is not -1 (AWQ_CUDA_PDL), 0, 1 or 2");
    pdl = mode < 0 ? pdl_mode_from_env() : PdlMode(mode);
    if (!pdl_supported()) pdl = PdlMode::Off;
  }
  void tune_w4a16();  // at load (below)
  void drop_graphs() {
    if (s) ok(cudaStreamSynchronize(s), "finishing the decode steps");
    for (auto& [key, g] : graphs)
      if (g.exec) cudaGraphExecDestroy(g.exec);
    graphs.clear();
  }

  int32_t* d_tok() const { return ints.get(); }
  int32_t* d_pos() const { return ints.get() + R; }
  int32_t* d_slot() const { return ints.get() + 2 * R; }
  int32_t* d_target() const { return ints.get() + 3 * R; }
  int32_t* d_ids() const { return ints.get() + 4 * R; }

  AttentionDims dims() const {
    return attention_dims(c);
  }

  void linear(const Linear& L, const __half* in, int64_t m, __half* out) {
    if (L.awq)
      w4a16_linear(L.q, in, m, L.bias.get(), out, s);
    else
      fp16_linear(blas, L.w.get(), L.n, L.k, in, m, L.bias.get(), out, s);
  }

  // The decoder over `rows` rows whose token/pos/slot are in the device buffers, then the
  // final norm; no host synchronisation. Decode (prefill null): every row is the one new token
  // of its own slot, so attention rotates q / k and stores k / v itself (RopeStore: one launch a
  // layer less). Prefill: the rows are runs of consecutive tokens of distinct slots (*prefill,
  // as the device buffers say too); a run's rows see each other's keys, which must all be in the
  // cache first.
  void enqueue_layers(int64_t rows, int n_splits, const std::vector<PrefillSegment>* prefill) {
    const bool decode = prefill == nullptr;
    const AttentionDims ad = dims();
    const bool flash = !decode && flash_prefill_supports(ad);
    const int64_t d = c.hidden_size, ff = c.intermediate_size;
    const float eps = float(c.rms_norm_eps);
    embed_rows(embed.get(), d_tok(), rows, d, x.get(), s);
    add_rmsnorm(x.get(), nullptr, layers[0].attn_norm.get(), rows, d, eps, h.get(), s);
    for (size_t l = 0; l < layers.size(); ++l) {
      Layer& L = layers[l];
      linear(L.qkv, h.get(), rows, qkv.get());
      const KvCacheView kv{L.k_cache.get(), L.v_cache.get(), opt.ctx, d_pos(), d_slot()};
      const RopeStore rs{reinterpret_cast<const float2*>(rope.get()), L.q_norm.get(), L.k_norm.get(), eps};
      if (!decode)
        qk_norm_rope_store(qkv.get(), rows, c.num_heads, c.num_kv_heads, c.head_dim, rs.cos_sin, rs.q_norm,
                           rs.k_norm, eps, kv, s);
      if (flash)
        flash_prefill_attention(qkv.get(), L.qkv.n, prefill->data(), int(prefill->size()), ad, kv.k, kv.v, opt.ctx,
                                att.get(), s);
      else
        attention(qkv.get(), L.qkv.n, rows, ad, kv, n_splits, attn_scratch.get(), att.get(), s,
                  decode ? &rs : nullptr);
      linear(L.o, att.get(), rows, o.get());
      add_rmsnorm(x.get(), o.get(), L.ffn_norm.get(), rows, d, eps, h.get(), s);
      if (gu_interleaved && L.gu.awq) {
        w4a16_linear_silu(L.gu.q, h.get(), rows, L.gu.bias.get(), gu.get(), act.get(), s);
      } else {
        linear(L.gu, h.get(), rows, gu.get());
        silu_mul(gu.get(), rows, ff, act.get(), s, gu_interleaved);
      }
      linear(L.down, act.get(), rows, o.get());
      const float* next = l + 1 < layers.size() ? layers[l + 1].attn_norm.get() : final_norm.get();
      add_rmsnorm(x.get(), o.get(), next, rows, d, eps, h.get(), s);
    }
  }

  // logits[0 .. count) = h[first .. first + count) lm_head^T, f32 out of fp16 operands; or of
  // the rows `from` [count, d] (the rows prefill_many gathers).
  void enqueue_lm_head(int64_t first, int64_t count, const __half* from = nullptr) {
    const float one = 1.0f, zero = 0.0f;
    const int64_t d = c.hidden_size;
    ok(cublas_api().gemm_ex(blas, CUBLAS_OP_T, CUBLAS_OP_N, c.vocab_size, int(count), int(d), &one, lm_head,
                    CUDA_R_16F, int(d), from ? from : h.get() + first * d, CUDA_R_16F, int(d), &zero,
                    logits.get(), CUDA_R_32F, c.vocab_size, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
       "lm_head");
  }

  void enqueue_decode(int B, bool greedy, int splits) {
    enqueue_layers(B, splits, /*prefill=*/nullptr);
    enqueue_lm_head(0, B);
    if (greedy) argmax_rows(logits.get(), B, c.vocab_size, d_ids(), s);
  }

  void check_tokens(const int32_t* t, int64_t n) const {
    for (int64_t i = 0; i < n; ++i)
      if (t[i] < 0 || t[i] >= c.vocab_size)
        throw Error("token id " + std::to_string(t[i]) + " is outside the vocabulary (0.." +
                    std::to_string(c.vocab_size - 1) + ")");
  }

  void check_room(int slot, int64_t n) const {
    if (slot < 0 || slot >= opt.slots)
      throw Error("sequence slot " + std::to_string(slot) + " is outside 0.." + std::to_string(opt.slots - 1));
    if (n_past[size_t(slot)] + n > opt.ctx)
      throw Error("context overflow: " + std::to_string(n_past[size_t(slot)]) + " cached + " +
                  std::to_string(n) + " new tokens exceed the context of " + std::to_string(opt.ctx) +
                  " positions");
  }

  // Row r of the next forward pass: its token, position, slot and the token it should predict
  // (prefill_nll's target; 0 where unused), in the pinned host mirror that upload_rows copies.
  void set_row(int64_t r, int32_t token, int64_t pos, int slot, int32_t target) {
    h_ints[r] = token;
    h_ints[R + r] = int32_t(pos);
    h_ints[2 * R + r] = slot;
    h_ints[3 * R + r] = target;
  }

  // Copies token/pos/slot/target rows [0, rows) to the device.
  void upload_rows(int64_t rows) {
    for (int k = 0; k < 4; ++k)
      ok(cudaMemcpyAsync(ints.get() + k * R, h_ints + k * R, size_t(rows) * 4, cudaMemcpyHostToDevice, s),
         "copying token ids");
  }

  // slots: [B] distinct slot ids, or nullptr for slots 0..B-1.
  void run_decode(const int* slots, const int32_t* tokens, int B, bool greedy) {
    const PdlScope pdl_scope(pdl);  // the kernels launched (or captured) below
    if (B < 1 || B > opt.slots)
      throw Error("decode batch " + std::to_string(B) + " is outside 1.." + std::to_string(opt.slots));
    const auto slot_of = [&](int b) { return slots ? slots[b] : b; };
    check_tokens(tokens, B);
    std::vector<bool> seen(size_t(opt.slots), false);
    for (int b = 0; b < B; ++b) {
      check_room(slot_of(b), 1);
      if (seen[size_t(slot_of(b))])
        throw Error("decode step: slot " + std::to_string(slot_of(b)) + " appears twice in one batch");
      seen[size_t(slot_of(b))] = true;
    }
    for (int b = 0; b < B; ++b) {
      h_ints[b] = tokens[b];
      h_ints[R + b] = int32_t(n_past[size_t(slot_of(b))]);
      h_ints[2 * R + b] = slot_of(b);
    }
    upload_rows(B);
    // The split count follows the longest sequence; each count gets its own graph (a few
    // captures as the context grows).
    int64_t max_keys = 0;
    for (int b = 0; b < B; ++b) max_keys = std::max(max_keys, n_past[size_t(slot_of(b))] + 1);
    if (c.sliding_window) max_keys = std::min<int64_t>(max_keys, *c.sliding_window);
    const int splits = decode_splits(B, dims(), sms, max_keys);
    Graph& g = graphs[{B, greedy, splits}];
    if (g.exec) {
      ok(cudaGraphLaunch(g.exec, s), "launching the decode graph");
      graph_used = true;
    } else {
      enqueue_decode(B, greedy, splits);
      if (opt.use_graphs && !g.failed) capture(g, B, greedy, splits);
    }
    for (int b = 0; b < B; ++b) ++n_past[size_t(slot_of(b))];
  }

  // Records the decode step of batch B into a graph for the next calls. A failure to capture
  // leaves the step running eagerly (same results, more launch overhead).
  void capture(Graph& g, int B, bool greedy, int splits) {
    cudaGraph_t graph = nullptr;
    ok(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "starting graph capture");
    try {
      enqueue_decode(B, greedy, splits);
    } catch (const Error&) {
      cudaStreamEndCapture(s, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      g.failed = true;
      return;
    }
    if (cudaStreamEndCapture(s, &graph) != cudaSuccess || !graph ||
        cudaGraphInstantiate(&g.exec, graph, 0) != cudaSuccess) {
      g.exec = nullptr;
      g.failed = true;
      cudaGetLastError();
    }
    if (graph) cudaGraphDestroy(graph);
  }

  // Prefill of `slot` in chunks; per chunk `after(c0, rows)` enqueues the output work.
  template <class After>
  void run_prefill(int slot, const int32_t* tokens, int64_t n, After after) {
    const PdlScope pdl_scope(pdl);
    if (n <= 0) throw Error("forward: no tokens to run");
    check_tokens(tokens, n);
    check_room(slot, n);
    const int64_t base = n_past[size_t(slot)];
    for (int64_t c0 = 0; c0 < n; c0 += opt.prefill_chunk) {
      const int64_t rows = std::min(opt.prefill_chunk, n - c0);
      for (int64_t i = 0; i < rows; ++i)
        set_row(i, tokens[c0 + i], base + c0 + i, slot, c0 + i + 1 < n ? tokens[c0 + i + 1] : 0);
      upload_rows(rows);
      const std::vector<PrefillSegment> chunk = {{0, int32_t(rows), slot, int32_t(base + c0)}};
      enqueue_layers(rows, 1, &chunk);
      after(c0, rows);
      ok(cudaStreamSynchronize(s), "running the prefill");
    }
    n_past[size_t(slot)] = base + n;
  }
};

double measure_copy_bandwidth(int64_t bytes, int reps) {
  DevPtr<uint8_t> a = dev_alloc<uint8_t>(bytes, "bandwidth buffers"), b = dev_alloc<uint8_t>(bytes, "bandwidth buffers");
  ok(cudaMemset(a.get(), 1, size_t(bytes)), "cudaMemset");
  cudaEvent_t e0, e1;
  ok(cudaEventCreate(&e0), "cudaEventCreate");
  ok(cudaEventCreate(&e1), "cudaEventCreate");
  std::vector<float> ms;
  for (int i = 0; i <= reps; ++i) {
    ok(cudaEventRecord(e0), "cudaEventRecord");
    ok(cudaMemcpyAsync(b.get(), a.get(), size_t(bytes), cudaMemcpyDeviceToDevice), "copy");
    ok(cudaEventRecord(e1), "cudaEventRecord");
    ok(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float t = 0;
    ok(cudaEventElapsedTime(&t, e0, e1), "cudaEventElapsedTime");
    if (i > 0) ms.push_back(t);  // the first is the warm-up
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3);
}

bool cuda_device_available(std::string* why) { return cuda_available(why); }

// The measured picks of the W4A16 kernels for the model's four AWQ layer shapes (w4a16.h
// w4a16_tune_linear; AWQ_W4A16_TUNE=0 skips it), before any graph is captured, under the PDL
// mode the model was built with (a later set_pdl keeps these picks). Each shape's
// timed calls cycle through every layer's weights of it, and use the activation buffers (rows
// R; the tuner fills its inputs with random values) as scratch.
void CudaLlama::Impl::tune_w4a16() {
  // Timed with the launch attributes the steps will use: PDL changes which small-batch kernel is
  // faster (H200: the 7B's o_proj at 2 tokens, a K-slice kernel 6.6 against the register-streaming
  // one's 6.7 us plain, but 7.2 against 5.8 with PDL).
  const PdlScope pdl_scope(pdl);
  const auto tune = [&](Linear Layer::*which, __half* x, __half* y) {
    std::vector<const W4A16Weight*> ws;
    for (const Layer& L : layers)
      if ((L.*which).awq) ws.push_back(&(L.*which).q);
    if (ws.empty()) return;
    const std::string line = w4a16_tune_linear(ws, R, x, y, s);
    if (!line.empty()) tuning_log += line + "\n";
  };
  tune(&Layer::qkv, h.get(), qkv.get());
  tune(&Layer::o, att.get(), o.get());
  tune(&Layer::gu, h.get(), gu.get());
  tune(&Layer::down, act.get(), o.get());
}

CudaLlama::CudaLlama(const ModelConfig& c, const LlamaWeights& w, const CudaLlamaOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.c = c;
  m.opt = opt;
  std::string why;
  if (!cuda_device_available(&why)) throw Error("--device cuda: " + why);
  if (!attention_supports(c.head_dim))
    throw Error("head_dim " + std::to_string(c.head_dim) +
                " is not supported by the CUDA backend (64, 128 or 256); use --device cpu");
  if (opt.slots < 1 || opt.ctx < 1 || opt.prefill_chunk < 1) throw Error("CudaLlama: bad options");
  int dev = 0;
  ok(cudaGetDevice(&dev), "cudaGetDevice");
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  m.sms = prop.multiProcessorCount;
  m.name = prop.name;
  {  // Refused before anything is allocated where it cannot fit (cuda_memory_plan.h).
    size_t free_b = 0, total_b = 0;
    ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    const std::string refusal =
        cuda_memory_refusal(cuda_memory_plan(c, w, opt, m.sms), opt, int64_t(free_b), int64_t(total_b), m.name);
    if (!refusal.empty()) throw Error(refusal);
  }
  const CudaStepBuffers sb = cuda_step_buffers(c, opt, m.sms);  // the plan's own sizes
  pdl_supported();  // its probe runs here, outside any graph capture
  m.set_pdl(opt.pdl);
  ok(cudaStreamCreateWithFlags(&m.s, cudaStreamNonBlocking), "cudaStreamCreate");
  ok(cublas_api().create(&m.blas), "cublasCreate");
  ok(cublas_api().set_stream(m.blas, m.s), "cublasSetStream");
  // A fixed workspace, so cuBLAS allocates nothing while a graph is captured.
  m.blas_ws = dev_alloc<uint8_t>(kCublasWorkspaceBytes, "cuBLAS workspace");
  ok(cublas_api().set_workspace(m.blas, m.blas_ws.get(), size_t(kCublasWorkspaceBytes)), "cublasSetWorkspace");

  const int64_t d = c.hidden_size, vocab = c.vocab_size;
  {
    std::vector<uint16_t> e(size_t(vocab * d));
    to_fp16(w.embed, e.data());
    m.embed.reset(reinterpret_cast<__half*>(upload(e.data(), vocab * d, "uploading the embedding").release()));
    if (w.lm_head.data == w.embed.data && w.lm_head.kind == w.embed.kind) {
      m.lm_head = m.embed.get();
    } else {
      to_fp16(w.lm_head, e.data());
      m.lm_head_own.reset(reinterpret_cast<__half*>(upload(e.data(), vocab * d, "uploading lm_head").release()));
      m.lm_head = m.lm_head_own.get();
    }
  }
  m.final_norm = upload_vec(w.final_norm);
  {
    const std::vector<float> rope = rope_cos_sin_table(rope_inv_freq(c), opt.ctx);
    if (int64_t(rope.size()) != sb.rope)  // the plan would be off by the difference
      throw Error("CudaLlama: RoPE table of " + std::to_string(rope.size()) + " floats, planned " +
                  std::to_string(sb.rope));
    m.rope = upload_vec(rope);
  }
  m.weight_bytes = vocab * d * 2 + d * 4;
  m.gu_interleaved = c.intermediate_size % 8 == 0;
  const int64_t kv_elems = cuda_kv_cache_elems(c, opt);  // the plan's own size
  for (const LayerWeights& L : w.layers) {
    Layer& D = m.layers.emplace_back();
    D.attn_norm = upload_vec(L.attn_norm);
    D.ffn_norm = upload_vec(L.ffn_norm);
    D.q_norm = upload_vec(L.q_norm);
    D.k_norm = upload_vec(L.k_norm);
    D.qkv = make_linear({&L.wq, &L.wk, &L.wv}, {&L.bq, &L.bk, &L.bv}, m.s);
    D.o = make_linear({&L.wo}, {&L.bo}, m.s);
    D.gu = make_linear({&L.w_gate, &L.w_up}, {&L.b_gate, &L.b_up}, m.s, m.gu_interleaved);
    D.down = make_linear({&L.w_down}, {&L.b_down}, m.s);
    D.k_cache = dev_alloc<__half>(kv_elems, "allocating the KV cache");
    D.v_cache = dev_alloc<__half>(kv_elems, "allocating the KV cache");
    m.weight_bytes += D.qkv.bytes + D.o.bytes + D.gu.bytes + D.down.bytes + 2 * d * 4;
  }

  const int64_t R = m.R = sb.rows;
  m.x = dev_alloc<float>(sb.x, "activations");
  m.h = dev_alloc<__half>(sb.h, "activations");
  m.qkv = dev_alloc<__half>(sb.qkv, "activations");
  m.att = dev_alloc<__half>(sb.att, "activations");
  m.o = dev_alloc<__half>(sb.o, "activations");
  m.gu = dev_alloc<__half>(sb.gu, "activations");
  m.act = dev_alloc<__half>(sb.act, "activations");
  m.logits = dev_alloc<float>(sb.logits, "logits");
  m.nll = dev_alloc<float>(sb.nll, "nll");
  m.ints = dev_alloc<int32_t>(sb.ints, "token buffers");
  m.attn_scratch = dev_alloc<float>(sb.attn_scratch, "attention scratch");
  ok(cudaMallocHost(&m.h_ints, size_t(4 * R) * 4), "pinned buffers");
  ok(cudaMallocHost(&m.h_logits, size_t(opt.slots) * size_t(vocab) * 4), "pinned buffers");
  ok(cudaMallocHost(&m.h_ids, size_t(opt.slots) * 4), "pinned buffers");
  ok(cudaMallocHost(&m.h_nll, size_t(R) * 4), "pinned buffers");
  std::fill(m.h_ints, m.h_ints + 4 * R, 0);
  m.n_past.assign(size_t(opt.slots), 0);
  ok(cudaStreamSynchronize(m.s), "uploading the model");
  m.tune_w4a16();
}

CudaLlama::~CudaLlama() {
  Impl& m = *impl_;
  if (m.s) cudaStreamSynchronize(m.s);
  for (auto& [key, g] : m.graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  cudaFreeHost(m.h_ints);
  cudaFreeHost(m.h_logits);
  cudaFreeHost(m.h_ids);
  cudaFreeHost(m.h_nll);
  m.layers.clear();
  if (m.blas) cublas_api().destroy(m.blas);
  if (m.s) cudaStreamDestroy(m.s);
}

const ModelConfig& CudaLlama::config() const { return impl_->c; }
const CudaLlamaOptions& CudaLlama::options() const { return impl_->opt; }
int64_t CudaLlama::n_past(int slot) const { return impl_->n_past.at(size_t(slot)); }
void CudaLlama::clear(int slot) { impl_->n_past.at(size_t(slot)) = 0; }
void CudaLlama::clear_all() { std::fill(impl_->n_past.begin(), impl_->n_past.end(), 0); }
void CudaLlama::truncate(int slot, int64_t n) {
  int64_t& past = impl_->n_past.at(size_t(slot));
  if (n < 0 || n > past)
    throw Error("truncate: " + std::to_string(n) + " positions asked of a sequence of " + std::to_string(past));
  past = n;
}
void CudaLlama::copy_prefix(int src, int dst, int64_t n) {
  Impl& m = *impl_;
  const int S = m.opt.slots;
  if (src < 0 || src >= S || dst < 0 || dst >= S || src == dst)
    throw Error("copy_prefix: slots " + std::to_string(src) + " -> " + std::to_string(dst) + " (of 0.." +
                std::to_string(S - 1) + ", distinct)");
  if (n < 0 || n > m.n_past[size_t(src)])
    throw Error("copy_prefix: " + std::to_string(n) + " positions asked of a sequence of " +
                std::to_string(m.n_past[size_t(src)]));
  const int64_t per_slot = m.opt.ctx * m.c.kv_dim();  // [ctx, kv_dim] of one slot, a layer
  const size_t bytes = size_t(n * m.c.kv_dim()) * sizeof(__half);
  for (Layer& L : m.layers)
    for (__half* cache : {L.k_cache.get(), L.v_cache.get()})
      ok(cudaMemcpyAsync(cache + dst * per_slot, cache + src * per_slot, bytes, cudaMemcpyDeviceToDevice, m.s),
         "copying a KV-cache prefix");
  m.n_past[size_t(dst)] = n;
}
int64_t CudaLlama::weight_bytes_per_step() const { return impl_->weight_bytes; }
bool CudaLlama::graph_used() const { return impl_->graph_used; }
void CudaLlama::set_pdl(int mode) {
  impl_->set_pdl(mode);
  impl_->drop_graphs();  // captured with the previous mode's launch attributes
}
int CudaLlama::pdl_mode() const { return pdl_supported() ? int(impl_->pdl) : 0; }
std::string CudaLlama::device_name() const { return impl_->name; }
const std::string& CudaLlama::tuning_log() const { return impl_->tuning_log; }

void CudaLlama::prefill(int slot, const int32_t* tokens, int64_t n, bool all_logits,
                        std::vector<float>& logits) {
  Impl& m = *impl_;
  const int64_t vocab = m.c.vocab_size;
  logits.resize(size_t((all_logits ? n : 1) * vocab));
  m.run_prefill(slot, tokens, n, [&](int64_t c0, int64_t rows) {
    if (all_logits) {
      m.enqueue_lm_head(0, rows);
      ok(cudaMemcpyAsync(logits.data() + c0 * vocab, m.logits.get(), size_t(rows * vocab) * 4,
                         cudaMemcpyDeviceToHost, m.s),
         "copying logits");
    } else if (c0 + rows == n) {
      m.enqueue_lm_head(rows - 1, 1);
      ok(cudaMemcpyAsync(logits.data(), m.logits.get(), size_t(vocab) * 4, cudaMemcpyDeviceToHost, m.s),
         "copying logits");
    }
  });
}

void CudaLlama::prefill_many(const int* slots, const int32_t* const* tokens, const int64_t* n, int count,
                             std::vector<float>& logits) {
  Impl& m = *impl_;
  const int64_t vocab = m.c.vocab_size, d = m.c.hidden_size;
  for (int i = 0; i < count; ++i) {  // everything checked before anything runs
    if (n[i] <= 0) throw Error("prefill: no tokens to run for slot " + std::to_string(slots[i]));
    m.check_room(slots[i], n[i]);
    m.check_tokens(tokens[i], n[i]);
    for (int j = 0; j < i; ++j)
      if (slots[j] == slots[i]) throw Error("prefill: slot " + std::to_string(slots[i]) + " given twice");
  }
  const PdlScope pdl_scope(m.pdl);
  logits.resize(size_t(count) * size_t(vocab));
  std::vector<PrefillSegment> segs;
  std::vector<std::pair<int, int64_t>> last;  // (piece, its last row) of the pieces ending in the pass
  int64_t rows = 0;
  const auto run_pass = [&] {
    m.upload_rows(rows);
    m.enqueue_layers(rows, 1, &segs);
    // The ending pieces' last rows of h, gathered into o (free after the layers), for one lm_head.
    for (size_t j = 0; j < last.size(); ++j)
      ok(cudaMemcpyAsync(m.o.get() + int64_t(j) * d, m.h.get() + last[j].second * d, size_t(d) * 2,
                         cudaMemcpyDeviceToDevice, m.s),
         "gathering the last rows");
    if (!last.empty()) {
      m.enqueue_lm_head(0, int64_t(last.size()), m.o.get());
      for (size_t j = 0; j < last.size(); ++j)
        ok(cudaMemcpyAsync(logits.data() + int64_t(last[j].first) * vocab, m.logits.get() + int64_t(j) * vocab,
                           size_t(vocab) * 4, cudaMemcpyDeviceToHost, m.s),
           "copying logits");
    }
    ok(cudaStreamSynchronize(m.s), "running the prefill");
    segs.clear(), last.clear(), rows = 0;
  };
  for (int i = 0; i < count; ++i) {
    const int slot = slots[i];
    const int64_t base = m.n_past[size_t(slot)];
    for (int64_t done = 0; done < n[i];) {  // a piece longer than a pass's room is split
      if (rows == m.R) run_pass();
      const int64_t take = std::min(n[i] - done, m.R - rows);
      for (int64_t r = 0; r < take; ++r) m.set_row(rows + r, tokens[i][done + r], base + done + r, slot, 0);
      segs.push_back({int32_t(rows), int32_t(take), slot, int32_t(base + done)});
      rows += take, done += take;
      if (done == n[i]) last.emplace_back(i, rows - 1);
    }
  }
  if (rows > 0) run_pass();
  for (int i = 0; i < count; ++i) m.n_past[size_t(slots[i])] += n[i];
}

double CudaLlama::prefill_nll(int slot, const int32_t* tokens, int64_t n) {
  Impl& m = *impl_;
  double sum = 0.0;
  m.run_prefill(slot, tokens, n, [&](int64_t c0, int64_t rows) {
    const int64_t scored = c0 + rows == n ? rows - 1 : rows;  // the last token predicts nothing
    if (scored <= 0) return;
    m.enqueue_lm_head(0, scored);
    nll_rows(m.logits.get(), m.d_target(), scored, m.c.vocab_size, m.nll.get(), m.s);
    ok(cudaMemcpyAsync(m.h_nll, m.nll.get(), size_t(scored) * 4, cudaMemcpyDeviceToHost, m.s), "copying nll");
    ok(cudaStreamSynchronize(m.s), "computing nll");
    for (int64_t i = 0; i < scored; ++i) sum += double(m.h_nll[i]);
  });
  return sum;
}

void CudaLlama::decode(const int32_t* tokens, int B, std::vector<float>& logits) {
  decode(nullptr, tokens, B, logits);
}

void CudaLlama::decode(const int* slots, const int32_t* tokens, int B, std::vector<float>& logits) {
  Impl& m = *impl_;
  const int64_t vocab = m.c.vocab_size;
  m.run_decode(slots, tokens, B, false);
  ok(cudaMemcpyAsync(m.h_logits, m.logits.get(), size_t(B * vocab) * 4, cudaMemcpyDeviceToHost, m.s),
     "copying logits");
  ok(cudaStreamSynchronize(m.s), "running the decode step");
  logits.assign(m.h_logits, m.h_logits + B * vocab);
}

void CudaLlama::decode_greedy(const int32_t* tokens, int B, int32_t* next) {
  decode_greedy(nullptr, tokens, B, next);
}

void CudaLlama::decode_greedy(const int* slots, const int32_t* tokens, int B, int32_t* next) {
  Impl& m = *impl_;
  m.run_decode(slots, tokens, B, true);
  ok(cudaMemcpyAsync(m.h_ids, m.d_ids(), size_t(B) * 4, cudaMemcpyDeviceToHost, m.s), "copying ids");
  ok(cudaStreamSynchronize(m.s), "running the decode step");
  std::copy(m.h_ids, m.h_ids + B, next);
}

}  // namespace awq::cuda
