#include "quant/awq_search.h"
#include "quant/awq_search_detail.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "model/decoder_layer.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"
#include "quant/fake_quant.h"
#include "quant/scale_fold.h"

namespace awq {

namespace {

using Captures = AwqCaptures;
using detail::candidate_scales;
using detail::mean_normalised_weight;
using detail::pick_search_set;
using detail::SearchSet;

// out: [rows.size(), cols] = src rows
std::vector<float> gather_rows(const std::vector<float>& src, int64_t cols, const std::vector<int64_t>& rows) {
  std::vector<float> out(rows.size() * size_t(cols));
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(src.data() + rows[i] * cols, cols, out.data() + int64_t(i) * cols);
  return out;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    s += d * d;
  }
  return a.empty() ? 0.0 : s / double(a.size());
}

// Runs one layer over sequences of the calibration set.
class LayerRunner {
 public:
  LayerRunner(ThreadPool& pool, const ModelConfig& c, const float* inv_freq, int64_t seqlen)
      : pool_(pool), c_(c), inv_freq_(inv_freq), seqlen_(seqlen),
        kc_(size_t(seqlen * c.kv_dim())), vc_(size_t(seqlen * c.kv_dim())),
        h_(size_t(seqlen * c.hidden_size)), o_(size_t(seqlen * c.hidden_size)) {
    for (int64_t i = 0; i < seqlen; ++i) pos_.push_back(int32_t(i));
  }

  // self_attn output of sequence `seq` from its normed input h_all rows. out: [seqlen, d]
  void attention(const LayerWeights& L, const float* h_seq, float* out) {
    // f32 keys and values: the calibration forward is not rounded through an fp16 cache.
    const KvLayer kv{KvType::F32, kc_.data(), vc_.data(), seqlen_, c_.kv_dim()};
    attention_sublayer(pool_, c_, L, inv_freq_, h_seq, seqlen_, pos_.data(), kv, s_, out);
  }
  // mlp output. h: [n, d]; out: [n, d]
  void mlp(const LayerWeights& L, const float* h, int64_t n, float* out) {
    mlp_sublayer(pool_, c_, L, h, n, s_, out);
  }
  // The whole layer on one sequence, x: [seqlen, d] in place; optional captures.
  void layer(const LayerWeights& L, float* x, Captures* cap, int64_t seq) {
    const int64_t d = c_.hidden_size, n = seqlen_, row0 = seq * seqlen_;
    rmsnorm(x, L.attn_norm.data(), n, d, c_.rms_norm_eps, h_.data());
    if (cap) std::copy_n(h_.data(), n * d, cap->h_attn.data() + row0 * d);
    attention(L, h_.data(), o_.data());
    if (cap) std::copy_n(s_.att.data(), n * c_.q_dim(), cap->att.data() + row0 * c_.q_dim());
    for (int64_t i = 0; i < n * d; ++i) x[i] += o_[size_t(i)];
    rmsnorm(x, L.ffn_norm.data(), n, d, c_.rms_norm_eps, h_.data());
    if (cap) std::copy_n(h_.data(), n * d, cap->h_mlp.data() + row0 * d);
    mlp(L, h_.data(), n, o_.data());
    if (cap)
      std::copy_n(s_.gate.data(), n * c_.intermediate_size, cap->act.data() + row0 * c_.intermediate_size);
    for (int64_t i = 0; i < n * d; ++i) x[i] += o_[size_t(i)];
  }

