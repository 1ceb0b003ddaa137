#include "ops/cpu/w4.h"

// GCC 12's AVX-512 headers build unmasked intrinsics (srli, cvtepu8, permutexvar, cvtph) on a
// self-initialised "undefined" vector, which -Wuninitialized flags once inlined (GCC bug
// 105593, fixed in GCC 13). The values are never read; silence the false positive here only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/half.h"
#include "ops/cpu/gemm.h"

namespace awq {

namespace {

// What one kernel call sees of a W4 matrix, rows [r, r + R).
struct W4View {
  int64_t K, G, gs;          // inputs, groups per row, inputs per group
  const uint8_t* codes;      // [rows, K / 2]
  const uint8_t* zeros;      // [rows, G]
  const uint16_t* scales;    // [rows, G] fp16
  explicit W4View(const Matrix& w)
      : K(w.cols), G(w.cols / w.awq.group), gs(w.awq.group), codes(w.awq.w4_codes),
        zeros(w.awq.row_zeros), scales(w.awq.row_scales) {}
};

// fp16((q - z) * s) widened, for q = 0..15: the reference dequantization (widen_row).
void scalar_table(uint8_t z, uint16_t s16, float* lut) {
  const float s = fp16_to_f32(s16);
  for (int q = 0; q < 16; ++q) lut[q] = fp16_to_f32(f32_to_fp16(float(q - int(z)) * s));
}

// ---------------------------------------------------------------------------------------------
// Scalar: one table per (row, group), one lookup per weight. acc: [NX] for row r.
// ---------------------------------------------------------------------------------------------
void gemv_row_scalar(const W4View& v, const float* x, int64_t ldx, int64_t nx, int64_t r, float* out,
                     int64_t ldo) {
  const uint8_t* c = v.codes + r * (v.K / 2);
  float lut[16];
  float acc[kW4GemvMaxRows] = {};
  for (int64_t g = 0; g < v.G; ++g) {
    scalar_table(v.zeros[r * v.G + g], v.scales[r * v.G + g], lut);
    for (int64_t k0 = g * v.gs; k0 < (g + 1) * v.gs; k0 += 32) {
      const uint8_t* b = c + k0 / 2;  // [16]
      for (int64_t i = 0; i < nx; ++i) {
        const float* xi = x + i * ldx + k0;
        float s = 0.0f;
        for (int j = 0; j < 16; ++j) s += lut[b[j] & 0xF] * xi[j] + lut[b[j] >> 4] * xi[16 + j];
        acc[i] += s;
      }
    }
  }
  for (int64_t i = 0; i < nx; ++i) out[i * ldo] = acc[i];
}

// ---------------------------------------------------------------------------------------------
// AVX-512: 16-entry f32 table per (row, group) in a zmm, vpermps lookups. NX rows of x against
// R rows of W; low and high nibbles accumulate separately (2 * NX * R independent FMA chains).
// out[i * ldo + j] = x_i . w_{r + j}.
// ---------------------------------------------------------------------------------------------
template <int NX, int R>
__attribute__((target("avx512f,f16c,fma"))) void gemv_rows_avx512(const W4View& v, const float* x,
                                                                 int64_t ldx, int64_t r, float* out,
                                                                 int64_t ldo) {
  const int64_t half = v.K / 2;
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 lo[NX][R], hi[NX][R];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) lo[i][j] = hi[i][j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < v.G; ++g) {
    __m512 lut[R];
    for (int j = 0; j < R; ++j) {
      const int64_t gi = (r + j) * v.G + g;
      const __m512 z = _mm512_set1_ps(float(v.zeros[gi]));
      const __m512 s = _mm512_set1_ps(fp16_to_f32(v.scales[gi]));
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(iota, z), s);  // exact in f32
      lut[j] = _mm512_cvtph_ps(_mm512_cvtps_ph(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (int64_t k0 = g * v.gs, end = k0 + v.gs; k0 < end; k0 += 32) {
      __m512 wl[R], wh[R];
      for (int j = 0; j < R; ++j) {
        const __m512i b = _mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(v.codes + (r + j) * half + k0 / 2)));
        wl[j] = _mm512_permutexvar_ps(b, lut[j]);
        wh[j] = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), lut[j]);
      }
      for (int i = 0; i < NX; ++i) {
        const __m512 xl = _mm512_loadu_ps(x + i * ldx + k0);
        const __m512 xh = _mm512_loadu_ps(x + i * ldx + k0 + 16);
        for (int j = 0; j < R; ++j) {
          lo[i][j] = _mm512_fmadd_ps(wl[j], xl, lo[i][j]);
          hi[i][j] = _mm512_fmadd_ps(wh[j], xh, hi[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) out[i * ldo + j] = _mm512_reduce_add_ps(_mm512_add_ps(lo[i][j], hi[i][j]));
}

// ---------------------------------------------------------------------------------------------
// AVX2+FMA: codes widened to f32; per group, sum q*x and sum x, then s * (sum q x - z sum x).
// ---------------------------------------------------------------------------------------------
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

template <int NX, int R>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_avx2(const W4View& v, const float* x,
                                                            int64_t ldx, int64_t r, float* out,
                                                            int64_t ldo) {
  const int64_t half = v.K / 2;
  const __m256i mask = _mm256_set1_epi32(0xF);
  __m256 tot[NX][R];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) tot[i][j] = _mm256_setzero_ps();
  for (int64_t g = 0; g < v.G; ++g) {
    __m256 qx[NX][R], xs[NX];
    for (int i = 0; i < NX; ++i) {
      xs[i] = _mm256_setzero_ps();
      for (int j = 0; j < R; ++j) qx[i][j] = _mm256_setzero_ps();
    }
    for (int64_t k0 = g * v.gs, end = k0 + v.gs; k0 < end; k0 += 32) {
      // lanes of part p (0..3): inputs k0 + 8p .. k0 + 8p + 7
      __m256 wq[R][4];
      for (int j = 0; j < R; ++j) {
        const uint8_t* b = v.codes + (r + j) * half + k0 / 2;
        const __m256i b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
        const __m256i b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8)));
        wq[j][0] = _mm256_cvtepi32_ps(_mm256_and_si256(b0, mask));
        wq[j][1] = _mm256_cvtepi32_ps(_mm256_and_si256(b1, mask));
        wq[j][2] = _mm256_cvtepi32_ps(_mm256_srli_epi32(b0, 4));
        wq[j][3] = _mm256_cvtepi32_ps(_mm256_srli_epi32(b1, 4));
      }
      for (int i = 0; i < NX; ++i) {
        for (int p = 0; p < 4; ++p) {
          const __m256 xv = _mm256_loadu_ps(x + i * ldx + k0 + 8 * p);
          xs[i] = _mm256_add_ps(xs[i], xv);
          for (int j = 0; j < R; ++j) qx[i][j] = _mm256_fmadd_ps(wq[j][p], xv, qx[i][j]);
        }
      }
    }
    for (int j = 0; j < R; ++j) {
      const int64_t gi = (r + j) * v.G + g;
      const float s = fp16_to_f32(v.scales[gi]);
      const __m256 sv = _mm256_set1_ps(s), szv = _mm256_set1_ps(s * float(v.zeros[gi]));
      for (int i = 0; i < NX; ++i)
        tot[i][j] = _mm256_fnmadd_ps(szv, xs[i], _mm256_fmadd_ps(sv, qx[i][j], tot[i][j]));
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) out[i * ldo + j] = hsum8(tot[i][j]);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI, int8 activations: x is quantized per group (sx = max|x| / 127, xq = round(x /
// sx)) into the byte order of the weights, and vpdpbusd multiplies 64 codes (u8) by 64 xq
// (s8) per instruction. Per group: y += s * sx * (sum q xq) - s * z * sx * (sum xq).
// ---------------------------------------------------------------------------------------------

// Position of input o (0..63) inside a run of 64 expanded codes: low nibbles of the run's 32
// bytes give inputs 0-15 and 32-47, high nibbles 16-31 and 48-63.
constexpr int64_t vnni_slot(int64_t o) { return o / 16 == 1 ? o + 16 : o / 16 == 2 ? o - 16 : o; }

// x: [K] -> q: [K] (vnni_slot order per 64), scale: [G], zsum: [G] = scale * sum(q of group).
void quantize_x_int8(const float* x, int64_t K, int64_t gs, int8_t* q, float* scale, float* zsum) {
  for (int64_t g = 0; g < K / gs; ++g) {
    const float* xg = x + g * gs;
    float amax = 0.0f;
    for (int64_t k = 0; k < gs; ++k) amax = std::max(amax, std::fabs(xg[k]));
    const float sx = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < gs; ++k) {
      const int32_t v = int32_t(std::nearbyint(xg[k] * inv));
      sum += v;
      q[g * gs + (k / 64) * 64 + vnni_slot(k % 64)] = int8_t(v);
    }
    scale[g] = sx;
    zsum[g] = sx * float(sum);
  }
}

template <int R>
__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,f16c,fma"))) void gemv_rows_vnni(
    const W4View& v, const int8_t* xq, const float* sx, const float* zsum, int64_t r, float* out) {
  const int64_t half = v.K / 2;
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 accf[R];
  float corr[R] = {};
  for (int j = 0; j < R; ++j) accf[j] = _mm512_setzero_ps();
  for (int64_t g = 0; g < v.G; ++g) {
    __m512i acc0[R], acc1[R];
    for (int j = 0; j < R; ++j) acc0[j] = acc1[j] = _mm512_setzero_si512();
    int64_t k0 = g * v.gs;
    const int64_t end = k0 + v.gs;
    for (; k0 + 128 <= end; k0 += 128) {
      const __m512i x0 = _mm512_loadu_si512(xq + k0), x1 = _mm512_loadu_si512(xq + k0 + 64);
      for (int j = 0; j < R; ++j) {
        const uint8_t* c = v.codes + (r + j) * half + k0 / 2;
        const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
        const __m256i p1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32));
        const __m512i w0 = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(p0), _mm256_srli_epi16(p0, 4), 1), low);
        const __m512i w1 = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(p1), _mm256_srli_epi16(p1, 4), 1), low);
        acc0[j] = _mm512_dpbusd_epi32(acc0[j], w0, x0);
        acc1[j] = _mm512_dpbusd_epi32(acc1[j], w1, x1);
      }
    }
    for (; k0 < end; k0 += 64) {  // group 64 (or an odd tail of 64)
      const __m512i x0 = _mm512_loadu_si512(xq + k0);
      for (int j = 0; j < R; ++j) {
        const __m256i p0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v.codes + (r + j) * half + k0 / 2));
        const __m512i w0 = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(p0), _mm256_srli_epi16(p0, 4), 1), low);
        acc0[j] = _mm512_dpbusd_epi32(acc0[j], w0, x0);
      }
    }
    for (int j = 0; j < R; ++j) {
      const int64_t gi = (r + j) * v.G + g;
      const float s = _cvtsh_ss(v.scales[gi]);
      accf[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc0[j], acc1[j])), _mm512_set1_ps(s * sx[g]), accf[j]);
      corr[j] += s * float(v.zeros[gi]) * zsum[g];
    }
  }
  for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(accf[j]) - corr[j];
}

