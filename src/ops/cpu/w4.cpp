#include "ops/cpu/w4.h"

// GCC 12's AVX-512 headers build unmasked intrinsics (srli, cvtepu8, cvtph) on a
// self-initialised "undefined" vector, which -Wuninitialized flags once inlined (GCC bug
// 105593, fixed in GCC 13). The values are never read; silence the false positive here only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/env_choice.h"
#include "core/error.h"
#include "core/half.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/w4_act_quant.h"

namespace awq {

namespace {

constexpr int64_t T = kW4TileRows;
constexpr int64_t kLine = 64;  // bytes of codes per (tile, 8 inputs)
// Software prefetch distance in the tile stream of the kernels that walk each tile in two
// passes, one 32-byte half of every line per pass (AVX2 int8, AVX2 int16 prefill), and of the
// VNNI prefill (contiguous over a thread's tiles). The hardware prefetcher follows the half
// passes badly: 6 KB ahead reads 1.2-1.3x the GB/s of none (docs/results/cpu.md). The decode
// VNNI decode kernel takes no software prefetch: with weights beyond the caches, 6 KB ahead made
// it 0.66-0.80x of a plain read loop's GB/s on a Zen 5 host, none 0.82-0.90x (the hardware
// prefetcher alone does better there). The AVX2 int16 decode kernel has its own distance below.
constexpr int64_t kPrefetchBytes = 6144;

// Software prefetch distance of the AVX2 int16 decode kernel (rows <= 4, whole lines in order),
// AWQ_W4_PREFETCH. That kernel issues ~4 vector ops per cycle (docs/results/cpu.md), and on a
// Zen 3 host the hardware prefetcher alone then kept too few lines in flight: one thread read
// 15.6 GB/s of W4 tiles against 24 GB/s of a plain read loop; 4 KB ahead gave 20.5 GB/s, and
// two threads 27 -> 34-35 GB/s (0.78 -> 0.99 of the read loop, bench/bench_w4_stream.cpp).
int64_t avx2_decode_prefetch_bytes() {
  static const int64_t b = w4_decode_prefetch_bytes(std::getenv("AWQ_W4_PREFETCH"));
  return b;
}

// What the kernels see of a W4 matrix.
struct TileView {
  int64_t N, K, G, gs;
  const uint8_t* codes;
  const uint16_t* scales;
  const uint8_t* zeros;
  explicit TileView(const Matrix& w)
      : N(w.rows), K(w.cols), G(w.cols / w.awq.group), gs(w.awq.group), codes(w.awq.w4_codes),
        scales(w.awq.w4_scales), zeros(w.awq.w4_zeros) {}
  const uint8_t* tile_codes(int64_t t) const { return codes + t * (K / 8) * kLine; }
  int64_t tiles() const { return (N + T - 1) / T; }
};

// Integer activations of n rows of x, per weight group g of row i, as codes c times a unit u
// (int8 or int8x2, w4_act_quant.h). The kernels sum q w over each digit (vpdpbusd /
// vpmaddubsw on the same unpacked weights) and combine int8x2's two int32 sums as
// D = 254 D1 + D2 (exact, see kX2Run).
// The group's contribution is then s u D - s z (u sum c).
// Layout: the rows in chunks of R = min(n, kXChunkRows); per chunk and per 8 inputs, the chunk's
// rows' bytes side by side, so a kernel reads its rows at constant offsets from one pointer (16
// row pointers did not fit the registers) and walks one contiguous run of memory over k (a
// 512-token prompt's rows 8 KB apart per step missed the TLB and the prefetcher). Row i of
// inputs 8j..8j+7 at row(i) + j * step, row(i) = q + (i / R) * chunk + (i % R) * B,
// B = 8 (int8: the codes) or 16 (int8x2: the 8 high digits, then the 8 low digits),
// step = R * B, chunk = (K / 8) * step. A kernel's rows lie in one chunk.
constexpr int64_t kXChunkRows = 8;
struct XInt8 {
  const int8_t* q;     // [ceil(n / R)][K / 8][R][B]
  int64_t R, B, step, chunk;
  const float* unit;   // [n, G] u
  const float* zsum;   // [n, G] u * sum(c of the group)
  int64_t G;
  int64_t row_offset(int64_t i) const { return (i / R) * chunk + (i % R) * B; }
  const int8_t* row(int64_t i) const { return q + row_offset(i); }
};

// int8x2: inputs per integer sum D before it goes to f32. |q w| <= 127 * 15 per digit and
// product, so |D| <= run * 15 * (254 * 127 + 127) = run * 485775 < 2^31 for run <= 4420; 4096
// keeps every group size of the layout exact (groups of up to 4096 -- all real checkpoints --
// take one run each). int8 sums alone stay below 2^31 for 1.1 M inputs: one run per group.
constexpr int64_t kX2Run = 4096;
static_assert(kX2Run * 15 * (254 * 127 + 127) < (int64_t(1) << 31), "int8x2 integer sum may overflow");

inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI: tile t x MR rows of x from i0. Lanes = the tile's 16 rows. Per row and digit
// two int32 accumulators, the low- and the high-nibble inputs' (independent vpdpbusd chains),
// except for int8 with MR > 4 (kOneChain).
// X2 (int8x2 x), two ways to reach D = 254 D1 + D2 (exact: kX2Run bounds every partial sum):
//  - MR <= 4 (decode, memory-bound): both digits in one pass, 4 x MR accumulators, combined
//    at the end of the run.
//  - MR > 4 (prefill, compute-bound): one pass per digit, the high digits' sums D1, then
//    D1 * 254 in place, then the low digits' added to the same registers. The second pass
//    re-reads the run's codes from L1 (1 KB per group of 128) and needs 2 x MR + 5 registers
//    (4 x 8 accumulators made GCC copy registers around every vpdpbusd: 4 rows per call and
//    0.34-0.39x of int8's speed; this way 8 rows and ~0.53x, docs/results/cpu.md). One pass
//    at MR <= 4 is ~12 % faster in decode.
// The f32 sums live in memory, updated once per run. y: rows i0.. of the output, stride ldy.
// ---------------------------------------------------------------------------------------------
template <int MR, bool X2>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"))) void tile_vnni(
    const TileView& v, int64_t t, const XInt8& x, int64_t i0, const float* bias, float* y, int64_t ldy) {
  constexpr bool kBothDigits = X2 && MR <= 4;            // one pass over the run, both digits
  constexpr int kPasses = X2 && !kBothDigits ? 2 : 1;  // else one pass per digit
  // int8 with MR > 4: one chain per row (the row's 8 chains suffice; measured 1.3x faster than
  // two per row, whose extra adds and registers cost more than the latency they hide). int8x2
  // keeps two: one chain per row ran 0.83x.
  constexpr bool kOneChain = !X2 && MR > 4;
  const uint8_t* c = v.tile_codes(t);
  const __m512i low = _mm512_set1_epi8(0x0F);
  alignas(64) float accf[MR][T] = {};
  const int8_t* const xq = x.row(i0);
  const int64_t step = x.step, B = x.B, run = X2 ? std::min(v.gs, kX2Run) : v.gs;
  for (int64_t g = 0; g < v.G; ++g) {
    const int64_t sg = (t * v.G + g) * T;
    const __m512 s = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(v.scales + sg)));
    for (int64_t k0 = g * v.gs, gend = k0 + v.gs; k0 < gend; k0 += run) {
      const int64_t steps = (std::min(k0 + run, gend) - k0) / 8;
      // Inputs k..k+3 / k+4..k+7 of every 8; lo2 / hi2: the low digit when kBothDigits.
      __m512i lo_sum[MR], hi_sum[MR], lo2[MR], hi2[MR];
      for (int i = 0; i < MR; ++i) lo_sum[i] = hi_sum[i] = lo2[i] = hi2[i] = _mm512_setzero_si512();
      for (int pass = 0; pass < kPasses; ++pass) {
        if (pass == 1)  // 254 D1 = (D1 << 8) - (D1 << 1), per chain
          for (int i = 0; i < MR; ++i) {
            lo_sum[i] = _mm512_sub_epi32(_mm512_slli_epi32(lo_sum[i], 8), _mm512_slli_epi32(lo_sum[i], 1));
            hi_sum[i] = _mm512_sub_epi32(_mm512_slli_epi32(hi_sum[i], 8), _mm512_slli_epi32(hi_sum[i], 1));
          }
        const uint8_t* p = c + k0 / 8 * kLine;
        const int8_t* xs = xq + k0 / 8 * step + 8 * pass;
        for (int64_t j = 0; j < steps; ++j, p += kLine, xs += step) {
          if constexpr (MR > 4)  // prefill only (kPrefetchBytes)
            if (pass == 0) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
          const __m512i w = _mm512_load_si512(p);
          const __m512i lo = _mm512_and_si512(w, low), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), low);
          for (int i = 0; i < MR; ++i) {
            lo_sum[i] = _mm512_dpbusd_epi32(lo_sum[i], lo, _mm512_set1_epi32(load4(xs + i * B)));
            if constexpr (kOneChain) lo_sum[i] = _mm512_dpbusd_epi32(lo_sum[i], hi, _mm512_set1_epi32(load4(xs + i * B + 4)));
            else hi_sum[i] = _mm512_dpbusd_epi32(hi_sum[i], hi, _mm512_set1_epi32(load4(xs + i * B + 4)));
            if constexpr (kBothDigits) {
              lo2[i] = _mm512_dpbusd_epi32(lo2[i], lo, _mm512_set1_epi32(load4(xs + i * B + 8)));
              hi2[i] = _mm512_dpbusd_epi32(hi2[i], hi, _mm512_set1_epi32(load4(xs + i * B + 12)));
            }
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        __m512i D = _mm512_add_epi32(lo_sum[i], hi_sum[i]);
        if constexpr (kBothDigits)
          D = _mm512_add_epi32(_mm512_sub_epi32(_mm512_slli_epi32(D, 8), _mm512_slli_epi32(D, 1)), _mm512_add_epi32(lo2[i], hi2[i]));
        _mm512_store_ps(accf[i], _mm512_fmadd_ps(_mm512_cvtepi32_ps(D), _mm512_mul_ps(s, _mm512_set1_ps(x.unit[(i0 + i) * x.G + g])),
                                                 _mm512_load_ps(accf[i])));
      }
    }
    const __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(v.zeros + sg))));
    const __m512 sz = _mm512_mul_ps(s, z);
    for (int i = 0; i < MR; ++i)
      _mm512_store_ps(accf[i], _mm512_fnmadd_ps(sz, _mm512_set1_ps(x.zsum[(i0 + i) * x.G + g]), _mm512_load_ps(accf[i])));
  }
  const int64_t r0 = t * T, rows = std::min(T, v.N - r0);
  const __mmask16 m = __mmask16((1u << rows) - 1);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + r0) : _mm512_setzero_ps();
  for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(y + (i0 + i) * ldy + r0, m, _mm512_add_ps(_mm512_load_ps(accf[i]), b));
}

