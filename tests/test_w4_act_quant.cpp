// The W4 kernels' activation quantizers (ops/cpu/w4_act_quant.h): the AVX2 / AVX-512 versions
// give the scalar references' bits (codes, units, zero sums) on random and edge rows, write only
// their B bytes of every step, and the codes meet the stated bounds: |x - u c| <= u / 2 (plus
// the float error of x / u, below 2^-22 |c| u), digits in [-127, 127], c = 254 q1 + q2; int16
// holds int8x2's c whole, in kInt16Order, with the same units and zero sums.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/cpu/w4_act_quant.h"

using namespace awq;

namespace {

// Rows of K inputs: normal, the int8x2 ties (c = 254 m + 127), +-max|x| throughout, zeros, one
// outlier 1e4x its neighbours, tiny (1e-36: 1 / u overflows) and huge (1e30) groups.
std::vector<std::vector<float>> act_rows(int64_t K, int64_t gs, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> digit(-127, 126), sign(0, 1);
  std::vector<std::vector<float>> rows;
  for (int kind = 0; kind < 7; ++kind) {
    std::vector<float> x(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      const float amax = 1.0f + float(k / gs);
      switch (kind) {
        case 0: x[size_t(k)] = nd(rng); break;
        case 1: x[size_t(k)] = k % gs == 0 ? amax : amax * float(254 * digit(rng) + 127) / 32258.0f; break;
        case 2: x[size_t(k)] = sign(rng) ? amax : -amax; break;
        case 3: x[size_t(k)] = 0.0f; break;
        case 4: x[size_t(k)] = k % gs == 5 ? 1e4f : nd(rng); break;
        case 5: x[size_t(k)] = 1e-36f * nd(rng); break;
        default: x[size_t(k)] = 1e30f * nd(rng); break;
      }
    }
    rows.push_back(std::move(x));
  }
  return rows;
}

struct Quantized {
  std::vector<int8_t> q;
  std::vector<float> unit, zsum;
};

enum class Fmt { Int8, Int8x2, Int16 };

Quantized run(Fmt f, ActQuantIsa isa, const std::vector<float>& x, int64_t gs, int64_t step) {
  const int64_t K = int64_t(x.size());
  Quantized r{std::vector<int8_t>(static_cast<size_t>(K / 8 * step), int8_t(0x55)),
              std::vector<float>(static_cast<size_t>(K / gs)), std::vector<float>(static_cast<size_t>(K / gs))};
  auto* quantize = f == Fmt::Int8 ? quantize_act_int8 : f == Fmt::Int8x2 ? quantize_act_int8x2 : quantize_act_int16;
  quantize(isa, x.data(), K, gs, r.q.data(), step, r.unit.data(), r.zsum.data());
  return r;
}

// Code c of input k (any format).
int32_t code(Fmt f, const Quantized& r, int64_t step, int64_t k) {
  const int8_t* b = r.q.data() + k / 8 * step;
  if (f == Fmt::Int8) return b[k % 8];
  if (f == Fmt::Int8x2) return 254 * b[k % 8] + b[8 + k % 8];
  int s = 0;
  while (kInt16Order[s] != k % 8) ++s;
  int16_t c;
  std::memcpy(&c, b + 2 * s, 2);
  return c;
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST(W4ActQuant, VectorEqualsReferenceAndMeetsBounds) {
  for (ActQuantIsa isa : {ActQuantIsa::Avx2, ActQuantIsa::Avx512})
    if (!act_quant_supported(isa))
      std::printf("[ info ] no %s here: its versions are not compared\n", isa == ActQuantIsa::Avx2 ? "AVX2" : "AVX-512");
  std::mt19937 rng(23);
  for (Fmt f : {Fmt::Int8, Fmt::Int8x2, Fmt::Int16}) {
    const int64_t B = f == Fmt::Int8 ? 8 : 16, step = 3 * B;  // gaps between the steps must stay untouched
    for (int64_t gs : {32, 64, 128}) {
      const int64_t K = 4 * gs;
      for (const std::vector<float>& x : act_rows(K, gs, rng)) {
        const Quantized ref = run(f, ActQuantIsa::Scalar, x, gs, step);
        for (ActQuantIsa isa : {ActQuantIsa::Avx2, ActQuantIsa::Avx512}) {
          // The vector versions there are: int8 both, int8x2 AVX-512, int16 AVX2.
          const bool exists = f == Fmt::Int8 || (f == Fmt::Int8x2) == (isa == ActQuantIsa::Avx512);
          if (!exists || !act_quant_supported(isa)) continue;
          const Quantized v = run(f, isa, x, gs, step);
          ASSERT_EQ(ref.q, v.q) << "format " << int(f) << " isa " << int(isa) << " gs=" << gs;
          ASSERT_TRUE(same_floats(ref.unit, v.unit));
          ASSERT_TRUE(same_floats(ref.zsum, v.zsum));
        }
        if (f == Fmt::Int16) {  // int8x2's codes, units and zero sums
          const Quantized x2 = run(Fmt::Int8x2, ActQuantIsa::Scalar, x, gs, step);
          for (int64_t k = 0; k < K; ++k) ASSERT_EQ(code(Fmt::Int8x2, x2, step, k), code(f, ref, step, k)) << "k=" << k;
          ASSERT_TRUE(same_floats(x2.unit, ref.unit));
          ASSERT_TRUE(same_floats(x2.zsum, ref.zsum));
        }
        for (int64_t k = 0; k < K; ++k) {
          const int8_t* b = ref.q.data() + k / 8 * step;
          if (f != Fmt::Int16) {
            EXPECT_GE(b[k % 8], -127);
          }
          if (f == Fmt::Int8x2) {
            EXPECT_GE(b[8 + k % 8], -127);
          }
          const int32_t c = code(f, ref, step, k);
          EXPECT_LE(std::abs(c), f == Fmt::Int8 ? 127 : 32258);
          const double u = ref.unit[size_t(k / gs)];
          EXPECT_LE(std::fabs(double(x[size_t(k)]) - u * c), u * (0.5 + 1e-6 * std::abs(c)) + (u == 0 ? 1e-34 : 0.0))
              << "format " << int(f) << " gs=" << gs << " k=" << k << " x=" << x[size_t(k)] << " c=" << c;
        }
        for (int64_t j = 0; j < K / 8; ++j)
          for (int64_t o = B; o < step; ++o) ASSERT_EQ(int8_t(0x55), ref.q[size_t(j * step + o)]) << "gap byte written";
      }
    }
  }
}