// ---------------------------------------------------------------------------------------------
// Dispatch: rows of W in blocks of R, NX rows of x at a time, static contiguous partition of
// the row blocks over the pool's threads.
// ---------------------------------------------------------------------------------------------
using RowsFn = void (*)(const W4View&, const float*, int64_t, int64_t, float*, int64_t);

template <int NX, int R>
RowsFn rows_fn(W4Isa isa) {
  return isa == W4Isa::Avx512 ? &gemv_rows_avx512<NX, R> : &gemv_rows_avx2<NX, R>;
}

// Kernels for nx rows of x: R-row blocks and single rows (the N % R tail).
struct RowsKernel {
  int nx, r;
  RowsFn block, single;
};

template <int NX, int R>
RowsKernel make_kernel(W4Isa isa) {
  return {NX, R, rows_fn<NX, R>(isa), rows_fn<NX, 1>(isa)};
}

// The kernel for the first min(n, 4) rows of x (rows above 4 run in further passes).
RowsKernel pick_kernel(W4Isa isa, int64_t n) {
  switch (n) {
    case 1: return make_kernel<1, 4>(isa);
    case 2: return make_kernel<2, 4>(isa);
    case 3: return make_kernel<3, 2>(isa);
    default: return make_kernel<4, 2>(isa);
  }
}

