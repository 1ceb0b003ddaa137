// The KV cache (model/kv_cache.h): memory per element type, rounding on store, and the tiny
// model run with an fp16 cache against the same model with an f32 one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/memory_usage.h"
#include "model/llama_model.h"
#include "support/shared_data.h"
#include "support/tiny_model.h"

namespace awq {
namespace {

using test::tiny_model;

// The memory really held (the buffers' sizes), not a formula: fp16 is half of f32.
TEST(KvCache, Fp16HalvesTheBytes) {
  const ModelConfig& c = tiny_model().config();  // 8 layers, kv_dim 128
  const KvCache f16 = tiny_model().new_cache(100);
  const KvCache f32 = tiny_model().new_cache(100, KvType::F32);
  EXPECT_EQ(f16.type(), KvType::F16);  // the default
  EXPECT_EQ(f16.bytes(), 2 * int64_t(c.num_layers) * 100 * c.kv_dim() * 2);
  EXPECT_EQ(f32.bytes(), 2 * int64_t(c.num_layers) * 100 * c.kv_dim() * 4);
  EXPECT_EQ(f32.bytes(), 2 * f16.bytes());
}

// store() writes rows [pos, pos + n) rounded to fp16 (round to nearest even: core/half.h) and
// leaves the others alone; an f32 cache keeps the exact values.
TEST(KvCache, StoreRoundsToTheCacheType) {
  const int64_t kvd = 24, ctx = 5;
  std::vector<float> k(size_t(2 * kvd)), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = 0.1f * float(i) - 1.234567f;
    v[i] = std::ldexp(1.0f + 1.0f / 2048, int(i % 7)) * (i % 2 ? -1.0f : 1.0f);  // exact ties
  }
  for (KvType t : {KvType::F16, KvType::F32}) {
    KvCache cache(3, ctx, kvd, t);
    const KvLayer L = cache.layer(1);
    L.store(2, 2, k.data(), v.data());
    const KvView view = cache.view(1);
    for (int64_t pos = 0; pos < ctx; ++pos)
      for (int64_t j = 0; j < kvd; ++j) {
        const size_t at = size_t(pos * kvd + j);
        const bool written = pos == 2 || pos == 3;
        const size_t src = size_t((pos - 2) * kvd + j);
        float gk, gv;
        if (t == KvType::F16) {
          gk = fp16_to_f32(static_cast<const uint16_t*>(view.k)[at]);
          gv = fp16_to_f32(static_cast<const uint16_t*>(view.v)[at]);
        } else {
          gk = static_cast<const float*>(view.k)[at];
          gv = static_cast<const float*>(view.v)[at];
        }
        const float wk = !written ? 0.0f : t == KvType::F16 ? fp16_to_f32(f32_to_fp16(k[src])) : k[src];
        const float wv = !written ? 0.0f : t == KvType::F16 ? fp16_to_f32(f32_to_fp16(v[src])) : v[src];
        ASSERT_EQ(gk, wk) << kv_type_name(t) << " pos " << pos << " j " << j;
        ASSERT_EQ(gv, wv) << kv_type_name(t) << " pos " << pos << " j " << j;
      }
  }
}

// Prefill (the blocked attention) and then decode steps (the per-row loop) with both caches:
// logits close and the same argmax. Bound: rounding keys and values to fp16 moves each by at
// most 2^-11 relative; through softmax and 8 layers that shows in the logits at ~1e-3 of their
// scale (measured: see docs/results/cpu.md); 1e-2 absolute (the bound for logits)
// leaves room and still catches a wrong widening (which moves them by O(1)).
TEST(KvCache, Fp16LogitsCloseToF32) {
  ThreadPool pool(2);
  std::vector<int32_t> ids = {1, 415, 3340, 302, 272, 2556, 905, 28723, 415, 8123, 302};
  KvCache a = tiny_model().new_cache(64, KvType::F16), b = tiny_model().new_cache(64, KvType::F32);
  std::vector<float> la, lb;
  tiny_model().forward(pool, ids.data(), int64_t(ids.size()), a, true, la);
  tiny_model().forward(pool, ids.data(), int64_t(ids.size()), b, true, lb);
  float worst = 0.0f;
  for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
  EXPECT_LE(worst, 1e-2f) << "prefill";
  for (int step = 0; step < 8; ++step) {
    const int32_t t = int32_t(std::max_element(lb.end() - 32000, lb.end()) - (lb.end() - 32000));
    EXPECT_EQ(t, int32_t(std::max_element(la.end() - 32000, la.end()) - (la.end() - 32000))) << "step " << step;
    tiny_model().forward(pool, &t, 1, a, false, la);
    tiny_model().forward(pool, &t, 1, b, false, lb);
    worst = 0.0f;
    for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::fabs(la[i] - lb[i]));
    EXPECT_LE(worst, 1e-2f) << "decode step " << step;
  }
  std::printf("[ info ] fp16 vs f32 KV cache, tiny model: max |logit difference| %.2e at the last decode step\n",
              double(worst));
}

TEST(KvCache, CacheOfAnotherModelIsRefused) {
  ThreadPool pool(1);
  KvCache wrong(3, 16, tiny_model().config().kv_dim());  // 3 layers, the model has 8
  std::vector<float> logits;
  const int32_t tok = 1;
  EXPECT_THROW(tiny_model().forward(pool, &tok, 1, wrong, false, logits), Error);
}

