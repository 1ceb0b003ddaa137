// The CUDA engine (src/ops/cuda, -DAWQ_CUDA=ON builds only) against the CPU engine:
// each fused op against its CPU reference (ops/cpu/ops.h, attention.h), the tiny model's
// greedy tokens against reference.json, decode (CUDA graph replays, batched slots) against
// prefill, and perplexity on a prefix of val.txt against the CPU figure, for the FP16 model
// and an RTN W4 g128 AWQ checkpoint of it. Every test skips with a message when no GPU is
// present. Tolerances: the CUDA engine keeps linear inputs/outputs and the KV cache in fp16
// (2^-11 relative rounding each) and accumulates in f32, so single ops are held to ~2e-3
// relative and model outputs to the bounds stated at each test.
#ifdef AWQ_HAVE_CUDA
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "core/error.h"
#include "core/half.h"
#include "model/llama_model.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/ops.h"
#include "ops/cuda/cuda_attention.h"
#include "ops/cuda/cuda_flash_prefill.h"
#include "ops/cuda/cuda_llama.h"
#include "ops/cuda/cuda_memory_plan.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/cuda_sequence.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"
#include "quant/quantize_model.h"
#include "runtime/perplexity.h"
#include "runtime/sampler.h"
#include "support/cuda_device_test.h"
#include "support/half_vectors.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "support/tiny_model.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

using test::tiny_model_dir;
using test::tiny_reference;

using CudaTest = test::CudaDeviceTest;

// A device copy of a host vector (freed with the object).
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

// Random fp16 values (as bits) and their exact f32 widening.
struct HalfData {
  std::vector<uint16_t> bits;
  std::vector<float> f;
};
HalfData random_half(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> nd(0.0f, scale);
  HalfData d;
  for (size_t i = 0; i < n; ++i) {
    d.bits.push_back(f32_to_fp16(nd(rng)));
    d.f.push_back(fp16_to_f32(d.bits.back()));
  }
  return d;
}
__half* hp(Dev<uint16_t>& d) { return reinterpret_cast<__half*>(d.p); }

// ||a - b|| / ||b||
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Every kernel: the vectorised one (d % 4 == 0) with 1, 2, 4 and 8 pieces a thread, and the
// scalar one (d % 4 != 0, or rows too long for the register copy).
TEST_F(CudaTest, AddRmsNormMatchesCpu) {
  for (const int64_t d : {int64_t(4096), int64_t(4096 + 96), int64_t(8192 + 4), int64_t(3 * 4096 + 4), int64_t(20000),
                          int64_t(32768 + 4), int64_t(383)}) {
    std::mt19937 rng(static_cast<uint32_t>(d));
    const int64_t rows = 5;
    const HalfData delta = random_half(size_t(rows * d), rng);
    std::vector<float> x(size_t(rows * d)), w(static_cast<size_t>(d));
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (float& v : x) v = nd(rng);
    for (float& v : w) v = 1.0f + 0.1f * nd(rng);
    Dev<float> dx(x), dw(w);
    Dev<uint16_t> dd(delta.bits), dh(std::vector<uint16_t>(size_t(rows * d)));
    cuda::add_rmsnorm(dx.p, hp(dd), dw.p, rows, d, 1e-5f, hp(dh), nullptr);
    for (size_t i = 0; i < x.size(); ++i) x[i] += delta.f[i];
    std::vector<float> ref(x.size());
    rmsnorm(x.data(), w.data(), rows, d, 1e-5, ref.data());
    EXPECT_LT(rel_err(dx.get(), x), 1e-6) << "d " << d;          // the residual add is f32
    EXPECT_LT(rel_err(test::widen_fp16(dh.get()), ref), 2e-3) << "d " << d;  // fp16 output rounding
  }
}

// q/k RMSNorm (qwen3) + RoPE + the KV-cache store against rmsnorm + rope_rotate_half.
TEST_F(CudaTest, QkNormRopeStoreMatchesCpu) {
  for (const bool qk_norm : {false, true}) {
    for (const int hd : {64, 128}) {
      std::mt19937 rng(hd + qk_norm);
      const int nh = 6, nkv = 2, rows = 3, slots = 2;
      const int64_t ctx = 40, width = (nh + 2 * nkv) * hd, kvd = nkv * hd;
      const HalfData qkv = random_half(size_t(rows * width), rng);
      std::vector<float> inv(size_t(hd / 2)), qn(static_cast<size_t>(hd)), kn(static_cast<size_t>(hd));
      for (int j = 0; j < hd / 2; ++j) inv[size_t(j)] = 1.0f / std::pow(10000.0f, float(2 * j) / float(hd));
      std::normal_distribution<float> nd(1.0f, 0.2f);
      for (float& v : qn) v = nd(rng);
      for (float& v : kn) v = nd(rng);
      const std::vector<int32_t> pos = {0, 17, 39}, slot = {1, 0, 1};
      Dev<uint16_t> dqkv(qkv.bits), dk(std::vector<uint16_t>(size_t(slots * ctx * kvd))),
          dv(std::vector<uint16_t>(size_t(slots * ctx * kvd)));
      Dev<float> dtab(cuda::rope_cos_sin_table(inv, ctx)), dqn(qn), dkn(kn);
      Dev<int32_t> dpos(pos), dslot(slot);
      const cuda::KvCacheView kv{hp(dk), hp(dv), ctx, dpos.p, dslot.p};
      cuda::qk_norm_rope_store(hp(dqkv), rows, nh, nkv, hd, reinterpret_cast<const float2*>(dtab.p),
                               qk_norm ? dqn.p : nullptr,
                               qk_norm ? dkn.p : nullptr, 1e-6f, kv, nullptr);
      const std::vector<float> got = test::widen_fp16(dqkv.get());
      const std::vector<float> kc = test::widen_fp16(dk.get()), vc = test::widen_fp16(dv.get());
      for (int r = 0; r < rows; ++r) {
        std::vector<float> q(qkv.f.begin() + r * width, qkv.f.begin() + r * width + nh * hd);
        std::vector<float> k(qkv.f.begin() + r * width + nh * hd, qkv.f.begin() + r * width + nh * hd + kvd);
        if (qk_norm) {
          rmsnorm(q.data(), qn.data(), nh, hd, 1e-6, q.data());
          rmsnorm(k.data(), kn.data(), nkv, hd, 1e-6, k.data());
        }
        rope_rotate_half(q.data(), 1, nh, hd, &pos[size_t(r)], inv.data());
        rope_rotate_half(k.data(), 1, nkv, hd, &pos[size_t(r)], inv.data());
        const std::vector<float> gq(got.begin() + r * width, got.begin() + r * width + nh * hd);
        const int64_t at = (int64_t(slot[size_t(r)]) * ctx + pos[size_t(r)]) * kvd;
        const std::vector<float> gk(kc.begin() + at, kc.begin() + at + kvd);
        const std::vector<float> gv(vc.begin() + at, vc.begin() + at + kvd);
        const std::vector<float> v(qkv.f.begin() + r * width + nh * hd + kvd, qkv.f.begin() + (r + 1) * width);
        EXPECT_LT(rel_err(gq, q), 2e-3) << "hd " << hd << " row " << r;
        EXPECT_LT(rel_err(gk, k), 2e-3) << "hd " << hd << " row " << r;
        EXPECT_EQ(gv, v) << "v is copied bit for bit";
      }
    }
  }
}

