// A fixed pool of worker threads running one parallel loop at a time.
// parallel_for gives each thread one contiguous range of [0, n) (each streams its own slice of a
// weight matrix, so the prefetchers see one long stream), and balances the end by stealing: a
// thread that has finished its range takes blocks from the back of the range with the most
// left. Its owner claims its own range from the front in shrinking pieces (a quarter of what is
// left, at least one block), so little is locked away from a thief. Two threads streaming memory
// at once finish their equal halves up to +-15 % apart, at random (measured in decode on the
// 2-vCPU VM, docs/results/cpu.md), and cores need not run at one speed (one vCPU of that VM
// runs vpdpbusd at 0.7x the other's); a static split makes the early one wait.
//
// Handshake without locks: the caller publishes the job and bumps an atomic generation
// counter; workers spin on it for a short while (a decode step issues ~150 small loops back to
// back, and a futex wake-up costs more than a small GEMV) and then sleep on it (C++20 atomic
// wait = futex). Every range's (generation, front, back) is one atomic word, claimed with
// compare-and-swap, so a thread still finishing an old loop cannot claim from a new one. The
// caller owns range 0 and steals too: when a worker has not been scheduled yet (a busy machine),
// the caller runs its range instead of waiting for it, and then waits only for blocks already
// running. A mutex is taken only to record an exception.
//
// Per-thread scratch (ggml's work buffer, one slice per thread): the caller sizes it with
// reserve_scratch() before a parallel_for, on its own thread, so every allocation happens there
// and only when a size is first reached; a chunk gets its thread's slice from scratch<T>().
// Lazily allocated thread_local buffers would instead be allocated by whichever worker first
// happens to run a kernel, at a step nobody can predict.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace awq {

class ThreadPool {
 public:
  // fn(begin, end): process items [begin, end). A non-owning reference to the caller's
  // callable (parallel_for returns only when every chunk is done), so passing a lambda with
  // any number of captures allocates nothing (std::function would, past 16 bytes of captures).
  class RangeFn {
   public:
    template <class F>
    RangeFn(const F& f)  // NOLINT: implicit, like std::function
        : obj_(&f), call_([](const void* o, int64_t b, int64_t e) { (*static_cast<const F*>(o))(b, e); }) {}
    void operator()(int64_t begin, int64_t end) const { call_(obj_, begin, end); }

   private:
    const void* obj_;
    void (*call_)(const void*, int64_t, int64_t);
  };

  explicit ThreadPool(int n_threads);  // n_threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn over [0, n) in pieces of whole blocks of at least min_chunk items (only the piece
  // that ends at n may be shorter), each item exactly once, on whichever threads are free;
  // returns when all are done. Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk = 1);

  static int default_threads();

  // Grows every thread's scratch slice to at least `bytes` (64-byte aligned). Call on the
  // caller's thread, outside parallel_for.
  void reserve_scratch(size_t bytes);
  // Inside a chunk of parallel_for: the running thread's slice (at least the bytes last
  // reserved). Outside a parallel_for: nullptr.
  template <class T>
  static T* scratch() { return static_cast<T*>(current_scratch_); }

 private:
  // operator new (aligned), not malloc: allocation counters in tests see it.
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  // Runs fn(b, e) with scratch() pointing at thread `index`'s slice.
  void run_chunk(int index, const RangeFn& fn, int64_t b, int64_t e);

  void worker(int index);
  void record_error();
  // Runs blocks of generation gen on thread `index` (0: the caller): its own range from the
  // front, then blocks stolen from the back of the others, until none is left.
  void run_chunks(uint32_t gen, int index);
  // Runs blocks [b, e) of the current job on thread `index`, recording an exception.
  void run_blocks(int index, int64_t b, int64_t e);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current job, written by the caller before the ranges / generation_ are published (release).
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0, job_block_ = 0, job_blocks_ = 0;
  // Thread i's range of blocks, [front, back): generation << 34 | front << 17 | back (see
  // pack_range). On its own cache line: owners claim from their fronts without sharing a line.
  struct alignas(64) Range {
    std::atomic<uint64_t> state{0};
  };
  std::unique_ptr<Range[]> ranges_;
  std::atomic<uint32_t> generation_{0};  // bumped once per parallel_for (and at shutdown)
  std::atomic<int32_t> done_{0};         // blocks of the current job finished
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::vector<std::unique_ptr<std::byte[], AlignedDelete>> scratch_;  // [n_threads] slices
  size_t scratch_bytes_ = 0;
  static thread_local void* current_scratch_;
};

}  // namespace awq
