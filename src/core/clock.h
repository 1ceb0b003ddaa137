// Wall-clock helper shared by the runtimes' timing lines.
#pragma once
#include <chrono>

namespace awq {

// Seconds elapsed since t0 on the steady clock.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace awq
