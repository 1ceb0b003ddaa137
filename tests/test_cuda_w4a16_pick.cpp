// The tiled W4A16 dispatch (w4a16_pick_tiled, ops/cuda/w4a16_kernels.h) as a pure function of the
// GPU's facts and the AWQ_W4A16_* switches: these tests need no GPU, so CI checks the rules, on a
// simulated 132-SM Hopper (H100 / H200 SXM, where the sweeps behind them ran) with every switch on
// and with each one off, on a Hopper without clusters, on sm_80 and on 114 SMs; and on any of them
// that every pick is one the device can run. On a GPU, CudaW4A16.PickContextOfThisDevice
// (test_cuda_w4a16.cpp) checks that the dispatch reads the device into this context.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ops/cuda/w4a16_kernels.h"

namespace awq {
namespace {

namespace cuda = awq::cuda;

// Configuration indices (as w4a16_tiled_config): the cp.async wgmma tiles of 64 tokens x 64 or
// 128 rows with two chunks a slot, the 4-stage 64 x 128 one, and the TMA tiles.
int cp_async(int which) { return cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count() + which; }
const int kC64 = 7, kC128 = 8, kC128Stages4 = 1;

// The simulated devices: a 132-SM Hopper with everything on, then with each switch off, without
// clusters, an sm_80 (no clusters, no wgmma), and a 114-SM Hopper (H100 PCIe).
std::vector<std::pair<std::string, cuda::W4A16PickContext>> contexts() {
  std::vector<std::pair<std::string, cuda::W4A16PickContext>> all;
  const cuda::W4A16PickContext on;
  const auto with = [&](const char* what, auto change) {
    cuda::W4A16PickContext c = on;
    change(c);
    all.emplace_back(what, c);
  };
  all.emplace_back("132 SMs, all on", on);
  with("AWQ_W4A16_TMA=0", [](auto& c) { c.tma = false; });
  with("AWQ_W4A16_WAVE_TILES=0", [](auto& c) { c.wave_tiles = false; });
  with("AWQ_W4A16_L2_SPLIT=0", [](auto& c) { c.l2_split = false; });
  with("AWQ_W4A16_STREAM_K=0", [](auto& c) { c.stream_k = false; });
  with("AWQ_W4A16_WGMMA_FROM_17=0", [](auto& c) { c.wgmma_from_17 = false; });
  with("AWQ_W4A16_SPLIT3=0", [](auto& c) { c.split3 = false; });
  with("AWQ_W4A16_WAVE_MID=0", [](auto& c) { c.wave_mid = false; });
  with("AWQ_W4A16_WIDE_MID=0", [](auto& c) { c.wide_mid = false; });
  with("AWQ_W4A16_T256_FROM_161=0", [](auto& c) { c.t256_from_161 = false; });
  with("no clusters", [](auto& c) { c.split_ok = false; });
  with("sm_80", [](auto& c) { c.split_ok = c.wgmma = c.tma = false; });
  with("114 SMs", [](auto& c) { c.sms = 114; });
  return all;
}

std::string where(int64_t n, int64_t k, int64_t m) {
  return std::to_string(n) + " x " + std::to_string(k) + " m " + std::to_string(m);
}

void expect_pick(const cuda::W4A16PickContext& ctx, int64_t n, int64_t k, int64_t m, int config, int splits) {
  const cuda::W4A16TiledChoice c = cuda::w4a16_pick_tiled(m, n, k, ctx);
  EXPECT_EQ(c.config, config) << where(n, k, m) << " (splits " << c.splits << ")";
  EXPECT_EQ(c.splits, splits) << where(n, k, m);
}

// Session 28 (H200 wsweeps, docs/results/gpu.md): the wave rule at m = 65..96 as one 128-token
// block; the 256 x 128 tile split 2 on n = 8192 layers at m = 161..192; other models' wide layers
// at m = 33..128. Each switch off gives the pick before.
TEST(CudaW4A16Pick, Session28RulesOn132Sms) {
  const cuda::W4A16PickContext on;
  const int r64 = cuda::w4a16_tma_rows192_config(64), r128 = cuda::w4a16_tma_rows192_config(128),
            l128 = cuda::w4a16_tma_rows192_l2_config(128), t128 = cuda::w4a16_tma_square_config(),
            t256 = cuda::w4a16_tma_wide_config();
  // m = 65..96: the 7B's layers (o_proj keeps the 64 x 64 tile split 2), a 13B's, Qwen2-7B's down.
  expect_pick(on, 12288, 4096, 80, r128, 2);
  expect_pick(on, 11008, 4096, 66, r128, 2);
  expect_pick(on, 22016, 4096, 96, r128, 1);
  expect_pick(on, 4096, 11008, 80, l128, 6);
  expect_pick(on, 4096, 4096, 80, cp_async(kC64), 2);
  expect_pick(on, 5120, 5120, 72, r128, 4);
  expect_pick(on, 5120, 13824, 66, r128, 4);
  expect_pick(on, 3584, 18944, 96, l128, 6);
  cuda::W4A16PickContext ctx = on;
  ctx.wave_mid = false;  // the wide layers then fall to the rule for the layers the wave rule leaves
  expect_pick(ctx, 12288, 4096, 80, t128, 2);
  expect_pick(ctx, 4096, 11008, 80, cp_async(kC64), 2);
  ctx.wide_mid = false;  // and with that off too, the pick before session 28
  expect_pick(ctx, 12288, 4096, 80, cp_async(kC64), 1);
  // A 70B's n = 8192 layers: 64 x 192 at m = 160, the 256 x 128 tile split 2 at 161..192.
  expect_pick(on, 8192, 8192, 160, r64, 1);
  expect_pick(on, 8192, 8192, 176, t256, 2);
  expect_pick(on, 8192, 28672, 192, t256, 2);
  ctx = on;
  ctx.t256_from_161 = false;
  expect_pick(ctx, 8192, 8192, 176, r64, 1);
  // Wide layers the wave rule leaves: Llama-3-8B's gate+up, a 13B's qkv, Qwen2.5-7B's gate+up.
  expect_pick(on, 28672, 4096, 48, cp_async(kC128), 1);
  expect_pick(on, 28672, 4096, 80, t128, 1);
  expect_pick(on, 28672, 4096, 128, t128, 1);
  expect_pick(on, 15360, 5120, 64, cp_async(kC128), 2);
  expect_pick(on, 15360, 5120, 96, t128, 2);
  expect_pick(on, 37888, 3584, 33, cp_async(kC64), 1);
  expect_pick(on, 37888, 3584, 80, r128, 1);
  ctx = on;
  ctx.wide_mid = false;
  expect_pick(ctx, 28672, 4096, 48, cp_async(kC64), 1);
  expect_pick(ctx, 28672, 4096, 80, cp_async(kC128Stages4), 1);
  expect_pick(ctx, 37888, 3584, 33, cp_async(kC128Stages4), 1);
  // Layers the wave rule takes keep its picks: Qwen3-8B's gate+up, Llama-3-8B's qkv.
  expect_pick(on, 24576, 4096, 48, r64, 1);
  expect_pick(on, 22016, 4096, 96, r128, 1);
  expect_pick(on, 6144, 4096, 80, r64, 2);
}

// Earlier sessions' picks, for the record of what the switches restore: the 64 x 64 tile's split 3
// (session 27) and the wave rule's split 4 on a 13B's o_proj at 97..128.
TEST(CudaW4A16Pick, EarlierRulesOn132Sms) {
  const cuda::W4A16PickContext on;
  expect_pick(on, 4096, 4096, 64, cp_async(kC64), 3);
  expect_pick(on, 4096, 4096, 20, cp_async(kC64), 3);  // m = 17..32: the picks of m = 33
  cuda::W4A16PickContext ctx = on;
  ctx.split3 = false;
  expect_pick(ctx, 4096, 4096, 64, cp_async(kC64), 4);
  expect_pick(on, 5120, 5120, 128, cuda::w4a16_tma_rows192_config(128), 4);
  expect_pick(on, 4096, 4096, 256, cuda::w4a16_tma_rows192_l2_config(128), 3);
}

// On any device the pick is a configuration that exists, with 1..8 splits; splits only where
// clusters run; wgmma tiles only where the wgmma GEMM runs, TMA ones only where they do.
TEST(CudaW4A16Pick, PicksFitEveryDevice) {
  const int64_t shapes[][2] = {{4096, 4096},  {12288, 4096}, {22016, 4096}, {4096, 11008}, {5120, 5120},
                               {15360, 5120}, {28672, 4096}, {37888, 3584}, {8192, 8192},  {57344, 8192},
                               {3584, 18944}, {896, 4864},   {256, 128}};
  const int64_t ms[] = {9, 16, 17, 32, 33, 64, 65, 80, 96, 97, 128, 160, 161, 192, 256, 384, 512, 513, 1024};
  const int first_wgmma = cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count();
  const int first_tma = first_wgmma + cuda::w4a16_wgmma_ws_first();
  int checked = 0;
  for (const int sms : {132, 114, 108, 78, 46}) {
    for (const int device : {0, 1, 2}) {  // 0: sm_80 (no clusters, no wgmma), 1: sm_90 without TMA, 2: all
      cuda::W4A16PickContext ctx;
      ctx.sms = sms;
      ctx.split_ok = device > 0;
      ctx.wgmma = device > 0;
      ctx.tma = device > 1;
      for (const auto& sh : shapes) {
        for (const int64_t m : ms) {
          const cuda::W4A16TiledChoice c = cuda::w4a16_pick_tiled(m, sh[0], sh[1], ctx);
          const std::string at = where(sh[0], sh[1], m) + " sms " + std::to_string(sms) + " device " + std::to_string(device);
          ASSERT_GE(c.config, 0) << at;
          ASSERT_LT(c.config, cuda::w4a16_tiled_count()) << at;
          EXPECT_GE(c.splits, 1) << at;
          EXPECT_LE(c.splits, 8) << at;
          if (!ctx.split_ok) {
            EXPECT_EQ(c.splits, 1) << at;
          }
          if (!ctx.wgmma) {
            EXPECT_LT(c.config, first_wgmma) << at;
          }
          if (!ctx.tma) {
            EXPECT_LT(c.config, first_tma) << at;
          }
          ++checked;
        }
      }
    }
  }
  std::printf("[ note     ] %d picks checked on 5 SM counts x 3 device kinds\n", checked);
}

// The dispatch's TMA pick is the 256-token x 128-row tile with a producer warpgroup, and it is
// taken for the wide 7B layers at m = 256 exactly where the TMA kernels can run (the switch on).
void TmaWideConfigurationAndPick(const cuda::W4A16PickContext& ctx) {
  const cuda::W4A16TiledConfig wide = cuda::w4a16_tiled_config(cuda::w4a16_tma_wide_config());
  EXPECT_TRUE(wide.wgmma);
  EXPECT_EQ(wide.bm, 256);
  EXPECT_EQ(wide.bn, 128);
  EXPECT_EQ(wide.threads, 384);  // 2 consumer warpgroups + the producer warpgroup
  const bool tma = ctx.tma;
  // qkv at m = 256 on 132 SMs: the 256 x 128 tile, unless the wave rule takes its 128 tiles of
  // 128 x 192 (on 114 SMs they would be two waves, and the wave rule leaves it).
  const bool wave = tma && ctx.wave_tiles;
  if (ctx.sms == 132) {
    EXPECT_EQ(cuda::w4a16_pick_tiled(256, 12288, 4096, ctx).config == cuda::w4a16_tma_wide_config(), tma && !wave);
  }
  EXPECT_EQ(cuda::w4a16_pick_tiled(640, 12288, 4096, ctx).config == cuda::w4a16_tma_wide_config(), tma);
  EXPECT_NE(cuda::w4a16_pick_tiled(256, 4096, 4096, ctx).config, cuda::w4a16_tma_wide_config());  // o_proj: cp.async
  EXPECT_NE(cuda::w4a16_pick_tiled(128, 12288, 4096, ctx).config, cuda::w4a16_tma_wide_config());
}

// Whether the dispatch picks a 192-row tile for (n, k, m): the wave rule's (WaveTilePickRules),
// which comes before the prefill and stream-K rules.
bool picks_rows192(const cuda::W4A16PickContext& ctx, int64_t n, int64_t k, int64_t m) {
  return cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(m, n, k, ctx).config).bn == 192;
}

// The prefill rules of the dispatch (m = 129..512 on sm_90a with the TMA kernels; docs/gpu.md)
// pick what they say at the 7B shapes: by m and k on the narrow layers (n = 4096), by grid size
// against the SMs on the wide ones. Where the TMA kernels do not run, none of these picks the
// TMA 128 x 128 tile.
void PrefillPickRules(const cuda::W4A16PickContext& ctx) {
  const int t128 = cuda::w4a16_tma_square_config(), t256 = cuda::w4a16_tma_wide_config();
  const cuda::W4A16TiledConfig square = cuda::w4a16_tiled_config(t128);
  EXPECT_TRUE(square.wgmma);
  EXPECT_EQ(square.bm, 128);
  EXPECT_EQ(square.bn, 128);
  const bool rules = ctx.wgmma && ctx.tma;
  struct Case { int64_t n, k, m; };
  const Case cases[] = {{4096, 4096, 160},  {4096, 11008, 192}, {4096, 11008, 256}, {4096, 4096, 256},
                        {4096, 4096, 384},  {4096, 4096, 512},  {4096, 11008, 512}, {22016, 4096, 128},
                        {11008, 4096, 160}, {12288, 4096, 160}, {11008, 4096, 320}, {12288, 4096, 320},
                        {22016, 4096, 384}, {12288, 4096, 512}};
  if (!rules) {
    for (const Case& c : cases) EXPECT_NE(cuda::w4a16_pick_tiled(c.m, c.n, c.k, ctx).config, t128) << c.n << " " << c.m;
    return;
  }
  const int sms = ctx.sms;
  const int split2 = ctx.split_ok ? 2 : 1;
  // The wave rule comes first (WaveTilePickRules); the cases it takes are checked here only with
  // AWQ_W4A16_WAVE_TILES=0.
  const bool wave = ctx.wave_tiles;
  // A cp.async wgmma tile: tokens x rows, 3 stages (two chunks per slot), not a TMA one.
  const auto cp_async = [&](int64_t n, int64_t k, int64_t m, int bn, int splits) {
    if (wave && picks_rows192(ctx, n, k, m)) return;
    const cuda::W4A16TiledChoice c = cuda::w4a16_pick_tiled(m, n, k, ctx);
    const cuda::W4A16TiledConfig cfg = cuda::w4a16_tiled_config(c.config);
    EXPECT_TRUE(cfg.wgmma && cfg.bm == 64 && cfg.bn == bn && cfg.stages == 3 && c.splits == splits)
        << "n " << n << " k " << k << " m " << m << ": got " << cfg.bm << " x " << cfg.bn << "/" << cfg.stages
        << " split " << c.splits;
    EXPECT_LT(c.config, cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count() + cuda::w4a16_wgmma_ws_first());
  };
  const auto tma = [&](int64_t n, int64_t k, int64_t m, int cfg, int splits) {
    if (!(wave && picks_rows192(ctx, n, k, m))) expect_pick(ctx, n, k, m, cfg, splits);
  };
  cp_async(4096, 4096, 160, 64, split2);   // o_proj: 64 x 64 split 2
  cp_async(4096, 11008, 192, 64, split2);  // down_proj
  cp_async(4096, 4096, 256, 64, 1);
  cp_async(4096, 4096, 192, 64, split2);  // m <= 192: unchanged
  cp_async(4096, 4096, 384, 64, 1);
  // m = 385..512 on the narrow layers: 256 x 128 split 2 where its clusters fit one wave
  // (session 23), whatever k (the stream-K rule keeps it).
  if (split2 == 2 && 2 * 2 * 32 <= sms) {
    tma(4096, 4096, 512, t256, 2);
    tma(4096, 11008, 512, t256, 2);
  } else {
    cp_async(4096, 4096, 512, 128, 1);
  }
  tma(22016, 4096, 128, t128, 1);
  tma(12288, 4096, 512, t256, 1);
  // Wide layers at m = 193..256: 256 x 128 split 2 where that is one wave (n = 8192, a 70B's
  // o_proj and down_proj: 64 x 2 blocks), else unsplit (the 7B's qkv: 96 blocks).
  tma(8192, 8192, 256, t256, split2 == 2 && 2 * 64 <= sms ? 2 : 1);
  tma(8192, 28672, 256, t256, split2 == 2 && 2 * 64 <= sms ? 2 : 1);
  tma(12288, 4096, 256, t256, 1);
  if (ctx.stream_k) {  // these are replaced by stream-K tiles (StreamKPickRules)
    tma(4096, 11008, 256, cuda::w4a16_tma_wide_sk_config(), 1);
    if (split2 == 1) tma(4096, 11008, 512, cuda::w4a16_tma_wide_sk_config(), 1);
  } else {
    cp_async(4096, 11008, 256, 128, split2);
    if (split2 == 1) tma(4096, 11008, 512, t128, 1);
  }
  // Wide layers by grid: 64 x 128 while it fits 2 blocks per SM, else 256 x 128 in one wave.
  const auto wide_small = [&](int64_t n) {
    const int64_t rows = (n + 127) / 128;
    if (3 * rows <= 2 * sms) cp_async(n, 4096, 160, 128, 1);
    else if (rows <= sms) tma(n, 4096, 160, t256, 1);
    else cp_async(n, 4096, 160, 128, 1);
  };
  wide_small(11008);  // H100 (132 SMs): 258 blocks, the 64 x 128 tile
  wide_small(12288);  // H100: 288 blocks, the 256 x 128 TMA tile
  if (3 * 86 <= 2 * sms) tma(11008, 4096, 320, t128, 1);  // 128 x 128 TMA while it fits 2 per SM
  if (3 * 172 > 2 * sms && 6 * 172 > 4 * sms && 2 * 172 > 2 * sms) tma(22016, 4096, 384, t128, 1);
}

// The cp.async wgmma 64 x 64 tile at m = 33..128 (w4a16_default_tiled, where the TMA rules take
// nothing): the smallest split of 1, 2, 4 whose grid reaches 1.6 blocks per SM, and 3 instead of
// 4 where 3 gives 1.4-1.7 blocks per SM (AWQ_W4A16_SPLIT3). On a 132-SM GPU, the picks of
// session 24's sweep (h100_s24_call7_summary.log): Qwen2-7B's o_proj at m = 128 split 2 (224
// blocks), a 13B's qkv and Llama-3-8B's gate or up at m = 64 unsplit (240 and 224 blocks), the
// 7B's o_proj split 2 at 128; and of session 27's (h200_s27_call1_*): at m = 33..64 the 7B's
// o_proj and Qwen2-7B's qkv split 3 (192 and 216 blocks; split 4 without the switch), a 13B's
// o_proj split 4 (split 3 would be 240 blocks, 1.82 per SM, and measured slower), Qwen2-7B's
// o_proj split 4 (split 3 would be 168 blocks, 1.27 per SM). With AWQ_W4A16_WIDE_MID on (session 28)
// the 13B's qkv and Llama-3-8B's gate or up at m = 64 take the 64 x 128 tile split 2 instead
// (Session28RulesOn132Sms below).
void SmallBatchSplitRule(const cuda::W4A16PickContext& ctx) {
  if (!ctx.wgmma || !ctx.split_ok || ctx.sms != 132) {
    return;
  }
  const int c64 = cp_async(kC64);
  struct Case { int64_t n, k, m; int splits; };
  const int s3 = ctx.split3 ? 3 : 4;
  for (const Case c : {Case{3584, 3584, 128, 2}, Case{3584, 3584, 96, 2}, Case{15360, 5120, 64, 1},
                       Case{14336, 4096, 64, 1}, Case{4096, 4096, 64, s3}, Case{4096, 4096, 33, s3},
                       Case{5120, 5120, 64, 4}, Case{4608, 3584, 64, s3},
                       Case{3584, 3584, 64, 4}, Case{4096, 4096, 128, 2}}) {
    const cuda::W4A16TiledChoice got = cuda::w4a16_pick_tiled(c.m, c.n, c.k, ctx);
    if (c.n >= 14336 && ctx.wide_mid) {  // 64 x 128 split 2: 1.7-1.8 blocks per SM
      EXPECT_EQ(got.config, c64 + 1) << c.n << " x " << c.k << " m " << c.m;
      EXPECT_EQ(got.splits, 2) << c.n << " x " << c.k << " m " << c.m;
      continue;
    }
    EXPECT_EQ(got.config, c64) << c.n << " x " << c.k << " m " << c.m;
    EXPECT_EQ(got.splits, c.splits) << c.n << " x " << c.k << " m " << c.m;
  }
}

// The stream-K rules (stream_k_pick in w4a16_tiled.cu; docs/gpu.md), with the prefill rules on:
// at m = 193..512 a stream-K tile replaces the 256 x 128 TMA pick on the wide layers (gate+up
// from m = 193, every wide layer at 257..384, above 384 while the 256 x 128 grid is under 1.4
// waves) and the pick on down_proj-like layers (k > 8192); o_proj, m <= 192 and m > 512 keep
// their picks; AWQ_W4A16_STREAM_K=0 picks no stream-K tile.
void StreamKPickRules(const cuda::W4A16PickContext& ctx) {
  const bool rules = ctx.wgmma && ctx.tma;
  const bool sk = rules && ctx.stream_k;
  const int sk256 = cuda::w4a16_tma_wide_sk_config(), sk128 = cuda::w4a16_tma_square_sk_config();
  const auto pick = [&](int64_t n, int64_t k, int64_t m) { return cuda::w4a16_pick_tiled(m, n, k, ctx).config; };
  const auto is_sk = [&](int64_t n, int64_t k, int64_t m) {
    return cuda::w4a16_tiled_config(pick(n, k, m)).stream_k;
  };
  const int sms = ctx.sms;
  // The wave rule comes first (WaveTilePickRules): where it takes a 192-row tile, the stream-K
  // rule is not asked; those cases are checked here only with AWQ_W4A16_WAVE_TILES=0.
  const bool wave = rules && ctx.wave_tiles;
  const auto taken = [&](int64_t n, int64_t k, int64_t m) { return wave && picks_rows192(ctx, n, k, m); };
  if (!taken(22016, 4096, 256)) {
    EXPECT_EQ(pick(22016, 4096, 256) == sk256, sk);  // gate+up
  }
  // m = 512: 2 x 86 blocks of 256 x 128 for gate or up (1.3 waves on an H100), 2 x 96 for qkv.
  if (!taken(11008, 4096, 512)) {
    EXPECT_EQ(pick(11008, 4096, 512) == sk256, sk && 172 * 10 < 14 * sms);
  }
  if (!taken(12288, 4096, 512)) {
    EXPECT_EQ(pick(12288, 4096, 512) == sk256, sk && 192 * 10 < 14 * sms);
  }
  if (344 * 10 >= 14 * sms) {
    EXPECT_FALSE(is_sk(22016, 4096, 512)) << "gate+up at m = 512: 344 blocks, 2.6 waves on an H100";
  }
  if (!taken(4096, 11008, 200)) {  // down_proj (the wave rule's L2 split 3 since session 24)
    EXPECT_EQ(pick(4096, 11008, 200) == sk256, sk);
  }
  if (!taken(4096, 11008, 320)) {
    EXPECT_EQ(pick(4096, 11008, 320) == sk128, sk);
  }
  if (!taken(4096, 11008, 384)) {
    EXPECT_EQ(pick(4096, 11008, 384) == sk128, sk);
  }
  // m = 385..512: the prefill rule's 256 x 128 split 2 stays where clusters run and its 32 x 2
  // clusters of 2 fit one wave (session 23), else stream-K.
  EXPECT_EQ(pick(4096, 11008, 448) == sk256, sk && (!ctx.split_ok || 2 * 2 * 32 > sms));
  if (rules && !taken(12288, 4096, 256)) {
    EXPECT_EQ(pick(12288, 4096, 256), cuda::w4a16_tma_wide_config()) << "qkv at m = 256 stays on the 256 x 128 tile";
  }
  for (const int64_t m : {64, 128, 192, 256, 384, 512, 640}) EXPECT_FALSE(is_sk(4096, 4096, m)) << "o_proj m " << m;
  for (const int64_t m : {64, 160, 192, 640}) {
    EXPECT_FALSE(is_sk(22016, 4096, m)) << "gate+up m " << m;
    EXPECT_FALSE(is_sk(4096, 11008, m)) << "down_proj m " << m;
  }
  if (!sk) {
    for (const int64_t m : {256, 320, 384, 512})
      for (const int64_t n : {4096, 12288, 22016}) EXPECT_FALSE(is_sk(n, 11008, m)) << "n " << n << " m " << m;
  }
}

// The wave rule (wave_tile_pick in w4a16_tiled.cu; docs/gpu.md): at m = 33..64 and 97..512, with
// the TMA kernels and AWQ_W4A16_WAVE_TILES on, the 192-row TMA tiles where their grid fills whole
// waves of the SMs to >= 85 % (64 x 192: one wave, split 1 or 2; 128 x 192: one wave split 2,
// or one or two waves unsplit, in two only where the tokens fill >= 75 % of them), or, with
// AWQ_W4A16_L2_SPLIT on, their twins with split-K through L2 at 3..8 splits that fill one wave
// (each split >= 16 chunks), or, on long layers (k > 8192), split 4 where the grid is 60-90 % of
// one wave.
// Checked: the tiles' shapes; on any GPU, every 192-row pick over the 7B shapes and many m obeys
// the rule's bounds, and the rule's first candidate is taken wherever it fills; on a 132-SM GPU
// (H100 / H200), the picks of branch gpu11's and sessions 23's and 24's sweeps. Without the rule,
// no 192-row tile is picked.
void WaveTilePickRules(const cuda::W4A16PickContext& ctx) {
  const int r64 = cuda::w4a16_tma_rows192_config(64), r128 = cuda::w4a16_tma_rows192_config(128);
  const int l64 = cuda::w4a16_tma_rows192_l2_config(64), l128 = cuda::w4a16_tma_rows192_l2_config(128);
  const cuda::W4A16TiledConfig c64 = cuda::w4a16_tiled_config(r64), c128 = cuda::w4a16_tiled_config(r128);
  EXPECT_TRUE(c64.wgmma && c64.bm == 64 && c64.bn == 192 && c64.threads == 512 && !c64.stream_k && !c64.l2_split);
  EXPECT_TRUE(c128.wgmma && c128.bm == 128 && c128.bn == 192 && c128.threads == 512 && !c128.stream_k &&
              !c128.l2_split);
  for (const int l : {l64, l128}) {  // the twins: the same tiles, split-K through L2
    const cuda::W4A16TiledConfig c = cuda::w4a16_tiled_config(l), twin = l == l64 ? c64 : c128;
    EXPECT_TRUE(c.wgmma && c.l2_split && !c.stream_k && c.bm == twin.bm && c.bn == 192 && c.threads == 512 &&
                c.stages == twin.stages && c.rt == twin.rt);
  }
  const bool wave = ctx.wgmma && ctx.tma &&
                    ctx.wave_tiles;
  const bool l2 = wave && ctx.split_ok && ctx.l2_split;
  const bool mid = ctx.wave_mid;
  const int sms = ctx.sms;
  const auto grid = [&](const cuda::W4A16TiledConfig& c, int64_t m, int64_t n) {
    return ((n / 16 + c.bn / 16 - 1) / (c.bn / 16)) * ((m + c.bm - 1) / c.bm);
  };
  const int64_t shapes[][2] = {{4096, 4096}, {12288, 4096}, {11008, 4096}, {22016, 4096}, {4096, 11008}};
  int taken = 0;
  for (const auto& sh : shapes) {
    for (int64_t m = 64; m <= 640; m += 32) {
      const int64_t n = sh[0], k = sh[1];
      const cuda::W4A16TiledChoice c = cuda::w4a16_pick_tiled(m, n, k, ctx);
      const bool is_l2 = c.config == l64 || c.config == l128;
      const bool is192 = c.config == r64 || c.config == r128 || is_l2;
      if (!wave) {
        EXPECT_FALSE(is192) << "n " << n << " m " << m;
        continue;
      }
      // The first candidates, where they fill one wave: 64 x 192 unsplit at m <= 64; 128 x 192
      // split 2 (its tokens >= 75 % of its token blocks), else 64 x 192 unsplit, at m = 97..512.
      const auto fills1 = [&](int64_t g, int percent = 85) { return g <= sms && g * 100 >= percent * int64_t(sms); };
      const int64_t g64 = grid(c64, m, n), tb128 = (m + 127) / 128;
      // m = 65..96 only with AWQ_W4A16_WAVE_MID on (as one 128-token block).
      const bool in_range = (m > 32 && m <= 64) || (m > 64 && m <= 96 && mid) || (m > 96 && m <= 512);
      const bool r128_split2_first = ctx.split_ok && in_range && m > 64 &&
                                     (tb128 == 1 || m * 100 >= 75 * tb128 * 128) && fills1(2 * grid(c128, m, n), 80);
      if (r128_split2_first) {
        EXPECT_EQ(c.config, r128) << "n " << n << " m " << m;
        EXPECT_EQ(c.splits, 2) << "n " << n << " m " << m;
      } else if (in_range && fills1(g64)) {
        EXPECT_EQ(c.config, r64) << "n " << n << " m " << m;
        EXPECT_EQ(c.splits, 1) << "n " << n << " m " << m;
      }
      if (!is192) continue;
      ++taken;
      const int64_t g = grid(cuda::w4a16_tiled_config(c.config), m, n) * c.splits;
      const int64_t waves = (g + sms - 1) / sms;
      EXPECT_TRUE(in_range) << "n " << n << " m " << m;
      if (is_l2) {  // 3..8 splits of >= 16 chunks each, one wave filled to >= 85 %
        EXPECT_TRUE(l2) << "n " << n << " m " << m;
        EXPECT_TRUE(c.splits >= 3 && c.splits <= 8 && (k + 63) / 64 >= 16 * c.splits) << "n " << n << " m " << m;
        EXPECT_TRUE(g <= sms && g * 100 >= 85 * sms) << "n " << n << " m " << m << ": grid " << g;
        continue;
      }
      EXPECT_TRUE(c.splits == 1 || c.splits == 2 || (c.splits == 4 && (k > 8192 || (m > 64 && g * 100 >= 80 * sms))))
          << "n " << n << " m " << m;
      if (c.splits == 4) {  // 60-90 % of one wave
        EXPECT_GE(g * 10, 6 * sms) << "n " << n << " m " << m << ": grid " << g;
        EXPECT_LE(g * 10, 9 * sms) << "n " << n << " m " << m << ": grid " << g;
      } else {  // 128 x 192 split 2: >= 80 %
        EXPECT_GE(g * 100, (c.config == r128 && c.splits == 2 ? 80 : 85) * waves * sms)
            << "n " << n << " m " << m << ": grid " << g;
      }
      EXPECT_LE(waves, c.config == r64 || c.splits > 1 ? 1 : 2) << "n " << n << " m " << m;
      if (waves == 2) {  // the tokens fill >= 75 % of two waves of 128-token tiles
        EXPECT_GE(grid(c128, c128.bm, n) * m * 100, 75 * 2 * sms * c128.bm) << "n " << n << " m " << m;
      }
    }
  }
  if (wave && sms == 132) {
    expect_pick(ctx, 22016, 4096, 128, r128, 1);  // gate+up: 115 (64 x 192: 230)
    expect_pick(ctx, 22016, 4096, 64, r64, 1);    // 115 tiles
    expect_pick(ctx, 12288, 4096, 256, r128, 1);
    expect_pick(ctx, 22016, 4096, 256, r128, 1);  // 230 tiles, two waves
    expect_pick(ctx, 22016, 4096, 224, r128, 1);  // 230 tiles, 76 % of two waves' tokens
    EXPECT_NE(cuda::w4a16_pick_tiled(160, 22016, 4096, ctx).config, r128) << "gate+up m = 160: 54 % of two waves' tokens";
    if (ctx.split_ok) {
      expect_pick(ctx, 4096, 4096, 192, r64, 2);  // o_proj: 66 tiles x 2 splits
      expect_pick(ctx, 4096, 11008, 192, r64, 2);
      expect_pick(ctx, 12288, 4096, 128, r128, 2);  // qkv: 64 tiles x 2 splits (64 x 192 unsplit: 128 tiles)
      expect_pick(ctx, 11008, 4096, 128, r128, 2);  // gate or up: 58 x 2
      expect_pick(ctx, 12288, 4096, 64, r64, 2);    // 64 x 2
      expect_pick(ctx, 11008, 4096, 64, r64, 2);    // 58 x 2
      expect_pick(ctx, 4096, 4096, 384, r128, 2);   // o_proj: 66 x 2
      expect_pick(ctx, 4096, 11008, 384, r128, 2);
      if (l2) {  // down_proj (k = 11008): 22 x 6 splits through L2; o_proj and down_proj at m = 256: 44 x 3
        expect_pick(ctx, 4096, 11008, 64, l64, 6);
        expect_pick(ctx, 4096, 11008, 128, l128, 6);
        expect_pick(ctx, 4096, 11008, 256, l128, 3);
        expect_pick(ctx, 4096, 4096, 256, l128, 3);
      } else {
        expect_pick(ctx, 4096, 11008, 64, r64, 4);  // down_proj: 22 x 4, 67 % of a wave
        expect_pick(ctx, 4096, 11008, 128, r128, 4);
      }
      // o_proj at m = 64 / 128: 22 tiles, and 6 splits of 64 chunks would be too short
      EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(64, 4096, 4096, ctx).config).bn, 192) << "o_proj m 64";
      EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(128, 4096, 4096, ctx).config).bn, 192) << "o_proj m 128";
    } else {
      expect_pick(ctx, 4096, 4096, 384, r64, 1);  // 132 tiles
    }
    expect_pick(ctx, 12288, 4096, 512, r128, 1);  // 256 tiles, two waves
    if (ctx.split_ok) {  // a 13B's n = 5120 (27 row blocks) at m = 256: 54 x 2, 82 %
      expect_pick(ctx, 5120, 5120, 256, r128, 2);
      expect_pick(ctx, 5120, 13824, 256, r128, 2);
      // and at m = 97..128 (27 x 4 splits, 82 % of a wave; 7B's o_proj: 22 x 4, 67 %, keeps the 64 x 64 tile)
      expect_pick(ctx, 5120, 5120, 128, r128, 4);
      expect_pick(ctx, 5120, 5120, 100, r128, 4);
      if (mid) {  // m = 65..96 as one 128-token block (session 28)
        expect_pick(ctx, 5120, 5120, 80, r128, 4);
        expect_pick(ctx, 5120, 13824, 66, r128, 4);
        expect_pick(ctx, 11008, 4096, 80, r128, 2);  // gate or up: 58 x 2
        if (l2) expect_pick(ctx, 4096, 11008, 80, l128, 6);
        EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(80, 4096, 4096, ctx).config).bn, 192) << "o_proj m 80";
      } else {
        EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(80, 5120, 5120, ctx).config).bn, 192) << "13B o_proj m 80";
      }
      // A 70B's n = 8192 layers: 64 x 192 at m = 160 (43 x 3 tiles); at 161..192 the 256 x 128 tile
      // split 2 (32 x 2 blocks, one wave) with AWQ_W4A16_T256_FROM_161 (session 28).
      const int t256 = cuda::w4a16_tma_wide_config();
      expect_pick(ctx, 8192, 8192, 160, r64, 1);
      if (ctx.t256_from_161) {
        expect_pick(ctx, 8192, 8192, 176, t256, 2);
        expect_pick(ctx, 8192, 28672, 192, t256, 2);
      } else {
        expect_pick(ctx, 8192, 8192, 176, r64, 1);
      }
    }
    for (const int64_t m : {256, 512}) {
      if (m == 256 && l2) continue;  // the L2 rule's (above)
      EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(m, 4096, 4096, ctx).config).bn, 192) << "o_proj m " << m;
      EXPECT_NE(cuda::w4a16_tiled_config(cuda::w4a16_pick_tiled(m, 4096, 11008, ctx).config).bn, 192) << "down m " << m;
    }
    EXPECT_NE(cuda::w4a16_pick_tiled(384, 11008, 4096, ctx).config, r128) << "gate or up m = 384: 174 tiles, 66 % of two waves";
    EXPECT_NE(cuda::w4a16_pick_tiled(512, 22016, 4096, ctx).config, r128) << "gate+up m = 512: 460 tiles";
  }
}

// The rule sets of earlier sessions (moved from the GPU tests; each runs on every context above).
#define AWQ_PICK_TEST(name)                            \
  TEST(CudaW4A16Pick, name) {                          \
    for (const auto& [what, ctx] : contexts()) {       \
      SCOPED_TRACE(what);                              \
      name(ctx);                                       \
    }                                                  \
  }
AWQ_PICK_TEST(TmaWideConfigurationAndPick)
AWQ_PICK_TEST(PrefillPickRules)
AWQ_PICK_TEST(SmallBatchSplitRule)
AWQ_PICK_TEST(StreamKPickRules)
AWQ_PICK_TEST(WaveTilePickRules)
#undef AWQ_PICK_TEST

}  // namespace
}  // namespace awq
