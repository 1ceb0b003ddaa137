// CUDA W4A16 and FP16 linears (ops/cuda/w4a16.h) against the CPU reference matmul_ref
// (ops/cpu/matmul.h, f32) on the same AutoAWQ tensors. Tolerance: normalised MSE
// ||y - y_ref||^2 / ||y_ref||^2 <= 5e-4 (the bound). The kernels dequantize exactly as
// the reference (fp16((q - z) s)) and accumulate in f32, so what remains is the fp16 rounding
// of y (relative 2^-11, ~1e-7 in this measure) and the summation order; a wrong nibble, row,
// group or token gives an error of order 1. Every output is poisoned (NaN) first, so an
// unwritten element fails. Without a GPU the GPU tests skip with "no CUDA device: <reason>".
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/cpu/matmul.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16.h"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"
#include "ops/cuda/w4a16_tune_cache.h"
#include "quant/autoawq_pack.h"
#include "support/half_vectors.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

#define SKIP_WITHOUT_GPU()                                        \
  do {                                                            \
    std::string why_;                                             \
    if (!cuda::cuda_available(&why_)) GTEST_SKIP() << "no CUDA device: " << why_; \
  } while (0)

// Random AutoAWQ GEMM tensors: every code and zero uniform over 0 .. 2^bits - 1, scales
// fp16 in [0.002, 0.02] (weights of a typical trained linear's magnitude).
struct RandomAwq {
  int64_t n = 0, k = 0;
  int group = 0, bits = 4;
  std::vector<int32_t> qweight;  // [k, n/8]
  std::vector<int32_t> qzeros;   // [k/group, n/8]
  std::vector<uint16_t> scales;  // [k/group, n] fp16
  AwqRows rows;                  // the reference's row-major repack

  RandomAwq(int64_t n_, int64_t k_, int group_, int bits_, uint32_t seed)
      : n(n_), k(k_), group(group_), bits(bits_) {
    std::mt19937 rng(seed);
    const uint32_t mask = bits == 4 ? 0xFFFFFFFFu : 0x77777777u;
    qweight.resize(static_cast<size_t>(k * (n / 8)));
    for (auto& w : qweight) w = int32_t(rng() & mask);
    qzeros.resize(static_cast<size_t>((k / group) * (n / 8)));
    for (auto& w : qzeros) w = int32_t(rng() & mask);
    std::uniform_real_distribution<float> sd(0.002f, 0.02f);
    scales.resize(static_cast<size_t>((k / group) * n));
    for (auto& s : scales) s = f32_to_fp16(sd(rng));
    QuantParams p;
    p.bits = bits;
    p.group = group;
    rows = repack_rows(qweight.data(), qzeros.data(), scales.data(), n, k, p, "test");
  }
  AwqMatrix awq() const {
    AwqMatrix a;
    a.bits = bits;
    a.group = group;
    a.qweight = qweight.data();
    a.qzeros = qzeros.data();
    a.scales = scales.data();
    return a;
  }
  Matrix matrix() const {
    Matrix m(DType::I32, n, k, qweight.data());
    m.kind = MatrixKind::AwqGemm;
    m.awq = awq();
    m.awq.row_codes = rows.codes.data();
    m.awq.row_zeros = rows.zeros.data();
    m.awq.row_scales = rows.scales.data();
    return m;
  }
};

std::vector<uint16_t> random_fp16(size_t count, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<uint16_t> v(count);
  for (auto& e : v) e = f32_to_fp16(d(rng));
  return v;
}

// A device buffer freed on scope exit.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { AWQ_CUDA_CHECK(cudaMalloc(&p, bytes)); }
  ~DeviceBuffer() { cudaFree(p); }
  __half* h() const { return static_cast<__half*>(p); }
};

DeviceBuffer to_device(const std::vector<uint16_t>& v) {
  DeviceBuffer b(v.size() * 2);
  AWQ_CUDA_CHECK(cudaMemcpy(b.p, v.data(), v.size() * 2, cudaMemcpyHostToDevice));
  return b;
}

ThreadPool& ref_pool() {
  static ThreadPool pool(0);
  return pool;
}

// ||y - ref||^2 / ||ref||^2; NaN (an unwritten, poisoned element) makes it NaN.
double normalised_mse(const std::vector<uint16_t>& y, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(fp16_to_f32(y[i])) - ref[i];
    num += d * d;
    den += double(ref[i]) * ref[i];
  }
  return num / den;
}

// One way of computing y: [m, n] = x: [m, k] W^T (+ bias) on the device.
using W4A16Run = std::function<void(const cuda::W4A16Weight& w, const __half* x, int64_t m,
                                    const __half* bias, __half* y)>;

// w4a16_linear (the default dispatch, AWQ_W4A16_KERNEL as set in the environment).
void run_linear(const cuda::W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y) {
  cuda::w4a16_linear(w, x, m, bias, y, nullptr);
}
W4A16Run run_variant(int variant) {
  return [variant](const cuda::W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y) {
    cuda::launch_w4a16_variant(variant, static_cast<const uint4*>(w.codes),
                               static_cast<const uint2*>(w.params), x, bias, y, w.n, w.k, w.group, m, nullptr);
  };
}
// The tiled configuration index of the cp.async wgmma 64 x 64 tile with two chunks a slot
// (wgmma configuration 7): what the dispatch takes at small m where no TMA rule applies.
int cp_async_c64_config() { return cuda::w4a16_tiled_count() - cuda::w4a16_wgmma_count() + 7; }

W4A16Run run_tiled(int config, int splits = 1) {
  return [config, splits](const cuda::W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y) {
    cuda::launch_w4a16_tiled(config, splits, static_cast<const uint4*>(w.codes),
                             static_cast<const uint2*>(w.params), x, bias, y, w.n, w.k, w.group, m, nullptr);
  };
}
W4A16Run run_path(cuda::W4A16Path path) {
  return [path](const cuda::W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y) {
    cuda::launch_w4a16(static_cast<const uint4*>(w.codes), static_cast<const uint2*>(w.params), x,
                       bias, y, w.n, w.k, w.group, m, path, nullptr);
  };
}

// Runs `run` on m random tokens and checks it against matmul_ref; returns the nmse. x_offset:
// x starts that many halfs into its device buffer (alignment cases). uploaded: a's weight
// already on the device (saves the upload in long loops), else it is uploaded here.
double check_w4a16(const RandomAwq& a, int64_t m, bool with_bias, uint32_t seed,
                   const W4A16Run& run = run_linear, int64_t x_offset = 0,
                   const cuda::W4A16Weight* uploaded = nullptr) {
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, seed);
  const std::vector<uint16_t> bias = random_fp16(static_cast<size_t>(a.n), -0.5f, 0.5f, seed + 1);
  std::vector<float> ref(static_cast<size_t>(m * a.n));
  const std::vector<float> xf = test::widen_fp16(x), bf = test::widen_fp16(bias);
  matmul_ref(ref_pool(), xf.data(), m, a.matrix(), with_bias ? bf.data() : nullptr, ref.data());

  cudaStream_t s = nullptr;
  cuda::W4A16Weight w = uploaded ? *uploaded : cuda::upload_w4a16(a.awq(), a.n, a.k, s);
  std::vector<uint16_t> x_padded(static_cast<size_t>(x_offset), 0);
  x_padded.insert(x_padded.end(), x.begin(), x.end());
  DeviceBuffer dx = to_device(x_padded), db = to_device(bias), dy(ref.size() * 2);
  AWQ_CUDA_CHECK(cudaMemset(dy.p, 0xFF, ref.size() * 2));  // NaN poison
  run(w, dx.h() + x_offset, m, with_bias ? db.h() : nullptr, dy.h());
  AWQ_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> y(ref.size());
  AWQ_CUDA_CHECK(cudaMemcpy(y.data(), dy.p, y.size() * 2, cudaMemcpyDeviceToHost));
  if (!uploaded) cuda::free_w4a16(w);
  return normalised_mse(y, ref);
}

constexpr double kMaxNmse = 5e-4;

// Prints the worst nmse of a test (docs/results/gpu.md quotes these lines).
struct WorstNmse {
  const char* what;
  double worst = 0;
  double operator()(double e) {
    worst = std::max(worst, e);
    return e;
  }
  ~WorstNmse() { std::printf("[ nmse     ] %s: worst %.3g (bound %.0e)\n", what, worst, kMaxNmse); }
};

TEST(CudaW4A16, MatchesReferenceOverTokenCounts) {
  SKIP_WITHOUT_GPU();
  // n % 16 == 8 exercises the padded row tile; k / 64 = 7 chunks.
  const RandomAwq a(264, 448, 64, 4, 11);
  WorstNmse worst{"w4a16_linear, n 264 k 448 group 64, m = 1..256"};
  for (int64_t m : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128, 256}) {
    const double e = worst(check_w4a16(a, m, /*with_bias=*/m % 2 == 1, uint32_t(100 + m)));
    EXPECT_LE(e, kMaxNmse) << "m=" << m;
  }
}

TEST(CudaW4A16, GroupSizesBitsAndPaddedKTiles) {
  SKIP_WITHOUT_GPU();
  struct Case { int64_t n, k; int group, bits; };
  WorstNmse worst{"w4a16_linear, groups 16/32/64/128, 3 and 4 bits, m = 1, 6, 13, 40"};
  // k = 96, group 32: 6 k-tiles in 2 chunks of 4 (two padded tiles); group 16 / 128; 3 bits.
  for (const Case c : {Case{40, 96, 32, 4}, Case{128, 256, 16, 4}, Case{520, 1024, 128, 4},
                       Case{136, 384, 128, 3}, Case{64, 192, 64, 3}}) {
    const RandomAwq a(c.n, c.k, c.group, c.bits, uint32_t(c.n + c.k));
    for (int64_t m : {1, 6, 13, 40}) {
      const double e = worst(check_w4a16(a, m, true, uint32_t(7 * m)));
      EXPECT_LE(e, kMaxNmse) << "n=" << c.n << " k=" << c.k << " group=" << c.group
                             << " bits=" << c.bits << " m=" << m;
    }
  }
}

// Every compiled configuration (the bench times them all), on a padded row tile, a group
// below one 64-input chunk (params change inside a chunk) and token counts around the tiles.
TEST(CudaW4A16, EveryKernelConfiguration) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a64(264, 448, 64, 4, 21), a32(40, 96, 32, 4, 22);
  WorstNmse worst{"every kernel configuration, groups 64 and 32, m = 1, 9, 70"};
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v) {
    const cuda::W4A16Variant cfg = cuda::w4a16_variant(v);
    for (int64_t m : {1, 9, 70}) {
      EXPECT_LE(worst(check_w4a16(a64, m, true, uint32_t(m), run_variant(v))), kMaxNmse)
          << "mt=" << cfg.mt << " wk=" << cfg.wk << " wn=" << cfg.wn << " rt=" << cfg.rt << " xs=" << cfg.xs
          << " group 64 m=" << m;
      EXPECT_LE(worst(check_w4a16(a32, m, false, uint32_t(m + 1), run_variant(v))), kMaxNmse)
          << "mt=" << cfg.mt << " wk=" << cfg.wk << " wn=" << cfg.wn << " rt=" << cfg.rt << " xs=" << cfg.xs
          << " group 32 m=" << m;
    }
  }
}

