#include "ops/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"

namespace awq {

namespace {

constexpr int64_t kRows = 48;  // query rows (queries x heads of one KV group) per block
constexpr int64_t kKeys = 128; // keys per block (a multiple of every kernel's nr)

int64_t first_key(int64_t last, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, last - window + 1) : 0;
}

// Per-thread buffers of one (KV group, query block) task, carved from the pool's scratch.
struct BlockScratch {
  float* qs;    // [rows, hd]          scaled queries
  float* sp;    // [rows, kKeys]       scores, then probabilities
  float* o;     // [rows, hd_pad]      unnormalised output
  float *m, *l; // [rows]              running max, running sum of exp
  float* kt;    // [kKeys / nr][hd][nr] keys transposed into panels
  float* vp;    // [hd_pad / nr][kKeys][nr] values in panels

  // Lays the buffers out in `base` (nullptr: only counts); returns the floats used. Each buffer
  // starts on a 64-byte boundary.
  static int64_t layout(float* base, int64_t rows, int64_t hd, int64_t hd_pad, BlockScratch& b) {
    int64_t used = 0;
    auto take = [&](float*& p, int64_t n) {
      p = base ? base + used : nullptr;
      used += (n + 15) / 16 * 16;
    };
    take(b.qs, rows * hd), take(b.sp, rows * kKeys), take(b.o, rows * hd_pad);
    take(b.m, rows), take(b.l, rows), take(b.kt, kKeys * hd), take(b.vp, kKeys * hd_pad);
    return used;
  }
};

// exp(x) for x <= 0 (Cephes expf: range reduction by ln 2, degree-6 polynomial, ~2 ulp), in
// plain arithmetic the compiler vectorises; std::exp is a call per score and costs more than
// the Q K^T tile that produced the score. Inputs below -87 give ~1.6e-38 instead of less: the
// row maximum contributes exp(0) = 1 to every sum, so the difference is below f32 resolution.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting rounds to integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // x - n ln2, ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// s[j] = exp(s[j] - mx) for j < n; returns the sum. s: [n]. Partial sums in 16 lanes so
// the sum vectorises too (as dot_f32).
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
float exp_shift_sum(float* s, int64_t n, float mx) {
  for (int64_t j = 0; j < n; ++j) s[j] = exp_nonpositive(s[j] - mx);
  float acc[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; ++l) acc[l] += s[j + l];
  float sum = 0.0f;
  for (; j < n; ++j) sum += s[j];
  for (int l = 0; l < 16; ++l) sum += acc[l];
  return sum;
}

// max(m, s[0..n)). s: [n].
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
float max_of(const float* s, int64_t n, float m) {
  float acc[16];
  for (float& a : acc) a = m;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; ++l) acc[l] = acc[l] > s[j + l] ? acc[l] : s[j + l];
  for (; j < n; ++j) m = std::max(m, s[j]);
  for (float a : acc) m = std::max(m, a);
  return m;
}

// One query of one head against keys [first, last] of its KV head: scores, softmax (the
// blocked path's vectorised exp), weighted sum of the values. The decode step's attention; as
// plain loops with target clones so the portable build vectorises them too (dot_f32 is inline;
// o[j] accumulates over t in order).
// q: [hd]; key / value t at k + t * ld / v + t * ld; scores: [last - first + 1]; o: [hd].
__attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
void attend_one(const float* q, const float* k, const float* v, int64_t ld, int64_t first,
                int64_t last, int64_t hd, float scale, float* scores, float* o) {
  const int64_t nk = last - first + 1;
  for (int64_t t = first; t <= last; ++t) scores[t - first] = dot_f32(q, k + t * ld, hd) * scale;
  const float mx = max_of(scores, nk, -INFINITY);
  const float inv = 1.0f / exp_shift_sum(scores, nk, mx);
  std::fill(o, o + hd, 0.0f);
  for (int64_t t = first; t <= last; ++t) {
    const float p = scores[t - first] * inv;
    const float* vt = v + t * ld;
    for (int64_t j = 0; j < hd; ++j) o[j] += p * vt[j];
  }
}

}  // namespace

void attention_rows(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
                    const int32_t* pos, int64_t n, const AttentionShape& s, float* out) {
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_stride = s.n_kv_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  pool.reserve_scratch(size_t(s.ctx) * sizeof(float));  // scores: [ctx] per thread
  pool.parallel_for(n * s.n_heads, [&](int64_t b, int64_t e) {
    float* scores = ThreadPool::scratch<float>();
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t i = idx / s.n_heads, h = idx % s.n_heads, g = h / group;
      const int64_t last = pos[i], first = first_key(last, s.window);
      attend_one(q + (i * s.n_heads + h) * hd, k_cache + g * hd, v_cache + g * hd, kv_stride, first,
                 last, hd, scale, scores, out + (i * s.n_heads + h) * hd);
    }
  });
}

