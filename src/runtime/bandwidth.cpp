#include "runtime/bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace awq {

namespace {

// Sum of p[0..n) as 32-bit ints through 8 independent 256-bit accumulators. p: [n], 64-byte aligned.
__attribute__((target("avx2"))) uint32_t read_sum_avx2(const uint32_t* p, int64_t n) {
  __m256i acc[8];
  for (auto& a : acc) a = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_add_epi32(acc[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8 * j)));
  for (int j = 1; j < 8; ++j) acc[0] = _mm256_add_epi32(acc[0], acc[j]);
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  uint32_t s = 0;
  for (uint32_t v : lanes) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}

uint32_t read_sum_plain(const uint32_t* p, int64_t n) {
  uint32_t s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  for (; i < n; ++i) s[0] += p[i];
  uint32_t t = 0;
  for (uint32_t v : s) t += v;
  return t;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, const BandwidthOptions& opt) {
  const int64_t words = std::max<int64_t>(opt.bytes / 4 / 64 * 64, 64);
  struct Free {
    void operator()(uint32_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint32_t, Free> buf(static_cast<uint32_t*>(std::aligned_alloc(64, size_t(words) * 4)));
  if (!buf) throw std::bad_alloc();
  uint32_t* p = buf.get();
  const bool avx2 = __builtin_cpu_supports("avx2");
  // Touch every page from the threads that will read it (first-touch placement).
  const int64_t threads = pool.size(), per = (words / threads + 63) / 64 * 64;
  pool.parallel_for(threads, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t lo = std::min(words, t * per), hi = std::min(words, lo + per);
      for (int64_t i = lo; i < hi; ++i) p[i] = uint32_t(i);
    }
  });
  double best = 0;
  volatile uint32_t sink = 0;
  for (int pass = 0; pass < std::max(1, opt.passes); ++pass) {
    std::vector<uint32_t> sums(static_cast<size_t>(threads));
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t lo = std::min(words, t * per), hi = std::min(words, lo + per);
        sums[size_t(t)] = avx2 ? read_sum_avx2(p + lo, hi - lo) : read_sum_plain(p + lo, hi - lo);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint32_t v : sums) sink = sink + v;
    best = std::max(best, double(words) * 4 / s / 1e9);
  }
  return best;
}

}  // namespace awq