// The variants that stage x in shared memory (xs): every token count of a block (m = 1..8: the
// shared copy has m rows, B fragments of rows past m read the last one), a second token block
// (m = 11, 17), padded k-tiles (k = 96 group 32), x only 4-byte aligned (the launch runs the
// twin that reads x from L2), and a copy too large for shared memory (k = 11008 at m = 8:
// 176 KB, also the twin). Each against matmul_ref, and bit-identical to its L2 twin where it
// ran the xs kernel: the same products in the same order, only x's path differs.
TEST(CudaW4A16, SharedMemoryXVariants) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a64(264, 448, 64, 4, 23), a32(40, 96, 32, 4, 24), big(48, 11008, 128, 4, 25);
  WorstNmse worst{"xs variants, m = 1..8, 11, 17, aligned and 4-byte-aligned x, k = 11008"};
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v) {
    const cuda::W4A16Variant cfg = cuda::w4a16_variant(v);
    if (!cfg.xs) continue;
    for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 11, 17}) {
      for (int64_t x_offset : {0, 2}) {
        EXPECT_LE(worst(check_w4a16(a64, m, m % 2 == 0, uint32_t(m + x_offset), run_variant(v), x_offset)), kMaxNmse)
            << "mt=" << cfg.mt << " wk=" << cfg.wk << " rt=" << cfg.rt << " group 64 m=" << m << " x offset " << x_offset;
        EXPECT_LE(worst(check_w4a16(a32, m, true, uint32_t(m + 3), run_variant(v), x_offset)), kMaxNmse)
            << "mt=" << cfg.mt << " wk=" << cfg.wk << " rt=" << cfg.rt << " group 32 m=" << m << " x offset " << x_offset;
      }
    }
    for (int64_t m : {1, 4, 8})
      EXPECT_LE(worst(check_w4a16(big, m, false, uint32_t(m + 5), run_variant(v))), kMaxNmse)
          << "mt=" << cfg.mt << " wk=" << cfg.wk << " rt=" << cfg.rt << " k 11008 m=" << m;
  }
}

// An xs variant and its twin that reads x from L2 give the same bits (same arithmetic, same order).
TEST(CudaW4A16, SharedMemoryXMatchesL2TwinBitForBit) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(264, 448, 64, 4, 26);
  cudaStream_t s = nullptr;
  cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, s);
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v) {
    const cuda::W4A16Variant cfg = cuda::w4a16_variant(v);
    if (!cfg.xs) continue;
    int twin = -1;
    for (int t = 0; t < cuda::w4a16_variant_count(); ++t) {
      const cuda::W4A16Variant c = cuda::w4a16_variant(t);
      if (!c.xs && c.mt == cfg.mt && c.wk == cfg.wk && c.wn == cfg.wn && c.rt == cfg.rt && c.sa == cfg.sa) twin = t;
    }
    if (twin < 0) continue;  // a configuration compiled only with xs
    for (int64_t m : {1, 5, 8}) {
      const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, uint32_t(m));
      DeviceBuffer dx = to_device(x), y1(static_cast<size_t>(m * a.n) * 2), y2(static_cast<size_t>(m * a.n) * 2);
      AWQ_CUDA_CHECK(cudaMemset(y1.p, 0xFF, static_cast<size_t>(m * a.n) * 2));
      AWQ_CUDA_CHECK(cudaMemset(y2.p, 0x7F, static_cast<size_t>(m * a.n) * 2));
      run_variant(v)(w, dx.h(), m, nullptr, y1.h());
      run_variant(twin)(w, dx.h(), m, nullptr, y2.h());
      AWQ_CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<uint16_t> h1(static_cast<size_t>(m * a.n)), h2(h1.size());
      AWQ_CUDA_CHECK(cudaMemcpy(h1.data(), y1.p, h1.size() * 2, cudaMemcpyDeviceToHost));
      AWQ_CUDA_CHECK(cudaMemcpy(h2.data(), y2.p, h2.size() * 2, cudaMemcpyDeviceToHost));
      EXPECT_EQ(h1, h2) << "mt=" << cfg.mt << " wk=" << cfg.wk << " rt=" << cfg.rt << " sa=" << cfg.sa << " m=" << m;
    }
  }
  cuda::free_w4a16(w);
}

// The variants that scale after the mma (sa: a chunk's products from the unscaled codes, times
// the row's scale in f32): group 64 (a group per chunk) with 7 chunks, group 128 (a group spans
// two chunks) with k = 4224 and 11008, group 32 (scales change inside a chunk: the kernel keeps
// the scaled dequant), padded k-tiles (k = 96), m = 1..8 and 11 (a second token block), bias,
// x only 4-byte aligned (the xs ones then run their L2 twin). Each against matmul_ref.
TEST(CudaW4A16, ScaleAfterVariants) {
  SKIP_WITHOUT_GPU();
  const RandomAwq shapes[] = {RandomAwq(264, 448, 64, 4, 61), RandomAwq(40, 96, 32, 4, 62),
                              RandomAwq(136, 4224, 128, 4, 63), RandomAwq(48, 11008, 128, 4, 64),
                              RandomAwq(72, 384, 128, 3, 66)};
  WorstNmse worst{"scale-after variants, groups 64/32/128, 3 and 4 bits, m = 1..8, 11"};
  int tested = 0;
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v) {
    const cuda::W4A16Variant cfg = cuda::w4a16_variant(v);
    if (!cfg.sa) continue;
    ++tested;
    for (const RandomAwq& a : shapes)
      for (int64_t m : {1, 2, 3, 5, 8, 11})
        for (int64_t x_offset : {0, 2})
          EXPECT_LE(worst(check_w4a16(a, m, m % 2 == 1, uint32_t(m + 7 * x_offset), run_variant(v), x_offset)), kMaxNmse)
              << "wk=" << cfg.wk << " rt=" << cfg.rt << " xs=" << cfg.xs << " n " << a.n << " k " << a.k << " group "
              << a.group << " m=" << m << " x offset " << x_offset;
  }
  EXPECT_GT(tested, 0) << "no scale-after variant compiled in";
}

// A shape of the every-configuration tests: out_features, in_features, group, bits.
struct EdgeCase {
  int64_t n, k;
  int group, bits;
};
// The shapes that hit the tiled and K-slice kernels' edges (the tests below say which edge each
// one is for), plus `more`.
std::vector<EdgeCase> edge_cases(std::initializer_list<EdgeCase> more = {}) {
  std::vector<EdgeCase> cases = {{264, 448, 64, 4}, {40, 96, 32, 4}, {128, 256, 16, 4}, {136, 384, 128, 3}};
  cases.insert(cases.end(), more);
  return cases;
}
// Random AutoAWQ tensors of each case (seed seed_n * n + k), uploaded; fn(case, tensors, upload).
template <class F>
void for_each_uploaded(const std::vector<EdgeCase>& cases, uint32_t seed_n, F&& fn) {
  for (const EdgeCase c : cases) {
    const RandomAwq a(c.n, c.k, c.group, c.bits, uint32_t(seed_n * c.n + c.k));
    cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
    fn(c, a, w);
    cuda::free_w4a16(w);
  }
}

// Every tiled-GEMM configuration (w4a16_tiled.cu) on shapes that hit each edge: n = 264
// (a padded row tile; n a multiple of no block tile), k = 448 (7 chunks: more than the
// stages, so every pipeline slot is reused) group 64; k = 96 group 32 (two padded k-tiles in
// the last chunk, params change inside a chunk); group 16 (four groups per chunk); group 128
// with 3 bits and k = 384 (a group spans two chunks). Token counts: 1 (one row of a token
// tile), 9 / 17 / 33 / 70 / 130 (partial token tiles and blocks), 64 (whole ones); bias on some.
TEST(CudaW4A16, EveryTiledConfiguration) {
  SKIP_WITHOUT_GPU();
  WorstNmse worst{"every tiled configuration, groups 16/32/64/128, 3 and 4 bits, m = 1, 9, 17, 33, 64, 70, 130, splits 1..8"};
  for_each_uploaded(edge_cases(), 3, [&](const EdgeCase& c, const RandomAwq& a, const cuda::W4A16Weight& w) {
    for (int t = 0; t < cuda::w4a16_tiled_count(); ++t) {
      const cuda::W4A16TiledConfig cfg = cuda::w4a16_tiled_config(t);
      for (int splits : {1, 2, 3, 4, 6, 8}) {
        // Split-K: uneven (3) and empty splits (k = 96 has 2 chunks) included; 6 and 8 (the
        // largest portable cluster) on the wgmma configurations, whose clusters reduce by pushing
        // the partials to the block that owns each token tile (AWQ_W4A16_CLUSTER_PUSH): with 6,
        // some blocks of the 64-token tiles own no token tile, and the 128-token tiles' last
        // owner holds one of its three.
        if (splits >= 6 && !cfg.wgmma) continue;
        const std::vector<int64_t> ms = splits == 1 ? std::vector<int64_t>{1, 9, 17, 33, 64, 70, 130}
                                                    : std::vector<int64_t>{9, 70};
        for (int64_t m : ms) {
          const double e =
              worst(check_w4a16(a, m, m % 2 == 1, uint32_t(m + t + splits), run_tiled(t, splits), 0, &w));
          EXPECT_LE(e, kMaxNmse) << (cfg.wgmma ? "wgmma " : "tiled ") << cfg.bm << "x" << cfg.bn << " (tt " << cfg.tt << " rt "
                                 << cfg.rt << " wt " << cfg.wt << " wr " << cfg.wr << " stages "
                                 << cfg.stages << ") splits=" << splits << " n=" << c.n << " k=" << c.k
                                 << " group=" << c.group << " bits=" << c.bits << " m=" << m;
        }
      }
    }
  });
  std::printf("[ note     ] wgmma %s on this device/build (w4a16_wgmma_available)%s\n",
              cuda::w4a16_wgmma_available() ? "available" : "NOT available",
              cuda::w4a16_wgmma_available() ? "" : ": its configurations ran as the 128 x 128 mma.sync tile");
  std::printf("[ note     ] split-K %s on this device/build (w4a16_split_k_available)%s\n",
              cuda::w4a16_split_k_available() ? "available" : "NOT available",
              cuda::w4a16_split_k_available() ? "" : ": splits > 1 ran as 1 split");
}

// s: a created stream runs the PDL-ordered kernels where a PdlScope turns PDL on (pdl.h).
W4A16Run run_kslice(int config, int splits, cudaStream_t s = nullptr) {
  return [config, splits, s](const cuda::W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y) {
    cuda::launch_w4a16_kslice(config, splits, static_cast<const uint4*>(w.codes), static_cast<const uint2*>(w.params),
                              x, bias, y, w.n, w.k, w.group, m, s);
  };
}

