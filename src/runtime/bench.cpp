#include "runtime/bench.h"

#include <algorithm>
#include <chrono>

#include "core/clock.h"
#include "core/error.h"
#include "runtime/bandwidth.h"

namespace awq {

namespace {

double matrix_bytes(const Matrix& m) {
  if (m.kind == MatrixKind::AwqGemm) {
    const double groups = double(m.rows) * double(m.cols / m.awq.group);
    return double(m.rows) * double(m.cols) / 2 + groups * 2.5;  // codes, fp16 scale, 4-bit zero
  }
  return double(m.rows) * double(m.cols) * double(dtype_size(m.dtype));
}

double vec_bytes(const std::vector<float>& v) { return double(v.size()) * sizeof(float); }

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}


}  // namespace

double weight_bytes_per_token(const LlamaWeights& w, const ModelConfig& c, const Q8Rows* lm_head_q8) {
  const double head = lm_head_q8 ? double(lm_head_q8->q.size()) + double(lm_head_q8->d.size()) * sizeof(float)
                                 : matrix_bytes(w.lm_head);
  double b = double(c.hidden_size) * double(dtype_size(w.embed.dtype)) + head + vec_bytes(w.final_norm);
  for (const LayerWeights& L : w.layers) {
    for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) b += matrix_bytes(*m);
    for (const auto* v : {&L.attn_norm, &L.ffn_norm, &L.q_norm, &L.k_norm, &L.bq, &L.bk, &L.bv, &L.bo,
                          &L.b_gate, &L.b_up, &L.b_down})
      b += vec_bytes(*v);
  }
  return b;
}

double kv_bytes_per_token(const ModelConfig& c, KvType type, int64_t prompt, int64_t gen) {
  const int64_t window = c.sliding_window.value_or(0);
  double keys = 0;  // positions attended, summed over the steps
  for (int64_t p = prompt; p < prompt + gen; ++p) keys += double(window > 0 ? std::min(p + 1, window) : p + 1);
  const double per_key = 2.0 * double(c.num_layers) * double(c.kv_dim()) * double(kv_type_size(type));
  return gen > 0 ? keys / double(gen) * per_key : 0.0;
}

void check_bench_options(const ModelConfig& c, const BenchOptions& opt) {
  if (opt.prompt < 1 || opt.gen < 1 || opt.repeat < 1)
    throw Error("bench: --prompt, --gen and --repeat must be at least 1");
  if (opt.prompt + opt.gen > c.max_position_embeddings)
    throw Error("bench: --prompt + --gen = " + std::to_string(opt.prompt + opt.gen) +
                " exceeds the model's max_position_embeddings (" +
                std::to_string(c.max_position_embeddings) + "); use a shorter --prompt or --gen");
}

void time_prefill_decode(SequenceModel& seq, const BenchOptions& opt, BenchResult& r) {
  const ModelConfig& c = seq.config();
  check_bench_options(c, opt);
  std::vector<int32_t> prompt(static_cast<size_t>(opt.prompt));
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 7919 + 13) % size_t(c.vocab_size));
  std::vector<float> logits;
  logits.reserve(size_t(c.vocab_size));

  // Warm-up at the timed shapes: faults the mmapped weights in, grows every scratch buffer, and
  // lets the GPU engine pick its kernels for the prompt's length once (a first 512-token
  // prefill of the tiny model took 10x the later ones there).
  seq.clear();
  seq.forward(prompt.data(), opt.prompt, false, logits);
  for (int i = 0; i < 2; ++i) {
    int32_t t = argmax(logits);
    seq.forward(&t, 1, false, logits);
  }
  for (int rep = 0; rep < opt.repeat; ++rep) {
    seq.clear();
    auto t0 = std::chrono::steady_clock::now();
    seq.forward(prompt.data(), opt.prompt, false, logits);
    r.prefill_tps.push_back(double(opt.prompt) / seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    // Greedy, as `awq generate --temp 0` runs it: the argmax on the engine where it can.
    int32_t t = argmax(logits);
    for (int64_t i = 0; i < opt.gen; ++i) {
      int32_t next = 0;
      if (seq.forward_argmax(t, &next)) {
        t = next;
      } else {
        seq.forward(&t, 1, false, logits);
        t = argmax(logits);
      }
    }
    r.decode_tps.push_back(double(opt.gen) / seconds_since(t0));
  }
}

BenchResult run_bench(LlamaModel& model, ThreadPool& pool, const BenchOptions& opt) {
  check_bench_options(model.config(), opt);  // before the cache is sized by them
  CpuSequence seq(model, pool, opt.prompt + opt.gen, opt.kv_type);
  BenchResult r;
  time_prefill_decode(seq, opt, r);
  r.weight_bytes_per_token = weight_bytes_per_token(model.weights(), model.config(), model.lm_head_q8(pool));
  r.kv_bytes_per_token = kv_bytes_per_token(model.config(), opt.kv_type, opt.prompt, opt.gen);
  r.bandwidth_gbs = measure_read_bandwidth(pool);
  return r;
}

double min_of(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace awq
