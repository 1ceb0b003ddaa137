// The blocked GEMM (ops/cpu/gemm.h) against matmul_ref: every supported micro-kernel set
// (portable, AVX2+FMA, AVX-512F on this CPU), shapes with every remainder (n vs the tile
// height, N vs the tile width, K vs the K-block), F32/F16/BF16 and AWQ weights, bias or not,
// 1 and 2 threads.
//
// Error bound: both sides compute in f32 from the same widened weights, only the summation
// order differs (16 partial sums vs one FMA chain per K-block), so for every output
//   |y - y_ref| <= 1e-5 * (|bias_j| + sum_k |x_ik w_jk|) + 1e-6
// (1e-5 is ~84 f32 ulps of the absolute sum; observed errors are far below it).
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "quant/autoawq_pack.h"

namespace awq {
namespace {

std::vector<GemmIsa> supported_isas() {
  std::vector<GemmIsa> v;
  for (GemmIsa isa : {GemmIsa::Portable, GemmIsa::Avx2, GemmIsa::Avx512})
    if (gemm_isa_supported(isa)) v.push_back(isa);
  return v;
}

// A weight matrix with its storage. w: [N, K].
struct Weights {
  std::vector<float> f32;
  std::vector<uint16_t> half;
  Matrix m;
};

Weights make_weights(DType dt, int64_t N, int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  Weights w;
  w.f32.resize(size_t(N * K));
  for (float& v : w.f32) v = nd(rng);
  if (dt == DType::F32) {
    w.m = Matrix{DType::F32, N, K, w.f32.data()};
  } else {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i)
      w.half[i] = dt == DType::F16 ? f32_to_fp16(w.f32[i]) : f32_to_bf16(w.f32[i]);
    w.m = Matrix{dt, N, K, w.half.data()};
  }
  return w;
}

// bound[i, j] = |bias_j| + sum_k |x_ik w_jk|, computed as |x| |W|^T with matmul_ref (its own
// f32 rounding is far below the 1e-5 used on it). x: [n, K]; bias: [N] or null; returns [n, N].
std::vector<float> abs_sums(const std::vector<float>& x, int64_t n, const Matrix& w,
                            const float* bias, ThreadPool& pool) {
  const int64_t K = w.cols, N = w.rows;
  std::vector<float> ax(x.size()), aw(static_cast<size_t>(N * K)), ab(static_cast<size_t>(N), 0.0f);
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (int64_t j = 0; j < N; ++j) {
    widen_row(w, j, aw.data() + j * K);
    for (int64_t k = 0; k < K; ++k) aw[size_t(j * K + k)] = std::fabs(aw[size_t(j * K + k)]);
    if (bias) ab[size_t(j)] = std::fabs(bias[j]);
  }
  std::vector<float> s(static_cast<size_t>(n * N));
  matmul_ref(pool, ax.data(), n, Matrix{DType::F32, N, K, aw.data()}, ab.data(), s.data());
  return s;
}

// Max over outputs of |y - ref| / (1e-5 * sum + 1e-6): <= 1 passes.
double worst_ratio(const std::vector<float>& y, const std::vector<float>& ref,
                   const std::vector<float>& sums) {
  double worst = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(double(y[i]) - double(ref[i]));
    worst = std::max(worst, std::isfinite(y[i]) ? err / (1e-5 * double(sums[i]) + 1e-6) : INFINITY);
  }
  return worst;
}

