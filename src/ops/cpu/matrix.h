// A weight matrix as the kernels see it: W [rows = out_features, cols = in_features].
// Dense: row-major, elements F32, F16 or BF16 at `data`.
// AwqGemm: AutoAWQ GEMM tensors (docs/formats.md), W[r][k] = fp16((q - z) * s); `dtype` is
// I32 and `data` points at qweight. widen_row (ops/cpu/matmul.h) handles both kinds; the fast
// W4 kernels (ops/cpu/w4.h) read the repacked w4_* tiles.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace awq {

enum class MatrixKind : uint8_t { Dense, AwqGemm };

// The quantized part of a Matrix of kind AwqGemm (pointers owned elsewhere: the mmapped
// checkpoint and LlamaWeights::owned).
struct AwqMatrix {
  int bits = 4;    // 4, or 3 in the same nibble layout
  int group = 0;   // input channels per scale / zero point
  // As stored in the checkpoint (nibble order kAwqOrder, quant/autoawq_pack.h):
  const int32_t* qweight = nullptr;   // [cols, rows / 8]
  const int32_t* qzeros = nullptr;    // [cols / group, rows / 8]
  const uint16_t* scales = nullptr;   // [cols / group, rows] fp16
  // Repacked at load so an output row is contiguous; when null, widen_row reads the
  // strided checkpoint layout above instead.
  const uint32_t* row_codes = nullptr;   // [rows, ceil(cols / 8)]: nibble j = input 8w + j
  const uint8_t* row_zeros = nullptr;    // [rows, cols / group]
  const uint16_t* row_scales = nullptr;  // [rows, cols / group] fp16
  // The fast kernels' tiles of 16 rows (ops/cpu/w4.h), made at load. Null when the shape does
  // not fit (then matmul uses the reference path).
  const uint8_t* w4_codes = nullptr;    // [ceil(rows / 16)][cols / 8][16][4]
  const uint16_t* w4_scales = nullptr;  // [ceil(rows / 16)][cols / group][16] fp16
  const uint8_t* w4_zeros = nullptr;    // [ceil(rows / 16)][cols / group][16]
};

struct Matrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // out_features
  int64_t cols = 0;  // in_features
  const void* data = nullptr;
  MatrixKind kind = MatrixKind::Dense;
  AwqMatrix awq{};  // kind == AwqGemm only

  Matrix() = default;
  // A dense matrix W: [rows, cols] of `dtype` elements at `data`.
  Matrix(DType dt, int64_t rows_, int64_t cols_, const void* data_)
      : dtype(dt), rows(rows_), cols(cols_), data(data_) {}

  bool quantized() const { return kind != MatrixKind::Dense; }
};

}  // namespace awq