// Every K-slice configuration (w4a16_kslice.cu) x 1..8 K splits on shapes that hit each edge:
// n = 264 and 40 (a partial row group, padded row tiles), k = 448 (7 chunks: uneven slices), k = 96
// group 32 (2 chunks, the last with two padded k-tiles: splits > 2 leave slices empty), group 16
// (four groups a chunk), 3 bits with group 128 spanning two chunks, and k = 1024 (16 chunks, 3
// splits of 6/6/4). Token counts: 1, 2, 5, 8 (one token tile), 9, 16 (two), 17 (a partial last
// block of tokens: the grid's y > 1); bias on odd m.
TEST(CudaW4A16, EveryKSliceConfiguration) {
  SKIP_WITHOUT_GPU();
  WorstNmse worst{"every K-slice configuration x splits 1/2/3/4/8, groups 16/32/64/128, 3 and 4 bits, m = 1..17"};
  int ran_split = 0;
  for_each_uploaded(edge_cases({{520, 1024, 128, 4}}), 5, [&](const EdgeCase& c, const RandomAwq& a,
                                                               const cuda::W4A16Weight& w) {
    for (int cfg = 0; cfg < cuda::w4a16_kslice_count(); ++cfg) {
      const cuda::W4A16KSliceConfig kc = cuda::w4a16_kslice_config(cfg);
      for (int splits : {1, 2, 3, 4, 8}) {
        for (int64_t m : {1, 2, 5, 8, 9, 16, 17}) {
          if (!cuda::w4a16_kslice_fits(cfg, splits, m, a.k)) {
            // Only clusters can be missing at these sizes (the slices are a few KB).
            EXPECT_GT(splits, 1) << "config " << cfg << " m=" << m << " k=" << a.k;
            EXPECT_FALSE(cuda::w4a16_split_k_available());
            continue;
          }
          ran_split += splits > 1;
          const double e = worst(check_w4a16(a, m, m % 2 == 1, uint32_t(m + 3 * cfg + splits), run_kslice(cfg, splits), 0, &w));
          EXPECT_LE(e, kMaxNmse) << "kslice " << kc.mt << "/" << kc.wn << "/" << kc.wk << "/" << kc.u << " splits=" << splits
                                 << " n=" << c.n << " k=" << c.k << " group=" << c.group << " bits=" << c.bits
                                 << " m=" << m;
        }
      }
    }
  });
  EXPECT_EQ(ran_split > 0, cuda::w4a16_split_k_available());
  std::printf("[ note     ] K-slice split-K (clusters) %s on this device/build\n",
              cuda::w4a16_split_k_available() ? "ran" : "NOT available: only 1 split ran");
}

// The gate/up epilogue (launch_w4a16's gated output, w4a16_device.cuh store_c_fragment) of every
// register-streaming variant and every K-slice configuration at 1, 2 and 3 K splits, against the
// same kernel's plain output followed by silu_mul (interleaved): the same bits, every output
// written (poisoned first). n = 272 (17 row tiles: partial row groups), k = 448 (7 chunks: uneven
// slices); m = 1..17 across token tiles; bias on odd m. Then w4a16_linear_silu at m = 1..64 (the
// gated kernels up to 16, the tiled GEMM + silu_mul beyond) against w4a16_linear + silu_mul.
TEST(CudaW4A16, GatedEpilogueMatchesProjectionThenSiluMul) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(272, 448, 64, 4, 41);
  const int64_t max_m = 64, n = a.n, ff = a.n / 2;
  cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  const auto* codes = static_cast<const uint4*>(w.codes);
  const auto* params = static_cast<const uint2*>(w.params);
  DeviceBuffer dx = to_device(random_fp16(size_t(max_m * a.k), -1.0f, 1.0f, 42)),
               db = to_device(random_fp16(size_t(n), -0.5f, 0.5f, 43));
  DeviceBuffer dy(size_t(max_m * n) * 2), dref(size_t(max_m * ff) * 2), dact(size_t(max_m * ff) * 2);
  // plain(y) writes [m, n]; gated(act) writes [m, n / 2].
  const auto expect_same = [&](int64_t m, const std::function<void(__half*, bool)>& launch, const std::string& what) {
    AWQ_CUDA_CHECK(cudaMemset(dy.p, 0xFF, size_t(max_m * n) * 2));
    AWQ_CUDA_CHECK(cudaMemset(dact.p, 0xFF, size_t(max_m * ff) * 2));
    launch(dy.h(), false);
    cuda::silu_mul(dy.h(), m, ff, dref.h(), nullptr, /*interleaved=*/true);
    launch(dact.h(), true);
    AWQ_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> ref(size_t(m * ff)), got(size_t(m * ff));
    AWQ_CUDA_CHECK(cudaMemcpy(ref.data(), dref.p, ref.size() * 2, cudaMemcpyDeviceToHost));
    AWQ_CUDA_CHECK(cudaMemcpy(got.data(), dact.p, got.size() * 2, cudaMemcpyDeviceToHost));
    EXPECT_EQ(got, ref) << what << " m=" << m;
  };
  const std::vector<int64_t> ms = {1, 2, 5, 8, 9, 16, 17};
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v)
    for (const int64_t m : ms)
      expect_same(m, [&](__half* y, bool gated) {
        cuda::launch_w4a16_variant(v, codes, params, dx.h(), m % 2 ? db.h() : nullptr, y, n, a.k, a.group, m, nullptr, gated);
      }, "variant " + std::to_string(v));
  for (int cfg = 0; cfg < cuda::w4a16_kslice_count(); ++cfg)
    for (const int splits : {1, 2, 3})
      for (const int64_t m : ms) {
        if (!cuda::w4a16_kslice_fits(cfg, splits, m, a.k)) continue;
        expect_same(m, [&](__half* y, bool gated) {
          cuda::launch_w4a16_kslice(cfg, splits, codes, params, dx.h(), m % 2 ? db.h() : nullptr, y, n, a.k, a.group, m,
                                    nullptr, gated);
        }, "kslice " + std::to_string(cfg) + " splits " + std::to_string(splits));
      }
  int fused = 0;
  for (const int64_t m : {1, 2, 4, 8, 16, 17, 32, 64}) {
    fused += cuda::w4a16_gated_output_available(dx.h(), m, n, a.k, cuda::w4a16_path_from_env());
    expect_same(m, [&](__half* y, bool gated) {
      if (gated)
        cuda::w4a16_linear_silu(w, dx.h(), m, db.h(), dy.h(), y, nullptr);
      else
        cuda::w4a16_linear(w, dx.h(), m, db.h(), y, nullptr);
    }, "w4a16_linear_silu");
  }
  EXPECT_GT(fused, 0) << "w4a16_linear_silu never took the gated epilogue";
  EXPECT_THROW(cuda::launch_w4a16(codes, params, dx.h(), nullptr, dact.h(), n, a.k, a.group, 64,
                                  cuda::W4A16Path::Tiled, nullptr, /*gated=*/true),
               Error);
  cuda::free_w4a16(w);
}

// The dispatch's three paths (AWQ_W4A16_KERNEL=auto|legacy|tiled) around the switch-over m,
// and an x that is 4- but not 16-byte aligned (the tiled GEMM's cp.async needs 16: it must
// fall back to the legacy kernels, still correct).
TEST(CudaW4A16, KernelPathsAndUnalignedInput) {
  SKIP_WITHOUT_GPU();
  // n 264 k 448: 7 chunks (no split-K); n 520 k 1024: 16 chunks and few blocks, so the
  // default choice splits K where split-K is available.
  const RandomAwq a(264, 448, 64, 4, 31), b(520, 1024, 128, 4, 32);
  WorstNmse worst{"launch_w4a16 paths auto/legacy/tiled, aligned and 4-byte-aligned x, m = 1..200"};
  const std::pair<cuda::W4A16Path, const char*> paths[] = {
      {cuda::W4A16Path::Auto, "auto"}, {cuda::W4A16Path::Legacy, "legacy"}, {cuda::W4A16Path::Tiled, "tiled"}};
  for (const RandomAwq* w : {&a, &b}) {
    for (const auto& [path, name] : paths) {
      for (int64_t m : {1, 8, 9, 16, 17, 64, 200}) {
        for (int64_t x_offset : {0, 2}) {
          const double e = worst(check_w4a16(*w, m, true, uint32_t(m + x_offset), run_path(path), x_offset));
          EXPECT_LE(e, kMaxNmse) << "path " << name << " n=" << w->n << " k=" << w->k << " m=" << m
                                 << " x offset " << x_offset << " halfs";
        }
      }
    }
  }
}

// Small cases of every tiled configuration for compute-sanitizer --tool racecheck / synccheck
// (scripts/gpu-check sanitize runs CudaW4A16Race.* under them): k = 1024 is 16 chunks, twice the
// deepest pipeline (8 stages), so every slot is refilled while other warps may still read its
// neighbour. The split-K case (2 splits, 8 chunks each; the partial sums then overwrite the
// pipeline's shared memory and are read across the cluster) is a test of its own, so a checker
// that does not follow distributed shared memory shows up under its name.
void race_cases(int splits) {
  const RandomAwq a128(136, 1024, 128, 4, 41), a32(136, 1024, 32, 4, 42);
  WorstNmse worst{splits == 1   ? "tiled configurations under the race checker, n 136 k 1024, groups 128 and 32, m = 40"
                  : splits == 2 ? "tiled split-K (2) under the race checker, n 136 k 1024, groups 128 and 32, m = 40"
                                : "tiled split-K (3) under the race checker, n 136 k 1024, groups 128 and 32, m = 40"};
  for (int t = 0; t < cuda::w4a16_tiled_count(); ++t) {
    EXPECT_LE(worst(check_w4a16(a128, 40, true, uint32_t(t), run_tiled(t, splits))), kMaxNmse)
        << "config " << t << " splits " << splits;
    EXPECT_LE(worst(check_w4a16(a32, 40, false, uint32_t(t + 9), run_tiled(t, splits))), kMaxNmse)
        << "config " << t << " splits " << splits;
  }
}

TEST(CudaW4A16Race, TiledSmallCases) {
  SKIP_WITHOUT_GPU();
  race_cases(1);
}

// 2 and 3 splits: the owners of the reduced token tiles even and uneven (w4a16_wgmma_device.cuh).
TEST(CudaW4A16Race, TiledSplitKSmallCases) {
  SKIP_WITHOUT_GPU();
  race_cases(2);
  race_cases(3);
}

// The xs variants' shared copy of x (cp.async by every thread, then a barrier, then reads of
// rows other threads copied) and their shared-memory reduction, m = 1 and 8 (one and all rows).
TEST(CudaW4A16Race, SharedMemoryXSmallCases) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(136, 1024, 128, 4, 43);
  WorstNmse worst{"xs variants under the race checker, n 136 k 1024, m = 1, 8"};
  for (int v = 0; v < cuda::w4a16_variant_count(); ++v) {
    if (!cuda::w4a16_variant(v).xs) continue;
    for (int64_t m : {1, 8})
      EXPECT_LE(worst(check_w4a16(a, m, true, uint32_t(v + m), run_variant(v))), kMaxNmse) << "variant " << v << " m=" << m;
  }
}