void check_isa(W4Isa isa) {
  if (!w4_isa_supported(isa))
    throw std::runtime_error(std::string("w4: this CPU lacks ") + w4_isa_name(isa));
}

}  // namespace

bool w4_isa_supported(W4Isa isa) {
  switch (isa) {
    case W4Isa::Scalar: return true;
    case W4Isa::Avx2: return gemm_isa_supported(GemmIsa::Avx2) && __builtin_cpu_supports("f16c");
    case W4Isa::Avx512: return gemm_isa_supported(GemmIsa::Avx512) && __builtin_cpu_supports("f16c");
    case W4Isa::Avx512Vnni:
      return w4_isa_supported(W4Isa::Avx512) && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2");
  }
  return false;
}

W4Isa w4_best_isa() {
  static const W4Isa isa = [] {
    const GemmIsa g = gemm_best_isa();  // honours AWQ_CPU_ISA
    const char* act = std::getenv("AWQ_W4_ACT");
    const bool f32_act = act && std::string(act) == "f32";
    if (g == GemmIsa::Avx512 && !f32_act && w4_isa_supported(W4Isa::Avx512Vnni)) return W4Isa::Avx512Vnni;
    if (g == GemmIsa::Avx512 && w4_isa_supported(W4Isa::Avx512)) return W4Isa::Avx512;
    if (g != GemmIsa::Portable && w4_isa_supported(W4Isa::Avx2)) return W4Isa::Avx2;
    return W4Isa::Scalar;
  }();
  return isa;
}

