// The measured picks of the tiled W4A16 GEMM (ops/cuda/w4a16_tune.h): the parts that need no GPU
// (buckets, candidates, the choice from measured times, the switch), so CI checks them. On a GPU,
// CudaW4A16.TuneRecordsWhatTheLinearRuns (test_cuda_w4a16.cpp) times real kernels and
// CudaTest.W4A16TuningAtLoad (test_cuda_model.cpp) the model's load.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"
#include "ops/cuda/w4a16_tune_cache.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace cuda = awq::cuda;

// No test reads or writes the user's cache of measured picks (w4a16_tune_cache.h): every process
// of awq_tests, and every awq it starts, times as if there were none, unless a test points
// AWQ_W4A16_TUNE_CACHE at a file of its own (and back to "0" after).
const bool kNoTuneCache = (setenv("AWQ_W4A16_TUNE_CACHE", "0", 1), true);

bool same_choice(cuda::W4A16TiledChoice a, cuda::W4A16TiledChoice b) {
  return a.config == b.config && a.splits == b.splits;
}

TEST(CudaW4A16Tune, BucketsOf64TokensFrom17To512) {
  EXPECT_EQ(cuda::w4a16_tune_bucket(1), 0);
  EXPECT_EQ(cuda::w4a16_tune_bucket(16), 0);   // the K-slice and register-streaming kernels
  EXPECT_EQ(cuda::w4a16_tune_bucket(17), 64);  // the 64-token tiles' grid from m = 17 on
  EXPECT_EQ(cuda::w4a16_tune_bucket(33), 64);
  EXPECT_EQ(cuda::w4a16_tune_bucket(64), 64);
  EXPECT_EQ(cuda::w4a16_tune_bucket(65), 128);
  EXPECT_EQ(cuda::w4a16_tune_bucket(160), 192);
  EXPECT_EQ(cuda::w4a16_tune_bucket(256), 256);
  EXPECT_EQ(cuda::w4a16_tune_bucket(257), 320);
  EXPECT_EQ(cuda::w4a16_tune_bucket(512), 512);
  EXPECT_EQ(cuda::w4a16_tune_bucket(513), 0);  // the 256 x 128 tile's rule
  EXPECT_EQ(cuda::w4a16_tune_buckets(256, true), (std::vector<int64_t>{64, 128, 192, 256}));
  EXPECT_EQ(cuda::w4a16_tune_buckets(200, true), (std::vector<int64_t>{64, 128, 192}));  // timed at the upper end
  EXPECT_EQ(cuda::w4a16_tune_buckets(4096, true).size(), 8u);
  EXPECT_TRUE(cuda::w4a16_tune_buckets(40, true).empty());
}

// Without the wgmma tiles (sm_80, sm_89, or AWQ_W4A16_WGMMA=0), the mma.sync tiles: m = 17..64 keep
// the rules; buckets of 32 tokens up to 256, of 64 up to 512.
TEST(CudaW4A16Tune, MmaSyncBucketsFrom65) {
  EXPECT_EQ(cuda::w4a16_tune_bucket(17, false), 0);
  EXPECT_EQ(cuda::w4a16_tune_bucket(64, false), 0);
  EXPECT_EQ(cuda::w4a16_tune_bucket(65, false), 96);
  EXPECT_EQ(cuda::w4a16_tune_bucket(100, false), 128);
  EXPECT_EQ(cuda::w4a16_tune_bucket(128, false), 128);
  EXPECT_EQ(cuda::w4a16_tune_bucket(129, false), 160);
  EXPECT_EQ(cuda::w4a16_tune_bucket(256, false), 256);
  EXPECT_EQ(cuda::w4a16_tune_bucket(257, false), 320);
  EXPECT_EQ(cuda::w4a16_tune_bucket(512, false), 512);
  EXPECT_EQ(cuda::w4a16_tune_bucket(513, false), 0);
  EXPECT_EQ(cuda::w4a16_tune_buckets(256, false), (std::vector<int64_t>{96, 128, 160, 192, 224, 256}));
  EXPECT_TRUE(cuda::w4a16_tune_buckets(64, false).empty());
  EXPECT_EQ(cuda::w4a16_tune_buckets(512, false).size(), 10u);
}