 private:
  ThreadPool& pool_;
  const ModelConfig& c_;
  const float* inv_freq_;
  int64_t seqlen_;
  std::vector<int32_t> pos_;
  std::vector<float> kc_, vc_, h_, o_;  // [seqlen, kv_dim] x2, [seqlen, d] x2
  LayerScratch s_;
};

// mean |x| per column. x: [n, cols] -> [cols]
std::vector<float> mean_abs_columns(const std::vector<float>& x, int64_t cols) {
  const int64_t n = int64_t(x.size()) / cols;
  std::vector<double> acc(size_t(cols), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < cols; ++k) acc[size_t(k)] += std::abs(x[size_t(t * cols + k)]);
  std::vector<float> out(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) out[size_t(k)] = float(acc[size_t(k)] / double(n));
  return out;
}

// dst = Q(src * s) / s, per input column. src, dst: [out, in]; s: [in]
void quantize_scaled(const std::vector<float>& src, std::vector<float>& dst, const std::vector<float>& s,
                     int64_t in, const QuantParams& qp) {
  const int64_t out = int64_t(src.size()) / in;
  dst.resize(src.size());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) dst[size_t(o * in + k)] = src[size_t(o * in + k)] * s[size_t(k)];
  fake_quantize(dst.data(), out, in, qp);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) dst[size_t(o * in + k)] /= s[size_t(k)];
}

void divide_columns(std::vector<float>& x, int64_t cols, const std::vector<float>& s) {
  for (size_t i = 0; i < x.size(); ++i) x[i] /= s[i % size_t(cols)];
}

}  // namespace

namespace detail {

SearchSet pick_search_set(int64_t n_seq, int64_t seqlen, int64_t search_tokens) {
  SearchSet s;
  const int64_t T = n_seq * seqlen;
  const int64_t n_s = search_tokens <= 0 ? n_seq
                                         : std::clamp<int64_t>((search_tokens + seqlen - 1) / seqlen, 1, n_seq);
  for (int64_t i = 0; i < n_s; ++i) s.seqs.push_back(i * n_seq / n_s);
  const int64_t n_r = search_tokens <= 0 ? T : std::min(T, search_tokens);
  for (int64_t i = 0; i < n_r; ++i) s.rows.push_back(i * T / n_r);
  return s;
}

// AutoAWQ's w_mean for duo scaling: |w| normalised by its group's max, averaged over the
// output rows of all linears of the group. ws: {[out_i, in]} -> [in]
std::vector<float> mean_normalised_weight(const std::vector<const std::vector<float>*>& ws, int64_t in, int group) {
  std::vector<double> acc(size_t(in), 0.0);
  int64_t rows = 0;
  for (const auto* w : ws) {
    const int64_t out = int64_t(w->size()) / in;
    rows += out;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t g = 0; g < in; g += group) {
        const float* p = w->data() + o * in + g;
        float mx = 0.0f;
        for (int k = 0; k < group; ++k) mx = std::max(mx, std::abs(p[k]));
        for (int k = 0; k < group; ++k) acc[size_t(g + k)] += std::abs(p[k]) / (mx + 1e-6f);
      }
  }
  std::vector<float> out(static_cast<size_t>(in));
  for (int64_t k = 0; k < in; ++k) out[size_t(k)] = float(acc[size_t(k)] / double(rows));
  return out;
}

std::vector<float> candidate_scales(const std::vector<float>& x_mean, const std::vector<float>* w_mean, double ratio) {
  std::vector<float> s(x_mean.size());
  float mx = 0.0f, mn = std::numeric_limits<float>::max();
  for (size_t k = 0; k < s.size(); ++k) {
    float v = std::pow(x_mean[k], float(ratio));
    if (w_mean) v = v / (std::pow((*w_mean)[k], float(1.0 - ratio)) + 1e-4f);
    v = std::max(v, 1e-4f);
    s[k] = v;
    mx = std::max(mx, v);
    mn = std::min(mn, v);
  }
  const float norm = std::sqrt(mx * mn);
  for (float& v : s) v /= norm;
  return s;
}

}  // namespace detail

