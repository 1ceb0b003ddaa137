// The W4 kernels (ops/cpu/w4.h) against the reference (matmul_ref / widen_row reading the
// AutoAWQ GEMM tensors straight from the checkpoint layout): every ISA this CPU has (scalar,
// AVX2, AVX-512, AVX-512 VNNI), 4- and 3-bit, group 128 / 64 / 32, row counts that leave a
// partial tile of 16, n = 1..8 rows of x (and prefill tiles for the int8 kernels), bias or not,
// 1 and 2 threads.
//
// Error bounds, per output, with S = |bias_j| + sum_k |x_ik w_jk| (the f32 rounding scale):
//  - scalar and AVX-512 f32 use the same fp16((q - z) * s) weights as the reference; only the
//    f32 summation order differs: |y - y_ref| <= 1e-5 * S (as tests/test_gemm.cpp).
//  - the integer kernels compute sum_k (q - z) s xh_k exactly (integer sums) but for f32
//    rounding, where xh is x on its group's integer grid; the reference sums fp16((q - z) s) x.
//    So y - y_ref = sum_k w~_k (xh_k - x_k) + sum_k (w~_k - w_k) x_k (+ rounding), with
//    w~ = (q - z) s exact and w = fp16(w~):
//      |y - y_ref| <= 1e-5 S + A + R,  R = sum_k |w~_k - w_k| |x_k| (the fp16 rounding of the
//      reference's weights, <= 2^-11 |w~_k| each), A = sum_g h_g sum_{k in g} |w~_k| with h_g
//      the largest |xh - x| of group g:
//    int8 (AVX2, AVX-512 VNNI): half a step of max|x_g| / 127, h_g = max|x_g| / 254.
//    int8x2: half a step of u = max|x_g| / 32258, plus the f32 rounding of x * (1 / u) (of the
//      product, |x / u| < 2^15: 2^-10 of a step; of 1 / u: 2^-24 * 32258 < 2^-9 of a step):
//      h_g = (1/2 + 2^-8) u.
//    A is ~254x smaller for int8x2; then R dominates (the integer kernels are closer to
//    (q - z) s than the reference is).
// Dequantization for the prefill GEMM must be bit-identical to widen_row.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
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
#include "support/expect_error.h"