void attention_blocked(ThreadPool& pool, GemmIsa isa, const float* q, const float* k_cache,
                       const float* v_cache, const int32_t* pos, int64_t n, const AttentionShape& s,
                       float* out) {
  const TileKernel& tk = tile_kernel(isa);
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, kvs = s.n_kv_heads * hd;
  const int64_t qs_stride = s.n_heads * hd;  // one query's row in q and out
  const int64_t mr = tk.mr, nr = tk.nr, hd_pad = (hd + nr - 1) / nr * nr;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  // A block: bq consecutive queries x the `group` heads sharing KV head g, row r = il * group + hh.
  const int64_t bq = std::max<int64_t>(1, kRows / group);
  const int64_t q_blocks = (n + bq - 1) / bq, tasks = q_blocks * s.n_kv_heads;

  auto run_task = [&](int64_t t, const BlockScratch& b) {
    // Late query blocks see the most keys: hand them out first so the tail is short.
    const int64_t qb = q_blocks - 1 - t / s.n_kv_heads, g = t % s.n_kv_heads;
    const int64_t i0 = qb * bq, nq = std::min(bq, n - i0), rows = nq * group;
    int64_t lo = INT64_MAX, hi = -1;  // keys any query of the block sees
    for (int64_t il = 0; il < nq; ++il) {
      lo = std::min(lo, first_key(pos[i0 + il], s.window));
      hi = std::max<int64_t>(hi, pos[i0 + il]);
      // the group's heads of one query are adjacent in q: [group, hd]
      const float* src = q + (i0 + il) * qs_stride + g * group * hd;
      for (int64_t j = 0; j < group * hd; ++j) b.qs[il * group * hd + j] = src[j] * scale;
    }
    std::fill(b.o, b.o + rows * hd_pad, 0.0f);
    std::fill(b.m, b.m + rows, -INFINITY);
    std::fill(b.l, b.l + rows, 0.0f);

    for (int64_t t0 = lo; t0 <= hi; t0 += kKeys) {
      const int64_t bk = std::min(kKeys, hi + 1 - t0);
      bool any = false;  // with non-monotone positions a key block may be masked for every row
      for (int64_t il = 0; il < nq && !any; ++il)
        any = first_key(pos[i0 + il], s.window) < t0 + bk && pos[i0 + il] >= t0;
      if (!any) continue;
      // S = (scale Q) K^T: [rows, bk]
      const float* kg = k_cache + t0 * kvs + g * hd;  // key rows [bk, hd], row stride kvs
      for (int64_t p = 0; p * nr < bk; ++p) {
        const int nc = int(std::min(nr, bk - p * nr));
        float* panel = b.kt + p * hd * nr;  // [hd, nr]
        pack_panel_t(kg + p * nr * kvs, kvs, hd, nc, int(nr), panel);
        for (int64_t r0 = 0; r0 < rows; r0 += mr)
          tk.run(int(std::min(mr, rows - r0)), hd, b.qs + r0 * hd, hd, panel,
                 b.sp + r0 * kKeys + p * nr, kKeys, nc, false, nullptr);
      }
      // Mask, then online softmax: rescale what was accumulated under the old row max.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r / group;
        const int64_t j0 = std::max<int64_t>(0, first_key(pos[i], s.window) - t0);
        const int64_t j1 = std::min<int64_t>(bk, pos[i] + 1 - t0);  // valid keys [j0, j1)
        float* sr = b.sp + r * kKeys;
        if (j0 >= j1) {
          std::fill(sr, sr + bk, 0.0f);
          continue;
        }
        const float mx = max_of(sr + j0, j1 - j0, b.m[r]);
        const float corr = std::exp(b.m[r] - mx);  // 0 on the first valid block
        std::fill(sr, sr + j0, 0.0f);
        const float sum = exp_shift_sum(sr + j0, j1 - j0, mx);
        std::fill(sr + j1, sr + bk, 0.0f);
        b.l[r] = b.l[r] * corr + sum;
        b.m[r] = mx;
        if (corr != 1.0f)
          for (float *o = b.o + r * hd_pad, *e = o + hd; o < e; ++o) *o *= corr;
      }
      // O += P V: [rows, hd]
      const float* vg = v_cache + t0 * kvs + g * hd;  // value rows [bk, hd], row stride kvs
      for (int64_t p = 0; p < hd_pad / nr; ++p) {
        float* panel = b.vp + p * kKeys * nr;  // [bk, nr]
        pack_panel(vg + p * nr, kvs, bk, int(std::min(nr, hd - p * nr)), int(nr), panel);
        for (int64_t r0 = 0; r0 < rows; r0 += mr)
          tk.run(int(std::min(mr, rows - r0)), bk, b.sp + r0 * kKeys, kKeys, panel,
                 b.o + r0 * hd_pad + p * nr, hd_pad, int(nr), true, nullptr);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.0f / b.l[r];
      const float* o = b.o + r * hd_pad;
      float* dst = out + (i0 + r / group) * qs_stride + (g * group + r % group) * hd;
      for (int64_t d = 0; d < hd; ++d) dst[d] = o[d] * inv;
    }
  };

  BlockScratch sizes;
  const int64_t max_rows = std::min(bq, n) * group;
  pool.reserve_scratch(size_t(BlockScratch::layout(nullptr, max_rows, hd, hd_pad, sizes)) * sizeof(float));
  std::atomic<int64_t> next{0};
  pool.parallel_for(std::min<int64_t>(pool.size(), tasks), [&](int64_t, int64_t) {
    BlockScratch scratch;
    BlockScratch::layout(ThreadPool::scratch<float>(), max_rows, hd, hd_pad, scratch);
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) run_task(t, scratch);
  });
}

void attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* pos, int64_t n, const AttentionShape& s, float* out) {
  if (n == 1) return attention_rows(pool, q, k_cache, v_cache, pos, n, s, out);
  attention_blocked(pool, gemm_best_isa(), q, k_cache, v_cache, pos, n, s, out);
}

}  // namespace awq