TEST(CudaW4A16Tune, SmallBatchBucketsOneTokenThen4TokensTo16) {
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(0), 0);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(1), 1);  // batch-1 decode: a bucket of its own
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(2), 4);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(4), 4);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(5), 8);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(9), 12);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(16), 16);
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(17), 0);  // the tiled buckets
}

// Layer shapes of the models the rules were and were not fitted on (n x k): Llama-2-7B, Llama-3-8B,
// Qwen2.5-7B, Qwen3-8B, a 13B and a 70B, and a small one (k = 256: 4 chunks, no split fits).
struct TuneShape {
  int64_t n, k;
};
const TuneShape kTuneShapes[] = {{12288, 4096}, {4096, 4096},  {22016, 4096}, {4096, 11008}, {6144, 4096},
                                 {28672, 4096}, {4096, 14336}, {4608, 3584},  {37888, 3584}, {3584, 18944},
                                 {24576, 4096}, {15360, 5120}, {5120, 5120},  {57344, 8192}, {8192, 28672},
                                 {768, 256}};

// The candidates include the rules' pick at every bucket and shape, on every device kind with the
// wgmma GEMM (so the tuner can always keep it), and only configurations the context allows.
TEST(CudaW4A16Tune, CandidatesHoldTheRulesPickAndRespectTheContext) {
  const int first_wgmma = cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count();
  const int first_tma = first_wgmma + cuda::w4a16_wgmma_ws_first();
  cuda::W4A16PickContext on;
  cuda::W4A16PickContext no_tma = on, no_sk = on, no_l2 = on, no_clusters = on, sms114 = on;
  no_tma.tma = false;
  no_sk.stream_k = false;
  no_l2.l2_split = false;
  no_clusters.split_ok = false;
  sms114.sms = 114;
  for (const cuda::W4A16PickContext& ctx : {on, no_tma, no_sk, no_l2, no_clusters, sms114}) {
    for (const TuneShape& sh : kTuneShapes) {
      for (int64_t m = 64; m <= 512; m += 64) {
        const std::string where = std::to_string(sh.n) + " x " + std::to_string(sh.k) + " m " + std::to_string(m) +
                                  " tma " + std::to_string(ctx.tma) + " clusters " + std::to_string(ctx.split_ok) +
                                  " sms " + std::to_string(ctx.sms);
        const std::vector<cuda::W4A16TiledChoice> cands = cuda::w4a16_tune_candidates(sh.k, ctx);
        ASSERT_FALSE(cands.empty()) << where;
        const cuda::W4A16TiledChoice rule = cuda::w4a16_pick_tiled(m, sh.n, sh.k, ctx);
        EXPECT_TRUE(std::any_of(cands.begin(), cands.end(), [&](auto c) { return same_choice(c, rule); }))
            << where << ": the rules' pick " << rule.config << " split " << rule.splits << " is not a candidate";
        const int64_t chunks = (sh.k + 63) / 64;
        for (const cuda::W4A16TiledChoice& c : cands) {
          const cuda::W4A16TiledConfig cfg = cuda::w4a16_tiled_config(c.config);
          EXPECT_TRUE(cfg.wgmma) << where << " config " << c.config;
          EXPECT_TRUE(ctx.tma || c.config < first_tma) << where << ": a TMA tile without TMA";
          EXPECT_TRUE(ctx.stream_k || !cfg.stream_k) << where << ": a stream-K tile with AWQ_W4A16_STREAM_K=0";
          EXPECT_TRUE(ctx.l2_split || !cfg.l2_split) << where << ": an L2 split with AWQ_W4A16_L2_SPLIT=0";
          if (c.splits > 1) {
            EXPECT_TRUE(ctx.split_ok) << where;
            EXPECT_FALSE(cfg.stream_k) << where << ": a stream-K tile takes no splits";
            EXPECT_GE(chunks, 4 * c.splits) << where << ": a split under 4 chunks";
          }
        }
      }
    }
  }
  // Without the wgmma GEMM (sm_80: no clusters either; an sm_90 GPU with AWQ_W4A16_WGMMA=0: with
  // them): the mma.sync tiles, the rules' pick among them at every bucket of that scheme.
  cuda::W4A16PickContext sm80 = on, mma_sm90 = on;
  sm80.wgmma = sm80.tma = sm80.split_ok = false;
  mma_sm90.wgmma = mma_sm90.tma = false;
  for (const cuda::W4A16PickContext& ctx : {sm80, mma_sm90}) {
    for (const TuneShape& sh : kTuneShapes) {
      const std::vector<cuda::W4A16TiledChoice> cands = cuda::w4a16_tune_candidates(sh.k, ctx);
      ASSERT_FALSE(cands.empty());
      for (const cuda::W4A16TiledChoice& c : cands) {
        EXPECT_FALSE(cuda::w4a16_tiled_config(c.config).wgmma) << "config " << c.config;
        EXPECT_TRUE(c.splits == 1 || (ctx.split_ok && (sh.k + 63) / 64 >= 4 * c.splits)) << "split " << c.splits;
      }
      for (const int64_t m : cuda::w4a16_tune_buckets(512, false)) {
        const cuda::W4A16TiledChoice rule = cuda::w4a16_pick_tiled(m, sh.n, sh.k, ctx);
        EXPECT_TRUE(std::any_of(cands.begin(), cands.end(), [&](auto c) { return same_choice(c, rule); }))
            << sh.n << " x " << sh.k << " m " << m << " clusters " << ctx.split_ok << ": the rules' pick "
            << rule.config << " split " << rule.splits << " is not a candidate";
      }
    }
  }
}

