// BatchDecoder: one decode step for several sequences of different lengths must give the
// logits of the single-sequence forward, and a row's logits must not depend on its batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/half.h"
#include "model/batch_decode.h"
#include "model/batch_linear.h"
#include "ops/cpu/gemm.h"
#include "model/llama_model.h"
#include "runtime/batch_engine.h"
#include "support/batch_engine_check.h"
#include "support/expect_error.h"
#include "support/shared_data.h"

namespace awq {
namespace {

LlamaModel& model() {
  static LlamaModel m(test::tiny_model_dir());
  return m;
}

// Prefills a cache with `len` ids (a deterministic pattern) through the ordinary forward.
KvCache prefilled(ThreadPool& pool, int64_t len, int64_t ctx, KvType type = KvType::F16) {
  KvCache cache = model().new_cache(ctx, type);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < len; ++i) ids.push_back(int32_t(100 + (i * 37 + len * 11) % 5000));
  std::vector<float> logits;
  model().forward(pool, ids.data(), len, cache, false, logits);
  return cache;
}

float max_abs(const float* a, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i]));
  return m;
}

// Batched logits vs LlamaModel::forward, two steps, sequences of lengths 1, 5 and 12, with
// fp16 caches, f32 caches, and both kinds in one batch.
// Tolerance: the single-sequence forward uses the GEMV for one row, the batch the blocked
// GEMM; both are f32 with different summation orders (~1e-6 relative per dot product),
// which grows through 8 layers to ~1e-5 of the logit scale; 1e-4 of max |logit| bounds it.
// With an fp16 cache the new key/value element may round to the neighbouring fp16 value on
// one side only (2^-11 relative on that element), which moves logits by far less than that.
void check_batch_vs_single(const std::vector<KvType>& types) {
  std::string trace = "kv types";  // built with += (GCC 12's -Warray-bounds false positive on +)
  for (KvType t : types) trace += std::string(" ") + kv_type_name(t);
  SCOPED_TRACE(trace);
  ThreadPool pool(2);
  const int64_t vocab = model().config().vocab_size;
  const std::vector<int64_t> lens = {1, 5, 12};
  std::vector<KvCache> batch, single;
  for (size_t i = 0; i < lens.size(); ++i) {
    batch.push_back(prefilled(pool, lens[i], 32, types[i]));
    single.push_back(batch.back());
  }
  BatchDecoder dec(model());
  std::vector<int32_t> tokens = {17, 2000, 31999};
  for (int step = 0; step < 2; ++step) {
    std::vector<KvCache*> caches;
    for (auto& c : batch) caches.push_back(&c);
    std::vector<float> logits;
    dec.step(pool, tokens.data(), caches.data(), int64_t(caches.size()), logits);
    ASSERT_EQ(logits.size(), lens.size() * size_t(vocab));
    for (size_t b = 0; b < lens.size(); ++b) {
      std::vector<float> ref;
      model().forward(pool, &tokens[b], 1, single[b], false, ref);
      EXPECT_EQ(batch[b].n_past, single[b].n_past);
      const float* got = logits.data() + b * size_t(vocab);
      const float tol = 1e-4f * std::max(1.0f, max_abs(ref.data(), vocab));
      float worst = 0;
      for (int64_t i = 0; i < vocab; ++i) worst = std::max(worst, std::fabs(got[i] - ref[size_t(i)]));
      EXPECT_LE(worst, tol) << "sequence " << b << " step " << step;
      tokens[b] = int32_t((tokens[b] * 7 + 3) % vocab);
    }
  }
}

TEST(BatchDecode, LogitsEqualSingleSequenceForward) {
  check_batch_vs_single(std::vector<KvType>(3, KvType::F16));
  check_batch_vs_single(std::vector<KvType>(3, KvType::F32));
  check_batch_vs_single({KvType::F16, KvType::F32, KvType::F16});  // one batch, both kinds
}

// Bit-exact: a sequence decoded alone and inside batches of 3 and 9 gives the same logits.
// The server's CPU engine: slots chosen per step (runtime/batch_engine.h) follow the reference.
TEST(BatchEngine, CpuChosenSlotsFollowReference) {
  ThreadPool pool(2);
  CpuBatchEngine e(model(), pool, 5, 64, KvType::F16);
  test::expect_chosen_slots_follow_reference(e);
  std::vector<float> logits;
  const int outside = 5;
  const int32_t tok = 7;
  EXPECT_THROW(e.decode(&outside, &tok, 1, logits), Error);
}

// Both logits orders: the GEMM's (RowExact) and the GEMV's (RowExactGemvLogits, the CPU
// engines of at most 8 slots); in the GEMV's, the row also has the 1-row GEMV's logits bits
// given the same final hidden state, which the test cannot see: only independence is checked.
class BatchDecodeLogits : public ::testing::TestWithParam<Linears> {};

