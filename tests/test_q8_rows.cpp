// The int8 copy of a dense matrix (ops/cpu/q8_rows.h): its codes meet |W - d q| <= d / 2; the
// AVX2 product gives the scalar one's bits (integer block sums, the same f32 operations in the
// same order), a row's result does not depend on how many rows share the call, and the product
// is close to the f32 reference: normalised MSE <= 5e-5. Why that bound: each weight is off by
// at most half a step of its block (max|W| / 127; max|W| of 32 normals ~2.1 sigma), uniformly,
// i.e. 2.1 / 127 / sqrt(12) = 0.48 % rms of sigma: 2.3e-5 in this measure; the inputs' 16-bit
// codes add ~254^-2 of that. 5e-5 leaves 2x, while a wrong block, row, slot order or scale gives
// an error of order 1. (With 30-sigma outliers in a third of the blocks the error is several
// times larger: those blocks' other weights get 10x coarser steps. So the nmse test uses normal
// weights, the code-bound test the outliers.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/q8_rows.h"
#include "support/expect_error.h"

using namespace awq;

namespace {

ThreadPool& pool() {
  static ThreadPool p(3);
  return p;
}

// An F16 matrix [rows, cols] of normal weights; with `outliers`, every 97th weight 30 sigma (so
// block scales differ by 10x and more).
std::vector<uint16_t> f16_weights(int64_t rows, int64_t cols, uint32_t seed, bool outliers = true) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<uint16_t> w(size_t(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) w[size_t(i)] = f32_to_fp16(outliers && i % 97 == 3 ? 1.5f : nd(rng));
  return w;
}

std::vector<float> inputs(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> x(size_t(n * cols));
  for (float& v : x) v = nd(rng);
  return x;
}

TEST(Q8Rows, CodesWithinHalfAStep) {
  const int64_t rows = 37, cols = 160;
  const std::vector<uint16_t> w = f16_weights(rows, cols, 1);
  const Matrix m(DType::F16, rows, cols, w.data());
  const Q8Rows q = q8_rows_from(pool(), m);
  ASSERT_EQ(q.q.size(), size_t(rows * cols));
  ASSERT_EQ(q.d.size(), size_t(rows * cols / kQ8Block));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      const float v = fp16_to_f32(w[size_t(r * cols + k)]), d = q.d[size_t(r * cols / kQ8Block + k / kQ8Block)];
      const int code = q.q[size_t(r * cols + k / 8 * 8 + kInt16Order[k % 8])];  // kInt16Order swaps 1-2, 5-6
      EXPECT_LE(std::abs(code), 127);
      EXPECT_LE(std::fabs(v - d * float(code)), d * 0.5f * (1.0f + 1e-5f)) << "row " << r << " col " << k;
    }
}

TEST(Q8Rows, AllZeroBlockGivesZeros) {
  std::vector<float> w(64, 0.0f);
  w[40] = 2.0f;  // the second block only
  const Q8Rows q = q8_rows_from(pool(), Matrix(DType::F32, 1, 64, w.data()));
  EXPECT_EQ(q.d[0], 0.0f);
  EXPECT_EQ(q.q[40], 127);  // slot 0 of its run of 8: input 40
  const std::vector<float> x(64, 1.0f);
  std::vector<float> y(1);
  q8_rows_matmul(pool(), Q8Isa::Scalar, x.data(), 1, q, nullptr, y.data());
  EXPECT_NEAR(y[0], 2.0f, 2.0f / 127.0f);
}

TEST(Q8Rows, ProductNearReference) {
  const int64_t rows = 300, cols = 416;  // 13 blocks a row: one group of 8 and a tail of 5
  const std::vector<uint16_t> w = f16_weights(rows, cols, 2, false);
  const Matrix m(DType::F16, rows, cols, w.data());
  const Q8Rows q = q8_rows_from(pool(), m);
  std::vector<float> bias(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) bias[size_t(r)] = 0.01f * float(r % 7);
  for (const int64_t n : {1, 3}) {
    const std::vector<float> x = inputs(n, cols, uint32_t(10 + n));
    std::vector<float> ref(size_t(n * rows)), y(size_t(n * rows));
    matmul_ref(pool(), x.data(), n, m, bias.data(), ref.data());
    q8_rows_matmul(pool(), x.data(), n, q, bias.data(), y.data());
    double err = 0, norm = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      err += double(y[i] - ref[i]) * double(y[i] - ref[i]);
      norm += double(ref[i]) * double(ref[i]);
    }
    EXPECT_LE(err / norm, 5e-5) << "n " << n;
    std::printf("[ nmse     ] q8 rows x int16 rows against f32, n %lld: %.2e (bound 5e-5)\n", static_cast<long long>(n),
                err / norm);
  }
}

TEST(Q8Rows, Avx2GivesScalarBitsWhateverTheRows) {
  if (!q8_isa_supported(Q8Isa::Avx2)) GTEST_SKIP() << "this CPU lacks AVX2 + FMA: only the scalar kernel runs here";
  const int64_t rows = 129, cols = 32 * 21;  // 21 blocks: two groups of 8 and a tail of 5
  const std::vector<uint16_t> w = f16_weights(rows, cols, 3);
  const Q8Rows q = q8_rows_from(pool(), Matrix(DType::F16, rows, cols, w.data()));
  const int64_t n = 4;
  const std::vector<float> x = inputs(n, cols, 4);
  std::vector<float> scalar(static_cast<size_t>(n * rows)), avx2(static_cast<size_t>(n * rows)), one(static_cast<size_t>(rows));
  q8_rows_matmul(pool(), Q8Isa::Scalar, x.data(), n, q, nullptr, scalar.data());
  q8_rows_matmul(pool(), Q8Isa::Avx2, x.data(), n, q, nullptr, avx2.data());
  EXPECT_EQ(std::memcmp(scalar.data(), avx2.data(), scalar.size() * sizeof(float)), 0);
  for (int64_t i = 0; i < n; ++i) {  // row i alone: the same bits as among n rows
    q8_rows_matmul(pool(), Q8Isa::Avx2, x.data() + i * cols, 1, q, nullptr, one.data());
    EXPECT_EQ(std::memcmp(one.data(), avx2.data() + i * rows, one.size() * sizeof(float)), 0) << "row " << i;
  }
}

TEST(Q8Rows, RejectsWhatItCannotHold) {
  std::vector<float> w(48, 1.0f);
  EXPECT_FALSE(q8_rows_fit(Matrix(DType::F32, 2, 24, w.data())));  // 24 columns: not whole blocks
  EXPECT_AWQ_ERROR(q8_rows_from(pool(), Matrix(DType::F32, 2, 24, w.data())), {"multiple of 32"});
  EXPECT_TRUE(q8_rows_fit(Matrix(DType::F32, 1, 32, w.data())));
}

}  // namespace