TEST(CudaW4A16Tune, SelectKeepsTheRulesPickWithinTheMargin) {
  const cuda::W4A16TiledChoice rule{30, 2}, fast{31, 1}, slow{32, 4};
  // The fastest 5 % faster than the rules' pick: it wins.
  EXPECT_TRUE(same_choice(cuda::w4a16_tune_select(rule, {{rule, 100.0}, {fast, 95.0}, {slow, 120.0}}, 0.03), fast));
  // 2 % faster: inside the 3 % margin, the rules' pick stays.
  EXPECT_TRUE(same_choice(cuda::w4a16_tune_select(rule, {{rule, 100.0}, {fast, 98.0}, {slow, 120.0}}, 0.03), rule));
  // The rules' pick the fastest: it stays.
  EXPECT_TRUE(same_choice(cuda::w4a16_tune_select(rule, {{slow, 120.0}, {rule, 90.0}, {fast, 95.0}}, 0.03), rule));
  // The rules' pick not timed: the fastest.
  EXPECT_TRUE(same_choice(cuda::w4a16_tune_select(rule, {{slow, 120.0}, {fast, 99.0}}, 0.03), fast));
  // Nothing timed: no pick.
  EXPECT_EQ(cuda::w4a16_tune_select(rule, {}, 0.03).config, -1);
}