// The K-slice kernels' shared copy of x (cp.async by every thread, a barrier, then reads of
// rows other threads copied) and their cluster reduction (the warps' sums in shared memory, a
// barrier; local partials, a cluster barrier, remote loads of every slice's partials, a second
// barrier), m = 1 (batch-1 decode, where the measured picks may run them), 2 and 16, 1 and 2
// splits; launched plain and, on a created stream with PDL on, in the order that loads a weight
// stage before the wait.
TEST(CudaW4A16Race, KSliceSmallCases) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(136, 1024, 128, 4, 44);
  WorstNmse worst{"K-slice configurations under the race checker, n 136 k 1024, m = 1, 2, 16, splits 1 and 2, PDL off and on"};
  cudaStream_t s = nullptr;
  AWQ_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (const bool pdl : {false, true}) {
    const cuda::PdlScope scope(pdl ? cuda::PdlMode::On : cuda::PdlMode::Off);
    for (int cfg = 0; cfg < cuda::w4a16_kslice_count(); ++cfg)
      for (int splits : {1, 2})
        for (int64_t m : {1, 2, 16}) {
          if (!cuda::w4a16_kslice_fits(cfg, splits, m, a.k)) continue;
          EXPECT_LE(worst(check_w4a16(a, m, true, uint32_t(cfg + m), run_kslice(cfg, splits, pdl ? s : nullptr))), kMaxNmse)
              << "config " << cfg << " splits " << splits << " m=" << m << (pdl ? " PDL" : "");
        }
  }
  cudaStreamDestroy(s);
}

// Runs `run` (configuration t) twice on x: [m, k] into outputs poisoned with 0xFF bytes and
// expects the same bits both times: partials summed in a fixed order, counters reset.
void expect_same_bits_twice(const cuda::W4A16Weight& w, int64_t n, const std::vector<uint16_t>& x, int64_t m,
                            int t, const W4A16Run& run) {
  DeviceBuffer dx = to_device(x), dy(static_cast<size_t>(m * n) * 2);
  std::vector<uint16_t> first, again(static_cast<size_t>(m * n));
  for (int rep = 0; rep < 2; ++rep) {
    AWQ_CUDA_CHECK(cudaMemset(dy.p, 0xFF, again.size() * 2));
    run(w, dx.h(), m, nullptr, dy.h());
    AWQ_CUDA_CHECK(cudaMemcpy(again.data(), dy.p, again.size() * 2, cudaMemcpyDeviceToHost));
    if (rep == 0)
      first = again;
    else
      EXPECT_EQ(std::memcmp(first.data(), again.data(), first.size() * 2), 0) << "config " << t;
  }
}

// Split-K sums the splits' partials in a fixed order (cluster rank 0, 1, ...): two runs give
// the same bits. (Where split-K is unavailable the splits run as one: trivially the same.)
TEST(CudaW4A16, SplitKIsDeterministic) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(520, 1024, 128, 4, 51);
  const int64_t m = 70;
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, 52);
  cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  // The last two: the TMA 256 x 128 tile (split-K through a cluster) and a wgmma configuration.
  for (int t : {3, 5, cuda::w4a16_tma_wide_config(), cuda::w4a16_tiled_count() - 1})
    expect_same_bits_twice(w, a.n, x, m, t, run_tiled(t, 4));
  // The cp.async wgmma 64 x 64 tile (two chunks per slot) at 2 and 8 splits: its clusters push
  // their partials to the owning block (AWQ_W4A16_CLUSTER_PUSH).
  const int c64 = cp_async_c64_config();
  for (int splits : {2, 8}) expect_same_bits_twice(w, a.n, x, m, c64, run_tiled(c64, splits));
  // The TMA 128 x 192 tile at 3 and 6 splits: owners of 6 / 6 / 4 and 3 / 3 / 3 / 3 / 3 / 1 token tiles.
  const int r128 = cuda::w4a16_tma_rows192_config(128);
  for (int splits : {3, 6}) expect_same_bits_twice(w, a.n, x, m, r128, run_tiled(r128, splits));
  cuda::free_w4a16(w);
}

// The split-K-through-L2 configuration `l2` gives the bits of its cluster twin `cluster` at
// `splits` on m tokens x (a weight of n rows), twice over (the second run, on poisoned outputs,
// shows that the tiles' counters were reset).
void expect_l2_twin_bits(const cuda::W4A16Weight& w, int64_t n, const std::vector<uint16_t>& x, int64_t m,
                         int cluster, int l2, int splits) {
  DeviceBuffer dx = to_device(x), dy(static_cast<size_t>(m * n) * 2);
  std::vector<uint16_t> want(static_cast<size_t>(m * n)), got(want.size());
  run_tiled(cluster, splits)(w, dx.h(), m, nullptr, dy.h());
  AWQ_CUDA_CHECK(cudaMemcpy(want.data(), dy.p, want.size() * 2, cudaMemcpyDeviceToHost));
  for (int rep = 0; rep < 2; ++rep) {
    AWQ_CUDA_CHECK(cudaMemset(dy.p, 0xFF, got.size() * 2));
    run_tiled(l2, splits)(w, dx.h(), m, nullptr, dy.h());
    AWQ_CUDA_CHECK(cudaMemcpy(got.data(), dy.p, got.size() * 2, cudaMemcpyDeviceToHost));
    EXPECT_EQ(std::memcmp(want.data(), got.data(), got.size() * 2), 0) << "run " << rep;
  }
}

// The 192-row tiles' twins with split-K through L2 (W4A16TiledConfig::l2_split) add the same
// partials in the same order as the cluster form: the same bits as their cluster twins, twice
// over (the second run shows the tiles' counters were reset), at every split the wave rule may
// take. n 4096 k 1024 at m = 256 makes 44 tiles of 128 x 192 (132 blocks at 3 splits, one per
// SM of an H100: every block waits for its peers) and 88 of 64 x 192; m = 70 leaves a partial
// token block. Grids over one wave (here 6 splits of 44 tiles) run the cluster form.
TEST(CudaW4A16, SplitKThroughL2MatchesClusterBits) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(4096, 1024, 128, 4, 55);
  cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  for (int tokens : {128, 64}) {
    const int l2 = cuda::w4a16_tma_rows192_l2_config(tokens), cluster = cuda::w4a16_tma_rows192_config(tokens);
    ASSERT_TRUE(cuda::w4a16_tiled_config(l2).l2_split);
    ASSERT_FALSE(cuda::w4a16_tiled_config(cluster).l2_split);
    ASSERT_EQ(cuda::w4a16_tiled_config(l2).bm, tokens);
    for (int64_t m : {int64_t(70), int64_t(256)}) {
      const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, uint32_t(56 + m));
      for (int splits : {2, 3, 4, 6, 8}) {
        SCOPED_TRACE("tokens " + std::to_string(tokens) + " m " + std::to_string(m) + " splits " +
                     std::to_string(splits));
        expect_l2_twin_bits(w, a.n, x, m, cluster, l2, splits);
      }
    }
  }
  cuda::free_w4a16(w);
}

// w4a16_linear on m random tokens gives the same bits as `direct` (the kernel it should run).
void expect_linear_runs(const RandomAwq& a, const cuda::W4A16Weight& w, int64_t m, const W4A16Run& direct,
                        uint32_t seed) {
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, seed);
  DeviceBuffer mx = to_device(x), y_linear(size_t(m * a.n) * 2), y_direct(size_t(m * a.n) * 2);
  std::vector<uint16_t> via_linear(size_t(m * a.n)), want(via_linear.size());
  run_linear(w, mx.h(), m, nullptr, y_linear.h());
  direct(w, mx.h(), m, nullptr, y_direct.h());
  AWQ_CUDA_CHECK(cudaMemcpy(via_linear.data(), y_linear.p, via_linear.size() * 2, cudaMemcpyDeviceToHost));
  AWQ_CUDA_CHECK(cudaMemcpy(want.data(), y_direct.p, want.size() * 2, cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::memcmp(via_linear.data(), want.data(), want.size() * 2), 0);
}