// ---------------------------------------------------------------------------------------------
// AVX2, int8 x: half h (rows 8h..8h+7) of tile t x MR rows of x (16 ymm: MR <= 4). Per 4
// inputs and row, vpmaddubsw gives two int16 sums of two products each, |sum| <= 2 * 15 * 127
// = 3810; the low- and high-nibble results added: <= 7620, no int16 saturation. vpmaddwd then
// sums the pair into the row's int32 lane. The same integers as the VNNI kernel and the same
// f32 steps after: bit-identical results.
// ---------------------------------------------------------------------------------------------
template <int MR>
__attribute__((target("avx2,fma,f16c"))) void tile_half_avx2(const TileView& v, int64_t t, int h,
                                                            const XInt8& x, int64_t i0,
                                                            const float* bias, float* y, int64_t ldy) {
  const int64_t B = x.B;
  const uint8_t* c = v.tile_codes(t) + 32 * h;
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 accf[MR];
  for (int i = 0; i < MR; ++i) accf[i] = _mm256_setzero_ps();
  const int8_t* const xq = x.row(i0);
  const int64_t step = x.step;
  for (int64_t g = 0; g < v.G; ++g) {  // int8 sums stay exact over any group: one run per group
    const int64_t sg = (t * v.G + g) * T + 8 * h;
    const __m256 s = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(v.scales + sg)));
    __m256i a[MR];
    for (int i = 0; i < MR; ++i) a[i] = _mm256_setzero_si256();
    const uint8_t* p = c + g * v.gs / 8 * kLine;
    const int8_t* xs = xq + g * v.gs / 8 * step;
    for (int64_t j = 0; j < v.gs / 8; ++j, p += kLine, xs += step) {
      _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i lo = _mm256_and_si256(w, low), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
      for (int i = 0; i < MR; ++i) {
        const int8_t* x1 = xs + i * B;
        const __m256i d1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(load4(x1))),
                                            _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load4(x1 + 4))));
        a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(d1, ones));
      }
    }
    for (int i = 0; i < MR; ++i)
      accf[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[i]), _mm256_mul_ps(s, _mm256_set1_ps(x.unit[(i0 + i) * x.G + g])), accf[i]);
    const __m256 z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v.zeros + sg))));
    const __m256 sz = _mm256_mul_ps(s, z);
    for (int i = 0; i < MR; ++i) accf[i] = _mm256_fnmadd_ps(sz, _mm256_set1_ps(x.zsum[(i0 + i) * x.G + g]), accf[i]);
  }
  const int64_t r0 = t * T + 8 * h, rows = std::min<int64_t>(8, v.N - r0);
  if (rows <= 0) return;
  alignas(32) float out[8];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(out, accf[i]);
    float* yi = y + (i0 + i) * ldy + r0;
    for (int64_t l = 0; l < rows; ++l) yi[l] = out[l] + (bias ? bias[r0 + l] : 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2 with int8x2 x, taken whole as int16 codes c (w4_act_quant.h's int16 layout): NH halves
// (8 rows each, from half h0) of tile t x MR rows of x. A 32-byte half-line of codes read as
// int16 lanes gives, masked and shifted, four vectors whose adjacent lane pairs are one row's
// inputs (0, 2), (1, 3), (4, 6) and (5, 7); vpmaddwd against the broadcast pair (c0, c2) ...
// sums two products into the row's int32 lane. Per 64 products 4 vpmaddwd, where the digits
// took 4 vpmaddubsw + 2 vpmaddwd. D = sum w c is the VNNI kernel's 254 D1 + D2 (exact, bound
// kX2Run), and the f32 steps after are the same: bit-identical results.
// NH = 2 walks each tile once (decode, MR <= 4: the stream stays sequential, prefetched
// avx2_decode_prefetch_bytes() ahead); NH = 1 takes up
// to 8 rows of x per pass (prefill; GCC then keeps some accumulators on the stack, measured as
// fast as 4 rows per pass, which fit the 16 registers: the vpmaddwd / vpaddd issue is the limit).
// ---------------------------------------------------------------------------------------------
// vpdpwssd ymm (AVX-VNNI, VEX-encoded): acc += the pairwise products of a and b's int16 lanes,
// what vpmaddwd + vpaddd do in two. As inline asm, so that the kernel stays one AVX2 function;
// it runs only where w4_isa_supported(AvxVnniInt8x2) said yes.
__attribute__((target("avx2"))) inline __m256i dpwssd_avx_vnni(__m256i acc, __m256i a, __m256i b) {
  asm("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
  return acc;
}

template <int MR, int NH, bool DP>
__attribute__((target("avx2,fma,f16c"))) void tile_avx2_c16(const TileView& v, int64_t t, int h0,
                                                           const XInt8& x, int64_t i0,
                                                           const float* bias, float* y, int64_t ldy) {
  static_assert(MR * NH <= 8, "16 ymm registers");
  const int64_t B = x.B;
  const uint8_t* c = v.tile_codes(t) + 32 * h0;
  const __m256i nibble = _mm256_set1_epi16(0x000F);
  alignas(32) float accf[MR][NH][8] = {};  // in memory: updated once per run
  const int8_t* const xq = x.row(i0);
  const int64_t step = x.step, run = std::min(v.gs, kX2Run);
  const int64_t prefetch = NH == 1 ? kPrefetchBytes : avx2_decode_prefetch_bytes();
  for (int64_t g = 0; g < v.G; ++g) {
    const __m128i* const s16 = reinterpret_cast<const __m128i*>(v.scales + (t * v.G + g) * T + 8 * h0);  // [NH][8]
    for (int64_t k0 = g * v.gs, gend = k0 + v.gs; k0 < gend; k0 += run) {
      __m256i a[MR][NH];
      for (int i = 0; i < MR; ++i)
        for (int h = 0; h < NH; ++h) a[i][h] = _mm256_setzero_si256();
      const uint8_t* p = c + k0 / 8 * kLine;
      const int8_t* xs = xq + k0 / 8 * step;
      for (int64_t j = 0, steps = (std::min(k0 + run, gend) - k0) / 8; j < steps; ++j, p += kLine, xs += step) {
        if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(p + prefetch), _MM_HINT_T0);  // past the end: a no-op hint
        for (int h = 0; h < NH; ++h) {
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
          const __m256i w02 = _mm256_and_si256(w, nibble), w13 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nibble),
                        w46 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble), w57 = _mm256_srli_epi16(w, 12);
          for (int i = 0; i < MR; ++i) {
            const int8_t* xi = xs + i * B;  // c0 c2 | c1 c3 | c4 c6 | c5 c7
            const __m256i x02 = _mm256_set1_epi32(load4(xi)), x13 = _mm256_set1_epi32(load4(xi + 4)),
                          x46 = _mm256_set1_epi32(load4(xi + 8)), x57 = _mm256_set1_epi32(load4(xi + 12));
            if constexpr (DP) {
              a[i][h] = dpwssd_avx_vnni(a[i][h], w02, x02);
              a[i][h] = dpwssd_avx_vnni(a[i][h], w13, x13);
              a[i][h] = dpwssd_avx_vnni(a[i][h], w46, x46);
              a[i][h] = dpwssd_avx_vnni(a[i][h], w57, x57);
            } else {
              a[i][h] = _mm256_add_epi32(a[i][h], _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(w02, x02), _mm256_madd_epi16(w13, x13)),
                                                                   _mm256_add_epi32(_mm256_madd_epi16(w46, x46), _mm256_madd_epi16(w57, x57))));
            }
          }
        }
      }
      for (int h = 0; h < NH; ++h) {
        const __m256 s = _mm256_cvtph_ps(_mm_load_si128(s16 + h));
        for (int i = 0; i < MR; ++i)
          _mm256_store_ps(accf[i][h], _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[i][h]), _mm256_mul_ps(s, _mm256_set1_ps(x.unit[(i0 + i) * x.G + g])),
                                                      _mm256_load_ps(accf[i][h])));
      }
    }
    for (int h = 0; h < NH; ++h) {
      const int64_t sg = (t * v.G + g) * T + 8 * (h0 + h);
      const __m256 z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v.zeros + sg))));
      const __m256 sz = _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(s16 + h)), z);
      for (int i = 0; i < MR; ++i)
        _mm256_store_ps(accf[i][h], _mm256_fnmadd_ps(sz, _mm256_set1_ps(x.zsum[(i0 + i) * x.G + g]), _mm256_load_ps(accf[i][h])));
    }
  }
  for (int h = 0; h < NH; ++h) {
    const int64_t r0 = t * T + 8 * (h0 + h), rows = std::min<int64_t>(8, v.N - r0);
    if (rows <= 0) continue;
    for (int i = 0; i < MR; ++i) {
      float* yi = y + (i0 + i) * ldy + r0;
      for (int64_t l = 0; l < rows; ++l) yi[l] = accf[i][h][l] + (bias ? bias[r0 + l] : 0.0f);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Exact f32 kernels: the reference's weights fp16((q - z) * s), f32 x.
// ---------------------------------------------------------------------------------------------
// fp16((q - z) * s) widened, for q = 0..15: the reference dequantization (widen_row).
void scalar_table(uint8_t z, uint16_t s16, float* lut) {
  const float s = fp16_to_f32(s16);
  for (int q = 0; q < 16; ++q) lut[q] = fp16_to_f32(f32_to_fp16(float(q - int(z)) * s));
}

// Row l of tile t against n rows of x. x: [n, K]; out[i * ldy] for row i.
void row_scalar(const TileView& v, int64_t t, int64_t l, const float* x, int64_t n, float* out,
                int64_t ldy) {
  float acc[kW4GemvMaxRows] = {};
  float lut[16];
  for (int64_t g = 0; g < v.G; ++g) {
    const int64_t sg = (t * v.G + g) * T + l;
    scalar_table(v.zeros[sg], v.scales[sg], lut);
    for (int64_t k = g * v.gs; k < (g + 1) * v.gs; k += 8) {
      const uint8_t* b = v.tile_codes(t) + (k / 8) * kLine + l * 4;  // inputs k..k+3 | k+4..k+7
      float w[8];
      for (int j = 0; j < 4; ++j) w[j] = lut[b[j] & 0xF], w[4 + j] = lut[b[j] >> 4];
      for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < 8; ++j) acc[i] += w[j] * x[i * v.K + k + j];
    }
  }
  for (int64_t i = 0; i < n; ++i) out[i * ldy] = acc[i];
}

// AVX-512 f32: the 16 rows of tile t against NX rows of x; each weight rebuilt exactly as the
// reference rounds it. x: [NX, K].
template <int NX>
__attribute__((target("avx512f,f16c,fma"))) void tile_f32_avx512(const TileView& v, int64_t t,
                                                                const float* x, float* y, int64_t ldy) {
  const uint8_t* c = v.tile_codes(t);
  const __m512i mask = _mm512_set1_epi32(0xF);
  __m512 acc[NX];
  for (int i = 0; i < NX; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < v.G; ++g) {
    const int64_t sg = (t * v.G + g) * T;
    const __m512 s = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(v.scales + sg)));
    const __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(v.zeros + sg))));
    for (int64_t k = g * v.gs, end = k + v.gs; k < end; k += 8) {
      const __m512i w = _mm512_load_si512(c + (k / 8) * kLine);
      for (int j = 0; j < 8; ++j) {  // input k + j: byte j % 4 of each lane, nibble j / 4
        const __m512i q = _mm512_and_si512(_mm512_srli_epi32(w, unsigned(8 * (j % 4) + 4 * (j / 4))), mask);
        const __m512 wf = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), z), s);
        const __m512 wr = _mm512_cvtph_ps(_mm512_cvtps_ph(wf, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        for (int i = 0; i < NX; ++i) acc[i] = _mm512_fmadd_ps(wr, _mm512_set1_ps(x[i * v.K + k + j]), acc[i]);
      }
    }
  }
  const int64_t r0 = t * T, rows = std::min(T, v.N - r0);
  const __mmask16 m = __mmask16((1u << rows) - 1);
  for (int i = 0; i < NX; ++i) _mm512_mask_storeu_ps(y + i * ldy + r0, m, acc[i]);
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------
// kernel(MR) for a runtime MR in 1..8 via a switch over the template instances.
template <class F>
void with_mr(int64_t mr, F&& f) {
  switch (mr) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

void check_isa(W4Isa isa) {
  if (!w4_isa_supported(isa))
    throw std::runtime_error(std::string("w4: this CPU lacks ") + w4_isa_name(isa));
}

bool isa_vnni(W4Isa isa) { return isa == W4Isa::Avx512Vnni || isa == W4Isa::Avx512VnniInt8x2; }

// Tiles [t0, t1) against all n rows of x, int8 kernels. Blocks of tiles whose codes fit in
// L2 (kTileBlockBytes), and per block each chunk of x rows (L1-sized for K <= 2048) against
// every tile of the block: x streams from memory once per block instead of once per tile
// (a 512-token prompt's x is 1-2 MB, beyond a core's L2).
constexpr int64_t kTileBlockBytes = 256 * 1024;
void tiles_int8(W4Isa isa, const TileView& v, int64_t t0, int64_t t1, const XInt8& x, int64_t n,
                const float* bias, float* y) {
  const int64_t N = v.N;
  const bool x2 = w4_isa_int8x2(isa), vnni = isa_vnni(isa);
  const int64_t block = std::max<int64_t>(1, kTileBlockBytes / (v.K / 8 * kLine));
  for (int64_t tb = t0; tb < t1; tb += block)
    for (int64_t c0 = 0; c0 < n; c0 += x.R) {
      const int64_t rows = std::min(x.R, n - c0);
      for (int64_t t = tb; t < std::min(t1, tb + block); ++t) {
        if (vnni) {
          with_mr(rows, [&](auto mr) {
            if (x2) tile_vnni<decltype(mr)::value, true>(v, t, x, c0, bias, y, N);
            else tile_vnni<decltype(mr)::value, false>(v, t, x, c0, bias, y, N);
          });
          continue;
        }
        if (x2) {  // AVX2, int16 x: a whole tile per pass up to 4 rows, else a half per pass
          with_mr(rows, [&](auto mr) {
            constexpr int R = decltype(mr)::value;
            auto run = [&](auto dp) {
              if constexpr (R <= 4) tile_avx2_c16<R, 2, dp.value>(v, t, 0, x, c0, bias, y, N);
              else for (int h = 0; h < 2; ++h) tile_avx2_c16<R, 1, dp.value>(v, t, h, x, c0, bias, y, N);
            };
            // vpdpwssd only for prefill rows: its one add chain per row and half (4 deep per
            // step) held decode (1 row, 2 chains) to 0.75x of vpmaddwd + vpaddd.
            if (isa == W4Isa::AvxVnniInt8x2 && R > 4) run(std::true_type{});
            else run(std::false_type{});
          });
          continue;
        }
        for (int h = 0; h < 2; ++h)  // AVX2 int8: 16 ymm registers, at most 4 rows per call
          for (int64_t i0 = c0; i0 < c0 + rows; i0 += 4)
            with_mr(std::min<int64_t>(4, c0 + rows - i0), [&](auto mr) {
              if constexpr (decltype(mr)::value <= 4) tile_half_avx2<decltype(mr)::value>(v, t, h, x, i0, bias, y, N);
            });
      }
    }
}

}  // namespace