// Both kernels: eight outputs a thread (ff % 8 == 0) and one (ff = 1001); gate | up rows and
// gate / up interleaved in packs of 8 (the engine's fused projection), which needs ff % 8 == 0.
TEST_F(CudaTest, SiluMulMatchesCpu) {
  for (const bool interleaved : {false, true}) {
    for (const int64_t ff : {int64_t(1000), int64_t(1001)}) {
      std::mt19937 rng(3);
      const int64_t rows = 3;
      const HalfData gu = random_half(size_t(rows * 2 * ff), rng, 2.0f);
      Dev<uint16_t> dgu(gu.bits), dout(std::vector<uint16_t>(size_t(rows * ff)));
      if (interleaved && ff % 8 != 0) {
        EXPECT_THROW(cuda::silu_mul(hp(dgu), rows, ff, hp(dout), nullptr, true), Error);
        continue;
      }
      cuda::silu_mul(hp(dgu), rows, ff, hp(dout), nullptr, interleaved);
      std::vector<float> g(size_t(rows * ff)), u(size_t(rows * ff)), ref(size_t(rows * ff));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < ff; ++j) {
          const int64_t gi = interleaved ? 16 * (j / 8) + j % 8 : j, ui = interleaved ? gi + 8 : ff + j;
          g[size_t(r * ff + j)] = gu.f[size_t(r * 2 * ff + gi)];
          u[size_t(r * ff + j)] = gu.f[size_t(r * 2 * ff + ui)];
        }
      silu_mul(g.data(), u.data(), rows * ff, ref.data());
      EXPECT_LT(rel_err(test::widen_fp16(dout.get()), ref), 2e-3) << "ff " << ff << " interleaved " << interleaved;
    }
  }
}

TEST_F(CudaTest, ArgmaxAndNllMatchCpu) {
  std::mt19937 rng(4);
  const int64_t rows = 3, vocab = 32003;
  std::vector<float> logits(size_t(rows * vocab));
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (float& v : logits) v = nd(rng);
  logits[size_t(1 * vocab + 5)] = logits[size_t(1 * vocab + 900)] = 100.0f;  // a tie: lowest index wins
  const std::vector<int32_t> target = {7, 900, 32002};
  Dev<float> dl(logits), dnll(std::vector<float>(static_cast<size_t>(rows)));
  Dev<int32_t> dt(target), dids(std::vector<int32_t>(size_t(rows), -1));
  cuda::argmax_rows(dl.p, rows, vocab, dids.p, nullptr);
  cuda::nll_rows(dl.p, dt.p, rows, vocab, dnll.p, nullptr);
  const auto ids = dids.get();
  const auto nll = dnll.get();
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(ids[size_t(r)], argmax(logits.data() + r * vocab, vocab));
    const double ref = token_nll(logits.data() + r * vocab, vocab, target[size_t(r)]);
    EXPECT_NEAR(nll[size_t(r)], ref, 1e-4 * std::max(1.0, std::abs(ref)));  // f32 vs double sums
  }
}