const char* w4_isa_name(W4Isa isa) {
  switch (isa) {
    case W4Isa::Scalar: return "scalar";
    case W4Isa::Avx2: return "avx2";
    case W4Isa::Avx512: return "avx512";
    case W4Isa::Avx512Vnni: return "avx512-vnni-int8";
  }
  return "?";
}

bool w4_layout_fits(int64_t cols, int group) {
  return cols > 0 && group > 0 && cols % 32 == 0 && group % 32 == 0 && cols % group == 0;
}

bool w4_ready(const Matrix& w) {
  return w.kind == MatrixKind::AwqGemm && w.awq.w4_codes && w.awq.row_zeros && w.awq.row_scales &&
         w4_layout_fits(w.cols, w.awq.group);
}

std::vector<uint8_t> w4_repack(const uint32_t* row_codes, int64_t rows, int64_t cols) {
  if (cols % 32 != 0) throw std::logic_error("w4_repack: cols must be a multiple of 32");
  const int64_t wpr = cols / 8, half = cols / 2;
  std::vector<uint8_t> out(static_cast<size_t>(rows * half));
  auto code = [&](int64_t r, int64_t k) { return (row_codes[r * wpr + k / 8] >> (4 * (k % 8))) & 0xFu; };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k0 = 0; k0 < cols; k0 += 32)
      for (int64_t i = 0; i < 16; ++i)
        out[size_t(r * half + k0 / 2 + i)] = uint8_t(code(r, k0 + i) | code(r, k0 + 16 + i) << 4);
  return out;
}

void w4_gemv(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const Matrix& w,
             const float* bias, float* y) {
  check_isa(isa);
  if (!w4_ready(w)) throw std::logic_error("w4_gemv: matrix lacks the W4 kernel layout");
  if (n < 1 || n > kW4GemvMaxRows) throw std::logic_error("w4_gemv: n out of range");
  const W4View v(w);
  const int64_t N = w.rows, K = w.cols;
  if (isa == W4Isa::Scalar) {
    pool.parallel_for(N, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        gemv_row_scalar(v, x, K, n, r, y + r, N);
        for (int64_t i = 0; i < n; ++i) y[i * N + r] += bias ? bias[r] : 0.0f;
      }
    }, /*min_chunk=*/16);
    return;
  }
  if (isa == W4Isa::Avx512Vnni && v.gs % 64 != 0) isa = W4Isa::Avx512;  // needs runs of 64
  if (isa == W4Isa::Avx512Vnni) {
    // xq: [K] int8 | sx, zsum: [G]; kept per calling thread, so decode steps allocate nothing.
    thread_local std::vector<int8_t> xq;
    thread_local std::vector<float> sx, zsum;
    if (int64_t(xq.size()) < K) xq.resize(size_t(K));
    if (int64_t(sx.size()) < v.G) sx.resize(size_t(v.G)), zsum.resize(size_t(v.G));
    int8_t* q = xq.data();
    float* sxp = sx.data();
    float* zp = zsum.data();
    for (int64_t i = 0; i < n; ++i) {
      quantize_x_int8(x + i * K, K, v.gs, q, sxp, zp);
      float* yi = y + i * N;
      constexpr int R = 4;
      const int64_t blocks = N / R, tail0 = blocks * R;
      pool.parallel_for(blocks + 1, [&](int64_t b, int64_t e) {
        for (int64_t blk = b; blk < e; ++blk) {
          if (blk < blocks) gemv_rows_vnni<R>(v, q, sxp, zp, blk * R, yi + blk * R);
          else for (int64_t r = tail0; r < N; ++r) gemv_rows_vnni<1>(v, q, sxp, zp, r, yi + r);
        }
        if (bias)
          for (int64_t r = b * R, r1 = std::min(N, e * R); r < r1; ++r) yi[r] += bias[r];
      }, /*min_chunk=*/8);
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n; i0 += 4) {  // at most 4 rows of x per pass
    const RowsKernel kern = pick_kernel(isa, n - i0);
    const float* xi = x + i0 * K;
    float* yi = y + i0 * N;
    const int64_t blocks = N / kern.r, tail0 = blocks * kern.r;
    pool.parallel_for(blocks + 1, [&](int64_t b, int64_t e) {  // item `blocks`: the N % R rows
      for (int64_t q = b; q < e; ++q) {
        if (q < blocks) kern.block(v, xi, K, q * kern.r, yi + q * kern.r, N);
        else for (int64_t r = tail0; r < N; ++r) kern.single(v, xi, K, r, yi + r, N);
      }
      if (bias) {
        const int64_t r0 = b * kern.r, r1 = std::min(N, e * kern.r);
        for (int64_t i = 0; i < kern.nx; ++i)
          for (int64_t r = r0; r < r1; ++r) yi[i * N + r] += bias[r];
      }
    }, /*min_chunk=*/8);
  }
}

