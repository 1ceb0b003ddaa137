// fp16 bit patterns (as the CUDA tests copy them back) widened to f32 for comparisons.
#pragma once
#include <cstdint>
#include <vector>

#include "core/half.h"

namespace awq::test {

// h: [n] fp16 bits -> [n] f32.
inline std::vector<float> widen_fp16(const std::vector<uint16_t>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = fp16_to_f32(h[i]);
  return f;
}

}  // namespace awq::test