namespace awq {
namespace {

std::vector<W4Isa> supported_w4_isas() {
  std::vector<W4Isa> v;
  for (W4Isa isa : {W4Isa::Scalar, W4Isa::Avx2, W4Isa::Avx512, W4Isa::Avx512Vnni, W4Isa::Avx2Int8x2,
                    W4Isa::Avx512VnniInt8x2, W4Isa::AvxVnniInt8x2})
    if (w4_isa_supported(isa)) v.push_back(isa);
  return v;
}

// An AWQ matrix W: [N, K] with its storage: the reference view (strided checkpoint tensors)
// and the kernel view (w4_* tiles).
struct W4Weights {
  PackedGemm pk;
  AwqRows rows;
  W4Tiles tiles;
  Matrix ref, fast;
  std::vector<double> absw;   // [N, K] |w~|, w~ = (q - z) s exactly
  std::vector<double> round;  // [N, K] |w~ - fp16(w~)|: the reference's rounding of w~
};

W4Weights make_w4(int64_t N, int64_t K, int bits, int group, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<uint16_t> w16(static_cast<size_t>(N * K));
  for (auto& v : w16) v = f32_to_fp16(nd(rng));
  const QuantParams p{bits, group, true};
  W4Weights w;
  w.pk = pack_gemm(quantize_autoawq(w16.data(), N, K, p));
  w.rows = repack_rows(w.pk.qweight.data(), w.pk.qzeros.data(), w.pk.scales.data(), N, K, p, "w");
  w.tiles = w4_repack(w.rows.codes.data(), w.rows.zeros.data(), w.rows.scales.data(), N, K, group);
  w.ref = Matrix{DType::I32, N, K, w.pk.qweight.data()};
  w.ref.kind = MatrixKind::AwqGemm;
  w.ref.awq = AwqMatrix{bits, group, w.pk.qweight.data(), w.pk.qzeros.data(), w.pk.scales.data(),
                        nullptr, nullptr, nullptr, nullptr};
  w.fast = w.ref;
  w4_attach(w.fast, w.tiles);
  w.absw.resize(static_cast<size_t>(N * K));
  w.round.resize(static_cast<size_t>(N * K));
  std::vector<float> ref(static_cast<size_t>(K));
  for (int64_t r = 0; r < N; ++r) {
    widen_row(w.ref, r, ref.data());
    for (int64_t k = 0; k < K; ++k) {
      const int64_t g = r * (K / group) + k / group;
      const double q = double((w.rows.codes[size_t(r * (K / 8) + k / 8)] >> (4 * (k % 8))) & 0xF);
      const double exact = (q - double(w.rows.zeros[size_t(g)])) * double(fp16_to_f32(w.rows.scales[size_t(g)]));
      w.absw[size_t(r * K + k)] = std::fabs(exact);
      w.round[size_t(r * K + k)] = std::fabs(exact - double(ref[size_t(k)]));
    }
  }
  return w;
}

constexpr double kTol = 1e-5;

// The largest |xh - x| of a group as a fraction of its max|x| (see the top).
double act_half_step(W4Isa isa) {
  if (w4_isa_int8x2(isa)) return (0.5 + 1.0 / 256) / (127.0 * 254.0);
  if (w4_isa_int8x1(isa)) return 0.5 / 127.0;
  return 0.0;
}

// The allowed |y - y_ref| of each output for the kernels of `isa` (see the top): 1e-5 S, plus
// A + R for the integer kernels. x: [n, K]; returns [n, N].
std::vector<double> error_bound(W4Isa isa, const std::vector<float>& x, int64_t n, const W4Weights& w,
                                const float* bias) {
  const int64_t N = w.ref.rows, K = w.ref.cols, gs = w.ref.awq.group;
  const double h = act_half_step(isa);
  std::vector<double> b(static_cast<size_t>(n * N), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x.data() + i * K;
    for (int64_t j = 0; j < N; ++j) {
      const double* aw = w.absw.data() + j * K;
      const double* rw = w.round.data() + j * K;
      double S = bias ? std::fabs(bias[j]) : 0.0, A = 0, R = 0;
      for (int64_t g = 0; g < K / gs; ++g) {
        double amax = 0, sw = 0;
        for (int64_t k = g * gs; k < (g + 1) * gs; ++k) {
          amax = std::max(amax, double(std::fabs(xi[k])));
          S += std::fabs(double(xi[k])) * aw[k];
          R += std::fabs(double(xi[k])) * rw[k];
          sw += aw[k];
        }
        A += h * amax * sw;
      }
      b[size_t(i * N + j)] = kTol * S + (w4_isa_int8(isa) ? A + R : 0.0);
    }
  }
  return b;
}

TEST(W4Kernels, MatchReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  double observed[kW4IsaCount] = {};  // worst |y - y_ref| / bound per W4Isa
  // The kernels see only the first `rows` rows of an N-row AWQ matrix (AutoAWQ needs N % 8 == 0):
  // full tiles, a partial last tile (rows % 16 = 8, 3, 9), a single partial tile.
  struct Shape { int64_t N, rows, K; int group; };
  for (const Shape sh : {Shape{32, 32, 384, 128}, Shape{136, 136, 256, 128}, Shape{72, 67, 256, 64},
                         Shape{16, 9, 96, 32}}) {
    for (int bits : {4, 3}) {
      const W4Weights w = make_w4(sh.N, sh.K, bits, sh.group, rng);
      Matrix fast = w.fast;
      fast.rows = sh.rows;
      std::vector<float> bias(static_cast<size_t>(sh.N));
      for (float& v : bias) v = nd(rng);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        for (int64_t n : {1, 2, 3, 4, 5, 6, 7, 8, 13, 37}) {
          std::vector<float> x(static_cast<size_t>(n * sh.K));
          for (float& v : x) v = nd(rng);
          for (bool with_bias : {false, true}) {
            const float* b = with_bias ? bias.data() : nullptr;
            std::vector<float> yref(static_cast<size_t>(n * sh.N)), y(static_cast<size_t>(n * sh.rows));
            matmul_ref(pool, x.data(), n, w.ref, b, yref.data());
            for (W4Isa isa : supported_w4_isas()) {
              if (!w4_isa_int8(isa) && n > kW4GemvMaxRows) continue;  // prefill: dequantized GEMM
              const std::vector<double> B = error_bound(isa, x, n, w, b);
              std::fill(y.begin(), y.end(), NAN);
              w4_matmul(pool, isa, x.data(), n, fast, b, y.data());
              double worst = 0;
              for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < sh.rows; ++j) {
                  const size_t o = size_t(i * sh.N + j);
                  const double err = std::fabs(double(y[size_t(i * sh.rows + j)]) - double(yref[o])) / B[o];
                  worst = std::max(worst, std::isnan(err) ? 1e9 : err);
                }
              observed[int(isa)] = std::max(observed[int(isa)], worst);
              EXPECT_LE(worst, 1.0)
                  << w4_isa_name(isa) << " N=" << sh.N << " rows=" << sh.rows << " K=" << sh.K
                  << " g=" << sh.group << " bits=" << bits << " n=" << n << " threads=" << threads
                  << " bias=" << with_bias;
            }
          }
        }
      }
    }
  }
  for (W4Isa isa : supported_w4_isas())
    std::printf("[ info ] w4 %s: max |y - y_ref| / bound = %.3g\n", w4_isa_name(isa), observed[int(isa)]);
}

