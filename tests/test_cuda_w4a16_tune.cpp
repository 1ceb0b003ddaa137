// The measured picks of the tiled W4A16 GEMM (ops/cuda/w4a16_tune.h): the parts that need no GPU
// (buckets, candidates, the choice from measured times, the switch), so CI checks them. On a GPU,
// CudaW4A16.TuneRecordsWhatTheLinearRuns (test_cuda_w4a16.cpp) times real kernels and
// CudaTest.W4A16TuningAtLoad (test_cuda_model.cpp) the model's load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"
#include "support/expect_error.h"

namespace awq {
namespace {

namespace cuda = awq::cuda;

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
}

TEST(CudaW4A16Tune, SmallBatchBucketsOf4TokensFrom2To16) {
  EXPECT_EQ(cuda::w4a16_tune_small_bucket(1), 0);  // one token: the register-streaming kernels' rules
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
  // sm_80: no wgmma GEMM, nothing to tune.
  cuda::W4A16PickContext sm80 = on;
  sm80.wgmma = sm80.tma = sm80.split_ok = false;
  EXPECT_TRUE(cuda::w4a16_tune_candidates(4096, sm80).empty());
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

TEST(CudaW4A16Tune, SwitchParses) {
  EXPECT_TRUE(cuda::parse_w4a16_tune(nullptr));
  EXPECT_TRUE(cuda::parse_w4a16_tune(""));
  EXPECT_TRUE(cuda::parse_w4a16_tune("1"));
  EXPECT_FALSE(cuda::parse_w4a16_tune("0"));
  EXPECT_AWQ_ERROR(cuda::parse_w4a16_tune("auto"), {"AWQ_W4A16_TUNE='auto'", "0", "1"});
}

// Without a recorded pick (nothing tuned in this process for this shape), the linear runs the
// rules' pick; no device is touched (w4a16_run_tiled_pick of an untuned shape on a CPU machine
// would ask the device for its context, so only the table lookup is checked here).
TEST(CudaW4A16Tune, UntunedShapesHaveNoRecordedPick) {
  cuda::w4a16_tune_forget();
  EXPECT_EQ(cuda::w4a16_tuned_pick(128, 4096, 4096, 128).config, -1);
  EXPECT_EQ(cuda::w4a16_tuned_pick(1, 4096, 4096, 128).config, -1);
  EXPECT_EQ(cuda::w4a16_tuned_kslice(8, 4096, 4096).config, -1);
}

}  // namespace
}  // namespace awq