// copy_prefix_from (the server's prompt sharing): positions [0, n) of every layer, keys and
// values, for both element types; the destination's later rows are not its content any more
// (n_past = n); a cache of another shape or type, itself, or more positions than the source
// holds are refused and change nothing.
TEST(KvCache, CopyPrefixTakesTheFirstPositionsOfEveryLayer) {
  for (const KvType t : {KvType::F16, KvType::F32}) {
    KvCache src(2, 8, 4, t), dst(2, 8, 4, t);
    std::vector<float> k(8 * 4), v(8 * 4), other(8 * 4, 9.0f);
    std::iota(k.begin(), k.end(), 1.0f);
    std::iota(v.begin(), v.end(), 100.0f);
    for (int l = 0; l < 2; ++l) {
      src.layer(l).store(0, 6, k.data(), v.data());
      dst.layer(l).store(0, 8, other.data(), other.data());
    }
    src.n_past = 6;
    dst.n_past = 8;
    dst.copy_prefix_from(src, 5);
    EXPECT_EQ(dst.n_past, 5);
    for (int l = 0; l < 2; ++l)
      for (int64_t i = 0; i < 8 * 4; ++i) {
        const bool copied = i < 5 * 4;
        const float gk = t == KvType::F16 ? fp16_to_f32(static_cast<const uint16_t*>(dst.layer(l).k)[i])
                                          : static_cast<const float*>(dst.layer(l).k)[i];
        const float gv = t == KvType::F16 ? fp16_to_f32(static_cast<const uint16_t*>(dst.layer(l).v)[i])
                                          : static_cast<const float*>(dst.layer(l).v)[i];
        EXPECT_EQ(gk, copied ? k[size_t(i)] : 9.0f) << kv_type_name(t) << " layer " << l << " element " << i;
        EXPECT_EQ(gv, copied ? v[size_t(i)] : 9.0f) << kv_type_name(t) << " layer " << l << " element " << i;
      }
    KvCache wide(2, 8, 8, t), deeper(3, 8, 4, t);
    EXPECT_THROW(wide.copy_prefix_from(src, 1), Error);
    EXPECT_THROW(deeper.copy_prefix_from(src, 1), Error);
    EXPECT_THROW(dst.copy_prefix_from(dst, 1), Error);
    EXPECT_THROW(dst.copy_prefix_from(src, 7), Error);  // src holds 6
    EXPECT_EQ(dst.n_past, 5);
  }
  KvCache f16(2, 8, 4, KvType::F16), f32(2, 8, 4, KvType::F32);
  EXPECT_THROW(f16.copy_prefix_from(f32, 0), Error);
}

// The check engines make before allocating their caches (kv_cache_refusal): 2 x layers x kv_dim x
// element size x sequences bytes a position.
TEST(KvCache, RefusalNamesTheFiguresAndAContextThatFits) {
  const int64_t GiB = int64_t(1) << 30;
  // Llama-3.1-8B: 32 layers, kv_dim 1024; 131072 positions of f16 = 16 GiB.
  EXPECT_EQ(kv_cache_refusal(32, 1024, 1, 131072, KvType::F16, 16 * GiB), "");
  EXPECT_EQ(kv_cache_refusal(32, 1024, 1, 131072, KvType::F16, -1), "");  // unknown: nothing refused
  const std::string r = kv_cache_refusal(32, 1024, 1, 131072, KvType::F16, 8 * GiB);
  std::printf("[ note     ] %s\n", r.c_str());
  for (const char* part : {"KV cache does not fit in memory", "1 sequence of 131072 positions needs 16.00 GiB",
                           "f16 keys and values", "8.00 GiB available", "--ctx 58880"})
    EXPECT_NE(r.find(part), std::string::npos) << part << " in: " << r;
  EXPECT_EQ(r.find("--parallel"), std::string::npos) << r;
  EXPECT_EQ(r.find('\n'), std::string::npos) << r;
  // The proposed context fits in 90 % of what is available (128 KiB a position: 58880 = 7.19 GiB).
  EXPECT_EQ(kv_cache_refusal(32, 1024, 1, 58880, KvType::F16, 8 * GiB), "");
  // Several sequences (the server's --parallel) and f32.
  const std::string s = kv_cache_refusal(32, 1024, 8, 8192, KvType::F32, 8 * GiB);
  for (const char* part : {"8 sequences of 8192 positions need 16.00 GiB", "f32", "--parallel", "--kv-type f16"})
    EXPECT_NE(s.find(part), std::string::npos) << part << " in: " << s;
  EXPECT_NE(kv_cache_refusal(32, 1024, 1, 256, KvType::F16, 1 << 20).find("not even 256 positions fit"),
            std::string::npos);
}

// An engine asked for caches far beyond any machine's memory refuses before allocating (the CPU
// engine's caches are zero-filled, so they would be resident at once).
TEST(KvCache, EngineRefusesCachesBeyondMemory) {
  try {
    (void)tiny_model().new_cache(int64_t(1) << 40, KvType::F16);  // 4 PiB of keys and values
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache does not fit in memory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace awq