// Prefill's loop order: blocks of tiles whose codes fill 256 KB (8 tiles at K = 4096), and per
// block every chunk of 8 rows of x. 21 tiles (the last one partial, 321 rows) = 3 blocks, 19 rows
// = chunks of 8, 8, 3, on 1 and 2 threads (2 threads split the tiles mid-block): every output
// within the bound of MatchReference.
TEST(W4Kernels, TileBlocksAndRowChunks) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  const int64_t N = 336, rows = 321, K = 4096, n = 19;
  const W4Weights w = make_w4(N, K, 4, 128, rng);
  Matrix fast = w.fast;
  fast.rows = rows;
  std::vector<float> x(static_cast<size_t>(n * K));
  for (float& v : x) v = nd(rng);
  ThreadPool p1(1), p2(2);
  std::vector<float> yref(static_cast<size_t>(n * N)), y(static_cast<size_t>(n * rows));
  matmul_ref(p2, x.data(), n, w.ref, nullptr, yref.data());
  for (W4Isa isa : supported_w4_isas()) {
    if (!w4_isa_int8(isa)) continue;
    const std::vector<double> B = error_bound(isa, x, n, w, nullptr);
    for (ThreadPool* pool : {&p1, &p2}) {
      std::fill(y.begin(), y.end(), NAN);
      w4_matmul(*pool, isa, x.data(), n, fast, nullptr, y.data());
      double worst = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < rows; ++j) {
          const double err = std::fabs(double(y[size_t(i * rows + j)]) - double(yref[size_t(i * N + j)])) / B[size_t(i * N + j)];
          worst = std::max(worst, std::isnan(err) ? 1e9 : err);
        }
      EXPECT_LE(worst, 1.0) << w4_isa_name(isa) << " threads=" << pool->size();
    }
  }
}

// The int8 kernels compute each row of x alone: the same bits whether a row comes alone
// (decode), in a batch of 5 (batched decode) or in prefill tiles of 8 (what batch_linear and
// the serial-equals-concurrent server test rely on), on any thread count.
TEST(W4Kernels, Int8RowsIndependentOfBatch) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  const W4Weights w = make_w4(72, 256, 4, 64, rng);
  std::vector<float> bias(72);
  for (float& v : bias) v = nd(rng);
  const int64_t n = 21;
  std::vector<float> x(static_cast<size_t>(n * 256));
  for (float& v : x) v = nd(rng);
  for (W4Isa isa : supported_w4_isas()) {
    if (!w4_isa_int8(isa)) continue;
    ThreadPool p1(1), p2(2);
    std::vector<float> all(static_cast<size_t>(n * 72)), part(static_cast<size_t>(5 * 72)), one(72);
    w4_matmul(p2, isa, x.data(), n, w.fast, bias.data(), all.data());
    for (int64_t i = 0; i < n; ++i) {
      w4_matmul(p1, isa, x.data() + i * 256, 1, w.fast, bias.data(), one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), all.data() + i * 72, 72 * sizeof(float))) << w4_isa_name(isa) << " row " << i;
    }
    w4_matmul(p1, isa, x.data() + 7 * 256, 5, w.fast, bias.data(), part.data());
    ASSERT_EQ(0, std::memcmp(part.data(), all.data() + 7 * 72, 5 * 72 * sizeof(float))) << w4_isa_name(isa);
  }
}