bool w4_isa_supported(W4Isa isa) {
  switch (isa) {
    case W4Isa::Scalar: return true;
    case W4Isa::Avx2: return gemm_isa_supported(GemmIsa::Avx2) && __builtin_cpu_supports("f16c");
    case W4Isa::Avx512: return gemm_isa_supported(GemmIsa::Avx512) && __builtin_cpu_supports("f16c");
    case W4Isa::Avx512Vnni:
    case W4Isa::Avx512VnniInt8x2:
      return w4_isa_supported(W4Isa::Avx512) && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    case W4Isa::Avx2Int8x2: return w4_isa_supported(W4Isa::Avx2);
    case W4Isa::AvxVnniInt8x2: return w4_isa_supported(W4Isa::Avx2) && __builtin_cpu_supports("avxvnni");
  }
  return false;
}

bool w4_isa_int8(W4Isa isa) { return w4_isa_int8x1(isa) || w4_isa_int8x2(isa); }
bool w4_isa_int8x1(W4Isa isa) { return isa == W4Isa::Avx2 || isa == W4Isa::Avx512Vnni; }
bool w4_isa_int8x2(W4Isa isa) {
  return isa == W4Isa::Avx2Int8x2 || isa == W4Isa::Avx512VnniInt8x2 || isa == W4Isa::AvxVnniInt8x2;
}

