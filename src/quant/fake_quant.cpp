#include "quant/fake_quant.h"

#include <algorithm>
#include <cmath>

namespace awq {

void fake_quantize_group(float* w, int64_t n, const QuantParams& p) {
  if (p.zero_point) {
    const float max_int = float((1 << p.bits) - 1);
    float mn = w[0], mx = w[0];
    for (int64_t i = 1; i < n; ++i) mn = std::min(mn, w[i]), mx = std::max(mx, w[i]);
    const float s = std::max(mx - mn, 1e-5f) / max_int;
    const float z = std::clamp(-std::nearbyint(mn / s), 0.0f, max_int);
    for (int64_t i = 0; i < n; ++i) w[i] = (std::clamp(std::nearbyint(w[i] / s) + z, 0.0f, max_int) - z) * s;
  } else {
    const float max_int = float((1 << (p.bits - 1)) - 1), min_int = -float(1 << (p.bits - 1));
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(w[i]));
    const float s = std::max(amax, 1e-5f) / max_int;
    for (int64_t i = 0; i < n; ++i) w[i] = std::clamp(std::nearbyint(w[i] / s), min_int, max_int) * s;
  }
}

void fake_quantize(float* w, int64_t rows, int64_t cols, const QuantParams& p) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols; g += p.group) fake_quantize_group(w + r * cols + g, p.group, p);
}

}  // namespace awq