// w4_matmul_many (q/k/v and gate/up share one quantized x and one parallel_for): each output
// equals w4_matmul's bit for bit, for every kernel family, 1 and 13 rows of x, 1 and 3 threads
// (so chunks straddle the matrices' boundaries), with and without bias; matmul_many likewise
// through the dispatch. Matrices of other cols or group are refused.
TEST(W4Kernels, ManyProductsShareXBitIdentical) {
  std::mt19937 rng(23);
  std::normal_distribution<float> nd;
  const int64_t K = 256;
  const W4Weights a = make_w4(80, K, 4, 64, rng), b = make_w4(24, K, 4, 64, rng), c = make_w4(40, K, 4, 64, rng);
  const W4Weights* ws[] = {&a, &b, &c};
  std::vector<float> bias(80);
  for (float& v : bias) v = nd(rng);
  for (int64_t n : {int64_t(1), int64_t(13)}) {
    std::vector<float> x(static_cast<size_t>(n * K));
    for (float& v : x) v = nd(rng);
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      for (W4Isa isa : supported_w4_isas()) {
        if (!w4_isa_int8(isa) && n > kW4GemvMaxRows) continue;
        std::vector<std::vector<float>> got(3), want(3);
        W4Product ps[3];
        for (int j = 0; j < 3; ++j) {
          const Matrix& w = ws[j]->fast;
          got[size_t(j)].assign(size_t(n * w.rows), NAN);
          want[size_t(j)].resize(size_t(n * w.rows));
          const float* bj = j == 1 ? nullptr : bias.data();
          ps[j] = {&w, bj, got[size_t(j)].data()};
          w4_matmul(pool, isa, x.data(), n, w, bj, want[size_t(j)].data());
        }
        w4_matmul_many(pool, isa, x.data(), n, ps, 3);
        for (int j = 0; j < 3; ++j)
          EXPECT_EQ(0, std::memcmp(got[size_t(j)].data(), want[size_t(j)].data(), got[size_t(j)].size() * sizeof(float)))
              << w4_isa_name(isa) << " n=" << n << " threads=" << threads << " product " << j;
      }
      // Through the dispatch: matmul_many against matmul.
      std::vector<float> g0(size_t(n * 80)), g1(size_t(n * 24)), w0(g0.size()), w1(g1.size());
      const W4Product ps[] = {{&a.fast, bias.data(), g0.data()}, {&b.fast, nullptr, g1.data()}};
      matmul_many(pool, x.data(), n, ps, 2);
      matmul(pool, x.data(), n, a.fast, bias.data(), w0.data());
      matmul(pool, x.data(), n, b.fast, nullptr, w1.data());
      EXPECT_EQ(0, std::memcmp(g0.data(), w0.data(), g0.size() * sizeof(float))) << "matmul_many n=" << n;
      EXPECT_EQ(0, std::memcmp(g1.data(), w1.data(), g1.size() * sizeof(float))) << "matmul_many n=" << n;
    }
  }
  const W4Weights other_group = make_w4(16, K, 4, 128, rng);
  std::vector<float> x(static_cast<size_t>(K), 0.5f), y0(80), y1(16);
  const W4Product mixed[] = {{&a.fast, nullptr, y0.data()}, {&other_group.fast, nullptr, y1.data()}};
  ThreadPool pool(1);
  EXPECT_FALSE(w4_can_share_x(a.fast, other_group.fast));
  EXPECT_THROW(w4_matmul_many(pool, w4_best_isa(), x.data(), 1, mixed, 2), std::logic_error);
}