// Split-K decode attention and the prefill path (n_splits = 1) against the CPU attention:
// GQA groups of 1, 3, 4 and 8 query heads per KV head, head_dim 64/128/256, sliding window.
// The GQA cases reduce their scores with warp_sum_many over V = heads x keys a step values:
// V = 16 (4 heads of 128, and 8 of 256), 32 (8 heads of 64), 8 (2 heads of 256, the last case).
// Both block forms: 16 warps where the grid has no more blocks than the GPU has SMs (the small
// cases: 24-120 blocks), 8 where it has more (4 x 4 heads x 32 splits = 512 blocks, MHA;
// 4 x 2 KV heads x 32 splits = 256, GQA; 4096 for the 32-head case, more than any GPU's SMs).
TEST_F(CudaTest, AttentionMatchesCpu) {
  struct Case { int nh, nkv, hd, window, splits; };
  for (const Case cs : {Case{6, 2, 64, 0, 1}, Case{6, 2, 64, 0, 5}, Case{8, 2, 128, 0, 3},
                        Case{4, 4, 128, 0, 32}, Case{16, 2, 64, 7, 4}, Case{8, 1, 256, 0, 2},
                        Case{16, 2, 64, 0, 32}, Case{32, 32, 128, 0, 32}, Case{4, 2, 256, 0, 3}}) {
    std::mt19937 rng(cs.nh * 1000 + cs.hd + cs.splits);
    const int slots = 2, rows = 4;
    const int64_t ctx = 96, kvd = cs.nkv * cs.hd, qd = cs.nh * cs.hd;
    const HalfData q = random_half(size_t(rows * qd), rng);
    const HalfData k = random_half(size_t(slots * ctx * kvd), rng);
    const HalfData v = random_half(size_t(slots * ctx * kvd), rng);
    const std::vector<int32_t> pos = {0, 95, 3, 50}, slot = {0, 1, 1, 0};
    Dev<uint16_t> dq(q.bits), dk(k.bits), dv(v.bits), dout(std::vector<uint16_t>(size_t(rows * qd)));
    Dev<int32_t> dpos(pos), dslot(slot);
    const cuda::AttentionDims ad{cs.nh, cs.nkv, cs.hd, cs.window};
    Dev<float> scratch(std::vector<float>(size_t(std::max<int64_t>(1, cuda::attention_scratch_floats(rows, ad, cs.splits)))));
    const cuda::KvCacheView kv{hp(dk), hp(dv), ctx, dpos.p, dslot.p};
    cuda::attention(hp(dq), qd, rows, ad, kv, cs.splits, scratch.p, hp(dout), nullptr);
    const std::vector<float> got = test::widen_fp16(dout.get());
    ThreadPool pool(1);
    const AttentionShape shape{cs.nh, cs.nkv, cs.hd, ctx, cs.window};
    for (int r = 0; r < rows; ++r) {
      std::vector<float> ref(static_cast<size_t>(qd));
      const int64_t off = int64_t(slot[size_t(r)]) * ctx * kvd;
      attention_rows(pool, GemmIsa::Portable, q.f.data() + r * qd,
                     KvView::f32(k.f.data() + off, v.f.data() + off), &pos[size_t(r)], 1, shape, ref.data());
      const std::vector<float> g(got.begin() + r * qd, got.begin() + (r + 1) * qd);
      EXPECT_LT(rel_err(g, ref), 2e-3) << "nh " << cs.nh << " nkv " << cs.nkv << " hd " << cs.hd
                                       << " window " << cs.window << " splits " << cs.splits << " row " << r;
    }
  }
}

// The tensor-core prefill attention (cuda_flash_prefill.h) against the CPU attention: MHA and
// GQA groups of 3, 4 and 7 (items of a block spanning rows unevenly), head_dim 64 / 128, a
// sliding window, rows that do not fill the last 64-item tile, segments that start past
// position 0 (keys before them already cached; tiles every row sees whole skip the mask, with
// and without a window), two segments of different lengths in slots 1 and 2 (the server's
// packed prompts), and 70 three-row segments (more than one launch's 64). The cache past each
// segment's last row is NaN: the kernel must neither read it into P V nor let it through the
// mask. Tolerance 2e-3 as AttentionMatchesCpu: P is rounded to fp16 (2^-11) for P V.
TEST_F(CudaTest, FlashPrefillAttentionMatchesCpu) {
  struct Case { int nh, nkv, hd, window; std::vector<cuda::PrefillSegment> segs; };
  // {row0, rows, slot, first_pos}
  std::vector<cuda::PrefillSegment> many;
  for (int i = 0; i < 70; ++i) many.push_back({3 * i, 3, i, 5 * (i % 7)});
  const Case cases[] = {
      {4, 4, 128, 0, {{0, 100, 1, 37}, {100, 40, 2, 0}}},
      {32, 8, 128, 0, {{0, 70, 1, 0}, {70, 9, 2, 150}}},
      {6, 2, 64, 0, {{0, 100, 1, 37}, {100, 64, 2, 64}}},
      {16, 2, 64, 7, {{0, 90, 1, 5}, {90, 1, 2, 199}}},
      {14, 2, 64, 0, {{0, 33, 1, 130}, {33, 33, 2, 130}}},
      {8, 2, 128, 40, {{0, 130, 1, 0}, {130, 17, 2, 180}}},
      {8, 2, 128, 100, {{0, 33, 1, 130}, {33, 50, 2, 10}}},
      {4, 2, 64, 0, many},
  };
  for (const Case& cs : cases) {
    cuda::AttentionDims ad{cs.nh, cs.nkv, cs.hd, cs.window};
    ASSERT_TRUE(cuda::flash_prefill_supports(ad));
    std::mt19937 rng(cs.nh * 100 + cs.hd + int(cs.segs.size()));
    int64_t rows = 0, slots = 0;
    for (const auto& g : cs.segs) rows += g.rows, slots = std::max<int64_t>(slots, g.slot + 1);
    const int64_t ctx = 200, kvd = cs.nkv * cs.hd, qd = cs.nh * cs.hd, q_stride = qd + 2 * kvd;  // q | k | v rows
    const HalfData q = random_half(size_t(rows * q_stride), rng);
    HalfData k = random_half(size_t(slots * ctx * kvd), rng), v = random_half(size_t(slots * ctx * kvd), rng);
    for (const auto& g : cs.segs)  // positions past the segment: NaN
      for (int64_t p = g.first_pos + g.rows; p < ctx; ++p)
        for (int64_t e = 0; e < kvd; ++e)
          k.bits[size_t((g.slot * ctx + p) * kvd + e)] = v.bits[size_t((g.slot * ctx + p) * kvd + e)] = 0x7e00;
    Dev<uint16_t> dq(q.bits), dk(k.bits), dv(v.bits), dout(std::vector<uint16_t>(size_t(rows * qd)));
    cuda::flash_prefill_attention(hp(dq), q_stride, cs.segs.data(), int(cs.segs.size()), ad, hp(dk), hp(dv), ctx,
                                  hp(dout), nullptr);
    const std::vector<float> got = test::widen_fp16(dout.get());
    ThreadPool pool(1);
    const AttentionShape shape{cs.nh, cs.nkv, cs.hd, ctx, cs.window};
    double worst = 0;
    for (const auto& g : cs.segs)
      for (int64_t i = 0; i < g.rows; ++i) {
        const int64_t r = g.row0 + i;
        std::vector<float> ref(static_cast<size_t>(qd));
        const int32_t pos = int32_t(g.first_pos + i);
        const int64_t off = int64_t(g.slot) * ctx * kvd;
        attention_rows(pool, GemmIsa::Portable, q.f.data() + r * q_stride,
                       KvView::f32(k.f.data() + off, v.f.data() + off), &pos, 1, shape, ref.data());
        const std::vector<float> out_r(got.begin() + r * qd, got.begin() + (r + 1) * qd);
        const double err = rel_err(out_r, ref);
        worst = std::max(worst, err);
        EXPECT_LT(err, 2e-3) << "nh " << cs.nh << " nkv " << cs.nkv << " hd " << cs.hd << " window " << cs.window
                             << " row " << r;
      }
    std::printf("[ note     ] flash prefill nh %d nkv %d hd %d window %d, %zu segments: worst relative error %.2e\n",
                cs.nh, cs.nkv, cs.hd, cs.window, cs.segs.size(), worst);
  }
  // What it does not take: head_dim 256 (attention() runs those), rows past the context.
  Dev<uint16_t> dummy(std::vector<uint16_t>(16));
  EXPECT_FALSE(cuda::flash_prefill_supports({8, 1, 256, 0}));
  const cuda::PrefillSegment four{0, 4, 0, 0}, past{0, 4, 0, 6};
  EXPECT_THROW(cuda::flash_prefill_attention(hp(dummy), 8 * 256, &four, 1, {8, 1, 256, 0}, hp(dummy), hp(dummy), 8,
                                             hp(dummy), nullptr),
               Error);
  EXPECT_THROW(cuda::flash_prefill_attention(hp(dummy), 4 * 64, &past, 1, {4, 4, 64, 0}, hp(dummy), hp(dummy), 8,
                                             hp(dummy), nullptr),
               Error);
}

