// attention() and both of its paths (per-row decode loop with each supported fp16 kernel,
// blocked prefill with each supported micro-kernel set) against a naive double-precision
// reference on random data, for f32 and fp16 caches: GQA, MHA and MQA head layouts, head_dim a
// multiple of the tile width or not, query counts around the block sizes, position offsets (a
// cache already holding earlier tokens), sliding windows and non-consecutive positions. Every
// cache row, including those a query must not see, holds random data, so a mask error shows.
//
// Error bound: outputs are convex combinations of value rows; f32 scores, softmax and
// accumulation against the double reference stay within 1e-5 * (1 + max |v|) absolute. The
// fp16 cache is checked against the reference run on the same fp16-rounded keys and values
// (widened exactly to double), so only the f32 arithmetic differs and the same bound holds:
// a kernel that widened wrongly (a wrong lane, a swapped half) or read past a row fails it.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/f16_rows.h"
#include "ops/cpu/ops.h"

namespace awq {
namespace {

// q: [n, n_heads, hd]; k, v: [ctx, n_kv_heads, hd]; pos: [n]; returns [n, n_heads, hd].
std::vector<double> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, const std::vector<int32_t>& pos,
                                    const AttentionShape& s) {
  const int64_t n = int64_t(pos.size()), hd = s.head_dim, kvs = s.n_kv_heads * hd;
  std::vector<double> out(size_t(n * s.n_heads * hd), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t g = h / (s.n_heads / s.n_kv_heads), last = pos[size_t(i)];
      const int64_t first = s.window > 0 ? std::max<int64_t>(0, last - s.window + 1) : 0;
      std::vector<double> p;
      for (int64_t t = first; t <= last; ++t) {
        double d = 0.0;
        for (int64_t j = 0; j < hd; ++j)
          d += double(q[size_t((i * s.n_heads + h) * hd + j)]) * k[size_t(t * kvs + g * hd + j)];
        p.push_back(d / std::sqrt(double(hd)));
      }
      const double mx = *std::max_element(p.begin(), p.end());
      double sum = 0.0;
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int64_t t = first; t <= last; ++t)
        for (int64_t j = 0; j < hd; ++j)
          out[size_t((i * s.n_heads + h) * hd + j)] +=
              p[size_t(t - first)] / sum * v[size_t(t * kvs + g * hd + j)];
    }
  return out;
}

struct AttentionCase {
  int64_t n_heads, n_kv_heads, head_dim, n, offset, window;
  bool shuffled = false;  // positions not in increasing order (each query still sees 0..pos[i])
  KvType type = KvType::F32;
};

std::string name(const AttentionCase& c) {
  return std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + " hd" +
         std::to_string(c.head_dim) + " n" + std::to_string(c.n) + " off" +
         std::to_string(c.offset) + " win" + std::to_string(c.window) +
         (c.shuffled ? " shuffled" : "") + " kv " + kv_type_name(c.type);
}

void check_case(const AttentionCase& c, ThreadPool& pool) {
  const int64_t ctx = c.offset + c.n + 5;
  const AttentionShape s{c.n_heads, c.n_kv_heads, c.head_dim, ctx, c.window};
  std::mt19937 rng(uint32_t(c.n * 131 + c.offset * 7 + c.head_dim + c.window));
  std::normal_distribution<float> nd;
  std::vector<float> q(size_t(c.n * c.n_heads * c.head_dim));
  std::vector<float> k(size_t(ctx * c.n_kv_heads * c.head_dim)), v(k.size());
  for (float& x : q) x = 2.0f * nd(rng);  // scores of a few units: peaked softmax rows too
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  std::vector<uint16_t> k16(k.size()), v16(v.size());  // the fp16 cache; k, v become its values
  if (c.type == KvType::F16)
    for (size_t i = 0; i < k.size(); ++i) {
      k16[i] = f32_to_fp16(k[i]), k[i] = fp16_to_f32(k16[i]);
      v16[i] = f32_to_fp16(v[i]), v[i] = fp16_to_f32(v16[i]);
    }
  const KvView kv = c.type == KvType::F16 ? KvView::f16(k16.data(), v16.data()) : KvView::f32(k.data(), v.data());
  std::vector<int32_t> pos(size_t(c.n));
  std::iota(pos.begin(), pos.end(), int32_t(c.offset));
  if (c.shuffled) std::shuffle(pos.begin(), pos.end(), rng);
  const std::vector<double> ref = naive_attention(q, k, v, pos, s);
  float vmax = 0.0f;
  for (float x : v) vmax = std::max(vmax, std::fabs(x));
  const double tol = 1e-5 * (1.0 + vmax);

  auto expect_close = [&](const std::vector<float>& out, const std::string& what) {
    double worst = 0.0;
    for (size_t i = 0; i < out.size(); ++i)
      worst = std::max(worst, std::isfinite(out[i]) ? std::fabs(out[i] - ref[i]) : INFINITY);
    EXPECT_LE(worst, tol) << name(c) << " " << what << " threads=" << pool.size();
  };
  std::vector<float> out(q.size());
  auto run = [&](auto&& fn, const std::string& what) {
    std::fill(out.begin(), out.end(), NAN);
    fn();
    expect_close(out, what);
  };
  const float* qp = q.data();
  const int32_t* pp = pos.data();
  run([&] { attention(pool, qp, kv, pp, c.n, s, out.data()); }, "attention");
  for (GemmIsa isa : {GemmIsa::Portable, GemmIsa::Avx2, GemmIsa::Avx512}) {
    if (f16_isa_supported(isa))
      run([&] { attention_rows(pool, isa, qp, kv, pp, c.n, s, out.data()); },
          std::string("rows ") + gemm_isa_name(isa));
    if (gemm_isa_supported(isa))
      run([&] { attention_blocked(pool, isa, qp, kv, pp, c.n, s, out.data()); },
          std::string("blocked ") + gemm_isa_name(isa));
  }
}

// Each case with an f32 and with an fp16 cache.
void check_both(AttentionCase c, ThreadPool& pool) {
  for (KvType t : {KvType::F32, KvType::F16}) {
    c.type = t;
    check_case(c, pool);
  }
}

TEST(Attention, GqaMatchesNaiveReference) {
  ThreadPool pool1(1), pool2(2);
  for (int64_t n : {1, 7, 130})
    for (int64_t offset : {0, 37})
      for (int64_t window : {0, 50})
        for (ThreadPool* pool : {&pool1, &pool2})
          check_both(AttentionCase{6, 2, 64, n, offset, window}, *pool);
}

TEST(Attention, HeadLayoutsAndOddHeadDim) {
  ThreadPool pool(2);
  for (auto [heads, kv] : {std::pair<int64_t, int64_t>{4, 4}, {8, 1}, {6, 2}})
    for (int64_t hd : {80, 8, 128, 72, 36})
      for (int64_t n : {2, 17, 300})
        check_both(AttentionCase{heads, kv, hd, n, 3, n == 300 ? 129 : 0}, pool);
}

// Queries that see their own key block only partly, or key blocks no query of a block sees.
TEST(Attention, NonConsecutivePositionsAndWindows) {
  ThreadPool pool(2);
  for (int64_t window : {0, 1, 7, 200})
    check_both(AttentionCase{6, 2, 64, 260, 20, window, /*shuffled=*/true}, pool);
  check_both(AttentionCase{6, 2, 64, 260, 300, 1}, pool);  // window 1: each query sees only itself
}

}  // namespace
}  // namespace awq