W4Act w4_act_from_env() {
  static const W4Act acts[] = {W4Act::Int8x2, W4Act::Auto, W4Act::Int8, W4Act::F32};
  return acts[env_choice("AWQ_W4_ACT", std::getenv("AWQ_W4_ACT"),
                         {{"int8x2", "the default, close to exact"},
                          {"auto", "int8x2 for decode rows, int8 for prefill"},
                          {"int8", "fastest, lossy"},
                          {"f32", "exact"}},
                         0)];
}

int64_t w4_decode_prefetch_bytes(const char* value) {
  static const int64_t bytes[] = {4096, 0, 2048, 8192};
  return bytes[env_choice("AWQ_W4_PREFETCH", value,
                          {{"4096", "the default distance in bytes"},
                           {"0", "no software prefetch (the hardware prefetcher alone)"},
                           {"2048", "2 KB ahead"},
                           {"8192", "8 KB ahead"}},
                          0)];
}

namespace {
std::atomic<int> g_isa_override{-1};
}  // namespace

void w4_override_isa(std::optional<W4Isa> isa) {
  if (isa) check_isa(*isa);
  g_isa_override.store(isa ? int(*isa) : -1, std::memory_order_relaxed);
}

W4Isa w4_best_isa() {
  if (const int o = g_isa_override.load(std::memory_order_relaxed); o >= 0) return W4Isa(o);
  static const W4Isa isa = [] {
    const GemmIsa g = gemm_best_isa();  // honours AWQ_CPU_ISA
    const W4Act act = w4_act_from_env();
    if (act == W4Act::F32) return g == GemmIsa::Avx512 && w4_isa_supported(W4Isa::Avx512) ? W4Isa::Avx512 : W4Isa::Scalar;
    const bool x2 = act == W4Act::Int8x2 || act == W4Act::Auto;
    if (g == GemmIsa::Avx512 && w4_isa_supported(W4Isa::Avx512Vnni)) return x2 ? W4Isa::Avx512VnniInt8x2 : W4Isa::Avx512Vnni;
    const bool avx_vnni = cpu_isa_cap() <= CpuIsaCap::AvxVnni && w4_isa_supported(W4Isa::AvxVnniInt8x2);
    if (g != GemmIsa::Portable && w4_isa_supported(W4Isa::Avx2))
      return !x2 ? W4Isa::Avx2 : avx_vnni ? W4Isa::AvxVnniInt8x2 : W4Isa::Avx2Int8x2;
    return W4Isa::Scalar;
  }();
  return isa;
}

