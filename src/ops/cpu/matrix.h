// A weight matrix as the kernels see it: W [rows = out_features, cols = in_features],
// row-major, elements F32, F16 or BF16 (the dense path; quantized layouts come with issue 4).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace awq {

struct Matrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // out_features
  int64_t cols = 0;  // in_features
  const void* data = nullptr;
};

}  // namespace awq