// The decode form of attention (RopeStore: RoPE, qwen3's q/k norms and the KV-cache store done
// by the attention kernel) against qk_norm_rope_store followed by attention(): without the q/k
// norms the same bits (output and cache; both use rope_device.cuh and the same key order),
// with them within fp16 rounding (the norm's sum runs in another order). GQA groups of 1, 3, 4
// and 8, head_dim 64 / 128 / 256, split-K (the new key in the last split, splits past the end),
// a sliding window, and batch rows in scattered slots.
TEST_F(CudaTest, DecodeAttentionWithRopeMatchesTwoKernels) {
  struct Case { int nh, nkv, hd, window, splits; bool qk_norm; };
  for (const Case cs : {Case{6, 2, 64, 0, 1, false}, Case{6, 2, 64, 0, 5, false}, Case{8, 2, 128, 0, 3, false},
                        Case{4, 4, 128, 0, 32, false}, Case{32, 32, 128, 0, 2, false}, Case{16, 2, 64, 7, 4, false},
                        Case{8, 1, 256, 0, 2, false}, Case{8, 2, 128, 0, 3, true}, Case{6, 2, 64, 0, 1, true}}) {
    std::mt19937 rng(cs.nh * 1000 + cs.hd + cs.splits + cs.qk_norm);
    const int slots = 5, rows = 4;
    const int64_t ctx = 96, kvd = cs.nkv * cs.hd, qd = cs.nh * cs.hd, width = qd + 2 * kvd;
    const HalfData qkv = random_half(size_t(rows * width), rng);
    const HalfData k = random_half(size_t(slots * ctx * kvd), rng);  // earlier steps' keys (and junk past pos)
    const HalfData v = random_half(size_t(slots * ctx * kvd), rng);
    std::vector<float> inv(size_t(cs.hd / 2)), qn(static_cast<size_t>(cs.hd)), kn(static_cast<size_t>(cs.hd));
    for (int j = 0; j < cs.hd / 2; ++j) inv[size_t(j)] = 1.0f / std::pow(10000.0f, float(2 * j) / float(cs.hd));
    std::normal_distribution<float> nd(1.0f, 0.2f);
    for (float& x : qn) x = nd(rng);
    for (float& x : kn) x = nd(rng);
    const std::vector<int32_t> pos = {0, 95, 3, 50}, slot = {4, 1, 0, 2};
    Dev<float> dtab(cuda::rope_cos_sin_table(inv, ctx)), dqn(qn), dkn(kn);
    Dev<int32_t> dpos(pos), dslot(slot);
    const cuda::AttentionDims ad{cs.nh, cs.nkv, cs.hd, cs.window};
    const cuda::RopeStore rs{reinterpret_cast<const float2*>(dtab.p), cs.qk_norm ? dqn.p : nullptr,
                             cs.qk_norm ? dkn.p : nullptr, 1e-6f};
    const size_t scratch_n = size_t(std::max<int64_t>(1, cuda::attention_scratch_floats(rows, ad, cs.splits)));
    // Two kernels (the prefill form), then the decode form on fresh copies of the same data.
    Dev<uint16_t> q2(qkv.bits), k2(k.bits), v2(v.bits), out2(std::vector<uint16_t>(size_t(rows * qd)));
    Dev<float> scratch2(std::vector<float>(scratch_n, 0.0f));
    const cuda::KvCacheView kv2{hp(k2), hp(v2), ctx, dpos.p, dslot.p};
    cuda::qk_norm_rope_store(hp(q2), rows, cs.nh, cs.nkv, cs.hd, rs.cos_sin, rs.q_norm, rs.k_norm, rs.eps, kv2, nullptr);
    cuda::attention(hp(q2), width, rows, ad, kv2, cs.splits, scratch2.p, hp(out2), nullptr);
    Dev<uint16_t> q1(qkv.bits), k1(k.bits), v1(v.bits), out1(std::vector<uint16_t>(size_t(rows * qd)));
    Dev<float> scratch1(std::vector<float>(scratch_n, 0.0f));
    const cuda::KvCacheView kv1{hp(k1), hp(v1), ctx, dpos.p, dslot.p};
    cuda::attention(hp(q1), width, rows, ad, kv1, cs.splits, scratch1.p, hp(out1), nullptr, &rs);
    const std::string what = "nh " + std::to_string(cs.nh) + " nkv " + std::to_string(cs.nkv) + " hd " +
                             std::to_string(cs.hd) + " window " + std::to_string(cs.window) + " splits " +
                             std::to_string(cs.splits) + (cs.qk_norm ? " qk_norm" : "");
    EXPECT_EQ(q1.get(), qkv.bits) << what << ": the decode form leaves the projection as it was";
    EXPECT_EQ(v1.get(), v2.get()) << what;
    if (!cs.qk_norm) {
      EXPECT_EQ(out1.get(), out2.get()) << what;
      EXPECT_EQ(k1.get(), k2.get()) << what;
    } else {
      EXPECT_LT(rel_err(test::widen_fp16(out1.get()), test::widen_fp16(out2.get())), 2e-3) << what;
      EXPECT_LT(rel_err(test::widen_fp16(k1.get()), test::widen_fp16(k2.get())), 2e-3) << what;
    }
  }
}

