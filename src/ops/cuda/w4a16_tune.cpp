// Measured picks of the tiled W4A16 GEMM (w4a16_tune.h).
#include "ops/cuda/w4a16_tune.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/fill_random.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16_tune_cache.h"

namespace awq::cuda {

int64_t w4a16_tune_bucket(int64_t m, bool wgmma) {
  if (m < (wgmma ? kW4A16TuneMinTokens : kW4A16TuneMinTokensMma) || m > kW4A16TuneMaxTokens) return 0;
  const int64_t width = wgmma || m > 256 ? 64 : 32;
  return (m + width - 1) / width * width;
}

std::vector<int64_t> w4a16_tune_buckets(int64_t m_max, bool wgmma) {
  std::vector<int64_t> out;
  for (int64_t m = kW4A16TuneMinTokens; m <= std::min(m_max, kW4A16TuneMaxTokens); ++m) {
    const int64_t b = w4a16_tune_bucket(m, wgmma);
    if (b != 0 && (out.empty() || out.back() != b)) out.push_back(b);
  }
  // A bucket is timed at its upper end: only those within m_max.
  while (!out.empty() && out.back() > m_max) out.pop_back();
  return out;
}

int64_t w4a16_tune_small_bucket(int64_t m) {
  if (m < 1 || m > kW4A16TuneSmallMax) return 0;
  return m == 1 ? 1 : (m + 3) / 4 * 4;
}

std::vector<W4A16TiledChoice> w4a16_tune_candidates(int64_t k, const W4A16PickContext& ctx) {
  std::vector<W4A16TiledChoice> out;
  const int first_wgmma = w4a16_tiled_count() - w4a16_wgmma_count();
  const int64_t chunks = (k + 63) / 64;
  if (!ctx.wgmma) {
    for (int c = 0; c < first_wgmma; ++c)
      for (const int splits : {1, 2, 4})
        if (splits == 1 || (ctx.split_ok && chunks >= 4 * int64_t(splits))) out.push_back({c, splits});
    return out;
  }
  const int first_tma = first_wgmma + w4a16_wgmma_ws_first();
  for (int c = first_wgmma; c < w4a16_tiled_count(); ++c) {
    const W4A16TiledConfig cfg = w4a16_tiled_config(c);
    if (c >= first_tma && !ctx.tma) continue;
    if (cfg.stream_k && !ctx.stream_k) continue;
    if (cfg.l2_split && !ctx.l2_split) continue;
    // Clusters of 5 or 7 are not worth their odd shapes; the L2 form has no cluster (the rules
    // take any count 3..8 there).
    for (int splits = 1; splits <= 8; ++splits) {
      if (splits > 1 && (!ctx.split_ok || cfg.stream_k || chunks < 4 * int64_t(splits))) break;
      if (splits == 1 && cfg.l2_split) continue;  // the same kernel as its cluster twin's, unsplit
      if ((splits == 5 || splits == 7) && !cfg.l2_split) continue;
      out.push_back({c, splits});
    }
  }
  return out;
}

namespace {
bool same(W4A16TiledChoice a, W4A16TiledChoice b) { return a.config == b.config && a.splits == b.splits; }
}  // namespace

W4A16TiledChoice w4a16_tune_select(W4A16TiledChoice rule, const std::vector<W4A16Timed>& timed, double margin) {
  if (timed.empty()) return {-1, 0};
  const W4A16Timed* best = &timed[0];
  const W4A16Timed* ruled = nullptr;
  for (const W4A16Timed& t : timed) {
    if (t.us < best->us) best = &t;
    if (same(t.choice, rule)) ruled = &t;
  }
  if (ruled && best->us >= ruled->us * (1.0 - margin)) return rule;
  return best->choice;
}

bool w4a16_tune_steady(W4A16TiledChoice pick, W4A16TiledChoice rule, const std::vector<W4A16Timed>& timed,
                       double max_spread) {
  for (const W4A16Timed& t : timed) {
    if ((same(t.choice, pick) || same(t.choice, rule)) && t.spread > max_spread) return false;
  }
  return true;
}

namespace {

using Key = std::tuple<int64_t, int64_t, int, int64_t>;  // n, k, group, bucket
std::mutex table_mutex;
std::map<Key, W4A16TiledChoice>& table() {
  static std::map<Key, W4A16TiledChoice> t;
  return t;
}
// Whether the recorded tiled picks' buckets are the wgmma scheme's (w4a16_tune_bucket; the same for
// every shape of a process), so that a lookup finds its bucket without asking the device. Unset
// while no tiled pick is recorded.
std::optional<bool> tiled_bucket_scheme;
using SmallKey = std::tuple<int64_t, int64_t, int64_t>;  // n, k, small bucket
std::map<SmallKey, W4A16SmallPick>& small_table() {
  static std::map<SmallKey, W4A16SmallPick> t;
  return t;
}
// A small bucket's candidates in the timing's W4A16TiledChoice list: the dispatch's own choice,
// a register-streaming variant v as {kVariantBase + v, 0}, a K-slice configuration as itself.
constexpr W4A16TiledChoice kDispatchChoice{-2, 0};
constexpr int kVariantBase = 1 << 16;

// The candidates of small bucket m for k inputs: the dispatch's own choice (launch_w4a16 finds no
// recorded pick for the bucket while it is timed), every register-streaming variant and every
// K-slice configuration and split that fits.
std::vector<W4A16TiledChoice> small_candidates(int64_t m, int64_t k, const W4A16PickContext& ctx) {
  std::vector<W4A16TiledChoice> cands = {kDispatchChoice};
  for (int v = 0; v < w4a16_variant_count(); ++v) cands.push_back({kVariantBase + v, 0});
  for (int c = 0; c < w4a16_kslice_count(); ++c)
    for (const int splits : {1, 2, 3, 4, 6, 8})
      if ((splits == 1 || ctx.split_ok) && w4a16_kslice_fits(c, splits, m, k)) cands.push_back({c, splits});
  return cands;
}
// A small bucket's candidate as the pick the dispatch reads (the dispatch's own choice: neither a
// K-slice configuration nor a variant), and a cache file line's pick as a candidate ({-1, 0},
// never a candidate, where the line names both).
W4A16SmallPick small_pick_of(W4A16TiledChoice c) {
  W4A16SmallPick p;
  if (c.config >= kVariantBase) p.variant = c.config - kVariantBase;
  else if (c.config >= 0) p.ks = {c.config, c.splits};
  return p;
}
W4A16TiledChoice small_candidate_of(const W4A16CachedPick& line) {
  if (line.config == -1 && line.variant == -1) return kDispatchChoice;
  if (line.config == -1) return {kVariantBase + line.variant, 0};
  return line.variant == -1 ? W4A16TiledChoice{line.config, line.splits} : W4A16TiledChoice{-1, 0};
}

// Timing, in two stages. Screening: each candidate once to warm up (a kernel's first launch
// may load its module), then one timed call. Final: the kScreened fastest of those and the rules'
// pick, each kReps back-to-back calls between two events, kRounds rounds over them (so a slow
// moment of the GPU does not hit one candidate twice), the fastest round kept. kMargin: how much
// faster than the rules' pick a tile must be to replace it. Session 30 (H200) raised the final
// stage from 6 candidates x 4 calls x 2 rounds: with 4 calls of a 5-10 us kernel, the event and
// the first launch's latency weigh on each mean, and two tunings of one 7B picked different
// kernels for o_proj at m = 1; the cache file (w4a16_tune_cache.h) pays the longer timing once.
constexpr int kScreened = 8, kReps = 16, kRounds = 3;
constexpr double kMargin = 0.03;
// w4a16_tune_steady's bound for saving a pick in the cache file.
constexpr double kMaxSpread = 0.15;

// FNV-1a over the numbers a build's picks mean something for.
struct Signature {
  uint64_t h = 1469598103934665603ull;
  void add(int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= uint64_t(v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
};

// The cache key (w4a16_tune_cache.h): what a recorded pick depends on. The device, driver and
// runtime; whether the small buckets are timed with PDL on stream s (pdl.h: launches on the legacy
// stream never carry it); and a signature of the kernel tables (a pick is an index into them) and of
// the switches that change the candidates or the dispatch's own choice (W4A16PickContext and the
// AWQ_W4A16_* switches of the small-batch kernels).
std::string cache_key(const W4A16PickContext& ctx, cudaStream_t s) {
  int dev = 0, driver = 0, runtime = 0;
  AWQ_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  AWQ_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  AWQ_CUDA_CHECK(cudaDriverGetVersion(&driver));
  AWQ_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  Signature sig;
  sig.add(2);  // the format of this signature (2: the mma.sync tiles' buckets, session 31)
  sig.add(w4a16_tiled_count());
  for (int c = 0; c < w4a16_tiled_count(); ++c) {
    const W4A16TiledConfig t = w4a16_tiled_config(c);
    for (int64_t v : {t.tt, t.rt, t.wt, t.wr, t.stages, t.bm, t.bn, t.threads}) sig.add(v);
    for (bool v : {t.wgmma, t.stream_k, t.l2_split}) sig.add(v);
  }
  sig.add(w4a16_kslice_count());
  for (int c = 0; c < w4a16_kslice_count(); ++c) {
    const W4A16KSliceConfig q = w4a16_kslice_config(c);
    for (int64_t v : {q.mt, q.wn, q.wk, q.u}) sig.add(v);
  }
  sig.add(w4a16_variant_count());
  for (int c = 0; c < w4a16_variant_count(); ++c) {
    const W4A16Variant v = w4a16_variant(c);
    for (int64_t f : {v.mt, v.wk, v.wn, v.rt, int(v.xs), int(v.sa)}) sig.add(f);
  }
  sig.add(ctx.sms);
  sig.add(ctx.smem_optin);
  for (bool v : {ctx.split_ok, ctx.wgmma, ctx.tma, ctx.wave_tiles, ctx.l2_split, ctx.stream_k, ctx.wgmma_from_17,
                 ctx.split3, ctx.wave_mid, ctx.t256_from_161, ctx.wide_mid, w4a16_kslice_from_env(),
                 w4a16_kslice_pdl_from_env(), w4a16_kslice_thin_from_env(), w4a16_xsmem_from_env(),
                 w4a16_scale_after_from_env(), w4a16_long_k_from_env(), w4a16_cluster_push_from_env()})
    sig.add(v);
  sig.add(int(w4a16_path_from_env()));
  char key[512];
  std::snprintf(key, sizeof key, "%s|sm_%d%d|%d SMs|driver %d|runtime %d|pdl %d|tables %016llx", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount, driver, runtime, pdl_launch(s) ? int(pdl_mode()) : 0,
                (unsigned long long)sig.h);
  return key;
}

}  // namespace

W4A16TuneReport w4a16_tune(const std::vector<W4A16Codes>& weights, int64_t n, int64_t k, int group, int64_t m_max,
                           __half* x, __half* y, cudaStream_t s) {
  W4A16TuneReport r;
  if (weights.empty()) {
    r.why_not = "no weights to time";
    return r;
  }
  const W4A16PickContext ctx = w4a16_pick_context();
  // Every GPU: the tiled buckets' candidates are the sm_90a wgmma tiles, or elsewhere the mma.sync
  // tiles (in finer buckets: w4a16_tune_bucket); the small batches' kernels run everywhere.
  const bool tiled_tunable = w4a16_path_from_env() != W4A16Path::Legacy;
  const bool small_tunable = w4a16_kslice_from_env() && w4a16_path_from_env() == W4A16Path::Auto;
  if (!tiled_tunable && !small_tunable) {
    r.why_not = "AWQ_W4A16_KERNEL=legacy runs the register-streaming kernels' rules for every m (nothing to time)";
    return r;
  }
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  AWQ_CUDA_CHECK(cudaStreamIsCapturing(s, &capturing));
  if (capturing != cudaStreamCaptureStatusNone) {
    r.why_not = "the stream is being captured into a graph";
    return r;
  }
  std::vector<int64_t> buckets, small;
  {
    const std::lock_guard<std::mutex> lock(table_mutex);
    if (tiled_tunable)
      for (const int64_t upper : w4a16_tune_buckets(m_max, ctx.wgmma))
        if (!table().count(Key{n, k, group, upper})) buckets.push_back(upper);
    // The small buckets where the dispatch may run the K-slice kernels (x aligned: the scratch is).
    if (small_tunable)
      for (int64_t upper : {1, 4, 8, 12, 16})
        if (upper <= m_max && !small_table().count(SmallKey{n, k, upper})) small.push_back(upper);
  }
  if (buckets.empty() && small.empty()) return r;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::pair<Key, W4A16TiledChoice>> picks;
  std::vector<std::pair<SmallKey, W4A16SmallPick>> small_picks;
  // The cache file's picks for the buckets not yet tuned in this process; only what they leave is timed.
  r.cache = w4a16_tune_cache_path_from_env();
  const std::string key = r.cache.empty() ? "" : cache_key(ctx, s);
  const std::vector<W4A16TiledChoice> tiled_cands = w4a16_tune_candidates(k, ctx);  // every tiled bucket's
  if (!r.cache.empty()) {
    for (const W4A16CachedPick& p : w4a16_cache_read(r.cache, key)) {
      if (p.n != n || p.k != k) continue;
      if (!p.small) {
        const W4A16TiledChoice c{p.config, p.splits};
        const auto b = std::find(buckets.begin(), buckets.end(), p.bucket);
        const bool allowed =
            std::any_of(tiled_cands.begin(), tiled_cands.end(), [&](W4A16TiledChoice t) { return same(t, c); });
        if (p.group != group || b == buckets.end() || !allowed) continue;
        buckets.erase(b);
        picks.push_back({Key{n, k, group, p.bucket}, c});
        if (!same(c, w4a16_pick_tiled(p.bucket, n, k, ctx))) ++r.changed;
      } else {
        const W4A16TiledChoice c = small_candidate_of(p);
        const auto b = std::find(small.begin(), small.end(), p.bucket);
        if (b == small.end()) continue;
        const std::vector<W4A16TiledChoice> small_cands = small_candidates(p.bucket, k, ctx);
        if (std::none_of(small_cands.begin(), small_cands.end(), [&](W4A16TiledChoice t) { return same(t, c); }))
          continue;
        small.erase(b);
        small_picks.push_back({SmallKey{n, k, p.bucket}, small_pick_of(c)});
        if (!same(c, kDispatchChoice)) ++r.changed;
      }
      ++r.cached;
    }
  }
  const size_t cached_picks = picks.size(), cached_small = small_picks.size();
  // Random inputs, never zeros: zeros would flatter the compute-heavier tiles (fill_random.h).
  if (!buckets.empty() || !small.empty())
    fill_uniform_f16(x, std::min(m_max, kW4A16TuneMaxTokens) * k, -1.0f, 1.0f, uint32_t(n * 31 + k), s);
  cudaEvent_t start = nullptr, stop = nullptr;
  AWQ_CUDA_CHECK(cudaEventCreate(&start));
  AWQ_CUDA_CHECK(cudaEventCreate(&stop));
  size_t next = 0;  // the weight the next call reads (cycling)
  std::vector<bool> small_steady, steady;  // per timed bucket, in order: save it in the cache file
  try {
    // Screening, then the final timing (above), of `cands`; run(c, w) launches candidate c on
    // weight w. Returns the final times.
    const auto measure = [&](const std::vector<W4A16TiledChoice>& cands, W4A16TiledChoice rule, auto&& run) {
      // The mean time of `calls` back-to-back calls of c (after `warm` untimed ones), cycling weights.
      const auto time = [&](W4A16TiledChoice c, int warm, int calls) {
        for (int i = 0; i < warm; ++i) run(c, weights[next++ % weights.size()]);
        AWQ_CUDA_CHECK(cudaEventRecord(start, s));
        for (int i = 0; i < calls; ++i) run(c, weights[next++ % weights.size()]);
        AWQ_CUDA_CHECK(cudaEventRecord(stop, s));
        AWQ_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0.0f;
        AWQ_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        return double(ms) * 1000.0 / calls;
      };
      std::vector<W4A16Timed> screened;
      for (const W4A16TiledChoice& c : cands) screened.push_back({c, time(c, 1, 1)});
      std::sort(screened.begin(), screened.end(), [](const W4A16Timed& a, const W4A16Timed& b) { return a.us < b.us; });
      std::vector<W4A16Timed> timed;
      for (const W4A16Timed& t : screened) {
        const bool is_rule = same(t.choice, rule);
        if (int(timed.size()) < kScreened || is_rule) timed.push_back({t.choice, 1e30});
      }
      std::vector<double> slowest(timed.size(), 0.0);
      for (int round = 0; round < kRounds; ++round)
        for (size_t i = 0; i < timed.size(); ++i) {
          const double us = time(timed[i].choice, 0, kReps);
          timed[i].us = std::min(timed[i].us, us);
          slowest[i] = std::max(slowest[i], us);
        }
      for (size_t i = 0; i < timed.size(); ++i) timed[i].spread = slowest[i] / timed[i].us - 1.0;
      return timed;
    };
    for (const int64_t m : small) {
      const std::vector<W4A16TiledChoice> cands = small_candidates(m, k, ctx);
      const auto run = [&](W4A16TiledChoice c, const W4A16Codes& w) {
        if (c.config == kDispatchChoice.config)
          launch_w4a16(w.codes, w.params, x, nullptr, y, n, k, group, m, W4A16Path::Auto, s);
        else if (c.config >= kVariantBase)
          launch_w4a16_variant(c.config - kVariantBase, w.codes, w.params, x, nullptr, y, n, k, group, m, s);
        else
          launch_w4a16_kslice(c.config, c.splits, w.codes, w.params, x, nullptr, y, n, k, group, m, s);
      };
      const std::vector<W4A16Timed> timed = measure(cands, kDispatchChoice, run);
      const W4A16TiledChoice pick = w4a16_tune_select(kDispatchChoice, timed, kMargin);
      if (pick.config == -1) continue;
      small_steady.push_back(w4a16_tune_steady(pick, kDispatchChoice, timed, kMaxSpread));
      small_picks.push_back({SmallKey{n, k, m}, small_pick_of(pick)});  // kept: nothing recorded but the bucket
      ++r.buckets;
      if (!same(pick, kDispatchChoice)) ++r.changed;
    }
    for (const int64_t m : buckets) {
      const W4A16TiledChoice rule = w4a16_pick_tiled(m, n, k, ctx);
      const auto run_tiled = [&](W4A16TiledChoice c, const W4A16Codes& w) {
        launch_w4a16_tiled(c.config, c.splits, w.codes, w.params, x, nullptr, y, n, k, group, m, s);
      };
      const std::vector<W4A16Timed> timed = measure(tiled_cands, rule, run_tiled);
      const W4A16TiledChoice pick = w4a16_tune_select(rule, timed, kMargin);
      if (pick.config < 0) continue;
      steady.push_back(w4a16_tune_steady(pick, rule, timed, kMaxSpread));
      picks.push_back({Key{n, k, group, m}, pick});
      ++r.buckets;
      if (!same(pick, rule)) ++r.changed;
    }
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  AWQ_CUDA_CHECK(cudaEventDestroy(start));
  AWQ_CUDA_CHECK(cudaEventDestroy(stop));
  {
    const std::lock_guard<std::mutex> lock(table_mutex);
    for (const auto& [slot, pick] : picks) table().emplace(slot, pick);
    if (!picks.empty()) tiled_bucket_scheme = ctx.wgmma;
    for (const auto& [slot, pick] : small_picks) small_table().emplace(slot, pick);
  }
  if (!r.cache.empty() && r.buckets > 0) {
    std::vector<W4A16CachedPick> fresh;
    for (size_t i = cached_picks; i < picks.size(); ++i) {
      const auto& [slot, pick] = picks[i];
      if (steady[i - cached_picks]) fresh.push_back({false, n, k, group, std::get<3>(slot), pick.config, pick.splits, -1});
    }
    for (size_t i = cached_small; i < small_picks.size(); ++i) {
      const auto& [slot, pick] = small_picks[i];
      if (small_steady[i - cached_small])
        fresh.push_back({true, n, k, 0, std::get<2>(slot), pick.ks.config, pick.ks.config >= 0 ? pick.ks.splits : 0,
                         pick.variant});
    }
    r.unsteady = r.buckets - int(fresh.size());
    if (!fresh.empty()) w4a16_cache_write(r.cache, key, fresh, &r.cache_error);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

W4A16TiledChoice w4a16_tuned_pick(int64_t m, int64_t n, int64_t k, int group) {
  const std::lock_guard<std::mutex> lock(table_mutex);
  if (!tiled_bucket_scheme) return {-1, 0};
  const bool wgmma = *tiled_bucket_scheme;
  const int64_t bucket = w4a16_tune_bucket(m, wgmma);
  // Without AWQ_W4A16_WGMMA_FROM_17, m = 17..32 run the mma.sync 32-token tiles by the rules on a
  // wgmma device: not what its first bucket timed.
  if (bucket == 0 || (wgmma && m <= 32 && !w4a16_wgmma_from_17_from_env())) return {-1, 0};
  const auto it = table().find(Key{n, k, group, bucket});
  return it == table().end() ? W4A16TiledChoice{-1, 0} : it->second;
}

W4A16SmallPick w4a16_tuned_small(int64_t m, int64_t n, int64_t k) {
  const int64_t bucket = w4a16_tune_small_bucket(m);
  if (bucket == 0) return {};
  const std::lock_guard<std::mutex> lock(table_mutex);
  const auto it = small_table().find(SmallKey{n, k, bucket});
  return it == small_table().end() ? W4A16SmallPick{} : it->second;
}

void w4a16_tune_forget() {
  const std::lock_guard<std::mutex> lock(table_mutex);
  table().clear();
  small_table().clear();
  tiled_bucket_scheme.reset();
}

}  // namespace awq::cuda