// x rows that stress the int8x2 digits: values on the rounding ties of both digits
// (c = 254 m + 127, where q1 may round either way and q2 = +-127), +-max|x| (c = +-32258,
// q1 = +-127), a group of zeros, a group with one outlier 1e4 times its neighbours, tiny
// (1e-30) and huge (1e30) rows, and groups too small for 1 / u (1e-36). A digit that left
// [-127, 127] would wrap in int8 and break the bound; the integer sums of the AVX2 and VNNI
// kernels must agree to the bit (AVX2 int8x2 takes the same codes whole as int16).
TEST(W4Kernels, Int8x2EdgeRows) {
  std::mt19937 rng(13);
  const int64_t K = 512, N = 48, gs = 128, n = 6;
  const W4Weights w = make_w4(N, K, 4, int(gs), rng);
  std::vector<float> x(static_cast<size_t>(n * K), 0.0f);
  std::uniform_int_distribution<int> digit(-127, 126), sign(0, 1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < K / gs; ++g) {
      float* xg = x.data() + i * K + g * gs;
      const int kind = int((i + g) % 4);
      const float amax = i == 5 ? 1e-30f : i == 4 ? 1e30f : 1.0f + float(g);
      for (int64_t k = 0; k < gs; ++k) {
        if (kind == 0) xg[k] = amax * float(254 * digit(rng) + 127) / 32258.0f;   // q1 ties
        else if (kind == 1) xg[k] = sign(rng) ? amax : -amax;                     // c = +-32258
        else if (kind == 2) xg[k] = 0.0f;                                         // all zeros
        else xg[k] = amax * 1e-4f * float(digit(rng)) / 127.0f;                   // + an outlier
      }
      if (kind == 0 || kind == 3) xg[0] = (g % 2) ? -amax : amax;  // the group's max|x|
    }
  ThreadPool pool(2);
  std::vector<float> yref(static_cast<size_t>(n * N)), y(yref.size()), yvnni(yref.size());
  matmul_ref(pool, x.data(), n, w.ref, nullptr, yref.data());
  for (W4Isa isa : supported_w4_isas()) {
    if (!w4_isa_int8(isa)) continue;
    const std::vector<double> B = error_bound(isa, x, n, w, nullptr);
    w4_matmul(pool, isa, x.data(), n, w.fast, nullptr, y.data());
    for (size_t o = 0; o < y.size(); ++o)
      EXPECT_LE(std::fabs(double(y[o]) - double(yref[o])), B[o]) << w4_isa_name(isa) << " output " << o;
  }
  // Groups so small that 1 / u would overflow (max|x| = 1e-36) are taken as zeros: finite
  // outputs, below 1e-30 here (no bias).
  std::vector<float> xt(static_cast<size_t>(K), 1e-36f), yt(static_cast<size_t>(N));
  for (W4Isa isa : supported_w4_isas()) {
    if (!w4_isa_int8(isa)) continue;
    w4_matmul(pool, isa, xt.data(), 1, w.fast, nullptr, yt.data());
    for (float v : yt) EXPECT_LE(std::fabs(v), 1e-30f) << w4_isa_name(isa);
  }
  for (auto [avx2, vnni] : {std::pair{W4Isa::Avx2, W4Isa::Avx512Vnni}, std::pair{W4Isa::Avx2Int8x2, W4Isa::Avx512VnniInt8x2},
                           std::pair{W4Isa::AvxVnniInt8x2, W4Isa::Avx512VnniInt8x2}}) {
    if (!w4_isa_supported(avx2) || !w4_isa_supported(vnni)) {
      std::printf("[ info ] %s vs %s: not both on this CPU, bit-identity not checked\n", w4_isa_name(avx2), w4_isa_name(vnni));
      continue;
    }
    for (int64_t m : {int64_t(3), n}) {  // AVX2 int8x2: whole tiles up to 4 rows, halves above
      w4_matmul(pool, avx2, x.data(), m, w.fast, nullptr, y.data());
      w4_matmul(pool, vnni, x.data(), m, w.fast, nullptr, yvnni.data());
      EXPECT_EQ(0, std::memcmp(y.data(), yvnni.data(), size_t(m * N) * sizeof(float))) << w4_isa_name(avx2) << " m=" << m;
    }
  }
}

