// The machine's memory read bandwidth, measured the way a decode step reads weights: the
// pool's threads each stream a contiguous part of one buffer far larger than the last-level
// cache (static partition, AVX2 loads where available), best of several passes.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace awq {

struct BandwidthOptions {
  int64_t bytes = int64_t(1) << 30;  // buffer size (>> the L3 of one CCD, ~ the model)
  int passes = 5;                      // timed passes; the best one is reported
};

// Bytes read per second (best pass), in GB/s (1e9 bytes).
double measure_read_bandwidth(ThreadPool& pool, const BandwidthOptions& opt = {});

}  // namespace awq
