#include "ops/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace awq {

void rmsnorm(const float* x, const float* weight, int64_t n, int64_t d, double eps, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * d;
    float* yi = y + i * d;
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += double(xi[j]) * xi[j];
    const float inv = float(1.0 / std::sqrt(ss / double(d) + eps));
    for (int64_t j = 0; j < d; ++j) yi[j] = (xi[j] * inv) * weight[j];
  }
}

void rope_rotate_half(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                      const float* inv_freq) {
  const int64_t half = head_dim / 2;
  thread_local std::vector<float> cs, sn;  // [half]; kept, so decode steps allocate nothing
  if (cs.size() < size_t(half)) cs.resize(size_t(half)), sn.resize(size_t(half));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < half; ++j) {
      // angle rounded to f32 first, as HF computes it (position * inv_freq in float32)
      const float angle = float(pos[i]) * inv_freq[j];
      cs[j] = float(std::cos(double(angle)));
      sn[j] = float(std::sin(double(angle)));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (i * n_heads + h) * head_dim;
      for (int64_t j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * cs[j] - b * sn[j];
        v[j + half] = b * cs[j] + a * sn[j];
      }
    }
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace awq