void awq_clip_linear(ThreadPool& pool, float* w, int64_t out, int64_t in, const float* x, int64_t n,
                     const AwqSearchOptions& opt) {
  const int G = opt.qp.group;
  const int steps = int(opt.max_shrink * opt.n_grid);
  // One group of input channels at a time, all output rows together, so each candidate's
  // partial outputs are one GEMM: y = x_g Q(clamp(w_g))^T.
  std::vector<float> xg(static_cast<size_t>(n * G)), wg(static_cast<size_t>(out * G)), cur(wg.size());
  std::vector<float> org(static_cast<size_t>(n * out)), y(org.size());  // [n, out]
  std::vector<float> amax(static_cast<size_t>(out)), best_max(amax.size());
  std::vector<double> best_err(amax.size()), err(amax.size());
  for (int64_t g = 0; g < in; g += G) {
    for (int64_t t = 0; t < n; ++t) std::copy_n(x + t * in + g, G, xg.data() + t * G);
    for (int64_t o = 0; o < out; ++o) {
      std::copy_n(w + o * in + g, G, wg.data() + o * G);
      float m = 0.0f;
      for (int k = 0; k < G; ++k) m = std::max(m, std::abs(wg[size_t(o * G + k)]));
      amax[size_t(o)] = best_max[size_t(o)] = m;
      best_err[size_t(o)] = 1e9;
    }
    matmul(pool, xg.data(), n, Matrix(DType::F32, out, G, wg.data()), nullptr, org.data());
    for (int i = 0; i < steps; ++i) {
      const float shrink = 1.0f - float(i) / float(opt.n_grid);
      pool.parallel_for(out, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          const float mv = amax[size_t(o)] * shrink;
          float* c = cur.data() + o * G;
          for (int k = 0; k < G; ++k) c[k] = std::clamp(wg[size_t(o * G + k)], -mv, mv);
          fake_quantize_group(c, G, opt.qp);
        }
      });
      matmul(pool, xg.data(), n, Matrix(DType::F32, out, G, cur.data()), nullptr, y.data());
      std::fill(err.begin(), err.end(), 0.0);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t o = 0; o < out; ++o) {
          const double dlt = double(y[size_t(t * out + o)]) - org[size_t(t * out + o)];
          err[size_t(o)] += dlt * dlt;
        }
      for (int64_t o = 0; o < out; ++o) {
        const double e = err[size_t(o)] / double(n);
        if (e < best_err[size_t(o)]) best_err[size_t(o)] = e, best_max[size_t(o)] = amax[size_t(o)] * shrink;
      }
    }
    for (int64_t o = 0; o < out; ++o)
      for (int k = 0; k < G; ++k) {
        float& v = w[o * in + g + k];
        v = std::clamp(v, -best_max[size_t(o)], best_max[size_t(o)]);
      }
  }
}

std::vector<float> group_grams(ThreadPool& pool, const float* x, int64_t n_all, int64_t in, int G,
                               const std::vector<int64_t>& rows) {
  const int64_t n = rows.empty() ? n_all : int64_t(rows.size()), n_groups = in / G, gg = int64_t(G) * G;
  // Each thread sums its share of the tokens, chunk by chunk: a chunk's group columns are
  // transposed into xt ([G, chunk], small enough that its rows stay in cache and TLB) and
  // xt xt^T is one single-threaded GEMM; the threads' partial sums are added at the end.
  constexpr int64_t kChunk = 512;
  const int64_t P = pool.size();
  std::vector<std::vector<float>> partial(static_cast<size_t>(P));
  pool.parallel_for(P, [&](int64_t p0, int64_t p1) {
    ThreadPool serial(1);
    std::vector<float> xt(static_cast<size_t>(G * kChunk)), h(static_cast<size_t>(gg));
    const float* src[kChunk];
    for (int64_t p = p0; p < p1; ++p) {
      std::vector<float>& acc = partial[size_t(p)];
      acc.assign(static_cast<size_t>(n_groups * gg), 0.0f);
      for (int64_t c0 = p * n / P, end = (p + 1) * n / P; c0 < end; c0 += kChunk) {
        const int64_t nc = std::min(kChunk, end - c0);
        for (int64_t j = 0; j < nc; ++j) src[j] = x + (rows.empty() ? c0 + j : rows[size_t(c0 + j)]) * in;
        for (int64_t g = 0; g < n_groups; ++g) {
          for (int64_t j0 = 0; j0 < nc; j0 += 16)  // 16 source rows at a time stay in cache across k
            for (int k = 0; k < G; ++k)
              for (int64_t j = j0; j < std::min(nc, j0 + 16); ++j) xt[size_t(k * nc + j)] = src[j][g * G + k];
          matmul(serial, xt.data(), G, Matrix(DType::F32, G, nc, xt.data()), nullptr, h.data());
          float* a = acc.data() + g * gg;
          for (int64_t i = 0; i < gg; ++i) a[i] += h[size_t(i)];
        }
      }
    }
  });
  std::vector<float> grams(static_cast<size_t>(n_groups * gg), 0.0f);
  for (const auto& a : partial)
    for (size_t i = 0; i < grams.size(); ++i) grams[i] += a[i];
  for (float& v : grams) v /= float(n);
  return grams;
}

