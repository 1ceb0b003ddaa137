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

constexpr uint64_t pack_state(uint32_t gen, uint32_t chunks, uint32_t next) {
  return uint64_t(gen) << 32 | uint64_t(chunks) << 16 | next;
}
}  // namespace

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

thread_local void* ThreadPool::current_scratch_ = nullptr;

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::min(n_threads > 0 ? n_threads : default_threads(), 0xFFFF)) {
  scratch_.resize(size_t(n_threads_));
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

void ThreadPool::run_chunks(uint32_t gen, int index) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t chunks = uint32_t(s >> 16) & 0xFFFF, next = uint32_t(s) & 0xFFFF;
    if (uint32_t(s >> 32) != gen || next >= chunks) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    // Chunk `next` is ours; the job cannot change before it is counted in done_.
    const int64_t b = int64_t(next) * job_chunk_, e = std::min(job_n_, b + job_chunk_);
    try {
      run_chunk(index, *job_, b, e);
    } catch (...) {
      record_error();
    }
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == int32_t(chunks)) done_.notify_one();
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk, int per_thread) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t most = n_threads_ > 1 ? std::min<int64_t>(0xFFFF, int64_t(n_threads_) * std::max(1, per_thread)) : 1;
  const int64_t chunks = std::min<int64_t>(most, (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1) {
    run_chunk(0, fn, 0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = (n + chunks - 1) / chunks;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  state_.store(pack_state(gen, uint32_t(chunks), 0), std::memory_order_release);
  generation_.store(gen, std::memory_order_release);
  generation_.notify_all();  // no system call while every worker is still spinning
  run_chunks(gen, 0);
  for (int32_t d; (d = done_.load(std::memory_order_acquire)) != int32_t(chunks);) wait_change(done_, d);
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