// The measured picks (w4a16_tune.h) on this GPU: tuning a shape over two weight copies records a
// pick for each bucket up to m_max (64 tokens wide from 17 with the sm_90a wgmma tiles; 32 wide from
// 65 with the mma.sync tiles, on other GPUs or with AWQ_W4A16_WGMMA=0) and nothing past it; w4a16_linear
// then runs exactly the recorded pick (the same bits as launching it directly) and matches the
// reference; a second tuning of the shape times nothing; tuning inside a graph capture is refused.
TEST(CudaW4A16, TuneRecordsWhatTheLinearRuns) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(1032, 1024, 128, 4, 71);  // a padded row tile; 16 chunks
  cuda::W4A16Weight w0 = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  cuda::W4A16Weight w1 = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  const int64_t m_max = 256;
  DeviceBuffer dx = to_device(std::vector<uint16_t>(size_t(m_max * a.k), 0)), dy(size_t(m_max * a.n) * 2);
  cuda::w4a16_tune_forget();
  const std::vector<cuda::W4A16Codes> codes = {{static_cast<const uint4*>(w0.codes), static_cast<const uint2*>(w0.params)},
                                               {static_cast<const uint4*>(w1.codes), static_cast<const uint2*>(w1.params)}};
  const cuda::W4A16TuneReport r = cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), nullptr);
  // With the sm_90a kernels 64, 128, 192, 256, else the mma.sync tiles' 96, 128, ..., 256
  // (unless AWQ_W4A16_KERNEL=legacy); where the K-slice kernels run, the small buckets 1, 4, 8, 12, 16.
  const bool wgmma = cuda::w4a16_wgmma_available();
  const bool tiled = cuda::w4a16_path_from_env() != cuda::W4A16Path::Legacy;
  const bool small = cuda::w4a16_kslice_from_env() && cuda::w4a16_path_from_env() == cuda::W4A16Path::Auto;
  if (!tiled && !small) {
    EXPECT_EQ(r.buckets, 0);
    EXPECT_NE(r.why_not.find("legacy"), std::string::npos) << r.why_not;
    GTEST_SKIP() << "AWQ_W4A16_KERNEL=legacy: " << r.why_not;
  }
  const int tiled_buckets = int(cuda::w4a16_tune_buckets(m_max, wgmma).size());
  EXPECT_EQ(tiled_buckets, wgmma ? 4 : 6);
  EXPECT_EQ(r.buckets, (tiled ? tiled_buckets : 0) + (small ? 5 : 0)) << r.why_not;
  EXPECT_EQ(r.cached, 0);
  EXPECT_EQ(r.cache, "") << "the tests run without the cache file (AWQ_W4A16_TUNE_CACHE=0)";
  std::printf("[ note     ] tuned n %lld k %lld: %d buckets in %.3f s, %d differ from the rules\n", (long long)a.n,
              (long long)a.k, r.buckets, r.seconds, r.changed);
  WorstNmse worst{"tuned picks, n 1032 k 1024 group 128, m = 2..256"};
  for (int64_t m : {17, 40, 64, 100, 128, 192, 200, 256}) {
    SCOPED_TRACE("m " + std::to_string(m));
    const cuda::W4A16TiledChoice t = cuda::w4a16_tuned_pick(m, a.n, a.k, a.group);
    if (!tiled || cuda::w4a16_tune_bucket(m, wgmma) == 0) {  // the rules (mma.sync: m <= 64)
      EXPECT_EQ(t.config, -1);
      continue;
    }
    ASSERT_GE(t.config, 0);
    EXPECT_EQ(cuda::w4a16_tiled_config(t.config).wgmma, wgmma);
    const auto cands = cuda::w4a16_tune_candidates(a.k, cuda::w4a16_pick_context());
    EXPECT_TRUE(std::any_of(cands.begin(), cands.end(),
                            [&](auto c) { return c.config == t.config && c.splits == t.splits; }));
    SCOPED_TRACE("tiled config " + std::to_string(t.config) + " split " + std::to_string(t.splits));
    expect_linear_runs(a, w0, m, run_tiled(t.config, t.splits), uint32_t(72 + m));
    EXPECT_LE(worst(check_w4a16(a, m, true, uint32_t(80 + m), run_linear, 0, &w0)), kMaxNmse);
  }
  // Small batches: where a K-slice configuration or a register-streaming variant was recorded,
  // w4a16_linear runs it (same bits).
  for (int64_t m : {1, 2, 5, 9, 16}) {
    SCOPED_TRACE("m " + std::to_string(m));
    const cuda::W4A16SmallPick t = cuda::w4a16_tuned_small(m, a.n, a.k);
    EXPECT_FALSE(t.ks.config >= 0 && t.variant >= 0);
    if (t.ks.config >= 0) {
      SCOPED_TRACE("K-slice config " + std::to_string(t.ks.config) + " split " + std::to_string(t.ks.splits));
      expect_linear_runs(a, w0, m, run_kslice(t.ks.config, t.ks.splits), uint32_t(75 + m));
    }
    if (t.variant >= 0) {
      SCOPED_TRACE("register-streaming variant " + std::to_string(t.variant));
      expect_linear_runs(a, w0, m, run_variant(t.variant), uint32_t(75 + m));
    }
    EXPECT_LE(worst(check_w4a16(a, m, true, uint32_t(85 + m), run_linear, 0, &w0)), kMaxNmse);
  }
  EXPECT_EQ(cuda::w4a16_tuned_pick(257, a.n, a.k, a.group).config, -1);  // past m_max
  EXPECT_EQ(cuda::w4a16_tuned_pick(16, a.n, a.k, a.group).config, -1);   // not a tuned size
  EXPECT_EQ(cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), nullptr).buckets, 0);  // done already

  cuda::w4a16_tune_forget();
  cudaStream_t s = nullptr;
  AWQ_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  AWQ_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  const cuda::W4A16TuneReport captured = cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), s);
  cudaGraph_t g = nullptr;
  AWQ_CUDA_CHECK(cudaStreamEndCapture(s, &g));
  if (g) cudaGraphDestroy(g);
  cudaStreamDestroy(s);
  EXPECT_EQ(captured.buckets, 0);
  EXPECT_NE(captured.why_not.find("captured"), std::string::npos) << captured.why_not;
  EXPECT_EQ(cuda::w4a16_tuned_pick(128, a.n, a.k, a.group).config, -1);
  cuda::free_w4a16(w0);
  cuda::free_w4a16(w1);
}

// What a tuning recorded for (n, k, group): the small buckets' picks, then the tiled buckets'.
std::vector<int> recorded_picks(int64_t n, int64_t k, int group) {
  std::vector<int> out;
  for (int64_t m : {1, 4, 8, 12, 16}) {
    const cuda::W4A16SmallPick p = cuda::w4a16_tuned_small(m, n, k);
    out.insert(out.end(), {p.ks.config, p.ks.splits, p.variant});
  }
  for (int64_t m = 64; m <= 256; m += 64) {
    const cuda::W4A16TiledChoice t = cuda::w4a16_tuned_pick(m, n, k, group);
    out.insert(out.end(), {t.config, t.splits});
  }
  return out;
}

// The picks saved between processes (w4a16_tune_cache.h): with AWQ_W4A16_TUNE_CACHE naming a file,
// a first tuning times every bucket and writes its picks there; a second, after the process forgot
// them (as a new process would start), reads the same picks and times nothing; a file of lines
// this build cannot use (garbage, indices past its tables) is timed over, never run.
TEST(CudaW4A16, TuneCacheGivesTheSamePicksWithoutTiming) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(1032, 1024, 128, 4, 71);
  cuda::W4A16Weight w0 = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  const int64_t m_max = 256;
  DeviceBuffer dx = to_device(std::vector<uint16_t>(size_t(m_max * a.k), 0)), dy(size_t(m_max * a.n) * 2);
  const std::vector<cuda::W4A16Codes> codes = {{static_cast<const uint4*>(w0.codes), static_cast<const uint2*>(w0.params)}};
  const test::TempDir dir;
  const std::string path = dir.file("picks.tsv");
  setenv("AWQ_W4A16_TUNE_CACHE", path.c_str(), 1);
  struct Restore {  // the other tests run without a cache file
    ~Restore() {
      setenv("AWQ_W4A16_TUNE_CACHE", "0", 1);
      cuda::w4a16_tune_forget();
    }
  } restore;
  cuda::w4a16_tune_forget();
  const cuda::W4A16TuneReport r1 = cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), nullptr);
  if (r1.buckets == 0) {
    cuda::free_w4a16(w0);
    GTEST_SKIP() << "nothing to tune here: " << r1.why_not;
  }
  ASSERT_GT(r1.buckets, 0) << r1.why_not;
  EXPECT_EQ(r1.cached, 0);
  EXPECT_EQ(r1.cache, path);
  EXPECT_EQ(r1.cache_error, "");
  const std::vector<int> first = recorded_picks(a.n, a.k, a.group);

  // Buckets whose rounds were far apart (a busy GPU) are not saved: those, and only those, are timed
  // again (on a GPU of its own, none).
  EXPECT_LT(r1.unsteady, r1.buckets);
  cuda::w4a16_tune_forget();
  const cuda::W4A16TuneReport r2 = cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), nullptr);
  EXPECT_EQ(r2.buckets, r1.unsteady) << "timed again although the cache holds the bucket";
  EXPECT_EQ(r2.cached, r1.buckets - r1.unsteady);
  if (r1.unsteady == 0) {
    EXPECT_EQ(r2.changed, r1.changed);
    EXPECT_EQ(recorded_picks(a.n, a.k, a.group), first);
  }
  std::printf("[ note     ] cache %s: %d buckets timed in %.3f s (%d unsteady, not saved), then %d read in %.3f s\n",
              path.c_str(), r1.buckets, r1.seconds, r1.unsteady, r2.cached, r2.seconds);

  // This device's key, from a line of the file; then lines with that key this build cannot use.
  std::string key;
  {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') key = line.substr(0, line.find('\t'));
  }
  ASSERT_FALSE(key.empty());
  std::ofstream(path, std::ios::trunc) << "garbage\n"
                                       << key << "\ttiled\t1032\t1024\t128\t64\t9999\t1\t-1\n"
                                       << key << "\tsmall\t1032\t1024\t0\t1\t-1\t0\t9999\n"
                                       << key << "\tsmall\t1032\t1024\t0\t4\t9999\t1\t-1\n";
  cuda::w4a16_tune_forget();
  const cuda::W4A16TuneReport r3 = cuda::w4a16_tune(codes, a.n, a.k, a.group, m_max, dx.h(), dy.h(), nullptr);
  EXPECT_EQ(r3.buckets, r1.buckets);
  EXPECT_EQ(r3.cached, 0);
  EXPECT_EQ(r3.cache_error, "");
  cuda::free_w4a16(w0);
}

// The 192-token TMA tiles (w4a16_wgmma_ws.cu configurations 14-16: 192 x 128, its
// split-K-through-L2 twin, 192 x 192 with one A register set; picked only by the tuner) against
// the reference at m = 130 (one partly filled token block), 192 (one full), 200 and 384 (two),
// unsplit and at 2, 3 and 4 splits, groups 128 and 32 (the small-group params path), n 1032 (a
// padded row tile) and 264; then the L2 twin gives the cluster form's bits, twice.
TEST(CudaW4A16, Tokens192TilesMatchReference) {
  SKIP_WITHOUT_GPU();
  std::vector<int> configs;
  int cluster128 = -1, l2_128 = -1;
  for (int t = 0; t < cuda::w4a16_tiled_count(); ++t) {
    const cuda::W4A16TiledConfig c = cuda::w4a16_tiled_config(t);
    if (!c.wgmma || c.bm != 192) continue;
    configs.push_back(t);
    if (c.bn == 128) (c.l2_split ? l2_128 : cluster128) = t;
  }
  ASSERT_EQ(configs.size(), 3u);
  ASSERT_GE(cluster128, 0);
  ASSERT_GE(l2_128, 0);
  const RandomAwq wide(1032, 1024, 128, 4, 91), small_group(264, 512, 32, 4, 92);
  WorstNmse worst{"192-token TMA tiles, n 1032 k 1024 g128 and n 264 k 512 g32, m = 130, 192, 200, 384, splits 1-4"};
  for (const RandomAwq* a : {&wide, &small_group}) {
    cuda::W4A16Weight w = cuda::upload_w4a16(a->awq(), a->n, a->k, nullptr);
    for (int t : configs)
      for (int64_t m : {130, 192, 200, 384})
        for (int splits : {1, 2, 3, 4}) {
          SCOPED_TRACE("config " + std::to_string(t) + " n " + std::to_string(a->n) + " m " + std::to_string(m) +
                       " splits " + std::to_string(splits));
          EXPECT_LE(worst(check_w4a16(*a, m, true, uint32_t(93 + m + splits), run_tiled(t, splits), 0, &w)), kMaxNmse);
        }
    cuda::free_w4a16(w);
  }
  cuda::W4A16Weight w = cuda::upload_w4a16(wide.awq(), wide.n, wide.k, nullptr);
  const int64_t m = 200;
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * wide.k), -1.0f, 1.0f, 94);
  for (int splits : {2, 3, 4}) {
    SCOPED_TRACE("splits " + std::to_string(splits));
    expect_l2_twin_bits(w, wide.n, x, m, cluster128, l2_128, splits);
  }
  cuda::free_w4a16(w);
}

