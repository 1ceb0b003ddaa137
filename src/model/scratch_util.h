// Small helpers of the decoder's scratch buffers and optional biases.
#pragma once
#include <cstdint>
#include <vector>

namespace awq {

// The bias pointer for a linear: nullptr when the model has none (empty vector).
inline const float* bias_or_null(const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); }

// Grows v to at least `size` elements (never shrinks: scratch is reused across calls).
inline void grow(std::vector<float>& v, int64_t size) {
  if (int64_t(v.size()) < size) v.resize(static_cast<size_t>(size));
}

}  // namespace awq
