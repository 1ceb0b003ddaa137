#include "ops/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "quant/autoawq_pack.h"

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

// Row r of an AwqGemm matrix from the row-major repack: per group, a 16-entry table of
// fp16((q - z) * s) widened to f32, then one table load per weight. out: [cols].
void dequantize_awq_row(const Matrix& w, int64_t r, float* out) {
  const AwqMatrix& a = w.awq;
  const float* t = fp16_table();
  const int64_t ng = w.cols / a.group, wpr = (w.cols + 7) / 8;
  const uint32_t* codes = a.row_codes + r * wpr;  // [wpr]
  const uint8_t* zeros = a.row_zeros + r * ng;    // [ng]
  const uint16_t* scales = a.row_scales + r * ng; // [ng] fp16
  float lut[16];
  for (int64_t g = 0; g < ng; ++g) {
    const float s = t[scales[g]];
    const int z = zeros[g];
    for (int q = 0; q < 16; ++q) lut[q] = t[f32_to_fp16(float(q - z) * s)];
    for (int64_t k = g * a.group, end = k + a.group; k < end; ++k)
      out[k] = lut[(codes[k >> 3] >> (4 * (k & 7))) & 0xFu];
  }
}

}  // namespace

__attribute__((target_clones("arch=x86-64-v3", "default")))
void widen_row(const Matrix& w, int64_t r, float* out) {
  const int64_t c = w.cols;
  if (w.kind == MatrixKind::AwqGemm) {
    if (w.awq.row_codes)
      dequantize_awq_row(w, r, out);
    else
      dequantize_gemm_row(w.awq.qweight, w.awq.qzeros, w.awq.scales, w.rows, c, w.awq.group, r, out);
    return;
  }
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