TEST_P(BatchDecodeLogits, RowLogitsIndependentOfBatchComposition) {
  ThreadPool pool(2);
  const int64_t vocab = model().config().vocab_size;
  BatchDecoder dec(model(), GetParam());
  KvCache alone = prefilled(pool, 6, 16);
  std::vector<KvCache> others;
  for (int64_t len = 1; len <= 8; ++len) others.push_back(prefilled(pool, len, 16));
  std::vector<KvCache> subject = {alone, alone};
  const int32_t tok = 1234;
  std::vector<float> ref;
  KvCache* one = &alone;
  dec.step(pool, &tok, &one, 1, ref);
  for (int64_t B : {3, 9}) {
    KvCache& mine = subject[B == 3 ? 0 : 1];
    std::vector<KvCache*> caches;
    std::vector<int32_t> tokens;
    for (int64_t b = 0; b < B - 1; ++b) {
      caches.push_back(&others[size_t(b)]);
      tokens.push_back(int32_t(500 + b));
    }
    caches.insert(caches.begin() + B / 2, &mine);
    tokens.insert(tokens.begin() + B / 2, tok);
    std::vector<float> logits;
    dec.step(pool, tokens.data(), caches.data(), B, logits);
    const float* row = logits.data() + (B / 2) * vocab;
    EXPECT_TRUE(std::equal(row, row + vocab, ref.data())) << "batch of " << B;
  }
}

INSTANTIATE_TEST_SUITE_P(Orders, BatchDecodeLogits,
                         ::testing::Values(Linears::RowExact, Linears::RowExactGemvLogits),
                         [](const ::testing::TestParamInfo<Linears>& i) {
                           return i.param == Linears::RowExact ? std::string("GemmOrder") : std::string("GemvOrder");
                         });

TEST(BatchDecode, ErrorsOnBadTokenAndFullCache) {
  ThreadPool pool(1);
  BatchDecoder dec(model());
  KvCache full = prefilled(pool, 4, 4);
  KvCache ok = prefilled(pool, 2, 8);
  std::vector<float> logits;
  KvCache* c1[] = {&ok, &full};
  const int32_t toks[] = {5, 5};
  test::expect_contains_all(test::error_message([&] { dec.step(pool, toks, c1, 2, logits); }),
                            {"context overflow", "4 of 4"});
  EXPECT_EQ(ok.n_past, 2);  // nothing changed
  const int32_t bad = 40000;
  KvCache* c2[] = {&ok};
  test::expect_contains_all(test::error_message([&] { dec.step(pool, &bad, c2, 1, logits); }),
                            {"40000", "outside the vocabulary"});
}

// The small-batch streaming kernel keeps the blocked GEMM's per-element FMA chain: equal bits
// for every row count, dtype, tail of rows (N % 8) and of inputs (K % 8), with and without
// bias. (On a CPU without AVX2 batch_linear is the GEMM itself; the comparison still runs.)
TEST(BatchLinear, BitIdenticalToBlockedGemmForEveryRowCount) {
  ThreadPool pool(2);
  const int64_t N = 37, K = 45;
  std::vector<float> x(static_cast<size_t>(5 * K)), bias(static_cast<size_t>(N));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * 3.0f;
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = std::cos(0.11f * float(i));
  std::vector<float> wf(static_cast<size_t>(N * K));
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = std::sin(0.05f * float(i * i % 977)) * 0.5f;
  std::vector<uint16_t> wh(wf.size()), wb(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    wh[i] = f32_to_fp16(wf[i]);
    wb[i] = f32_to_bf16(wf[i]);
  }
  const Matrix mats[] = {Matrix(DType::F32, N, K, wf.data()), Matrix(DType::F16, N, K, wh.data()),
                         Matrix(DType::BF16, N, K, wb.data())};
  for (const Matrix& w : mats)
    for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())})
      for (int64_t n = 1; n <= 5; ++n) {
        const size_t sz = static_cast<size_t>(n * N);
        std::vector<float> want(sz), got(sz, -1.0f), stream(sz, -1.0f);
        matmul_blocked(pool, gemm_best_isa(), x.data(), n, w, b, want.data());
        batch_linear(pool, x.data(), n, w, b, got.data());
        EXPECT_EQ(got, want) << "dtype " << int(w.dtype) << " n " << n << " bias " << (b != nullptr);
        if (batch_linear_streaming(pool, x.data(), n, w, b, stream.data())) {
          EXPECT_EQ(stream, want) << "streaming, dtype " << int(w.dtype) << " n " << n;
        }
      }
}

}  // namespace
}  // namespace awq
