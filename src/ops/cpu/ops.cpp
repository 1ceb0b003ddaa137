#include "ops/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu/matmul.h"

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
  std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
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

void attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* pos, int64_t n, const AttentionShape& s, float* out) {
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_stride = s.n_kv_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  pool.parallel_for(n * s.n_heads, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t i = idx / s.n_heads, h = idx % s.n_heads, g = h / group;
      const int64_t last = pos[i];
      const int64_t first = s.window > 0 ? std::max<int64_t>(0, last - s.window + 1) : 0;
      const float* qi = q + (i * s.n_heads + h) * hd;
      scores.resize(size_t(last - first + 1));
      for (int64_t t = first; t <= last; ++t)
        scores[t - first] = dot_f32(qi, k_cache + t * kv_stride + g * hd, hd) * scale;
      softmax(scores.data(), int64_t(scores.size()));
      float* o = out + (i * s.n_heads + h) * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t t = first; t <= last; ++t) {
        const float p = scores[t - first];
        const float* vt = v_cache + t * kv_stride + g * hd;
        for (int64_t j = 0; j < hd; ++j) o[j] += p * vt[j];
      }
    }
  });
}

}  // namespace awq
