// Comparing two clip searches over the same weights (the CPU search against its Gram form, the
// GPU search against the CPU's): which (row, group) choices differ, and the output error the
// quantized weights cause.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/fake_quant.h"

namespace awq::test {

struct ClipChoiceCount {
  int64_t differ = 0;   // (row, group) pairs where a and b clipped differently
  int64_t clipped = 0;  // pairs where a clipped at all (changed any weight of w)
};

// w: the unclipped weights; a, b: two clipped versions. All [out, in]; in % group == 0.
inline ClipChoiceCount count_clip_choices(const std::vector<float>& w, const std::vector<float>& a,
                                          const std::vector<float>& b, int64_t out, int64_t in,
                                          int64_t group) {
  ClipChoiceCount c;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < in; g += group) {
      bool same = true, any = false;
      for (int64_t k = g; k < g + group; ++k) {
        const size_t i = size_t(o * in + k);
        same = same && a[i] == b[i];
        any = any || a[i] != w[i];
      }
      c.differ += !same;
      c.clipped += any;
    }
  return c;
}

// Sum over tokens and outputs of (x (Q(wc) - w)^T)^2, in double: the output error of quantizing
// the clipped weights wc, against the unquantized w. x: [n, in]; w, wc: [out, in].
inline double clipped_output_error(const std::vector<float>& x, int64_t n, const std::vector<float>& w,
                                   const std::vector<float>& wc, int64_t out, int64_t in,
                                   const QuantParams& qp) {
  std::vector<float> q = wc;
  fake_quantize(q.data(), out, in, qp);
  double e = 0.0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double y = 0.0;
      for (int64_t k = 0; k < in; ++k)
        y += double(x[size_t(t * in + k)]) * (q[size_t(o * in + k)] - w[size_t(o * in + k)]);
      e += y * y;
    }
  return e;
}

}  // namespace awq::test