// Checks matmul and every ISA's matmul_blocked against matmul_ref on x: [n, w.cols].
void check_against_ref(const std::vector<float>& x, int64_t n, const Matrix& w, const float* bias,
                       ThreadPool& pool, const std::string& what) {
  static ThreadPool ref_pool(2);  // the reference side always on 2 threads (test time)
  const int64_t N = w.rows;
  std::vector<float> ref(size_t(n * N)), y(size_t(n * N));
  matmul_ref(ref_pool, x.data(), n, w, bias, ref.data());
  const std::vector<float> sums = abs_sums(x, n, w, bias, ref_pool);
  for (GemmIsa isa : supported_isas()) {
    std::fill(y.begin(), y.end(), NAN);
    matmul_blocked(pool, isa, x.data(), n, w, bias, y.data());
    ASSERT_LE(worst_ratio(y, ref, sums), 1.0) << what << " isa " << gemm_isa_name(isa);
  }
  std::fill(y.begin(), y.end(), NAN);
  matmul(pool, x.data(), n, w, bias, y.data());
  ASSERT_LE(worst_ratio(y, ref, sums), 1.0) << what << " matmul";
  if (n < kGemmMinRows && w.quantized()) {
    ASSERT_EQ(y, ref) << what << ": AWQ weights at small n go to matmul_ref itself";
  }
}

TEST(Gemm, MatchesReferenceAllShapesAndDtypes) {
  ThreadPool pool1(1), pool2(2);
  std::mt19937 rng(42);
  std::normal_distribution<float> nd;
  int combo = 0;
  for (int64_t n : {1, 2, 3, 5, 17, 64, 300})
    for (int64_t K : {8, 64, 384, 1000, 1024})
      for (int64_t N : {1, 7, 128, 384, 1025}) {
        std::vector<float> x(size_t(n * K)), bias(static_cast<size_t>(N));
        for (float& v : x) v = nd(rng);
        for (float& v : bias) v = nd(rng);
        for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
          const Weights w = make_weights(dt, N, K, rng);
          // Bias on/off and 1/2 threads alternate over the combinations so each pair meets
          // every shape class without quadrupling the run time.
          const bool with_bias = (combo & 1) != 0;
          ThreadPool& pool = (combo >> 1) & 1 ? pool2 : pool1;
          ++combo;
          const std::string what = "n=" + std::to_string(n) + " K=" + std::to_string(K) +
                                   " N=" + std::to_string(N) + " " + dtype_name(dt) +
                                   (with_bias ? " bias" : "") +
                                   " threads=" + std::to_string(pool.size());
          check_against_ref(x, n, w.m, with_bias ? bias.data() : nullptr, pool, what);
        }
      }
}

// Both thread counts and both bias settings on the shapes where the work split changes
// (few columns: rows are split too; many columns: column blocks only).
TEST(Gemm, ThreadsAndBiasOnSplitShapes) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (auto [n, K, N] : {std::tuple<int64_t, int64_t, int64_t>{300, 64, 7},
                           {300, 384, 33}, {64, 1000, 1025}, {17, 384, 128}}) {
      std::vector<float> x(size_t(n * K)), bias(static_cast<size_t>(N));
      for (float& v : x) v = nd(rng);
      for (float& v : bias) v = nd(rng);
      const Weights w = make_weights(DType::F16, N, K, rng);
      for (bool b : {false, true})
        check_against_ref(x, n, w.m, b ? bias.data() : nullptr, pool,
                          "threads=" + std::to_string(threads) + " n=" + std::to_string(n) +
                              " N=" + std::to_string(N) + (b ? " bias" : ""));
    }
  }
}

// AWQ-quantized weights (AutoAWQ GEMM tensors, 4- and 3-bit, from the row repack and from the
// strided checkpoint layout) go through the same widening as matmul_ref.
TEST(Gemm, AwqMatrix) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  const int64_t N = 136, K = 384;  // out % 8 == 0, in % group == 0
  std::vector<uint16_t> w16(size_t(N * K));
  for (auto& v : w16) v = f32_to_fp16(0.05f * nd(rng));
  for (int bits : {4, 3}) {
    const QuantParams p{bits, 128, true};
    const GroupQuantized q = quantize_autoawq(w16.data(), N, K, p);
    const PackedGemm pk = pack_gemm(q);
    const AwqRows rows =
        repack_rows(pk.qweight.data(), pk.qzeros.data(), pk.scales.data(), N, K, p, "w");
    Matrix m{DType::I32, N, K, pk.qweight.data()};
    m.kind = MatrixKind::AwqGemm;
    m.awq = AwqMatrix{bits, 128, pk.qweight.data(), pk.qzeros.data(), pk.scales.data(),
                      rows.codes.data(), rows.zeros.data(), rows.scales.data()};
    Matrix strided = m;
    strided.awq.row_codes = nullptr;
    std::vector<float> bias(static_cast<size_t>(N));
    for (float& v : bias) v = nd(rng);
    for (int64_t n : {1, 5, 64, 300}) {
      std::vector<float> x(size_t(n * K));
      for (float& v : x) v = nd(rng);
      check_against_ref(x, n, m, bias.data(), pool, "awq rows bits=" + std::to_string(bits));
      check_against_ref(x, n, strided, nullptr, pool, "awq strided bits=" + std::to_string(bits));
    }
  }
}