void awq_clip_linear_gram(ThreadPool& pool, float* w, int64_t out, int64_t in, const float* grams,
                          const AwqSearchOptions& opt) {
  const int G = opt.qp.group;
  const int steps = int(opt.max_shrink * opt.n_grid);
  std::vector<float> wg(static_cast<size_t>(out * G)), dw(wg.size()), e(wg.size());  // [out, G]
  std::vector<float> amax(static_cast<size_t>(out)), best_max(amax.size());
  std::vector<double> best_err(amax.size());
  for (int64_t g = 0; g < in; g += G) {
    const float* h = grams + (g / G) * G * G;  // [G, G], symmetric
    for (int64_t o = 0; o < out; ++o) {
      std::copy_n(w + o * in + g, G, wg.data() + o * G);
      float m = 0.0f;
      for (int k = 0; k < G; ++k) m = std::max(m, std::abs(wg[size_t(o * G + k)]));
      amax[size_t(o)] = best_max[size_t(o)] = m;
      best_err[size_t(o)] = std::numeric_limits<double>::infinity();
    }
    for (int i = 0; i < steps; ++i) {
      const float shrink = 1.0f - float(i) / float(opt.n_grid);
      // dw = Q(clamp(w)) - w per row, then e = dw H and err = dw . e = mean_t (x_t . dw)^2
      pool.parallel_for(out, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          const float mv = amax[size_t(o)] * shrink;
          const float* src = wg.data() + o * G;
          float* d = dw.data() + o * G;
          for (int k = 0; k < G; ++k) d[k] = std::clamp(src[k], -mv, mv);
          fake_quantize_group(d, G, opt.qp);
          for (int k = 0; k < G; ++k) d[k] -= src[k];
        }
      });
      matmul(pool, dw.data(), out, Matrix(DType::F32, G, G, h), nullptr, e.data());
      pool.parallel_for(out, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          double err = 0.0;
          for (int k = 0; k < G; ++k) err += double(dw[size_t(o * G + k)]) * double(e[size_t(o * G + k)]);
          if (err < best_err[size_t(o)]) best_err[size_t(o)] = err, best_max[size_t(o)] = amax[size_t(o)] * shrink;
        }
      });
    }
    for (int64_t o = 0; o < out; ++o)
      for (int k = 0; k < G; ++k) {
        float& v = w[o * in + g + k];
        v = std::clamp(v, -best_max[size_t(o)], best_max[size_t(o)]);
      }
  }
}

