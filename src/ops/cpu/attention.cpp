#include "ops/cpu/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/cpu/attention_kernels.h"
#include "ops/cpu/f16_rows.h"

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
  float* kvw;   // [kKeys, hd]         fp16 caches: key, then value rows of the block widened

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
    take(b.kvw, kKeys * hd);
    return used;
  }
};

// Key or value rows [t0, t0 + bk) of KV head g as f32 with row stride `ld`: the cache itself
// when it is f32 (ld = the cache's row stride), else the rows widened into `buf` ([bk, hd],
// ld = hd). cache: [ctx, kvs] elements of kv type `type`.
const float* rows_f32(KvType type, const void* cache, int64_t kvs, int64_t t0, int64_t bk, int64_t g,
                      int64_t hd, float* buf, int64_t& ld) {
  if (type == KvType::F32) {
    ld = kvs;
    return static_cast<const float*>(cache) + t0 * kvs + g * hd;
  }
  const uint16_t* src = static_cast<const uint16_t*>(cache) + t0 * kvs + g * hd;
  for (int64_t t = 0; t < bk; ++t) f16_to_f32_row(src + t * kvs, buf + t * hd, hd);
  ld = hd;
  return buf;
}

}  // namespace

void attention_rows(ThreadPool& pool, GemmIsa isa, const float* q, const KvView& kv,
                    const int32_t* pos, int64_t n, const AttentionShape& s, float* out) {
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_stride = s.n_kv_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const AttendOneF16 f16_kernel = attend_one_f16(isa);
  // scores: [ctx], then row: [hd] (fp16, portable kernel) per thread
  const int64_t row_at = (s.ctx + 15) / 16 * 16;
  pool.reserve_scratch(size_t(row_at + hd) * sizeof(float));
  pool.parallel_for(n * s.n_heads, [&](int64_t b, int64_t e) {
    float* scores = ThreadPool::scratch<float>();
    float* row = scores + row_at;
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t i = idx / s.n_heads, h = idx % s.n_heads, g = h / group;
      const int64_t last = pos[i], first = first_key(last, s.window);
      const float* qh = q + (i * s.n_heads + h) * hd;  // [hd]
      float* oh = out + (i * s.n_heads + h) * hd;      // [hd]
      if (kv.type == KvType::F16)
        f16_kernel(qh, static_cast<const uint16_t*>(kv.k) + g * hd, static_cast<const uint16_t*>(kv.v) + g * hd,
                   kv_stride, first, last, hd, scale, scores, row, oh);
      else
        attend_one_f32(qh, static_cast<const float*>(kv.k) + g * hd, static_cast<const float*>(kv.v) + g * hd,
                       kv_stride, first, last, hd, scale, scores, oh);
    }
  });
}

void attention_blocked(ThreadPool& pool, GemmIsa isa, const float* q, const KvView& kv,
                       const int32_t* pos, int64_t n, const AttentionShape& s, float* out) {
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
      int64_t ldk;  // key rows [bk, hd], row stride ldk
      const float* kg = rows_f32(kv.type, kv.k, kvs, t0, bk, g, hd, b.kvw, ldk);
      for (int64_t p = 0; p * nr < bk; ++p) {
        const int nc = int(std::min(nr, bk - p * nr));
        float* panel = b.kt + p * hd * nr;  // [hd, nr]
        pack_panel_t(kg + p * nr * ldk, ldk, hd, nc, int(nr), panel);
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
      int64_t ldv;  // value rows [bk, hd], row stride ldv (the key rows in b.kvw are packed by now)
      const float* vg = rows_f32(kv.type, kv.v, kvs, t0, bk, g, hd, b.kvw, ldv);
      for (int64_t p = 0; p < hd_pad / nr; ++p) {
        float* panel = b.vp + p * kKeys * nr;  // [bk, nr]
        pack_panel(vg + p * nr, ldv, bk, int(std::min(nr, hd - p * nr)), int(nr), panel);
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

void attention(ThreadPool& pool, const float* q, const KvView& kv, const int32_t* pos, int64_t n,
               const AttentionShape& s, float* out) {
  if (n == 1) return attention_rows(pool, f16_best_isa(), q, kv, pos, n, s, out);
  attention_blocked(pool, gemm_best_isa(), q, kv, pos, n, s, out);
}

}  // namespace awq
