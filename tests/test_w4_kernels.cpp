// The W4 kernels (ops/cpu/w4.h) against the reference (matmul_ref / widen_row reading the
// AutoAWQ GEMM tensors straight from the checkpoint layout): every ISA this CPU has (scalar,
// AVX2+FMA, AVX-512F; this machine has all three), 4- and 3-bit, group 128 / 64 / 32, N with
// every remainder of the row blocks, n = 1..8 rows of x, bias or not, 1 and 2 threads.
//
// Error bounds, per output, relative to S = |bias_j| + sum_k |x_ik w_jk|:
//  - scalar and AVX-512 look up the same fp16((q - z) * s) weights as the reference; only the
//    f32 summation order differs: |y - y_ref| <= 1e-5 * S (as tests/test_gemm.cpp).
//  - AVX2 computes s * (sum q x - z sum x) without rounding (q - z) * s to fp16: each weight
//    differs by at most half an fp16 ulp, 2^-11 relative, so |y - y_ref| <= 2^-11 * S + 1e-5 * S
//    (5.9e-4 S; the observed errors are far below, as the rounding errors cancel).
// Dequantization for the prefill GEMM must be bit-identical to widen_row.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4.h"
#include "quant/autoawq_pack.h"

namespace awq {
namespace {

std::vector<W4Isa> supported_w4_isas() {
  std::vector<W4Isa> v;
  for (W4Isa isa : {W4Isa::Scalar, W4Isa::Avx2, W4Isa::Avx512, W4Isa::Avx512Vnni})
    if (w4_isa_supported(isa)) v.push_back(isa);
  return v;
}

// An AWQ matrix W: [N, K] with its storage: the reference view (strided checkpoint tensors)
// and the kernel view (w4_codes + row zeros/scales).
struct W4Weights {
  PackedGemm pk;
  AwqRows rows;
  std::vector<uint8_t> codes;
  Matrix ref, fast;
  std::vector<float> absw;  // [N, K] |dequantized w|
};

W4Weights make_w4(int64_t N, int64_t K, int bits, int group, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<uint16_t> w16(static_cast<size_t>(N * K));
  for (auto& v : w16) v = f32_to_fp16(nd(rng));
  const QuantParams p{bits, group, true};
  W4Weights w;
  w.pk = pack_gemm(quantize_autoawq(w16.data(), N, K, p));
  w.rows = repack_rows(w.pk.qweight.data(), w.pk.qzeros.data(), w.pk.scales.data(), N, K, p, "w");
  w.codes = w4_repack(w.rows.codes.data(), N, K);
  w.ref = Matrix{DType::I32, N, K, w.pk.qweight.data()};
  w.ref.kind = MatrixKind::AwqGemm;
  w.ref.awq = AwqMatrix{bits, group, w.pk.qweight.data(), w.pk.qzeros.data(), w.pk.scales.data(),
                        nullptr, nullptr, nullptr, nullptr};
  w.fast = w.ref;
  w.fast.awq.row_zeros = w.rows.zeros.data();
  w.fast.awq.row_scales = w.rows.scales.data();
  w.fast.awq.w4_codes = w.codes.data();
  w.absw.resize(static_cast<size_t>(N * K));
  for (int64_t r = 0; r < N; ++r) widen_row(w.ref, r, w.absw.data() + r * K);
  for (float& v : w.absw) v = std::fabs(v);
  return w;
}

// S[i, j] = |bias_j| + sum_k |x_ik| |w_jk|. x: [n, K]; returns [n, N].
std::vector<double> abs_sums(const std::vector<float>& x, int64_t n, const W4Weights& w,
                             const float* bias) {
  const int64_t N = w.ref.rows, K = w.ref.cols;
  std::vector<double> s(static_cast<size_t>(n * N));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double a = bias ? std::fabs(bias[j]) : 0.0;
      for (int64_t k = 0; k < K; ++k) a += std::fabs(x[size_t(i * K + k)]) * w.absw[size_t(j * K + k)];
      s[size_t(i * N + j)] = a;
    }
  return s;
}

double tolerance(W4Isa isa) { return isa == W4Isa::Avx2 ? 1.0 / 2048 + 1e-5 : 1e-5; }

// The VNNI kernel's extra error from int8 activations: each x_k moves by at most half a step,
// max|x of its group| / 254, so |y - y_ref| <= Q + 1e-5 S with Q[i, j] = sum_g amax_g(x_i) / 254
// * sum_{k in g} |w_jk|. x: [n, K]; returns [n, N].
std::vector<double> act_quant_bound(const std::vector<float>& x, int64_t n, const W4Weights& w) {
  const int64_t N = w.ref.rows, K = w.ref.cols, gs = w.ref.awq.group;
  std::vector<double> q(static_cast<size_t>(n * N), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < K / gs; ++g) {
      double amax = 0;
      for (int64_t k = g * gs; k < (g + 1) * gs; ++k) amax = std::max(amax, double(std::fabs(x[size_t(i * K + k)])));
      for (int64_t j = 0; j < N; ++j) {
        double aw = 0;
        for (int64_t k = g * gs; k < (g + 1) * gs; ++k) aw += w.absw[size_t(j * K + k)];
        q[size_t(i * N + j)] += amax / 254.0 * aw;
      }
    }
  return q;
}

TEST(W4Kernels, GemvMatchesReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  double observed[4] = {};  // worst |y - y_ref| / S per W4Isa
  // The kernels see only the first `rows` rows of an N-row AWQ matrix (AutoAWQ needs N % 8 == 0;
  // the kernels' row blocks of 4 / 2 must also handle a remainder): N % 4 = 0, 3, 1 below.
  struct Shape { int64_t N, rows, K; int group; };
  // K of several groups; groups 128 / 64 / 32.
  for (const Shape sh : {Shape{136, 136, 384, 128}, Shape{72, 67, 256, 64}, Shape{16, 9, 96, 32}}) {
    for (int bits : {4, 3}) {
      const W4Weights w = make_w4(sh.N, sh.K, bits, sh.group, rng);
      Matrix fast = w.fast;
      fast.rows = sh.rows;
      std::vector<float> bias(static_cast<size_t>(sh.N));
      for (float& v : bias) v = nd(rng);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (int64_t n = 1; n <= kW4GemvMaxRows; ++n) {
          std::vector<float> x(static_cast<size_t>(n * sh.K));
          for (float& v : x) v = nd(rng);
          for (bool with_bias : {false, true}) {
            const float* b = with_bias ? bias.data() : nullptr;
            std::vector<float> yref(static_cast<size_t>(n * sh.N)), y(static_cast<size_t>(n * sh.rows));
            matmul_ref(pool, x.data(), n, w.ref, b, yref.data());
            const std::vector<double> S = abs_sums(x, n, w, b), Q = act_quant_bound(x, n, w);
            for (W4Isa isa : supported_w4_isas()) {
              // int8 activations (groups of 64 or more): their bound Q is added, as a share of S
              const bool int8_act = isa == W4Isa::Avx512Vnni && sh.group % 64 == 0;
              std::fill(y.begin(), y.end(), NAN);
              w4_gemv(pool, isa, x.data(), n, fast, b, y.data());
              double worst = 0;
              for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < sh.rows; ++j) {
                  const size_t o = size_t(i * sh.N + j);
                  const double err = std::fabs(double(y[size_t(i * sh.rows + j)]) - double(yref[o])) /
                                     (int8_act ? S[o] + Q[o] / tolerance(isa) : S[o]);
                  worst = std::max(worst, std::isnan(err) ? 1e9 : err);
                }
              observed[int(isa)] = std::max(observed[int(isa)], worst);
              EXPECT_LE(worst, tolerance(isa))
                  << w4_isa_name(isa) << " N=" << sh.N << " K=" << sh.K << " g=" << sh.group
                  << " bits=" << bits << " n=" << n << " threads=" << threads << " bias=" << with_bias;
            }
          }
        }
      }
    }
  }
  for (W4Isa isa : supported_w4_isas())
    std::printf("[ info ] w4 gemv %s: max |y - y_ref| / (sum|x||w| [+ Q / tol for int8 x]) = %.3g (bound %.3g)\n",
                w4_isa_name(isa), observed[int(isa)], tolerance(isa));
}