W4Isa w4_isa_for_rows(int64_t n) {
  if (const int o = g_isa_override.load(std::memory_order_relaxed); o >= 0) return W4Isa(o);
  static const bool auto_act = w4_act_from_env() == W4Act::Auto;
  const W4Isa isa = w4_best_isa();
  if (!auto_act || n <= kW4DecodeRows) return isa;
  if (isa == W4Isa::Avx512VnniInt8x2) return W4Isa::Avx512Vnni;
  return isa == W4Isa::Avx2Int8x2 || isa == W4Isa::AvxVnniInt8x2 ? W4Isa::Avx2 : isa;
}

const char* w4_isa_name(W4Isa isa) {
  switch (isa) {
    case W4Isa::Scalar: return "scalar-f32";
    case W4Isa::Avx2: return "avx2-int8";
    case W4Isa::Avx512: return "avx512-f32";
    case W4Isa::Avx512Vnni: return "avx512-vnni-int8";
    case W4Isa::Avx2Int8x2: return "avx2-int8x2";
    case W4Isa::Avx512VnniInt8x2: return "avx512-vnni-int8x2";
    case W4Isa::AvxVnniInt8x2: return "avx-vnni-int8x2";
  }
  return "?";
}

bool w4_layout_fits(int64_t cols, int group) {
  return cols > 0 && group > 0 && cols % 32 == 0 && group % 32 == 0 && cols % group == 0;
}

