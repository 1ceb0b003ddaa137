#include "ops/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/half.h"

namespace awq {

namespace {

// fp16 -> f32 through a 256 KiB table: one load per weight instead of the branchy conversion.
const float* fp16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_f32(uint16_t(h));
    return t;
  }();
  return table.data();
}

constexpr int64_t kRowBlock = 4;  // weight rows widened together; each x row is loaded once per block

}  // namespace

__attribute__((target_clones("arch=x86-64-v3", "default")))
float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * b[i + k];
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int k = 0; k < 16; ++k) s += acc[k];
  return s;
}

void widen_row(const Matrix& w, int64_t r, float* out) {
  const int64_t c = w.cols;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + r * c, size_t(c) * 4);
      return;
    case DType::F16: {
      const float* t = fp16_table();
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * c;
      for (int64_t i = 0; i < c; ++i) out[i] = t[p[i]];
      return;
    }
    case DType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + r * c;
      for (int64_t i = 0; i < c; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    default:
      break;
  }
  throw std::logic_error(std::string("widen_row: unsupported dtype ") + dtype_name(w.dtype));
}

void matmul_ref(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
                float* y) {
  const int64_t K = w.cols, N = w.rows;
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> wrows(size_t(kRowBlock * K));  // [kRowBlock, K]
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, nr = std::min(kRowBlock, N - r0);
      for (int64_t r = 0; r < nr; ++r) widen_row(w, r0 + r, wrows.data() + r * K);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = x + t * K;
        float* yt = y + t * N + r0;
        for (int64_t r = 0; r < nr; ++r) {
          float v = dot_f32(xt, wrows.data() + r * K, K);
          yt[r] = bias ? v + bias[r0 + r] : v;
        }
      }
    }
  }, /*min_chunk=*/8);
}

}  // namespace awq