// A decode-form call whose rows are not q | k | v wide is refused before any launch.
TEST_F(CudaTest, DecodeAttentionWithRopeRefusesNarrowRows) {
  const cuda::AttentionDims ad{4, 2, 64, 0};
  const cuda::RopeStore rs{reinterpret_cast<const float2*>(&ad), nullptr, nullptr, 1e-6f};  // never read
  const cuda::KvCacheView kv{};
  EXPECT_THROW(cuda::attention(nullptr, 4 * 64, 1, ad, kv, 1, nullptr, nullptr, nullptr, &rs), Error);
}

using test::tiny_model;

// Greedy continuations of reference.json on CUDA: one sequence through CudaSequence (prefill,
// then host argmax over decode logits: the CUDA graph replays from the third token on), and
// all prompts at once as a batch in separate slots with the argmax on the device.
TEST_F(CudaTest, GreedyTokensMatchReference) {
  cuda::CudaSequence seq(tiny_model(), 128);
  const auto& greedy = tiny_reference()["greedy"];
  for (const auto& g : greedy) {
    std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = g["greedy_ids"].get<std::vector<int32_t>>();
    seq.clear();
    std::vector<float> logits;
    seq.forward(ids.data(), int64_t(ids.size()), false, logits);
    std::vector<int32_t> got;
    for (size_t i = 0; i < want.size(); ++i) {
      int32_t t = argmax(logits.data(), int64_t(logits.size()));
      got.push_back(t);
      seq.forward(&t, 1, false, logits);
    }
    EXPECT_EQ(got, want) << g["prompt"];
  }
  EXPECT_TRUE(seq.engine().graph_used()) << "the decode step never ran from a CUDA graph";

  cuda::CudaLlamaOptions o;
  o.slots = int(greedy.size());
  o.ctx = 128;
  cuda::CudaLlama batch(tiny_model().config(), tiny_model().weights(), o);
  std::vector<int32_t> next(greedy.size());
  std::vector<std::vector<int32_t>> got(greedy.size());
  std::vector<float> logits;
  for (size_t b = 0; b < greedy.size(); ++b) {
    const auto ids = greedy[b]["prompt_ids"].get<std::vector<int32_t>>();
    batch.prefill(int(b), ids.data(), int64_t(ids.size()), false, logits);
    next[b] = argmax(logits.data(), int64_t(logits.size()));
  }
  const size_t steps = greedy[0]["greedy_ids"].size();
  for (size_t i = 0; i < steps; ++i) {
    for (size_t b = 0; b < greedy.size(); ++b) got[b].push_back(next[b]);
    batch.decode_greedy(next.data(), int(greedy.size()), next.data());
  }
  for (size_t b = 0; b < greedy.size(); ++b)
    EXPECT_EQ(got[b], greedy[b]["greedy_ids"].get<std::vector<int32_t>>()) << "batched, " << greedy[b]["prompt"];
}

// The last prompt position's logits against the PyTorch f32 reference: fp16 activations move
// them by ~1e-2 on this model, so 0.1 absolute (logits range ~ +-20) and the same top-5.
TEST_F(CudaTest, LastPromptLogitsCloseToReference) {
  cuda::CudaSequence seq(tiny_model(), 64);
  for (const auto& g : tiny_reference()["greedy"]) {
    std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
    seq.clear();
    std::vector<float> logits;
    seq.forward(ids.data(), int64_t(ids.size()), false, logits);
    const auto& ref = g["last_prompt_position"];
    for (int i = 0; i < 5; ++i) {
      const int32_t id = ref["top5_ids"][i].get<int32_t>();
      EXPECT_NEAR(logits[size_t(id)], ref["top5_logits"][i].get<float>(), 0.1) << g["prompt"];
    }
    EXPECT_EQ(argmax(logits.data(), int64_t(logits.size())), ref["top5_ids"][0].get<int32_t>());
  }
}

// Decode steps (graph replays) give the logits prefill gives for the same tokens: a short
// sequence (one attention split) and a 300-token one (several splits + the combine kernel).
TEST_F(CudaTest, DecodeEqualsPrefill) {
  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  std::vector<int32_t> long_ids = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 3000), true);
  ASSERT_GE(long_ids.size(), 300u);
  long_ids.resize(300);
  const std::vector<int32_t> short_ids = {1, 415, 3340, 302, 272, 2556, 905, 349, 369, 272};
  const int64_t vocab = tiny_model().config().vocab_size;
  for (const auto& ids : {short_ids, long_ids}) {
    const int64_t n = int64_t(ids.size()), first = n - 8;  // positions decoded one at a time
    cuda::CudaSequence a(tiny_model(), 512), b(tiny_model(), 512);
    std::vector<float> all, step;
    a.forward(ids.data(), n, true, all);
    b.forward(ids.data(), first, false, step);
    for (int64_t i = first; i < n; ++i) {
      b.forward(&ids[size_t(i)], 1, false, step);
      const std::vector<float> want(all.begin() + i * vocab, all.begin() + (i + 1) * vocab);
      // the same weights and cache; fp16 rounding of differently ordered sums only
      EXPECT_LT(rel_err(step, want), 5e-3) << "length " << n << " position " << i;
    }
    EXPECT_EQ(b.n_past(), n);
  }
}