// gemv_order_matmul: every row of an n-row call has the bits of the 1-row GEMV (matmul at n = 1)
// on that row, for n across the 3-row groups (1..10), rows of W across the 16-row blocks and
// the N % 4 tail (N = 37: two blocks, a partial one, a tail of 1; N = 1000), K off the 8-wide
// step (45, 2049), F32/F16/BF16, bias or not, 1 and 2 threads; and within the GEMM's bound of
// matmul_ref. On a CPU without AVX2 + FMA + F16C it returns false and nothing is checked.
TEST(Gemm, GemvOrderMatchesTheOneRowGemvForEveryRowCount) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& [N, K] : std::vector<std::pair<int64_t, int64_t>>{{37, 45}, {1000, 2049}})
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      const Weights w = make_weights(dt, N, K, rng);
      std::vector<float> bias(static_cast<size_t>(N));
      for (float& v : bias) v = nd(rng);
      const int64_t n_max = 10;
      std::vector<float> x(size_t(n_max * K));
      for (float& v : x) v = nd(rng);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
          std::vector<float> one(size_t(n_max * N));
          for (int64_t i = 0; i < n_max; ++i) matmul(pool, x.data() + i * K, 1, w.m, b, one.data() + i * N);
          for (int64_t n = 1; n <= n_max; ++n) {
            std::vector<float> y(size_t(n * N), -1.0f);
            if (!gemv_order_matmul(pool, x.data(), n, w.m, b, y.data())) GTEST_SKIP() << "no AVX2 + FMA + F16C here";
            const std::vector<float> want(one.begin(), one.begin() + n * N);
            EXPECT_EQ(y, want) << "N " << N << " K " << K << " dtype " << dtype_name(dt) << " n " << n
                               << " threads " << threads << " bias " << (b != nullptr);
          }
        }
      }
      ThreadPool pool(2);
      std::vector<float> y(size_t(n_max * N));
      ASSERT_TRUE(gemv_order_matmul(pool, x.data(), n_max, w.m, bias.data(), y.data()));
      std::vector<float> ref(y.size());
      matmul_ref(pool, x.data(), n_max, w.m, bias.data(), ref.data());
      EXPECT_LE(worst_ratio(y, ref, abs_sums(x, n_max, w.m, bias.data(), pool)), 1.0) << "N " << N;
    }
}

TEST(Gemm, PackPanels) {
  // src: [3, 5] row stride 6 (and below [5, 3] row stride 4); panels of nr = 8.
  std::vector<float> src(20);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i);
  std::vector<float> panel(24, -1.0f);
  pack_panel(src.data(), 6, 3, 5, 8, panel.data());
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 8; ++j)
      EXPECT_EQ(panel[size_t(k * 8 + j)], j < 5 ? src[size_t(k * 6 + j)] : 0.0f);
  // transposed: src [5, 3] row stride 4 -> panel[k][j] = src[j][k].
  pack_panel_t(src.data(), 4, 3, 5, 8, panel.data());
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 8; ++j)
      EXPECT_EQ(panel[size_t(k * 8 + j)], j < 5 ? src[size_t(j * 4 + k)] : 0.0f);
}

}  // namespace
}  // namespace awq
