#include "core/thread_pool.h"

#include <algorithm>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AWQ_CPU_RELAX() _mm_pause()
#else
#define AWQ_CPU_RELAX() std::this_thread::yield()
#endif

namespace awq {

namespace {
// Polls before sleeping on the futex: ~tens of microseconds, longer than the gap between two
// loops of a decode step, far shorter than a scheduler tick.
constexpr int kSpinPolls = 1 << 14;

// Waits until a.load() != old: spin, then sleep on the futex.
template <class T>
void wait_change(const std::atomic<T>& a, T old) {
  for (int i = 0; i < kSpinPolls; ++i) {
    if (a.load(std::memory_order_acquire) != old) return;
    AWQ_CPU_RELAX();
  }
  while (a.load(std::memory_order_acquire) == old) a.wait(old, std::memory_order_acquire);
}
}  // namespace

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads > 0 ? n_threads : default_threads()) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
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

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  int64_t chunks = std::min<int64_t>(n_threads_, (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = (n + chunks - 1) / chunks;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();  // no system call while every worker is still spinning
  try {
    fn(0, std::min(n, job_chunk_));
  } catch (...) {
    record_error();
  }
  for (int32_t left; (left = pending_.load(std::memory_order_acquire)) != 0;) wait_change(pending_, left);
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);
    std::rethrow_exception(e);
  }
}

void ThreadPool::worker(int idx) {
  uint32_t seen = 0;
  for (;;) {
    wait_change(generation_, seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    const int64_t b = int64_t(idx) * job_chunk_, e = std::min(job_n_, b + job_chunk_);
    if (b < e) {
      try {
        (*job_)(b, e);
      } catch (...) {
        record_error();
      }
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace awq
