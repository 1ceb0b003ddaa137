// The tiled W4A16 dispatch (w4a16_pick_tiled, ops/cuda/w4a16_kernels.h) as a pure function of the
// GPU's facts and the AWQ_W4A16_* switches: these tests need no GPU, so CI checks the rules on a
// simulated 132-SM Hopper (H100 / H200 SXM, where the sweeps behind them ran) and checks on other
// SM counts that every pick is one the device can run. The GPU tests (test_cuda_w4a16.cpp:
// WaveTilePickRules, PrefillPickRules, ...) check the same dispatch under the real device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "ops/cuda/w4a16_kernels.h"

namespace awq {
namespace {

namespace cuda = awq::cuda;

// Configuration indices (as w4a16_tiled_config): the cp.async wgmma tiles of 64 tokens x 64 or
// 128 rows with two chunks a slot, the 4-stage 64 x 128 one, and the TMA tiles.
int cp_async(int which) { return cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count() + which; }
const int kC64 = 7, kC128 = 8, kC128Stages4 = 1;

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

}  // namespace
}  // namespace awq