// The K-slice clusters sum their slices in rank order: two runs give the same bits (3 splits:
// uneven; 8: the largest cluster). A launch that cannot fit is refused with a message, not run.
TEST(CudaW4A16, KSliceIsDeterministicAndRefusesWhatDoesNotFit) {
  SKIP_WITHOUT_GPU();
  const RandomAwq a(520, 1024, 128, 4, 53);
  const int64_t m = 16;
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * a.k), -1.0f, 1.0f, 54);
  cuda::W4A16Weight w = cuda::upload_w4a16(a.awq(), a.n, a.k, nullptr);
  for (int cfg = 0; cfg < cuda::w4a16_kslice_count(); ++cfg)
    for (int splits : {3, 8})
      if (cuda::w4a16_kslice_fits(cfg, splits, m, a.k)) expect_same_bits_twice(w, a.n, x, m, cfg, run_kslice(cfg, splits));
  DeviceBuffer dx = to_device(x), dy(static_cast<size_t>(m * a.n) * 2);
  EXPECT_FALSE(cuda::w4a16_kslice_fits(0, 9, m, a.k));
  EXPECT_AWQ_ERROR(run_kslice(0, 9)(w, dx.h(), m, nullptr, dy.h()), {"launch_w4a16_kslice", "9 K splits", "does not fit"});
  // One token row of k = 2^20 inputs unsplit: 2 MB of x, more than any block's shared memory.
  EXPECT_FALSE(cuda::w4a16_kslice_fits(0, 1, 1, int64_t(1) << 20));
  cuda::free_w4a16(w);
}

// The stream-K configurations (W4A16TiledConfig::stream_k, w4a16_wgmma_ws.cu) where every kind
// of segment occurs: n 20480 k 256 (4 chunks a tile) at m = 300 (2 to 5 token blocks): hundreds
// of tiles for the SMs' 132-264 blocks, so a block's part holds a tile's tail, whole tiles and
// another tile's head; n 1032 k 4096 group 32 (64 chunks a tile, 9 row blocks, the last one
// partial) at m = 70: each tile cut between 5-15 blocks, the sum of many partials. Then two runs
// of each give the same bits (the partials are added in block order whichever block comes
// last), and the second run, on poisoned outputs, shows that the tiles' counters were reset.
TEST(CudaW4A16, StreamKSegmentsMatchReference) {
  SKIP_WITHOUT_GPU();
  const RandomAwq wide(20480, 256, 128, 4, 61), deep(1032, 4096, 32, 4, 62);
  WorstNmse worst{"stream-K configurations, n 20480 k 256 m 300 and n 1032 k 4096 group 32 m 70"};
  std::vector<int> sk;
  for (int t = 0; t < cuda::w4a16_tiled_count(); ++t)
    if (cuda::w4a16_tiled_config(t).stream_k) sk.push_back(t);
  ASSERT_GE(sk.size(), 2u);
  EXPECT_TRUE(cuda::w4a16_tiled_config(cuda::w4a16_tma_wide_sk_config()).stream_k);
  EXPECT_TRUE(cuda::w4a16_tiled_config(cuda::w4a16_tma_square_sk_config()).stream_k);
  for (int t : sk) {
    EXPECT_LE(worst(check_w4a16(wide, 300, true, uint32_t(t), run_tiled(t))), kMaxNmse) << "config " << t << " wide";
    EXPECT_LE(worst(check_w4a16(deep, 70, false, uint32_t(t + 1), run_tiled(t))), kMaxNmse) << "config " << t << " deep";
  }
  const int64_t m = 70;
  const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * deep.k), -1.0f, 1.0f, 63);
  cuda::W4A16Weight w = cuda::upload_w4a16(deep.awq(), deep.n, deep.k, nullptr);
  for (int t : sk) expect_same_bits_twice(w, deep.n, x, m, t, run_tiled(t));
  cuda::free_w4a16(w);
}

// Programmatic dependent launch (ops/cuda/pdl.h) with the W4A16 kernels' early weight loads:
// a chain as in the decode step, on a created stream (PDL applies there): add_rmsnorm writes h,
// w4a16_linear reads it and writes y, and for square shapes a second w4a16_linear reads y and
// writes y2, eagerly and replayed from a CUDA graph, with PDL off (0), on (1) and on with the L2
// prefetch (2). h, y and y2 are poisoned with NaN first, so a kernel that read its input before
// its producer had finished would propagate NaN. Checks: every mode gives the same bits as mode
// 0 (the kernels' arithmetic and its order do not depend on the mode), and y, y2 are within the
// usual nmse bound of matmul_ref on the h, y that the GPU produced.
struct PdlChain {
  const RandomAwq& a;
  int64_t max_m;
  cudaStream_t s = nullptr;
  cuda::W4A16Weight w{};
  DeviceBuffer x0, norm, h, y, y2;  // [max_m, k] f32, [k] f32, [max_m, k], [max_m, n], [max_m, n] fp16
  PdlChain(const RandomAwq& a_, int64_t max_m_)
      : a(a_), max_m(max_m_), x0(size_t(max_m_ * a_.k) * 4), norm(size_t(a_.k) * 4),
        h(size_t(max_m_ * a_.k) * 2), y(size_t(max_m_ * a_.n) * 2), y2(size_t(max_m_ * a_.n) * 2) {
    AWQ_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    w = cuda::upload_w4a16(a.awq(), a.n, a.k, s);
    std::mt19937 rng(uint32_t(a.n + a.k));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.5f, 1.5f);
    std::vector<float> xv(static_cast<size_t>(max_m * a.k)), nv(static_cast<size_t>(a.k));
    for (auto& v : xv) v = nd(rng);
    for (auto& v : nv) v = ud(rng);
    AWQ_CUDA_CHECK(cudaMemcpy(x0.p, xv.data(), xv.size() * 4, cudaMemcpyHostToDevice));
    AWQ_CUDA_CHECK(cudaMemcpy(norm.p, nv.data(), nv.size() * 4, cudaMemcpyHostToDevice));
  }
  ~PdlChain() {
    cuda::free_w4a16(w);
    cudaStreamDestroy(s);
  }
  bool square() const { return a.n == a.k; }
  void enqueue(int64_t m) {
    cuda::add_rmsnorm(static_cast<float*>(x0.p), nullptr, static_cast<const float*>(norm.p), m, a.k, 1e-5f, h.h(), s);
    cuda::w4a16_linear(w, h.h(), m, nullptr, y.h(), s);
    if (square()) cuda::w4a16_linear(w, y.h(), m, nullptr, y2.h(), s);
  }
  struct Out {
    std::vector<uint16_t> h, y, y2;
  };
  Out run(int64_t m, cuda::PdlMode mode, bool graph) {
    AWQ_CUDA_CHECK(cudaMemsetAsync(h.p, 0xFF, size_t(max_m * a.k) * 2, s));
    AWQ_CUDA_CHECK(cudaMemsetAsync(y.p, 0xFF, size_t(max_m * a.n) * 2, s));
    AWQ_CUDA_CHECK(cudaMemsetAsync(y2.p, 0xFF, size_t(max_m * a.n) * 2, s));
    AWQ_CUDA_CHECK(cudaStreamSynchronize(s));
    {
      const cuda::PdlScope scope(mode);
      if (graph) {
        cudaGraph_t g = nullptr;
        cudaGraphExec_t ge = nullptr;
        AWQ_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        enqueue(m);
        AWQ_CUDA_CHECK(cudaStreamEndCapture(s, &g));
        AWQ_CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
        AWQ_CUDA_CHECK(cudaGraphLaunch(ge, s));
        AWQ_CUDA_CHECK(cudaStreamSynchronize(s));
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
      } else {
        enqueue(m);
      }
    }
    AWQ_CUDA_CHECK(cudaStreamSynchronize(s));
    Out o;
    o.h.resize(static_cast<size_t>(m * a.k));
    o.y.resize(static_cast<size_t>(m * a.n));
    AWQ_CUDA_CHECK(cudaMemcpy(o.h.data(), h.p, o.h.size() * 2, cudaMemcpyDeviceToHost));
    AWQ_CUDA_CHECK(cudaMemcpy(o.y.data(), y.p, o.y.size() * 2, cudaMemcpyDeviceToHost));
    if (square()) {
      o.y2.resize(o.y.size());
      AWQ_CUDA_CHECK(cudaMemcpy(o.y2.data(), y2.p, o.y2.size() * 2, cudaMemcpyDeviceToHost));
    }
    return o;
  }
};

// Runs the chain for every m in ms (each <= max_m) and mode, eager and graph; returns the worst nmse.
void check_pdl_chain(const RandomAwq& a, const std::vector<int64_t>& ms, WorstNmse& worst) {
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  PdlChain chain(a, max_m);
  // h rows do not depend on m (one block per row): the reference for y is computed once, on
  // max_m rows of h, and each m is checked against its first m rows.
  const PdlChain::Out full = chain.run(max_m, cuda::PdlMode::Off, false);
  std::vector<float> ref_y(static_cast<size_t>(max_m * a.n));
  matmul_ref(ref_pool(), test::widen_fp16(full.h).data(), max_m, a.matrix(), nullptr, ref_y.data());
  for (int64_t m : ms) {
    const PdlChain::Out base = chain.run(m, cuda::PdlMode::Off, false);
    ASSERT_EQ(std::memcmp(base.h.data(), full.h.data(), base.h.size() * 2), 0) << "h rows depend on m=" << m;
    const std::vector<float> ref_m(ref_y.begin(), ref_y.begin() + m * a.n);
    EXPECT_LE(worst(normalised_mse(base.y, ref_m)), kMaxNmse) << "y, n=" << a.n << " k=" << a.k << " m=" << m;
    if (chain.square()) {
      std::vector<float> ref2(static_cast<size_t>(m * a.n));
      matmul_ref(ref_pool(), test::widen_fp16(base.y).data(), m, a.matrix(), nullptr, ref2.data());
      EXPECT_LE(worst(normalised_mse(base.y2, ref2)), kMaxNmse) << "y2, n=" << a.n << " m=" << m;
    }
    for (cuda::PdlMode mode : {cuda::PdlMode::Off, cuda::PdlMode::On, cuda::PdlMode::OnL2Prefetch}) {
      for (bool graph : {false, true}) {
        const PdlChain::Out o = chain.run(m, mode, graph);
        const std::string what = "PDL mode " + std::to_string(int(mode)) + (graph ? " (graph)" : " (eager)") +
                                 " n=" + std::to_string(a.n) + " k=" + std::to_string(a.k) +
                                 " group=" + std::to_string(a.group) + " m=" + std::to_string(m);
        EXPECT_EQ(std::memcmp(o.h.data(), base.h.data(), base.h.size() * 2), 0) << "h differs, " << what;
        EXPECT_EQ(std::memcmp(o.y.data(), base.y.data(), base.y.size() * 2), 0) << "y differs, " << what;
        if (chain.square()) {
          EXPECT_EQ(std::memcmp(o.y2.data(), base.y2.data(), base.y2.size() * 2), 0) << "y2 differs, " << what;
        }
      }
    }
  }
}

void note_pdl() {
  std::printf("[ note     ] programmatic dependent launch %s on this device/build\n",
              cuda::pdl_supported() ? "available: modes 1 and 2 ran with it"
                                    : "NOT available: every mode ran as 0 (no overlap tested)");
}