// An RTN W4 g128 (AutoAWQ GEMM) checkpoint of the tiny model in tmp; returns its folder.
std::string quantize_tiny_rtn(const test::TempDir& tmp) {
  QuantizeOptions qo;
  qo.model_dir = tiny_model_dir();
  qo.out_dir = tmp.file("rtn");
  qo.method = "rtn";
  ThreadPool pool(ThreadPool::default_threads());
  quantize_model(pool, qo);
  return qo.out_dir;
}

// |ppl_cuda - ppl_cpu| / ppl_cpu on the first 6 windows of val.txt.
double cuda_vs_cpu_ppl_gap(const std::string& dir, double* cuda_ppl) {
  LlamaModel m(dir);
  const Tokenizer tok = Tokenizer::load(dir);
  const auto ids = tok.encode(test::read_text(test::shared_path("data/val.txt")), false);
  PerplexityOptions po;
  po.ctx = 512;
  po.bos_id = 1;
  po.max_windows = 6;  // a prefix; the whole file on the GPU machine is in docs/results/gpu.md
  ThreadPool pool(ThreadPool::default_threads());
  const double cpu = perplexity(m, pool, ids, po).ppl();
  cuda::CudaSequence seq(m, po.ctx);
  *cuda_ppl = perplexity(seq, ids, po).ppl();
  return std::abs(*cuda_ppl - cpu) / cpu;
}

// The bound: perplexity within 0.5 % of the CPU figure (fp16 activations cost ~0.01 %).
TEST_F(CudaTest, PerplexityPrefixMatchesCpu) {
  double ppl = 0;
  EXPECT_LT(cuda_vs_cpu_ppl_gap(tiny_model_dir(), &ppl), 0.005) << "cuda ppl " << ppl;
}

// The same for an AWQ (RTN W4 g128, AutoAWQ GEMM) checkpoint of the tiny model: the W4A16
// linears and the fused AWQ q/k/v and gate/up concatenation.
TEST_F(CudaTest, AwqCheckpointPerplexityMatchesCpu) {
  test::TempDir tmp;
  const std::string rtn = quantize_tiny_rtn(tmp);
  double ppl = 0, ppl_fp = 0;
  EXPECT_LT(cuda_vs_cpu_ppl_gap(rtn, &ppl), 0.005) << "cuda ppl " << ppl;
  cuda_vs_cpu_ppl_gap(tiny_model_dir(), &ppl_fp);
  // RTN W4 g128 costs ~1 % on this model (reference.json: 55.46 -> 56.01 on the whole file);
  // a broken W4A16 path (wrong nibble order, zero point or group) costs far more.
  EXPECT_GT(ppl / ppl_fp, 0.995) << ppl << " vs fp " << ppl_fp;
  EXPECT_LT(ppl / ppl_fp, 1.05) << ppl << " vs fp " << ppl_fp;
}

// The W4A16 tuning at load (w4a16.h w4a16_tune_linear; AWQ_W4A16_TUNE, on by default): a model
// whose shapes this process has not tuned yet times them (a line per shape: qkv, o_proj, gate/up,
// down_proj), a second model of the same shapes times nothing, and the perplexity with the tuned
// picks (prefill windows of 512 tokens) stays within the 0.5 % of the CPU figure. The
// tiled buckets are the wgmma tiles' (sm_90a) or the mma.sync tiles' (other GPUs, AWQ_W4A16_WGMMA=0;
// w4a16_tune_bucket); with the switch off, nothing is timed.
TEST_F(CudaTest, W4A16TuningAtLoad) {
  test::TempDir tmp;
  const std::string rtn = quantize_tiny_rtn(tmp);
  const LlamaModel awq_model(rtn);
  cuda::w4a16_tune_forget();
  const bool wgmma = cuda::w4a16_wgmma_available();
  const bool small = cuda::w4a16_kslice_from_env() && cuda::w4a16_path_from_env() == cuda::W4A16Path::Auto;
  const bool tiled = cuda::w4a16_path_from_env() != cuda::W4A16Path::Legacy;
  const bool tunes = cuda::w4a16_tune_from_env() && (tiled || small);
  cuda::CudaLlamaOptions o;
  o.ctx = 512;
  std::string first_log;
  {
    cuda::CudaLlama first(awq_model.config(), awq_model.weights(), o);
    first_log = first.tuning_log();
  }
  std::printf("[ note     ] tuning at load:\n%s", first_log.empty() ? "(nothing timed)\n" : first_log.c_str());
  if (tunes) {
    EXPECT_EQ(std::count(first_log.begin(), first_log.end(), '\n'), 4) << first_log;
    // prefill_chunk 512: 8 buckets of 64 tokens (sm_90a) or the mma.sync tiles' 10, and where the
    // K-slice kernels run the small ones (1 token, then 4 of 4 tokens).
    const int tiled_buckets = tiled ? int(cuda::w4a16_tune_buckets(512, wgmma).size()) : 0;
    const std::string tuned = "tuned " + std::to_string(tiled_buckets + (small ? 5 : 0)) + " token buckets";
    EXPECT_NE(first_log.find(tuned), std::string::npos)
        << first_log;
  } else {
    EXPECT_EQ(first_log, "");
  }
  {
    cuda::CudaLlama second(awq_model.config(), awq_model.weights(), o);
    EXPECT_EQ(second.tuning_log(), "");
  }
  // The tuned picks run the prefill windows (512 tokens: the last bucket) of the perplexity.
  double ppl = 0;
  EXPECT_LT(cuda_vs_cpu_ppl_gap(rtn, &ppl), 0.005) << "cuda ppl " << ppl;
  cuda::w4a16_tune_forget();
}

