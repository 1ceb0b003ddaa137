// The decode loop allocates nothing: a counting global operator new (this file replaces it for
// the whole test binary; it forwards to malloc/free, so ASan still sees every block) counts
// allocations while the tiny model decodes with 2 threads after a warm-up, and while the W4
// GEMV runs. Also checks the thread pool's lock-free handshake over many back-to-back loops,
// its pieces and its stealing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
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

// Pieces are whole blocks of min_chunk items (only the piece ending at n may be shorter), every
// item runs exactly once, for pools of 1-3 threads and n below, at and above the thread count.
TEST(DecodeLoop, ThreadPoolPiecesAreWholeBlocks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (auto [n, min_chunk] : {std::pair{int64_t(1000), int64_t(1)}, std::pair{int64_t(37), int64_t(4)},
                                std::pair{int64_t(5), int64_t(1)}, std::pair{int64_t(2), int64_t(1)},
                                std::pair{int64_t(200000), int64_t(1)}}) {
      std::vector<int> hits(static_cast<size_t>(n));
      std::mutex mu;
      std::vector<std::pair<int64_t, int64_t>> pieces;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        {
          std::lock_guard<std::mutex> lk(mu);
          pieces.emplace_back(b, e);
        }
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      }, min_chunk);
      for (int h : hits) ASSERT_EQ(h, 1) << "threads " << threads << " n " << n;
      // Blocks grow past min_chunk only when n has more than 65536 of them.
      const int64_t block = std::max(min_chunk, (n + 65535) / 65536);
      for (auto [b, e] : pieces) {
        EXPECT_EQ(b % block, 0) << "threads " << threads << " n " << n;
        if (e < n) {
          EXPECT_EQ((e - b) % block, 0) << "threads " << threads << " n " << n;
        }
      }
      if (threads == 1) {
        EXPECT_EQ(pieces.size(), 1u);
      }
    }
  }
}

// Stealing: thread 0 (the caller) owns the first half, whose items are slow (they sleep, so the
// caller's core is free for the worker); the worker's half is instant. The worker finishes its
// half and then must take items of the slow half from its back; with a static split the caller
// would run all 8 slow items (~40 ms) alone.
TEST(DecodeLoop, ThreadPoolStealsFromASlowRange) {
  ThreadPool pool(2);
  const int64_t n = 16;
  std::vector<std::thread::id> ran_by(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ran_by[size_t(i)] = std::this_thread::get_id();
      if (i < n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const std::thread::id caller = std::this_thread::get_id();
  int slow_by_worker = 0, fast_by_worker = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (ran_by[size_t(i)] != caller) ++(i < n / 2 ? slow_by_worker : fast_by_worker);
  }
  // The caller starts its range at once and the worker's half takes microseconds: unless the
  // worker thread was not scheduled at all for the whole ~40 ms, it ran its own half and stole.
  ASSERT_GT(fast_by_worker, 0) << "the worker never ran: no scheduling for 40 ms?";
  EXPECT_GT(slow_by_worker, 0) << "the worker finished its half and did not steal from the slow one";
  EXPECT_EQ(ran_by[0], caller) << "the owner claims its range from the front";
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
