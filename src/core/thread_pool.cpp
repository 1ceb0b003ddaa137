#include "core/thread_pool.h"

#include <algorithm>
#include <new>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AWQ_CPU_RELAX() _mm_pause()
#else
#define AWQ_CPU_RELAX() std::this_thread::yield()
#endif

namespace awq {

namespace {
// Polls before sleeping on the futex: tens of microseconds, longer than the gap between two
// loops of a decode step, far shorter than a scheduler tick.
constexpr int kSpinPolls = 4096;

// Waits until a.load() != old: spin, then sleep on the futex.
template <class T>
void wait_change(const std::atomic<T>& a, T old) {
  for (int i = 0; i < kSpinPolls; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    AWQ_CPU_RELAX();
  }
  while (a.load(std::memory_order_acquire) == old) a.wait(old, std::memory_order_acquire);
}

// A range's state: 30 bits of generation, then front and back block indices of 17 bits each.
constexpr int64_t kMaxBlocks = int64_t(1) << 16;  // front, back <= kMaxBlocks fit 17 bits
constexpr uint64_t kIndexMask = (uint64_t(1) << 17) - 1, kGenMask = (uint64_t(1) << 30) - 1;
constexpr uint64_t pack_range(uint64_t gen, uint64_t front, uint64_t back) {
  return (gen & kGenMask) << 34 | front << 17 | back;
}
constexpr uint64_t range_gen(uint64_t s) { return s >> 34; }
constexpr uint64_t range_front(uint64_t s) { return (s >> 17) & kIndexMask; }
constexpr uint64_t range_back(uint64_t s) { return s & kIndexMask; }
}  // namespace

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

thread_local void* ThreadPool::current_scratch_ = nullptr;

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::min(n_threads > 0 ? n_threads : default_threads(), 0xFFFF)) {
  scratch_.resize(size_t(n_threads_));
  ranges_ = std::make_unique<Range[]>(size_t(n_threads_));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

void ThreadPool::reserve_scratch(size_t bytes) {
  if (bytes <= scratch_bytes_) return;
  bytes = (bytes + 63) / 64 * 64;
  for (auto& s : scratch_) s.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t(64))));
  scratch_bytes_ = bytes;
}

void ThreadPool::run_chunk(int index, const RangeFn& fn, int64_t b, int64_t e) {
  void* const outer = current_scratch_;  // a chunk may itself be the caller of another pool
  current_scratch_ = scratch_[size_t(index)].get();
  try {
    fn(b, e);
  } catch (...) {
    current_scratch_ = outer;
    throw;
  }
  current_scratch_ = outer;
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::record_error() {
  std::lock_guard<std::mutex> lk(error_mu_);
  if (!error_) error_ = std::current_exception();
}

void ThreadPool::run_blocks(int index, int64_t b, int64_t e) {
  try {
    run_chunk(index, *job_, b * job_block_, std::min(job_n_, e * job_block_));
  } catch (...) {
    record_error();
  }
}

void ThreadPool::run_chunks(uint32_t gen, int index) {
  const uint64_t g = gen & kGenMask;
  // Blocks this thread ran, counted in done_ once on the way out (one shared cache-line write
  // per thread and loop instead of one per piece). The job cannot change before they are.
  int32_t ran = 0;
  struct Report {
    ThreadPool& pool;
    const int32_t& ran;
    ~Report() {  // job_blocks_ is read only by a thread that ran blocks of this job
      if (ran > 0 && pool.done_.fetch_add(ran, std::memory_order_acq_rel) + ran == int32_t(pool.job_blocks_))
        pool.done_.notify_one();
    }
  } report{*this, ran};
  // Own range, from the front, a quarter of what is left at a time.
  std::atomic<uint64_t>& own = ranges_[size_t(index)].state;
  for (uint64_t s = own.load(std::memory_order_acquire);;) {
    if (range_gen(s) != g) return;  // a later loop has started: this one is done
    const uint64_t f = range_front(s), b = range_back(s);
    if (f >= b) break;
    const uint64_t take = std::max<uint64_t>(1, (b - f) / 4);
    if (!own.compare_exchange_weak(s, pack_range(g, f + take, b), std::memory_order_acq_rel,
                                   std::memory_order_acquire))
      continue;
    run_blocks(index, int64_t(f), int64_t(f + take));
    ran += int32_t(take);
    s = own.load(std::memory_order_acquire);
  }
  // Then half of what is left of the fullest range, from its back, until every range is empty.
  for (;;) {
    int victim = -1;
    uint64_t most = 0, vs = 0;
    for (int j = 0; j < n_threads_; ++j) {
      const uint64_t s = ranges_[size_t(j)].state.load(std::memory_order_acquire);
      if (range_gen(s) != g) return;
      const uint64_t f = range_front(s), b = range_back(s);
      if (b > f && b - f > most) most = b - f, victim = j, vs = s;
    }
    if (victim < 0) return;
    const uint64_t f = range_front(vs), b = range_back(vs), take = std::max<uint64_t>(1, (b - f) / 2);
    if (!ranges_[size_t(victim)].state.compare_exchange_weak(vs, pack_range(g, f, b - take), std::memory_order_acq_rel,
                                                             std::memory_order_acquire))
      continue;
    run_blocks(index, int64_t(b - take), int64_t(b));
    ran += int32_t(take);
  }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk) {
  if (n <= 0) return;
  const int64_t block = std::max({int64_t(1), min_chunk, (n + kMaxBlocks - 1) / kMaxBlocks});
  const int64_t blocks = (n + block - 1) / block;
  if (n_threads_ == 1 || blocks <= 1) {
    run_chunk(0, fn, 0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_block_ = block;
  job_blocks_ = blocks;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  for (int i = 0; i < n_threads_; ++i)
    ranges_[size_t(i)].state.store(pack_range(gen, uint64_t(blocks * i / n_threads_), uint64_t(blocks * (i + 1) / n_threads_)),
                                   std::memory_order_relaxed);
  generation_.store(gen, std::memory_order_release);  // publishes the ranges and the job
  generation_.notify_all();  // no system call while every worker is still spinning
  run_chunks(gen, 0);
  for (int32_t d; (d = done_.load(std::memory_order_acquire)) != int32_t(blocks);) wait_change(done_, d);
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);
    std::rethrow_exception(e);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    wait_change(generation_, seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    run_chunks(seen, index);
  }
}

}  // namespace awq