// Programmatic dependent launch (ops/cuda/pdl.h) changes when kernels start, never what they
// compute: with PDL off, on, and on with the W4A16 L2 prefetch, the engine must give the same
// logits bit for bit (same kernels, same order of arithmetic). An RTN W4 checkpoint of the tiny
// model runs the W4A16 kernels (prefill: tiled GEMM; decode: register-streaming) besides the
// engine's own; slot 0 has 300 cached tokens, so decode uses several attention splits and the
// combine kernel; decode steps 2.. replay CUDA graphs captured with the mode's launch attributes.
// A kernel reading before its wait would read the previous kernel's buffers too early: the
// NaN-free, identical logits are the check (on an sm_80 build or device every mode runs as 0).
TEST_F(CudaTest, PdlOnOffBitIdentical) {
  test::TempDir tmp;
  const LlamaModel awq_model(quantize_tiny_rtn(tmp));
  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  std::vector<int32_t> long_ids = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 3000), true);
  ASSERT_GE(long_ids.size(), 300u);
  long_ids.resize(300);
  const auto& greedy = tiny_reference()["greedy"];
  std::vector<std::vector<int32_t>> prompts = {long_ids};
  for (size_t i = 0; i + 1 < greedy.size() && prompts.size() < 3; ++i)
    prompts.push_back(greedy[i]["prompt_ids"].get<std::vector<int32_t>>());
  const int B = int(prompts.size());
  constexpr int kSteps = 6;

  struct Run {
    std::vector<float> prefill, decode;  // slot 0's prompt logits; every decode step's [B, vocab]
    std::vector<int32_t> greedy;         // decode_greedy's ids
    int mode = 0;
  };
  auto run = [&](int mode) {
    Run r;
    cuda::CudaLlamaOptions o;
    o.slots = B;
    o.ctx = 512;
    o.pdl = mode;
    cuda::CudaLlama llm(awq_model.config(), awq_model.weights(), o);
    r.mode = llm.pdl_mode();
    std::vector<float> logits;
    std::vector<int32_t> next(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
      const auto& ids = prompts[size_t(b)];
      llm.prefill(b, ids.data(), int64_t(ids.size()), b == 0, logits);
      if (b == 0) r.prefill = logits;
      next[size_t(b)] = argmax(logits.data() + logits.size() - size_t(awq_model.config().vocab_size),
                               awq_model.config().vocab_size);
    }
    for (int step = 0; step < kSteps; ++step) {
      llm.decode(next.data(), B, logits);
      r.decode.insert(r.decode.end(), logits.begin(), logits.end());
      for (int b = 0; b < B; ++b)
        next[size_t(b)] = argmax(logits.data() + size_t(b) * size_t(awq_model.config().vocab_size),
                                 awq_model.config().vocab_size);
    }
    for (int step = 0; step < kSteps; ++step) {
      llm.decode_greedy(next.data(), B, next.data());
      r.greedy.insert(r.greedy.end(), next.begin(), next.end());
    }
    EXPECT_TRUE(llm.graph_used()) << "mode " << mode;
    return r;
  };
  const Run off = run(0);
  for (float v : off.decode) ASSERT_TRUE(std::isfinite(v)) << "PDL off gave a non-finite logit";
  std::printf("[ note     ] programmatic dependent launch %s on this device/build\n",
              cuda::pdl_supported() ? "available: modes 1 and 2 compared with 0" : "unavailable: every mode runs as 0");
  for (int mode : {1, 2}) {
    const Run on = run(mode);
    EXPECT_EQ(on.mode, cuda::pdl_supported() ? mode : 0);
    ASSERT_EQ(on.prefill.size(), off.prefill.size());
    ASSERT_EQ(on.decode.size(), off.decode.size());
    EXPECT_EQ(std::memcmp(on.prefill.data(), off.prefill.data(), off.prefill.size() * 4), 0)
        << "prefill logits differ, PDL mode " << mode;
    EXPECT_EQ(std::memcmp(on.decode.data(), off.decode.data(), off.decode.size() * 4), 0)
        << "decode logits differ, PDL mode " << mode;
    EXPECT_EQ(on.greedy, off.greedy) << "greedy ids differ, PDL mode " << mode;
  }
}

// The server's packed prefill (CudaLlama::prefill_many): three slots' prompts of 5, 300 and 700
// tokens (more than a 512-row pass: the last piece is split between passes), one continuing a
// sequence that already holds 20 tokens. Each piece's last logits match prefill() of that piece
// alone on a second engine within 1e-2 relative (other pass shapes: cuBLAS sums in another
// order, so not bits), the greedy ids agree where the top two logits are apart, n_past advances,
// and the next decode step agrees. Bad input is refused before anything runs.
TEST_F(CudaTest, PrefillManyMatchesOneAtATime) {
  const LlamaModel& model = tiny_model();
  cuda::CudaLlamaOptions opt;
  opt.slots = 4;
  opt.ctx = 1024;
  cuda::CudaLlama a(model.config(), model.weights(), opt), b(model.config(), model.weights(), opt);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> tok(3, model.config().vocab_size - 1);
  const auto ids = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = tok(rng);
    return v;
  };
  const std::vector<int32_t> pre = ids(20), p0 = ids(5), p1 = ids(300), p2 = ids(700);
  std::vector<float> tmp;
  a.prefill(1, pre.data(), 20, false, tmp);
  b.prefill(1, pre.data(), 20, false, tmp);
  const int slots[3] = {3, 1, 0};
  const int32_t* toks[3] = {p0.data(), p1.data(), p2.data()};
  const int64_t n[3] = {5, 300, 700};
  std::vector<float> many;
  a.prefill_many(slots, toks, n, 3, many);
  const int64_t vocab = model.config().vocab_size;
  ASSERT_EQ(int64_t(many.size()), 3 * vocab);
  std::vector<int32_t> next(3);
  for (int i = 0; i < 3; ++i) {
    std::vector<float> one;
    b.prefill(slots[i], toks[i], n[i], false, one);
    const std::vector<float> got(many.begin() + i * vocab, many.begin() + (i + 1) * vocab);
    EXPECT_LT(rel_err(got, one), 1e-2) << "piece " << i;
    std::vector<float> sorted = one;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    next[size_t(i)] = int32_t(argmax(one.data(), vocab));
    if (sorted[0] - sorted[1] > 0.05f) {
      EXPECT_EQ(argmax(got.data(), vocab), next[size_t(i)]) << "piece " << i;
    }
  }
  EXPECT_EQ(a.n_past(3), 5);
  EXPECT_EQ(a.n_past(1), 320);
  EXPECT_EQ(a.n_past(0), 700);
  std::vector<int32_t> na(3), nb(3);
  a.decode_greedy(slots, next.data(), 3, na.data());
  b.decode_greedy(slots, next.data(), 3, nb.data());
  EXPECT_EQ(na, nb);
  // Refused before anything runs: a slot twice, an id outside the vocabulary, no room.
  const int twice[2] = {2, 2};
  const int64_t n2[2] = {5, 5};
  const int32_t* t2[2] = {p0.data(), p0.data()};
  EXPECT_THROW(a.prefill_many(twice, t2, n2, 2, many), Error);
  const std::vector<int32_t> bad = {1, int32_t(vocab)};
  const int one_slot[2] = {2, 3};
  const int32_t* t3[2] = {p0.data(), bad.data()};
  const int64_t n3[2] = {5, 2};
  EXPECT_THROW(a.prefill_many(one_slot, t3, n3, 2, many), Error);
  const std::vector<int32_t> p3 = ids(1024);
  const int64_t n4[2] = {5, 1024};
  const int32_t* t4[2] = {p0.data(), p3.data()};
  EXPECT_THROW(a.prefill_many(one_slot, t4, n4, 2, many), Error);  // slot 3 holds 6: no room for 1024
  EXPECT_EQ(a.n_past(2), 0);
  EXPECT_EQ(a.n_past(3), 6);
}

