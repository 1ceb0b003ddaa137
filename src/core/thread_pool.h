// A fixed pool of worker threads running one parallel loop at a time.
// parallel_for splits [0, n) into one contiguous chunk per thread; the calling thread takes
// chunk 0, so a pool of 1 runs everything inline with no synchronisation at all.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace awq {

class ThreadPool {
 public:
  // fn(begin, end): process items [begin, end).
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  explicit ThreadPool(int n_threads);  // n_threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn over [0, n) split in at most size() chunks of at least min_chunk items; returns
  // when all are done. Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk = 1);

  static int default_threads();

 private:
  void worker(int idx);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0, job_chunk_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace awq
