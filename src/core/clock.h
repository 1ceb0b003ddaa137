// Clock helpers: wall time for the runtimes' timing lines, thread CPU time for the kernel
// micro-benchmarks (bench/*.cpp; CPU time holds on a loaded machine).
#pragma once
#include <time.h>

#include <chrono>

namespace awq {

// Seconds elapsed since t0 on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds this thread has run (CLOCK_THREAD_CPUTIME_ID).
inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// The least thread CPU time of `reps` runs of fn, after one warm-up run (the micro-benchmarks).
template <class F>
double best_thread_cpu_seconds(F&& fn, int reps) {
  fn();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_cpu_seconds();
    fn();
    const double dt = thread_cpu_seconds() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

}  // namespace awq