LayerReport awq_search_layer(ThreadPool& pool, const ModelConfig& c, const float* inv_freq, LayerF32& layer,
                             std::vector<float>& x, int64_t n_seq, int64_t seqlen, const AwqSearchOptions& opt,
                             AwqCaptures& captures) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t d = c.hidden_size, qd = c.q_dim(), ff = c.intermediate_size, T = n_seq * seqlen;
  LayerRunner run(pool, c, inv_freq, seqlen);
  const SearchSet set = pick_search_set(n_seq, seqlen, opt.search_tokens);

  // 1. FP forward with captures; the search sequences' FP outputs are kept for the report.
  Captures& cap = captures;  // every element is written by the forward below
  cap.h_attn.resize(size_t(T * d));
  cap.att.resize(size_t(T * qd));
  cap.h_mlp.resize(size_t(T * d));
  cap.act.resize(size_t(T * ff));
  const std::vector<float> x_in_search = [&] {
    std::vector<float> v;
    for (int64_t s : set.seqs) v.insert(v.end(), x.begin() + s * seqlen * d, x.begin() + (s + 1) * seqlen * d);
    return v;
  }();
  for (int64_t s = 0; s < n_seq; ++s) run.layer(layer.L, x.data() + s * seqlen * d, &cap, s);

  LayerReport rep;
  const LayerF32 original = layer;
  // Module outputs on the search set with the given weights.
  auto attn_out = [&](const LayerWeights& L) {
    std::vector<float> out(set.seqs.size() * size_t(seqlen * d));
    for (size_t i = 0; i < set.seqs.size(); ++i)
      run.attention(L, cap.h_attn.data() + set.seqs[i] * seqlen * d, out.data() + int64_t(i) * seqlen * d);
    return out;
  };
  const std::vector<float> h_mlp_rows = gather_rows(cap.h_mlp, d, set.rows);
  auto mlp_out = [&](const LayerWeights& L) {
    std::vector<float> out(h_mlp_rows.size());
    run.mlp(L, h_mlp_rows.data(), int64_t(set.rows.size()), out.data());
    return out;
  };
  auto linear_out = [&](const Matrix& w, const std::vector<float>& xin) {
    const int64_t n = int64_t(xin.size()) / w.cols;
    std::vector<float> out(size_t(n * w.rows));
    matmul(pool, xin.data(), n, w, nullptr, out.data());
    return out;
  };

  // 2. scale search, all groups on the original weights and inputs (as llm-awq / AutoAWQ)
  if (opt.search_scales) {
    LayerF32 trial = original;
    // v -> o: llm-awq folds it where v_proj and o_proj have the same shape (MHA); with
    // gqa_o_scale, also under GQA with one scale per v_proj channel tied over its group's heads.
    const bool fold_vo = opt.gqa_o_scale || (c.kv_dim() == d && qd == d);
    std::vector<float> att_rows, act_rows;
    if (fold_vo) att_rows = gather_rows(cap.att, qd, set.rows);
    act_rows = gather_rows(cap.act, ff, set.rows);

    std::vector<std::pair<std::string, std::vector<float>>> chosen;
    // per_kv_head: the scales live on v_proj's output channels ([kv_dim]); each is the tied
    // scale of the o_proj input channels of its group's heads (scale_fold.h).
    auto search = [&](const std::string& name, std::vector<std::vector<float> LayerF32::*> members, int64_t in,
                      const std::vector<float>& input, auto&& module_out, bool per_kv_head) {
      std::vector<float> x_mean = mean_abs_columns(input, in);
      std::vector<const std::vector<float>*> ws;
      for (auto m : members) ws.push_back(&(original.*m));
      std::vector<float> w_mean = opt.duo_scaling ? mean_normalised_weight(ws, in, opt.qp.group) : std::vector<float>{};
      if (per_kv_head) {
        x_mean = mean_over_group_heads(c, x_mean);
        if (opt.duo_scaling) w_mean = mean_over_group_heads(c, w_mean);
      }
      const std::vector<float> ref = module_out(original.L);
      ScaleChoice sc;
      sc.group = name;
      double best = std::numeric_limits<double>::infinity();
      std::vector<float> best_s;
      for (int i = 0; i < opt.n_grid; ++i) {
        const double ratio = double(i) / opt.n_grid;
        const std::vector<float> s = candidate_scales(x_mean, opt.duo_scaling ? &w_mean : nullptr, ratio);
        const std::vector<float> s_in = per_kv_head ? expand_kv_to_q(c, s) : s;
        for (auto m : members) quantize_scaled(original.*m, trial.*m, s_in, in, opt.qp);
        const double loss = mse(module_out(trial.L), ref);
        sc.losses.push_back(loss);
        if (i == 0) sc.loss_rtn = loss;
        if (loss < best) best = loss, sc.ratio = ratio, best_s = s;
      }
      for (auto m : members) trial.*m = original.*m;  // restore
      sc.loss_best = best;
      rep.scales.push_back(sc);
      chosen.emplace_back(name, best_s);
    };
    search("qkv", {&LayerF32::wq, &LayerF32::wk, &LayerF32::wv}, d, cap.h_attn, attn_out, false);
    if (fold_vo)
      search("o", {&LayerF32::wo}, qd, cap.att, [&](const LayerWeights& L) { return linear_out(L.wo, att_rows); }, true);
    search("gate_up", {&LayerF32::w_gate, &LayerF32::w_up}, d, cap.h_mlp, mlp_out, false);
    search("down", {&LayerF32::w_down}, ff, cap.act, [&](const LayerWeights& L) { return linear_out(L.w_down, act_rows); }, false);

    // fold: previous op / s, linears' input columns * s; captured inputs / s (for the clip search)
    for (const auto& [name, s] : chosen) {
      fold_scales(layer, c, name, s);
      if (name == "qkv") divide_columns(cap.h_attn, d, s);
      else if (name == "o") divide_columns(cap.att, qd, expand_kv_to_q(c, s));
      else if (name == "gate_up") divide_columns(cap.h_mlp, d, s);
      else if (name == "down") divide_columns(cap.act, ff, s);
    }
  }

  // 3. clip search on the scaled weights and inputs (q and k skipped, as the reference does),
  // its losses from the Gram blocks of the inputs (gate and up share theirs)
  if (opt.clip) {
    std::vector<int64_t> rows;  // empty: every token
    if (opt.clip_tokens > 0 && opt.clip_tokens < T) {
      const int64_t stride = std::max<int64_t>(1, T / opt.clip_tokens);
      for (int64_t t = 0; t < T; t += stride) rows.push_back(t);
    }
    const int G = opt.qp.group;
    auto clip = [&](std::vector<float>& w, int64_t out, int64_t in, const std::vector<float>& grams) {
      awq_clip_linear_gram(pool, w.data(), out, in, grams.data(), opt);
    };
    clip(layer.wv, c.kv_dim(), d, group_grams(pool, cap.h_attn.data(), T, d, G, rows));
    clip(layer.wo, d, qd, group_grams(pool, cap.att.data(), T, qd, G, rows));
    const std::vector<float> gm = group_grams(pool, cap.h_mlp.data(), T, d, G, rows);
    clip(layer.w_gate, ff, d, gm);
    clip(layer.w_up, ff, d, gm);
    clip(layer.w_down, d, ff, group_grams(pool, cap.act.data(), T, ff, G, rows));
  }

  // 4. report: layer output error of RTN and of AWQ weights vs FP, on the search sequences
  auto fake_quantized = [&](const LayerF32& src) {
    LayerF32 q = src;
    for (auto* w : {&q.wq, &q.wk, &q.wv, &q.w_gate, &q.w_up}) fake_quantize(w->data(), int64_t(w->size()) / d, d, opt.qp);
    fake_quantize(q.wo.data(), d, qd, opt.qp);
    fake_quantize(q.w_down.data(), d, ff, opt.qp);
    return q;
  };
  auto layer_out = [&](const LayerF32& l) {
    std::vector<float> y = x_in_search;
    for (size_t i = 0; i < set.seqs.size(); ++i) run.layer(l.L, y.data() + int64_t(i) * seqlen * d, nullptr, 0);
    return y;
  };
  const std::vector<float> fp_out = layer_out(original);
  rep.out_err_rtn = mse(layer_out(fake_quantized(original)), fp_out);
  rep.out_err_awq = mse(layer_out(fake_quantized(layer)), fp_out);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace awq