namespace {

__attribute__((target("avx512f,f16c"))) void dequant_rows_avx512(const W4View& v, int64_t r0,
                                                                 int64_t count, float* out) {
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t r = r0; r < r0 + count; ++r) {
    float* o = out + (r - r0) * v.K;
    for (int64_t g = 0; g < v.G; ++g) {
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps(float(v.zeros[r * v.G + g]))),
                                     _mm512_set1_ps(fp16_to_f32(v.scales[r * v.G + g])));
      const __m512 lut = _mm512_cvtph_ps(_mm512_cvtps_ph(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      for (int64_t k0 = g * v.gs; k0 < (g + 1) * v.gs; k0 += 32) {
        const __m512i b = _mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(v.codes + r * (v.K / 2) + k0 / 2)));
        _mm512_storeu_ps(o + k0, _mm512_permutexvar_ps(b, lut));
        _mm512_storeu_ps(o + k0 + 16, _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), lut));
      }
    }
  }
}

// f32 -> fp16 -> f32: the reference's rounding of (q - z) * s
__attribute__((target("avx2,fma,f16c"))) inline __m256 round16(__m256 t) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

__attribute__((target("avx2,fma,f16c"))) void dequant_rows_avx2(const W4View& v, int64_t r0,
                                                               int64_t count, float* out) {
  const __m256i mask = _mm256_set1_epi32(0xF);
  for (int64_t r = r0; r < r0 + count; ++r) {
    float* o = out + (r - r0) * v.K;
    for (int64_t g = 0; g < v.G; ++g) {
      const __m256 z = _mm256_set1_ps(float(v.zeros[r * v.G + g]));
      const __m256 s = _mm256_set1_ps(fp16_to_f32(v.scales[r * v.G + g]));
      for (int64_t k0 = g * v.gs; k0 < (g + 1) * v.gs; k0 += 32) {
        const uint8_t* b = v.codes + r * (v.K / 2) + k0 / 2;
        for (int p = 0; p < 2; ++p) {
          const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8 * p)));
          const __m256 ql = _mm256_cvtepi32_ps(_mm256_and_si256(c, mask));
          const __m256 qh = _mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4));
          _mm256_storeu_ps(o + k0 + 8 * p, round16(_mm256_mul_ps(_mm256_sub_ps(ql, z), s)));
          _mm256_storeu_ps(o + k0 + 16 + 8 * p, round16(_mm256_mul_ps(_mm256_sub_ps(qh, z), s)));
        }
      }
    }
  }
}

}  // namespace

void w4_dequantize_rows(W4Isa isa, const Matrix& w, int64_t r0, int64_t count, float* out) {
  check_isa(isa);
  if (!w4_ready(w)) throw std::logic_error("w4_dequantize_rows: matrix lacks the W4 kernel layout");
  const W4View v(w);
  if (isa == W4Isa::Avx512 || isa == W4Isa::Avx512Vnni) return dequant_rows_avx512(v, r0, count, out);
  if (isa == W4Isa::Avx2) return dequant_rows_avx2(v, r0, count, out);
  float lut[16];
  for (int64_t r = r0; r < r0 + count; ++r) {
    float* o = out + (r - r0) * v.K;
    for (int64_t g = 0; g < v.G; ++g) {
      scalar_table(v.zeros[r * v.G + g], v.scales[r * v.G + g], lut);
      for (int64_t k0 = g * v.gs; k0 < (g + 1) * v.gs; k0 += 32)
        for (int64_t i = 0; i < 16; ++i) {
          const uint8_t b = v.codes[r * (v.K / 2) + k0 / 2 + i];
          o[k0 + i] = lut[b & 0xF];
          o[k0 + 16 + i] = lut[b >> 4];
        }
    }
  }
}

}  // namespace awq