// A pick is saved in the cache file only where its rounds and the rules' pick's agree (a GPU busy
// with another process gives rounds far apart); the other candidates' spreads do not matter.
TEST(CudaW4A16Tune, SteadyTimingOnlyIsSaved) {
  const cuda::W4A16TiledChoice rule{30, 2}, fast{31, 1}, other{32, 4};
  const auto timed = [&](double rule_spread, double fast_spread, double other_spread) {
    return std::vector<cuda::W4A16Timed>{{rule, 100.0, rule_spread}, {fast, 90.0, fast_spread}, {other, 95.0, other_spread}};
  };
  EXPECT_TRUE(cuda::w4a16_tune_steady(fast, rule, timed(0.02, 0.05, 0.9), 0.15));
  EXPECT_FALSE(cuda::w4a16_tune_steady(fast, rule, timed(0.02, 0.3, 0.0), 0.15));   // the pick's rounds
  EXPECT_FALSE(cuda::w4a16_tune_steady(fast, rule, timed(0.4, 0.01, 0.0), 0.15));   // the rules' pick's
  EXPECT_TRUE(cuda::w4a16_tune_steady(rule, rule, timed(0.1, 0.9, 0.9), 0.15));     // the rule kept
  EXPECT_TRUE(cuda::w4a16_tune_steady(fast, rule, {{fast, 90.0, 0.0}}, 0.15));       // the rule not timed
}

TEST(CudaW4A16Tune, SwitchParses) {
  EXPECT_TRUE(cuda::parse_w4a16_tune(nullptr));
  EXPECT_TRUE(cuda::parse_w4a16_tune(""));
  EXPECT_TRUE(cuda::parse_w4a16_tune("1"));
  EXPECT_FALSE(cuda::parse_w4a16_tune("0"));
  EXPECT_AWQ_ERROR(cuda::parse_w4a16_tune("auto"), {"AWQ_W4A16_TUNE='auto'", "0", "1"});
}

// Without a recorded pick (nothing tuned in this process for this shape), the linear runs the
// rules' pick; no device is touched (w4a16_dispatch of an untuned shape on a CPU machine
// would ask the device for its context, so only the table lookup is checked here).
TEST(CudaW4A16Tune, UntunedShapesHaveNoRecordedPick) {
  cuda::w4a16_tune_forget();
  EXPECT_EQ(cuda::w4a16_tuned_pick(128, 4096, 4096, 128).config, -1);
  EXPECT_EQ(cuda::w4a16_tuned_pick(1, 4096, 4096, 128).config, -1);
  EXPECT_EQ(cuda::w4a16_tuned_small(8, 4096, 4096).ks.config, -1);
  EXPECT_EQ(cuda::w4a16_tuned_small(1, 4096, 4096).variant, -1);
}

TEST(CudaW4A16TuneCache, PathFromTheEnvironment) {
  EXPECT_EQ(cuda::w4a16_tune_cache_path(nullptr, "/x/cache", "/home/u"), "/x/cache/awq/w4a16-picks.tsv");
  EXPECT_EQ(cuda::w4a16_tune_cache_path("", nullptr, "/home/u"), "/home/u/.cache/awq/w4a16-picks.tsv");
  EXPECT_EQ(cuda::w4a16_tune_cache_path(nullptr, "", "/home/u"), "/home/u/.cache/awq/w4a16-picks.tsv");
  EXPECT_EQ(cuda::w4a16_tune_cache_path("0", "/x/cache", "/home/u"), "");  // off
  EXPECT_EQ(cuda::w4a16_tune_cache_path("/data/picks.tsv", "/x/cache", "/home/u"), "/data/picks.tsv");
  EXPECT_EQ(cuda::w4a16_tune_cache_path(nullptr, nullptr, nullptr), "");  // nowhere to put it: none
  EXPECT_EQ(cuda::w4a16_tune_cache_path_from_env(), "");                   // this binary's setting
}