// Small shapes (also under compute-sanitizer memcheck): a padded row tile (n 264), 7 chunks;
// a square one with group 32 (params change inside a chunk) for the W4A16 -> W4A16 link; m 1..8
// (register-streaming kernels), 16 and 70 (tiled GEMM).
TEST(CudaW4A16, PdlChainSmallShapes) {
  SKIP_WITHOUT_GPU();
  WorstNmse worst{"PDL chains (rmsnorm -> W4A16 [-> W4A16]), modes 0/1/2, eager and graph, n 264 k 448 g64 and 448 x 448 g32, m = 1..8, 16, 70"};
  const std::vector<int64_t> ms = {1, 2, 3, 4, 5, 6, 7, 8, 16, 70};
  check_pdl_chain(RandomAwq(264, 448, 64, 4, 61), ms, worst);
  check_pdl_chain(RandomAwq(448, 448, 32, 4, 62), ms, worst);
  note_pdl();
}

// The Llama-2-7B shapes at decode sizes (m = 1..8: the register-streaming kernels, whose two
// register stages are loaded before the wait; 16: the tiled GEMM).
TEST(CudaW4A16, PdlChainLlama2_7BShapes) {
  SKIP_WITHOUT_GPU();
  WorstNmse worst{"PDL chains, Llama-2-7B shapes (4096x4096 twice, 12288x4096, 22016x4096, 4096x11008), modes 0/1/2, m = 1..8, 16"};
  const std::vector<int64_t> ms = {1, 2, 3, 4, 5, 6, 7, 8, 16};
  struct Shape { int64_t n, k; };
  for (const Shape sh : {Shape{4096, 4096}, Shape{12288, 4096}, Shape{22016, 4096}, Shape{4096, 11008}})
    check_pdl_chain(RandomAwq(sh.n, sh.k, 128, 4, uint32_t(sh.n + 3 * sh.k)), ms, worst);
  note_pdl();
}

// The split-K-through-L2 picks (the wave rule's L2 rule) in PDL chains: o_proj's shape at
// m = 256 twice in a row (W4A16 -> W4A16, both 128 x 192 split 3 on an H100: the second grid's
// blocks launch while the first one's owners wait for their peers) and down_proj's at m = 64 and
// 128 (split 6), eager and from a graph, each PDL mode the same bits as PDL off.
TEST(CudaW4A16, PdlChainL2SplitShapes) {
  SKIP_WITHOUT_GPU();
  WorstNmse worst{"PDL chains at the L2 split picks, 4096x4096 m = 256 (twice), 4096x11008 m = 64, 128, modes 0/1/2"};
  const RandomAwq o_proj(4096, 4096, 128, 4, 71), down(4096, 11008, 128, 4, 72);
  if (cuda::w4a16_wgmma_available() && cuda::w4a16_wgmma_ws_available() && cuda::w4a16_tma_from_env() &&
      cuda::w4a16_wave_tiles_from_env() && cuda::w4a16_l2_split_from_env() && cuda::w4a16_split_k_available() &&
      cuda::w4a16_sm_count() == 132) {  // H100 / H200: these are L2 split picks
    EXPECT_TRUE(cuda::w4a16_tiled_config(cuda::w4a16_default_tiled(256, 4096, 4096).config).l2_split);
    EXPECT_TRUE(cuda::w4a16_tiled_config(cuda::w4a16_default_tiled(64, 4096, 11008).config).l2_split);
    EXPECT_TRUE(cuda::w4a16_tiled_config(cuda::w4a16_default_tiled(128, 4096, 11008).config).l2_split);
  } else {
    std::printf("[ note     ] the L2 split rule does not pick these shapes on this device/build\n");
  }
  check_pdl_chain(o_proj, {256}, worst);
  check_pdl_chain(down, {64, 128}, worst);
  note_pdl();
  std::printf("[ note     ] cooperative launches (the L2 split) with PDL: %s\n",
              cuda::cooperative_pdl_failed() ? "refused here, run without it" : "not refused");
}

// The AWQ_CUDA_PDL parser (no GPU needed).
TEST(CudaW4A16, PdlSwitchParses) {
  EXPECT_EQ(cuda::parse_pdl_mode(nullptr), cuda::PdlMode::On);
  EXPECT_EQ(cuda::parse_pdl_mode(""), cuda::PdlMode::On);
  EXPECT_EQ(cuda::parse_pdl_mode("1"), cuda::PdlMode::On);
  EXPECT_EQ(cuda::parse_pdl_mode("0"), cuda::PdlMode::Off);
  EXPECT_EQ(cuda::parse_pdl_mode("2"), cuda::PdlMode::OnL2Prefetch);
  EXPECT_AWQ_ERROR(cuda::parse_pdl_mode("on"), {"AWQ_CUDA_PDL='on'", "0", "1", "2"});
}

// The environment switch's parser (no GPU needed).
TEST(CudaW4A16, KernelSwitchParses) {
  EXPECT_EQ(cuda::parse_w4a16_path(nullptr), cuda::W4A16Path::Auto);
  EXPECT_EQ(cuda::parse_w4a16_path(""), cuda::W4A16Path::Auto);
  EXPECT_EQ(cuda::parse_w4a16_path("auto"), cuda::W4A16Path::Auto);
  EXPECT_EQ(cuda::parse_w4a16_path("legacy"), cuda::W4A16Path::Legacy);
  EXPECT_EQ(cuda::parse_w4a16_path("tiled"), cuda::W4A16Path::Tiled);
  EXPECT_AWQ_ERROR(cuda::parse_w4a16_path("marlin"), {"AWQ_W4A16_KERNEL='marlin'", "legacy", "tiled"});
}

// A 0/1 dispatch switch's parser (no GPU needed): unset, "" and "1" are on, "0" off, and
// `bad` an error naming the variable, the value and the accepted ones.
void expect_switch_parses(bool (*parse)(const char*), const std::string& name, const std::string& bad) {
  EXPECT_TRUE(parse(nullptr));
  EXPECT_TRUE(parse(""));
  EXPECT_TRUE(parse("1"));
  EXPECT_FALSE(parse("0"));
  EXPECT_AWQ_ERROR(parse(bad.c_str()), {name + "='" + bad + "'", "0", "1"});
}

TEST(CudaW4A16, SharedMemoryXSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_xsmem, "AWQ_W4A16_XSMEM", "yes");
}

TEST(CudaW4A16, ScaleAfterSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_scale_after, "AWQ_W4A16_SCALE_AFTER", "2");
}

// AWQ_W4A16_LONG_K's parser (no GPU needed), and the pick it changes: down_proj of Llama-2-7B
// (4096 x 11008) at m = 1 runs 10 warps splitting K where it (and xs, sa) is on, 8 where it is off.
TEST(CudaW4A16, LongKSwitchParsesAndPicks) {
  expect_switch_parses(cuda::parse_w4a16_long_k, "AWQ_W4A16_LONG_K", "yes");
  const bool on = cuda::w4a16_long_k_from_env() && cuda::w4a16_xsmem_from_env() && cuda::w4a16_scale_after_from_env();
  EXPECT_EQ(cuda::w4a16_variant(cuda::w4a16_default_variant(1, 4096, 11008)).wk, on ? 10 : 8);
  EXPECT_EQ(cuda::w4a16_variant(cuda::w4a16_default_variant(1, 4096, 4096)).wk, 8);  // o_proj: unchanged
}

TEST(CudaW4A16, TmaSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_tma, "AWQ_W4A16_TMA", "on");
}

TEST(CudaW4A16, StreamKSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_stream_k, "AWQ_W4A16_STREAM_K", "yes");
}

TEST(CudaW4A16, WaveTilesSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_wave_tiles, "AWQ_W4A16_WAVE_TILES", "on");
}

TEST(CudaW4A16, L2SplitSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_l2_split, "AWQ_W4A16_L2_SPLIT", "true");
}

TEST(CudaW4A16, ClusterPushSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_cluster_push, "AWQ_W4A16_CLUSTER_PUSH", "on");
}

TEST(CudaW4A16, KSliceSwitchParses) {
  expect_switch_parses(cuda::parse_w4a16_kslice, "AWQ_W4A16_KSLICE", "yes");
  expect_switch_parses(cuda::parse_w4a16_kslice_pdl, "AWQ_W4A16_KSLICE_PDL", "on");
  expect_switch_parses(cuda::parse_w4a16_kslice_thin, "AWQ_W4A16_KSLICE_THIN", "yes");
}

// Sessions 27's and 28's dispatch switches (the picks they restore: CudaW4A16Pick.*, on CPU).
TEST(CudaW4A16, DispatchRuleSwitchesParse) {
  expect_switch_parses(cuda::parse_w4a16_split3, "AWQ_W4A16_SPLIT3", "on");
  expect_switch_parses(cuda::parse_w4a16_wave_mid, "AWQ_W4A16_WAVE_MID", "yes");
  expect_switch_parses(cuda::parse_w4a16_wide_mid, "AWQ_W4A16_WIDE_MID", "on");
  expect_switch_parses(cuda::parse_w4a16_t256_from_161, "AWQ_W4A16_T256_FROM_161", "2");
}

