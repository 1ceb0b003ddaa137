// Measured picks of the tiled W4A16 GEMM (w4a16_tune.h).
#include "ops/cuda/w4a16_tune.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

#include "ops/cuda/cuda_check.h"

namespace awq::cuda {

int64_t w4a16_tune_bucket(int64_t m) {
  if (m < kW4A16TuneMinTokens || m > kW4A16TuneMaxTokens) return 0;
  return (m + 63) / 64 * 64;
}

int64_t w4a16_tune_small_bucket(int64_t m) {
  if (m < 2 || m > kW4A16TuneSmallMax) return 0;
  return (m + 3) / 4 * 4;
}

std::vector<W4A16TiledChoice> w4a16_tune_candidates(int64_t k, const W4A16PickContext& ctx) {
  std::vector<W4A16TiledChoice> out;
  if (!ctx.wgmma) return out;
  const int first_wgmma = w4a16_tiled_count() - w4a16_wgmma_count();
  const int first_tma = first_wgmma + w4a16_wgmma_ws_first();
  const int64_t chunks = (k + 63) / 64;
  for (int c = first_wgmma; c < w4a16_tiled_count(); ++c) {
    const W4A16TiledConfig cfg = w4a16_tiled_config(c);
    if (c >= first_tma && !ctx.tma) continue;
    if (cfg.stream_k && !ctx.stream_k) continue;
    if (cfg.l2_split && !ctx.l2_split) continue;
    // Clusters of 5 or 7 are not worth their odd shapes; the L2 form has no cluster (the rules
    // take any count 3..8 there).
    for (int splits = 1; splits <= 8; ++splits) {
      if (splits > 1 && (!ctx.split_ok || cfg.stream_k || chunks < 4 * int64_t(splits))) break;
      if ((splits == 5 || splits == 7) && !cfg.l2_split) continue;
      out.push_back({c, splits});
    }
  }
  return out;
}

W4A16TiledChoice w4a16_tune_select(W4A16TiledChoice rule, const std::vector<W4A16Timed>& timed, double margin) {
  if (timed.empty()) return {-1, 0};
  const W4A16Timed* best = &timed[0];
  const W4A16Timed* ruled = nullptr;
  for (const W4A16Timed& t : timed) {
    if (t.us < best->us) best = &t;
    if (t.choice.config == rule.config && t.choice.splits == rule.splits) ruled = &t;
  }
  if (ruled && best->us >= ruled->us * (1.0 - margin)) return rule;
  return best->choice;
}

namespace {

using Key = std::tuple<int64_t, int64_t, int, int64_t>;  // n, k, group, bucket
std::mutex table_mutex;
std::map<Key, W4A16TiledChoice>& table() {
  static std::map<Key, W4A16TiledChoice> t;
  return t;
}
using SmallKey = std::tuple<int64_t, int64_t, int64_t>;  // n, k, small bucket
std::map<SmallKey, W4A16KSliceChoice>& small_table() {
  static std::map<SmallKey, W4A16KSliceChoice> t;
  return t;
}
// The dispatch's own choice at small m, in the candidates' list of a small bucket.
constexpr W4A16TiledChoice kDispatchChoice{-2, 0};

// Timing, in two stages. Screening: each candidate once to warm up (a kernel's first launch
// may load its module), then one timed call. Final: the kScreened fastest of those and the rules'
// pick, each kReps back-to-back calls between two events, kRounds rounds over them (so a slow
// moment of the GPU does not hit one candidate twice), the faster round kept. kMargin: how much
// faster than the rules' pick a tile must be to replace it.
constexpr int kScreened = 6, kReps = 4, kRounds = 2;
constexpr double kMargin = 0.03;

}  // namespace

W4A16TuneReport w4a16_tune(const std::vector<W4A16Codes>& weights, int64_t n, int64_t k, int group, int64_t m_max,
                           __half* x, __half* y, cudaStream_t s) {
  W4A16TuneReport r;
  if (weights.empty()) {
    r.why_not = "no weights to time";
    return r;
  }
  const W4A16PickContext ctx = w4a16_pick_context();
  if (!ctx.wgmma) {
    r.why_not = "no sm_90a wgmma kernels on this device (the rules' picks run)";
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
    for (int64_t upper = 64; upper <= std::min(m_max, kW4A16TuneMaxTokens); upper += 64)
      if (!table().count(Key{n, k, group, upper})) buckets.push_back(upper);
    // The small buckets where the dispatch may run the K-slice kernels (x aligned: the scratch is).
    if (w4a16_kslice_from_env() && w4a16_path_from_env() == W4A16Path::Auto)
      for (int64_t upper = 4; upper <= std::min(m_max, kW4A16TuneSmallMax); upper += 4)
        if (!small_table().count(SmallKey{n, k, upper})) small.push_back(upper);
  }
  if (buckets.empty() && small.empty()) return r;
  const auto t0 = std::chrono::steady_clock::now();
  cudaEvent_t start = nullptr, stop = nullptr;
  AWQ_CUDA_CHECK(cudaEventCreate(&start));
  AWQ_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<std::pair<Key, W4A16TiledChoice>> picks;
  size_t next = 0;  // the weight the next call reads (cycling)
  std::vector<std::pair<SmallKey, W4A16KSliceChoice>> small_picks;
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
        const bool is_rule = t.choice.config == rule.config && t.choice.splits == rule.splits;
        if (int(timed.size()) < kScreened || is_rule) timed.push_back({t.choice, 1e30});
      }
      for (int round = 0; round < kRounds; ++round)
        for (W4A16Timed& t : timed) t.us = std::min(t.us, time(t.choice, 0, kReps));
      return timed;
    };
    for (const int64_t m : small) {
      // The dispatch's own choice (launch_w4a16 finds no recorded pick for this bucket yet) and
      // every K-slice configuration and split that fits.
      std::vector<W4A16TiledChoice> cands = {kDispatchChoice};
      for (int c = 0; c < w4a16_kslice_count(); ++c)
        for (const int splits : {1, 2, 3, 4, 6, 8})
          if ((splits == 1 || ctx.split_ok) && w4a16_kslice_fits(c, splits, m, k)) cands.push_back({c, splits});
      const auto run = [&](W4A16TiledChoice c, const W4A16Codes& w) {
        if (c.config == kDispatchChoice.config)
          launch_w4a16(w.codes, w.params, x, nullptr, y, n, k, group, m, W4A16Path::Auto, s);
        else
          launch_w4a16_kslice(c.config, c.splits, w.codes, w.params, x, nullptr, y, n, k, group, m, s);
      };
      const W4A16TiledChoice pick = w4a16_tune_select(kDispatchChoice, measure(cands, kDispatchChoice, run), kMargin);
      if (pick.config == -1) continue;
      const bool kept = pick.config == kDispatchChoice.config;
      small_picks.push_back({SmallKey{n, k, m}, kept ? W4A16KSliceChoice{} : W4A16KSliceChoice{pick.config, pick.splits}});
      ++r.buckets;
      if (!kept) ++r.changed;
    }
    for (const int64_t m : buckets) {
      const std::vector<W4A16TiledChoice> cands = w4a16_tune_candidates(k, ctx);
      const W4A16TiledChoice rule = w4a16_pick_tiled(m, n, k, ctx);
      const auto run_tiled = [&](W4A16TiledChoice c, const W4A16Codes& w) {
        launch_w4a16_tiled(c.config, c.splits, w.codes, w.params, x, nullptr, y, n, k, group, m, s);
      };
      const W4A16TiledChoice pick = w4a16_tune_select(rule, measure(cands, rule, run_tiled), kMargin);
      if (pick.config < 0) continue;
      picks.push_back({Key{n, k, group, m}, pick});
      ++r.buckets;
      if (pick.config != rule.config || pick.splits != rule.splits) ++r.changed;
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
    for (const auto& [key, pick] : picks) table().emplace(key, pick);
    for (const auto& [key, pick] : small_picks) small_table().emplace(key, pick);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

W4A16TiledChoice w4a16_tuned_pick(int64_t m, int64_t n, int64_t k, int group) {
  const int64_t bucket = w4a16_tune_bucket(m);
  if (bucket == 0 || (m <= 32 && !w4a16_wgmma_from_17_from_env())) return {-1, 0};
  const std::lock_guard<std::mutex> lock(table_mutex);
  const auto it = table().find(Key{n, k, group, bucket});
  return it == table().end() ? W4A16TiledChoice{-1, 0} : it->second;
}

W4A16TiledChoice w4a16_run_tiled_pick(int64_t m, int64_t n, int64_t k, int group) {
  const W4A16TiledChoice t = w4a16_tuned_pick(m, n, k, group);
  return t.config >= 0 ? t : w4a16_default_tiled(m, n, k);
}

W4A16KSliceChoice w4a16_tuned_kslice(int64_t m, int64_t n, int64_t k) {
  const int64_t bucket = w4a16_tune_small_bucket(m);
  if (bucket == 0) return {};
  const std::lock_guard<std::mutex> lock(table_mutex);
  const auto it = small_table().find(SmallKey{n, k, bucket});
  return it == small_table().end() ? W4A16KSliceChoice{} : it->second;
}

W4A16KSliceChoice w4a16_run_kslice_pick(int64_t m, int64_t n, int64_t k) {
  const W4A16KSliceChoice t = w4a16_tuned_kslice(m, n, k);
  return t.config >= 0 ? t : w4a16_default_kslice(m, n, k);
}

void w4a16_tune_forget() {
  const std::lock_guard<std::mutex> lock(table_mutex);
  table().clear();
  small_table().clear();
}

}  // namespace awq::cuda