bool w4_ready(const Matrix& w) {
  return w.kind == MatrixKind::AwqGemm && w.awq.w4_codes && w.awq.w4_scales && w.awq.w4_zeros &&
         w4_layout_fits(w.cols, w.awq.group);
}

W4Tiles w4_repack(const uint32_t* row_codes, const uint8_t* row_zeros, const uint16_t* row_scales,
                  int64_t rows, int64_t cols, int group) {
  if (!w4_layout_fits(cols, group)) throw std::logic_error("w4_repack: shape does not fit the W4 layout");
  const int64_t tiles = (rows + T - 1) / T, G = cols / group, wpr = cols / 8;
  const size_t code_bytes = size_t(tiles * (cols / 8) * kLine), meta = size_t(tiles * G * T);
  auto up64 = [](size_t b) { return (b + 63) / 64 * 64; };
  W4Tiles out;
  out.bytes = up64(code_bytes) + up64(meta * 2) + up64(meta);
  out.mem.reset(static_cast<uint8_t*>(std::aligned_alloc(64, out.bytes)));
  if (!out.mem) throw std::bad_alloc();
  std::memset(out.mem.get(), 0, out.bytes);
  out.codes = out.mem.get();
  out.scales = reinterpret_cast<uint16_t*>(out.codes + up64(code_bytes));
  out.zeros = reinterpret_cast<uint8_t*>(out.codes + up64(code_bytes) + up64(meta * 2));
  auto code = [&](int64_t r, int64_t k) { return (row_codes[r * wpr + k / 8] >> (4 * (k % 8))) & 0xFu; };
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = r / T, l = r % T;
    uint8_t* tc = out.codes + t * (cols / 8) * kLine + l * 4;
    for (int64_t k = 0; k < cols; k += 8)
      for (int b = 0; b < 4; ++b)
        tc[(k / 8) * kLine + b] = uint8_t(code(r, k + b) | code(r, k + 4 + b) << 4);
    for (int64_t g = 0; g < G; ++g) {
      out.scales[(t * G + g) * T + l] = row_scales[r * G + g];
      out.zeros[(t * G + g) * T + l] = row_zeros[r * G + g];
    }
  }
  return out;
}