TEST(W4Kernels, DequantizeRowsBitIdenticalToWidenRow) {
  std::mt19937 rng(6);
  for (int bits : {4, 3}) {
    const W4Weights w = make_w4(40, 256, bits, 64, rng);
    std::vector<float> ref(256), got(static_cast<size_t>(5 * 256));
    for (int64_t r0 = 0; r0 < 40; r0 += 5) {
      w4_dequantize_rows(w.fast, r0, 5, got.data());
      for (int64_t i = 0; i < 5; ++i) {
        widen_row(w.ref, r0 + i, ref.data());
        ASSERT_EQ(0, std::memcmp(ref.data(), got.data() + i * 256, 256 * sizeof(float))) << "row " << r0 + i;
      }
    }
  }
}

// matmul() on a W4 matrix: the integer kernels of w4_isa_for_rows(n) for any n, or the f32 ones
// for n <= 8 and the blocked GEMM on W4-dequantized panels above.
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
    // The kernels matmul() takes for n rows (under AWQ_W4_ACT=auto: int8x2 up to 8, int8 above).
    const std::vector<double> B = error_bound(w4_isa_for_rows(n), x, n, w, nullptr);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_LE(std::fabs(double(y[i]) - double(yref[i])), B[i]) << "n=" << n << " i=" << i;
  }
}

TEST(W4Kernels, RepackLayout) {
  // 20 rows (a full tile and a padded one) x 64 inputs, group 32; code(r, k) = (r + k) % 16,
  // zero(r, g) = r + g, scale(r, g) = 1000 + 2r + g.
  const int64_t R = 20, K = 64, G = 2;
  std::vector<uint32_t> codes(static_cast<size_t>(R * K / 8));
  std::vector<uint8_t> zeros(static_cast<size_t>(R * G));
  std::vector<uint16_t> scales(static_cast<size_t>(R * G));
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t k = 0; k < K; ++k) codes[size_t(r * K / 8 + k / 8)] |= uint32_t((r + k) % 16) << (4 * (k % 8));
    for (int64_t g = 0; g < G; ++g) {
      zeros[size_t(r * G + g)] = uint8_t(r + g);
      scales[size_t(r * G + g)] = uint16_t(1000 + 2 * r + g);
    }
  }
  const W4Tiles t = w4_repack(codes.data(), zeros.data(), scales.data(), R, K, 32);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(t.codes) % 64, 0u);
  for (int64_t r = 0; r < 32; ++r) {  // padded rows 20..31: code 0, zero 0, scale 0
    const int64_t tile = r / 16, l = r % 16;
    for (int64_t k = 0; k < K; k += 8)
      for (int b = 0; b < 4; ++b) {
        const uint8_t want = r < R ? uint8_t((r + k + b) % 16 | ((r + k + 4 + b) % 16) << 4) : 0;
        EXPECT_EQ(t.codes[size_t(tile * (K / 8) * 64 + (k / 8) * 64 + l * 4 + b)], want) << r << " " << k;
      }
    for (int64_t g = 0; g < G; ++g) {
      EXPECT_EQ(t.zeros[size_t((tile * G + g) * 16 + l)], r < R ? uint8_t(r + g) : 0);
      EXPECT_EQ(t.scales[size_t((tile * G + g) * 16 + l)], r < R ? uint16_t(1000 + 2 * r + g) : 0);
    }
  }
  EXPECT_TRUE(w4_layout_fits(4096, 128));
  EXPECT_FALSE(w4_layout_fits(4096 + 16, 16));
}

TEST(W4Kernels, PrefetchSwitchParses) {
  // AWQ_W4_PREFETCH only moves the AVX2 decode kernel's software prefetch (the kernel tests above
  // run with the default); its values and its error go through env_choice.
  EXPECT_EQ(w4_decode_prefetch_bytes(nullptr), 4096);
  EXPECT_EQ(w4_decode_prefetch_bytes(""), 4096);
  EXPECT_EQ(w4_decode_prefetch_bytes("0"), 0);
  EXPECT_EQ(w4_decode_prefetch_bytes("2048"), 2048);
  EXPECT_EQ(w4_decode_prefetch_bytes("8192"), 8192);
  EXPECT_AWQ_ERROR(w4_decode_prefetch_bytes("4k"), {"AWQ_W4_PREFETCH='4k'", "0 (no software prefetch"});
}

}  // namespace
}  // namespace awq
