// The decode loop allocates nothing: a counting global operator new (this file replaces it for
// the whole test binary; it forwards to malloc/free, so ASan still sees every block) counts
// allocations while the tiny model decodes with 2 threads after a warm-up, and while the W4
// GEMV runs. Also checks the thread pool's lock-free handshake over many back-to-back loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <tuple>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>
#include <vector>

#include "model/llama_model.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4.h"
#include "support/shared_data.h"

// The replacements below pair malloc with free by design; GCC's -Wmismatched-new-delete sees
// free() inside an operator delete and cannot know its operator new is ours.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t) ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, std::size_t(a)); }
// The nothrow forms too: the library's own (used by std::stable_sort's temporary buffer, for
// one) would otherwise pair an ASan-tracked `new` with the free() of the delete below.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, 0); } catch (...) { return nullptr; }
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, std::size_t(a)); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, std::size_t(a)); } catch (...) { return nullptr; }
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace awq {
namespace {

long allocations() { return g_allocations.load(std::memory_order_relaxed); }

TEST(DecodeLoop, CounterSeesAllocations) {  // the counter itself works
  const long before = allocations();
  auto* v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(allocations() - before, 2);
}

TEST(DecodeLoop, NoAllocationWhileDecoding) {
  LlamaModel model(test::tiny_model_dir());
  ThreadPool pool(2);
  KvCache cache = model.new_cache(64);  // 5 + 16 + 16 positions
  std::vector<float> logits;
  const std::vector<int32_t> prompt = {1, 415, 3340, 302, 272};
  model.forward(pool, prompt.data(), int64_t(prompt.size()), cache, false, logits);
  int32_t t = 0;
  // Warm-up: buffers reach their decode size. Per-thread scratch is sized by the caller before
  // each loop (ThreadPool::reserve_scratch), so which thread runs which chunk cannot matter.
  for (int i = 0; i < 16; ++i) {
    t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    model.forward(pool, &t, 1, cache, false, logits);
  }
  const long before = allocations();
  for (int i = 0; i < 16; ++i) {
    t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    model.forward(pool, &t, 1, cache, false, logits);
  }
  EXPECT_EQ(allocations() - before, 0) << "allocations in 16 decode steps";
}

TEST(DecodeLoop, NoAllocationInW4Gemv) {
  const int64_t N = 64, K = 256;
  std::vector<uint32_t> codes(size_t(N * K / 8));
  std::vector<uint8_t> zeros(size_t(N * 2), 8);
  std::vector<uint16_t> scales(size_t(N * 2), 0x2000);
  std::mt19937 rng(3);
  for (auto& c : codes) c = uint32_t(rng());
  const W4Tiles tiles = w4_repack(codes.data(), zeros.data(), scales.data(), N, K, 128);
  Matrix w(DType::I32, N, K, nullptr);
  w.kind = MatrixKind::AwqGemm;
  w.awq.group = 128;
  w4_attach(w, tiles);
  ThreadPool pool(2);
  std::vector<float> x(size_t(kW4GemvMaxRows * K), 0.5f), y(size_t(kW4GemvMaxRows * N));
  w4_matmul(pool, w4_best_isa(), x.data(), kW4GemvMaxRows, w, nullptr, y.data());
  const long before = allocations();
  for (int64_t n = 1; n <= kW4GemvMaxRows; ++n) w4_matmul(pool, w4_best_isa(), x.data(), n, w, nullptr, y.data());
  EXPECT_EQ(allocations() - before, 0);
}

TEST(DecodeLoop, ThreadPoolManyLoops) {
  ThreadPool pool(2);
  std::vector<int> hits(1000);
  for (int rep = 0; rep < 300; ++rep)
    pool.parallel_for(int64_t(hits.size()), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
    });
  for (int h : hits) ASSERT_EQ(h, 300);
  EXPECT_THROW(pool.parallel_for(10, [](int64_t b, int64_t) {
    if (b > 0) throw std::runtime_error("worker chunk");
  }), std::runtime_error);
  int sum = 0;
  pool.parallel_for(1, [&](int64_t b, int64_t e) { sum += int(e - b); });  // still usable
  EXPECT_EQ(sum, 1);
}

// per_thread > 1: at most size() * per_thread chunks, each but the last of at least min_chunk
// items, every item exactly once; a 1-thread pool still runs one chunk.
TEST(DecodeLoop, ThreadPoolChunksPerThread) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (auto [n, min_chunk, per_thread] : {std::tuple{int64_t(1000), int64_t(1), 16}, std::tuple{int64_t(37), int64_t(4), 8},
                                            std::tuple{int64_t(5), int64_t(1), 4}}) {
      std::vector<int> hits(static_cast<size_t>(n));
      std::atomic<int> chunks{0};
      std::atomic<int64_t> smallest{n};
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        ++chunks;
        if (e < n)
          for (int64_t v = smallest.load(); e - b < v && !smallest.compare_exchange_weak(v, e - b);) {}
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      }, min_chunk, per_thread);
      for (int h : hits) ASSERT_EQ(h, 1);
      const int64_t most = threads == 1 ? 1 : std::min<int64_t>(threads * per_thread, (n + min_chunk - 1) / min_chunk);
      EXPECT_EQ(chunks.load(), most) << "threads " << threads << " n " << n;
      EXPECT_GE(smallest.load(), min_chunk) << "threads " << threads << " n " << n;
    }
  }
}

// Per-thread scratch: every thread of a loop gets its own slice of at least the reserved size
// (64-byte aligned), the same slice from loop to loop; reserving again below the size keeps it.
TEST(DecodeLoop, ThreadPoolScratchPerThread) {
  ThreadPool pool(2);
  EXPECT_EQ(ThreadPool::scratch<float>(), nullptr);  // outside a loop
  pool.reserve_scratch(1000);
  std::vector<float*> seen(64, nullptr);
  for (int rep = 0; rep < 50; ++rep)
    pool.parallel_for(64, [&](int64_t b, int64_t e) {
      float* s = ThreadPool::scratch<float>();
      for (int64_t i = b; i < e; ++i) seen[size_t(i)] = s;
      for (int j = 0; j < 250; ++j) s[j] = float(b);  // another thread writing would corrupt it
      for (int j = 0; j < 250; ++j)
        if (s[j] != float(b)) throw std::runtime_error("scratch shared between threads");
    });
  for (float* s : seen) {
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s) % 64, 0u);
  }
  const long before = allocations();
  pool.reserve_scratch(500);
  EXPECT_EQ(allocations() - before, 0);
}

}  // namespace
}  // namespace awq