void w4_attach(Matrix& w, const W4Tiles& t) {
  w4_best_isa();  // a bad AWQ_W4_ACT fails here, at load, rather than in the first forward
  w.awq.w4_codes = t.codes;
  w.awq.w4_scales = t.scales;
  w.awq.w4_zeros = t.zeros;
}

namespace {

// x quantized for the integer kernels of `isa` (XInt8's layout), in the calling thread's
// buffers, kept so that decode steps allocate nothing. x: [n, K], weight groups of gs inputs.
XInt8 quantize_x(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, int64_t K, int64_t gs) {
  const bool x2 = w4_isa_int8x2(isa);
  const int64_t G = K / gs, B = x2 ? 16 : 8, R = std::min(n, kXChunkRows), step = R * B, chunk = K / 8 * step;
  const int64_t chunks = (n + R - 1) / R;
  thread_local std::vector<int8_t> xq;  // XInt8's layout
  thread_local std::vector<float> unit, zsum;  // [n, G] each
  if (int64_t(xq.size()) < chunks * chunk) xq.resize(size_t(chunks * chunk));
  if (int64_t(unit.size()) < n * G) unit.resize(size_t(n * G)), zsum.resize(size_t(n * G));
  // The caller's buffers, by pointer: inside a pool thread the names would be its own.
  int8_t* const q = xq.data();
  float* const u = unit.data();
  float* const zs = zsum.data();
  const XInt8 xi{q, R, B, step, chunk, u, zs, G};
  // The VNNI kernels take int8x2 digits, the AVX2 ones the same codes whole as int16. AVX-512
  // only beside the VNNI kernels, so AWQ_CPU_ISA=avx2 keeps the whole path AVX2.
  const bool vnni = isa_vnni(isa);
  const ActQuantIsa aq = vnni ? ActQuantIsa::Avx512 : ActQuantIsa::Avx2;
  auto quantize_rows = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int8_t* const qi = q + xi.row_offset(i);
      if (!x2) quantize_act_int8(aq, x + i * K, K, gs, qi, step, u + i * G, zs + i * G);
      else if (vnni) quantize_act_int8x2(aq, x + i * K, K, gs, qi, step, u + i * G, zs + i * G);
      else quantize_act_int16(aq, x + i * K, K, gs, qi, step, u + i * G, zs + i * G);
    }
  };
  if (n > 8) pool.parallel_for(n, quantize_rows, /*min_chunk=*/4);
  else quantize_rows(0, n);
  return xi;
}