TEST(CudaW4A16TuneCache, LinesRoundTripAndForeignLinesAreSkipped) {
  const std::string key = "NVIDIA H200|sm_90|132 SMs|driver 13000|runtime 13000|pdl 1|tables 0123456789abcdef";
  const cuda::W4A16CachedPick tiled{false, 4096, 11008, 128, 256, 40, 3, -1};
  const cuda::W4A16CachedPick small{true, 12288, 4096, 0, 1, -1, 0, 17};
  const cuda::W4A16CachedPick kslice{true, 12288, 4096, 0, 8, 5, 2, -1};
  for (const cuda::W4A16CachedPick& p : {tiled, small, kslice}) {
    const std::string line = cuda::w4a16_cache_line(key, p);
    cuda::W4A16CachedPick q;
    ASSERT_TRUE(cuda::w4a16_parse_cache_line(line, key, &q)) << line;
    EXPECT_TRUE(q == p) << line;
    EXPECT_FALSE(cuda::w4a16_parse_cache_line(line, key + "x", &q)) << "another device's line";
  }
  // A tab in the device name does not split the key.
  cuda::W4A16CachedPick q;
  EXPECT_TRUE(cuda::w4a16_parse_cache_line(cuda::w4a16_cache_line("a\tb", tiled), "a\tb", &q));
  const std::string good = cuda::w4a16_cache_line(key, tiled);
  for (const std::string& bad :
       {std::string("# a comment"), std::string(""), key, key + "\tlarge\t4096\t4096\t128\t64\t1\t1\t-1",
        key + "\ttiled\t4096\t4096\t128\t64\t1", key + "\ttiled\t4096\tfour\t128\t64\t1\t1\t-1",
        good + "\t9", key + "\ttiled\t-5\t4096\t128\t64\t1\t1\t-1", key + "\ttiled\t4096\t4096\t128\t64\t1\t99\t-1"})
    EXPECT_FALSE(cuda::w4a16_parse_cache_line(bad, key, &q)) << "parsed: " << bad;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writing adds a device's picks, replaces the lines of the same buckets and keeps every other
// line (other devices', lines it cannot parse); a file that cannot be written is reported and the
// old one stays as it was.
TEST(CudaW4A16TuneCache, WriteMergesAndReadReturnsOneDevicesPicks) {
  const test::TempDir dir;
  const std::string path = dir.file("sub/dir/picks.tsv");  // folders made as needed
  const cuda::W4A16CachedPick a{false, 4096, 4096, 128, 64, 30, 2, -1}, b{false, 4096, 4096, 128, 128, 31, 1, -1},
      c{true, 4096, 4096, 0, 4, 3, 2, -1};
  std::string why;
  EXPECT_EQ(cuda::w4a16_cache_read(path, "dev A").size(), 0u);  // no file yet: nothing, no error
  ASSERT_TRUE(cuda::w4a16_cache_write(path, "dev A", {a, b}, &why)) << why;
  ASSERT_TRUE(cuda::w4a16_cache_write(path, "dev B", {a}, &why)) << why;
  {
    std::ofstream(path, std::ios::app) << "dev A\tthis line does not parse\n";
  }
  cuda::W4A16CachedPick b2 = b;
  b2.config = 33;
  ASSERT_TRUE(cuda::w4a16_cache_write(path, "dev A", {b2, c}, &why)) << why;
  const std::vector<cuda::W4A16CachedPick> got = cuda::w4a16_cache_read(path, "dev A");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(std::count(got.begin(), got.end(), a) == 1 && std::count(got.begin(), got.end(), b2) == 1 &&
              std::count(got.begin(), got.end(), c) == 1);
  EXPECT_EQ(cuda::w4a16_cache_read(path, "dev B").size(), 1u);
  const std::string text = read_all(path);
  EXPECT_EQ(text.rfind("# awq.cpp", 0), 0u) << text;
  EXPECT_NE(text.find("this line does not parse"), std::string::npos) << text;
  // A path under a regular file cannot be created: false, the reason, and the old file kept.
  const std::string before = read_all(path);
  EXPECT_FALSE(cuda::w4a16_cache_write(path + "/nested.tsv", "dev A", {a}, &why));
  EXPECT_NE(why.find("cannot"), std::string::npos) << why;
  EXPECT_EQ(read_all(path), before);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(getpid())));
}

}  // namespace
}  // namespace awq