TEST(W4Kernels, DequantizeRowsBitIdenticalToWidenRow) {
  std::mt19937 rng(6);
  for (int bits : {4, 3}) {
    const W4Weights w = make_w4(24, 256, bits, 64, rng);
    std::vector<float> ref(256), got(static_cast<size_t>(3 * 256));
    for (W4Isa isa : supported_w4_isas())
      for (int64_t r0 = 0; r0 < 24; r0 += 3) {
        w4_dequantize_rows(isa, w.fast, r0, 3, got.data());
        for (int64_t i = 0; i < 3; ++i) {
          widen_row(w.ref, r0 + i, ref.data());
          ASSERT_EQ(0, std::memcmp(ref.data(), got.data() + i * 256, 256 * sizeof(float)))
              << w4_isa_name(isa) << " row " << r0 + i;
        }
      }
  }
}

// matmul() on a W4 matrix: the GEMV for n <= 8, the blocked GEMM on W4-dequantized panels above.
TEST(W4Kernels, MatmulDispatchMatchesReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  ThreadPool pool(2);
  const W4Weights w = make_w4(200, 512, 4, 128, rng);
  ASSERT_TRUE(w4_ready(w.fast));
  ASSERT_FALSE(w4_ready(w.ref));
  for (int64_t n : {1, 3, 8, 9, 70}) {
    std::vector<float> x(static_cast<size_t>(n * 512)), y(static_cast<size_t>(n * 200)), yref(y.size());
    for (float& v : x) v = nd(rng);
    matmul_ref(pool, x.data(), n, w.ref, nullptr, yref.data());
    matmul(pool, x.data(), n, w.fast, nullptr, y.data());
    const std::vector<double> S = abs_sums(x, n, w, nullptr), Q = act_quant_bound(x, n, w);
    const bool gemv_int8 = n <= kW4GemvMaxRows && w4_best_isa() == W4Isa::Avx512Vnni;
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_LE(std::fabs(double(y[i]) - double(yref[i])),
                tolerance(w4_best_isa()) * S[i] + (gemv_int8 ? Q[i] : 0.0)) << "n=" << n << " i=" << i;
  }
}

TEST(W4Kernels, RepackLayout) {
  // codes of one row, K = 64: code(k) = k % 16 -> byte i of chunk c = code(32c+i) | code(32c+16+i) << 4
  std::vector<uint32_t> row(8);
  for (int k = 0; k < 64; ++k) row[size_t(k / 8)] |= uint32_t(k % 16) << (4 * (k % 8));
  const std::vector<uint8_t> b = w4_repack(row.data(), 1, 64);
  ASSERT_EQ(b.size(), 32u);
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(b[size_t(c * 16 + i)], uint8_t(((32 * c + i) % 16) | ((32 * c + 16 + i) % 16) << 4));
  EXPECT_TRUE(w4_layout_fits(4096, 128));
  EXPECT_FALSE(w4_layout_fits(4096 + 16, 16));
}

}  // namespace
}  // namespace awq