// The K-slice pick (m = 2..16 where clusters run; docs/gpu.md) at the Llama-2-7B shapes: none at
// m = 1 or past 16, none for o_proj (n and k < 8192) up to m = 8, none without split-K; a pick
// fits, holds all m tokens in one block row, and its grid has 15 to 22 warps per SM, or, on a
// wide layer whose grid that rule finds too thin (AWQ_W4A16_KSLICE_THIN), is 2 splits of
// configuration 6 (m <= 8) or 4. On a 132-SM GPU (H100 / H200 SXM, where the rules were
// measured) the picks the sweeps chose.
TEST(CudaW4A16, KSlicePickRules) {
  SKIP_WITHOUT_GPU();
  const std::pair<int64_t, int64_t> shapes[] = {{4096, 4096}, {12288, 4096}, {11008, 4096}, {22016, 4096}, {4096, 11008}};
  const int sms = cuda::w4a16_sm_count();
  int picked = 0;
  for (const auto& [n, k] : shapes) {
    EXPECT_EQ(cuda::w4a16_default_kslice(1, n, k).config, -1) << n << " x " << k;
    EXPECT_EQ(cuda::w4a16_default_kslice(17, n, k).config, -1) << n << " x " << k;
    for (int64_t m = 2; m <= 16; ++m) {
      const cuda::W4A16KSliceChoice c = cuda::w4a16_default_kslice(m, n, k);
      if (c.config < 0) continue;
      ++picked;
      EXPECT_TRUE(cuda::w4a16_split_k_available());
      EXPECT_FALSE(n == 4096 && k == 4096 && m <= 8) << "o_proj at m = " << m;
      const cuda::W4A16KSliceConfig kc = cuda::w4a16_kslice_config(c.config);
      EXPECT_TRUE(cuda::w4a16_kslice_fits(c.config, c.splits, m, k)) << "m=" << m << " " << n << " x " << k;
      EXPECT_GE(8 * kc.mt, m) << "one block row of tokens: m=" << m;
      const int64_t warps = (n / 16 + kc.wn - 1) / kc.wn * c.splits * kc.wn * kc.wk;
      if (c.config == (m > 8 ? 4 : 6)) {  // the thin-grid pick
        EXPECT_TRUE(cuda::w4a16_kslice_thin_from_env()) << "m=" << m << " " << n << " x " << k;
        EXPECT_GE(n, 8192) << "m=" << m;
        EXPECT_EQ(c.splits, 2) << "m=" << m << " " << n << " x " << k;
        continue;
      }
      EXPECT_GE(warps, 15 * sms) << "m=" << m << " " << n << " x " << k;
      EXPECT_LE(warps, 22 * sms) << "m=" << m << " " << n << " x " << k;
    }
  }
  EXPECT_EQ(picked > 0, cuda::w4a16_split_k_available());
  if (sms == 132 && cuda::w4a16_split_k_available()) {
    const auto pick = [](int64_t m, int64_t n, int64_t k) {
      const cuda::W4A16KSliceChoice c = cuda::w4a16_default_kslice(m, n, k);
      return std::make_pair(c.config, c.splits);
    };
    EXPECT_EQ(pick(8, 22016, 4096), std::make_pair(1, 2));   // gate+up: 8 warps of 128 rows, 2 splits
    EXPECT_EQ(pick(4, 11008, 4096), std::make_pair(1, 4));   // gate or up
    EXPECT_EQ(pick(8, 4096, 11008), std::make_pair(0, 8));   // down_proj: 4 warps of 64 rows
    EXPECT_EQ(pick(16, 4096, 4096), std::make_pair(8, 8));   // o_proj at m = 16: 16 tokens a block
    // qkv: 2 splits of 8 warps too thin, 4 too many: the thin-grid picks (or none with the switch off)
    const bool thin = cuda::w4a16_kslice_thin_from_env();
    EXPECT_EQ(pick(8, 12288, 4096), thin ? std::make_pair(6, 2) : std::make_pair(-1, 1));
    EXPECT_EQ(pick(2, 12288, 4096), thin ? std::make_pair(6, 2) : std::make_pair(-1, 1));
    EXPECT_EQ(pick(16, 12288, 4096), thin ? std::make_pair(4, 2) : std::make_pair(-1, 1));
  }
}

// The dispatch's rules are checked without a GPU (test_cuda_w4a16_pick.cpp, on simulated
// devices); here, that w4a16_default_tiled reads this device and the environment into its
// context, and picks as w4a16_pick_tiled does under it.
TEST(CudaW4A16, PickContextOfThisDevice) {
  SKIP_WITHOUT_GPU();
  int dev = 0, sms = 0, optin = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), cudaSuccess);
  const cuda::W4A16PickContext ctx = cuda::w4a16_pick_context();
  EXPECT_EQ(ctx.sms, sms);
  EXPECT_EQ(ctx.smem_optin, optin);
  EXPECT_EQ(ctx.split_ok, cuda::w4a16_split_k_available());
  EXPECT_EQ(ctx.wgmma, cuda::w4a16_wgmma_available());
  EXPECT_EQ(ctx.tma, ctx.wgmma && cuda::w4a16_wgmma_ws_available() && cuda::w4a16_tma_from_env());
  EXPECT_EQ(ctx.wave_tiles, cuda::w4a16_wave_tiles_from_env());
  EXPECT_EQ(ctx.wide_mid, cuda::w4a16_wide_mid_from_env());
  for (const int64_t m : {1, 16, 33, 80, 128, 176, 256, 640})
    for (const auto& [n, k] : {std::pair<int64_t, int64_t>{4096, 4096}, {12288, 4096}, {4096, 11008}, {28672, 4096}}) {
      const cuda::W4A16TiledChoice a = cuda::w4a16_default_tiled(m, n, k), b = cuda::w4a16_pick_tiled(m, n, k, ctx);
      EXPECT_EQ(a.config, b.config) << n << " x " << k << " m " << m;
      EXPECT_EQ(a.splits, b.splits) << n << " x " << k << " m " << m;
    }
  std::printf("[ note     ] pick context: %d SMs, split-K %s, wgmma %s, TMA %s\n", ctx.sms, ctx.split_ok ? "yes" : "no",
              ctx.wgmma ? "yes" : "no", ctx.tma ? "yes" : "no");
}

// m = 17..32 take the wgmma picks of m = 33 (one 64-token tile, the same grid; session 25's H200
// sweep), unless AWQ_W4A16_WGMMA_FROM_17=0; and they compute the same as at m = 33.

TEST(CudaW4A16, WgmmaFrom17Picks) {
  SKIP_WITHOUT_GPU();
  expect_switch_parses(cuda::parse_w4a16_wgmma_from_17, "AWQ_W4A16_WGMMA_FROM_17", "yes");
  if (!cuda::w4a16_wgmma_available() || !cuda::w4a16_wgmma_from_17_from_env()) {
    std::printf("[ note     ] not checked: needs wgmma and AWQ_W4A16_WGMMA_FROM_17 on\n");
    return;
  }
  for (const auto& [n, k] : {std::pair<int64_t, int64_t>{4096, 4096}, {12288, 4096}, {11008, 4096}, {22016, 4096},
                             {4096, 11008}, {3584, 18944}})
    for (const int64_t m : {17, 24, 32}) {
      const cuda::W4A16TiledChoice got = cuda::w4a16_default_tiled(m, n, k), want = cuda::w4a16_default_tiled(33, n, k);
      EXPECT_EQ(got.config, want.config) << n << " x " << k << " m " << m;
      EXPECT_EQ(got.splits, want.splits) << n << " x " << k << " m " << m;
      EXPECT_TRUE(cuda::w4a16_tiled_config(got.config).wgmma) << n << " x " << k << " m " << m;
    }
  EXPECT_FALSE(cuda::w4a16_tiled_config(cuda::w4a16_default_tiled(16, 12288, 4096).config).wgmma) << "m = 16 stays";
  // The picks at work (the tiled path) against the reference: the o_proj and down_proj picks
  // (64 x 64 split 4; 64 x 192 through L2, split 6) on smaller shapes of their kind.
  const RandomAwq a(512, 2048, 128, 4, 51);
  WorstNmse worst{"w4a16_linear at m = 17..32 (the wgmma picks of m = 33)"};
  for (const int64_t m : {17, 25, 32})
    EXPECT_LE(worst(check_w4a16(a, m, m % 2 == 1, uint32_t(m), run_path(cuda::W4A16Path::Tiled))), kMaxNmse) << "m " << m;
}

TEST(CudaW4A16, Llama2_7BShapes) {
  SKIP_WITHOUT_GPU();
  struct Shape { int64_t n, k; const char* what; };
  WorstNmse worst{"w4a16_linear, Llama-2-7B shapes (4096x4096, 12288x4096, 11008x4096, 22016x4096, 4096x11008), m = 1, 8, 16, 64, 256"};
  for (const Shape sh : {Shape{4096, 4096, "o_proj"}, Shape{12288, 4096, "qkv fused"},
                         Shape{11008, 4096, "gate/up"}, Shape{22016, 4096, "gate+up fused"},
                         Shape{4096, 11008, "down_proj"}}) {
    const RandomAwq a(sh.n, sh.k, 128, 4, uint32_t(sh.n ^ sh.k));
    for (int64_t m : {1, 8, 16, 64, 256}) {
      const double e = worst(check_w4a16(a, m, false, uint32_t(m)));
      EXPECT_LE(e, kMaxNmse) << sh.what << " n=" << sh.n << " k=" << sh.k << " m=" << m;
    }
  }
}

TEST(CudaW4A16, Fp16LinearMatchesReference) {
  SKIP_WITHOUT_GPU();
  cublasHandle_t h = nullptr;
  AWQ_CUBLAS_CHECK(cuda::cublas_api().create(&h));
  const int64_t n = 200, k = 328;
  const std::vector<uint16_t> w = random_fp16(static_cast<size_t>(n * k), -0.1f, 0.1f, 5);
  const std::vector<uint16_t> bias = random_fp16(static_cast<size_t>(n), -0.5f, 0.5f, 6);
  const Matrix wm(DType::F16, n, k, w.data());
  WorstNmse worst{"fp16_linear (cuBLAS), n 200 k 328, m = 1, 3, 16, 77"};
  DeviceBuffer dw = to_device(w), db = to_device(bias);
  for (int64_t m : {1, 3, 16, 77}) {
    const std::vector<uint16_t> x = random_fp16(static_cast<size_t>(m * k), -1.0f, 1.0f, uint32_t(m));
    std::vector<float> ref(static_cast<size_t>(m * n));
    const std::vector<float> xf = test::widen_fp16(x), bf = test::widen_fp16(bias);
    matmul_ref(ref_pool(), xf.data(), m, wm, bf.data(), ref.data());
    DeviceBuffer dx = to_device(x), dy(ref.size() * 2);
    AWQ_CUDA_CHECK(cudaMemset(dy.p, 0xFF, ref.size() * 2));
    cuda::fp16_linear(h, dw.h(), n, k, dx.h(), m, db.h(), dy.h(), nullptr);
    std::vector<uint16_t> y(ref.size());
    AWQ_CUDA_CHECK(cudaMemcpy(y.data(), dy.p, y.size() * 2, cudaMemcpyDeviceToHost));
    EXPECT_LE(worst(normalised_mse(y, ref)), kMaxNmse) << "m=" << m;
  }
  cuda::cublas_api().destroy(h);
}

// Shape checks happen before any CUDA call: these run (and must pass) without a GPU too.
TEST(CudaW4A16, UploadRejectsUnsupportedShapes) {
  const RandomAwq a(64, 192, 64, 4, 3);
  AwqMatrix bad_group = a.awq();
  bad_group.group = 48;
  EXPECT_AWQ_ERROR(cuda::upload_w4a16(bad_group, 64, 192, nullptr), {"group 48", "power-of-two"});
  EXPECT_AWQ_ERROR(cuda::upload_w4a16(a.awq(), 60, 192, nullptr), {"out_features 60", "multiple of 8"});
  AwqMatrix bad_bits = a.awq();
  bad_bits.bits = 2;
  EXPECT_AWQ_ERROR(cuda::upload_w4a16(bad_bits, 64, 192, nullptr), {"bits = 2"});
  AwqMatrix no_tensors;
  no_tensors.group = 64;
  EXPECT_AWQ_ERROR(cuda::upload_w4a16(no_tensors, 64, 192, nullptr), {"qweight"});
}

TEST(CudaW4A16, AvailabilityExplainsItself) {
  std::string why;
  if (cuda::cuda_available(&why)) {
    EXPECT_FALSE(cuda::device_summary().empty());
  } else {
    EXPECT_FALSE(why.empty()) << "cuda_available returned false without a reason";
  }
}

}  // namespace
}  // namespace awq