void check_matmul(W4Isa isa, const Matrix& w, int64_t n) {
  check_isa(isa);
  if (!w4_ready(w)) throw std::logic_error("w4_matmul: matrix lacks the W4 kernel layout");
  if (n < 1 || (!w4_isa_int8(isa) && n > kW4GemvMaxRows)) throw std::logic_error("w4_matmul: n out of range");
}

}  // namespace

void w4_matmul(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const Matrix& w,
               const float* bias, float* y) {
  if (w4_isa_int8(isa)) {  // the one-product case of w4_matmul_many (which checks the arguments)
    const W4Product p{&w, bias, y};
    return w4_matmul_many(pool, isa, x, n, &p, 1);
  }
  check_matmul(isa, w, n);
  const TileView v(w);
  const int64_t N = v.N, tiles = v.tiles();
  pool.parallel_for(tiles, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (isa == W4Isa::Avx512) {
        with_mr(n, [&](auto nx) { tile_f32_avx512<decltype(nx)::value>(v, t, x, y, N); });
      } else {
        for (int64_t l = 0; l < T && t * T + l < N; ++l) row_scalar(v, t, l, x, n, y + t * T + l, N);
      }
      if (bias)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = t * T; r < std::min(N, (t + 1) * T); ++r) y[i * N + r] += bias[r];
    }
  });
}

bool w4_can_share_x(const Matrix& a, const Matrix& b) {
  return w4_ready(a) && w4_ready(b) && a.cols == b.cols && a.awq.group == b.awq.group;
}

void w4_matmul_many(ThreadPool& pool, W4Isa isa, const float* x, int64_t n, const W4Product* ps, int count) {
  if (count < 1) return;
  for (int j = 0; j < count; ++j) {
    check_matmul(isa, *ps[j].w, n);
    if (!w4_can_share_x(*ps[0].w, *ps[j].w)) throw std::logic_error("w4_matmul_many: matrices of other cols or group");
  }
  if (!w4_isa_int8(isa)) {  // the f32 kernels read x as it is: nothing to share
    for (int j = 0; j < count; ++j) w4_matmul(pool, isa, x, n, *ps[j].w, ps[j].bias, ps[j].y);
    return;
  }
  const TileView v0(*ps[0].w);
  const XInt8 xi = quantize_x(pool, isa, x, n, v0.K, v0.gs);
  int64_t total = 0;
  for (int j = 0; j < count; ++j) total += TileView(*ps[j].w).tiles();
  // One range over the matrices' tiles side by side: chunk [b, e) runs each matrix's share.
  pool.parallel_for(total, [&](int64_t b, int64_t e) {
    int64_t first = 0;
    for (int j = 0; j < count && first < e; ++j) {
      const TileView v(*ps[j].w);
      const int64_t t0 = std::max(b, first) - first, t1 = std::min(e, first + v.tiles()) - first;
      if (t0 < t1) tiles_int8(isa, v, t0, t1, xi, n, ps[j].bias, ps[j].y);
      first += v.tiles();
    }
  });
}

void w4_dequantize_rows(const Matrix& w, int64_t r0, int64_t count, float* out) {
  if (!w4_ready(w)) throw std::logic_error("w4_dequantize_rows: matrix lacks the W4 kernel layout");
  const TileView v(w);
  float lut[16];
  for (int64_t r = r0; r < r0 + count; ++r) {
    const int64_t t = r / T, l = r % T;
    float* o = out + (r - r0) * v.K;
    for (int64_t g = 0; g < v.G; ++g) {
      const int64_t sg = (t * v.G + g) * T + l;
      scalar_table(v.zeros[sg], v.scales[sg], lut);
      for (int64_t k = g * v.gs; k < (g + 1) * v.gs; k += 8) {
        const uint8_t* b = v.tile_codes(t) + (k / 8) * kLine + l * 4;
        for (int j = 0; j < 4; ++j) o[k + j] = lut[b[j] & 0xF], o[k + 4 + j] = lut[b[j] >> 4];
      }
    }
  }
}

}  // namespace awq