TEST_F(CudaTest, BadInputsThrow) {
  cuda::CudaSequence seq(tiny_model(), 8);
  std::vector<float> logits;
  const int32_t bad = 32000;
  EXPECT_THROW(seq.forward(&bad, 1, false, logits), Error);
  const std::vector<int32_t> ids(9, 1);
  EXPECT_THROW(seq.forward(ids.data(), 9, false, logits), Error);  // context of 8
}

// A model that cannot fit is refused before anything is uploaded (ops/cuda/cuda_memory_plan.h),
// with the context that would fit; that context loads and runs, and each engine leaves the
// device's free memory as it found it.
TEST_F(CudaTest, RefusesWhatDoesNotFitTheGpu) {
  const LlamaModel& model = tiny_model();
  size_t free0 = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
  cuda::CudaLlamaOptions opt;
  opt.slots = 16;
  // Twice the device's memory in keys and values (8 layers x 2 KV heads x 64 dims, fp16).
  opt.ctx = int64_t(2 * total / (2 * 8 * 16 * 128 * 2));
  std::string msg;
  try {
    cuda::CudaLlama llm(model.config(), model.weights(), opt);
  } catch (const Error& e) {
    msg = e.what();
  }
  std::printf("[ note     ] %s\n", msg.c_str());
  EXPECT_NE(msg.find("does not fit in GPU memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16 sequences of " + std::to_string(opt.ctx) + " positions"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--parallel"), std::string::npos) << msg;
  size_t free1 = 0;
  ASSERT_EQ(cudaMemGetInfo(&free1, &total), cudaSuccess);
  EXPECT_GE(free1 + (size_t(16) << 20), free0) << "the refusal allocated device memory";
  const size_t at = msg.find("--ctx ");
  ASSERT_NE(at, std::string::npos) << msg;
  opt.ctx = std::stoll(msg.substr(at + 6));
  {
    cuda::CudaLlama llm(model.config(), model.weights(), opt);  // nearly all the device's memory
    std::vector<float> logits;
    const std::vector<int32_t> ids = {1, 450, 3186, 310};
    llm.prefill(3, ids.data(), int64_t(ids.size()), false, logits);
    int32_t next = -1;
    const int slot = 3;
    llm.decode_greedy(&slot, &ids[3], 1, &next);
    EXPECT_GE(next, 0);
    EXPECT_EQ(llm.n_past(3), 5);
  }
  size_t free2 = 0;
  ASSERT_EQ(cudaMemGetInfo(&free2, &total), cudaSuccess);
  EXPECT_GE(free2 + (size_t(64) << 20), free0) << "the engine did not give its memory back";
}

// What the engine holds on the device is what its plan says: at least the weights, KV cache and
// step buffers (allocated from the plan's own sizes, cuda_step_buffers), and no more than the
// whole plan with its workspaces and reserve. A buffer the plan missed would make the refusal
// above let through a model that then fails in cudaMalloc.
TEST_F(CudaTest, HoldsWhatItsMemoryPlanSays) {
  const LlamaModel& model = tiny_model();
  cuda::CudaLlamaOptions opt;
  opt.slots = 4;
  opt.ctx = 65536;  // 4 x 65536 positions: a 128 MiB KV cache, the largest part
  int dev = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  const cuda::CudaMemoryPlan plan = cuda::cuda_memory_plan(model.config(), model.weights(), opt, sms);
  size_t free0 = 0, free1 = 0, total = 0;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
  cuda::CudaLlama llm(model.config(), model.weights(), opt);
  std::vector<float> logits;
  const std::vector<int32_t> ids = {1, 450, 3186, 310};
  llm.prefill(0, ids.data(), int64_t(ids.size()), false, logits);  // the W4A16 workspace, first graphs
  ASSERT_EQ(cudaMemGetInfo(&free1, &total), cudaSuccess);
  const int64_t held = int64_t(free0) - int64_t(free1);
  std::printf("[ note     ] held %.1f MiB; plan %.1f MiB (weights %.1f, KV %.1f, step buffers %.1f, workspaces and "
              "reserve %.1f)\n",
              double(held) / 1048576, double(plan.total()) / 1048576, double(plan.weights) / 1048576,
              double(plan.kv_cache) / 1048576, double(plan.activations) / 1048576, double(plan.workspaces) / 1048576);
  EXPECT_GE(held, plan.weights + plan.kv_cache + plan.activations);
  EXPECT_LE(held, plan.total());
}

}  // namespace
}  // namespace awq
#endif  // AWQ_HAVE_CUDA
