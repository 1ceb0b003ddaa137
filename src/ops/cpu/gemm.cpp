#include "ops/cpu/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/env_choice.h"
#include "core/half.h"
#include "ops/cpu/avx2_tile.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4.h"

namespace awq {

namespace {

// ---------------------------------------------------------------------------------------------
// Micro-kernels. Each is a template over the tile height M (1..MR) so the row remainder of x
// runs the same code with fewer accumulators instead of padding. Accumulators stay in
// registers: MR x NR / lanes of them (AVX-512 8x32: 16 zmm; AVX2 6x16: 12 ymm, the most that
// leaves room for two B vectors and the broadcast in 16 registers).
// ---------------------------------------------------------------------------------------------

// Every kernel set: struct { mr, nr, template <int M> tile(...) } with
//   a: [M, kc] (row stride lda); b: [kc, nr]; c: [M, nc] (row stride ldc); bias: [nr] or null.
struct Avx512Kernel {
  static constexpr int mr = 8, nr = 32;
  template <int M>
  __attribute__((target("avx512f"))) static void tile(int64_t kc, const float* a, int64_t lda,
                                                      const float* b, float* c, int64_t ldc,
                                                      int nc, bool accumulate, const float* bias);
};
struct Avx2Kernel {
  static constexpr int mr = 6, nr = 16;
  template <int M>
  __attribute__((target("avx2,fma"))) static void tile(int64_t kc, const float* a, int64_t lda,
                                                       const float* b, float* c, int64_t ldc,
                                                       int nc, bool accumulate, const float* bias);
};
struct PortableKernel {
  static constexpr int mr = 4, nr = 8;
  template <int M>
  static void tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                   int64_t ldc, int nc, bool accumulate, const float* bias);
};

template <int M>
__attribute__((target("avx512f"))) void Avx512Kernel::tile(int64_t kc, const float* a, int64_t lda,
                                                           const float* b, float* c, int64_t ldc,
                                                           int nc, bool accumulate, const float* bias) {
  const __mmask16 m0 = nc >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nc) - 1);
  const __mmask16 m1 = nc >= 32   ? __mmask16(0xFFFF)
                       : nc <= 16 ? __mmask16(0)
                                  : __mmask16((1u << (nc - 16)) - 1);
  __m512 c0[M], c1[M];
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      c0[i] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
      c1[i] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    }
  } else {
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) c0[i] = b0, c1[i] = b1;
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * 32), b1 = _mm512_loadu_ps(b + k * 32 + 16);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
  }
}

template <int M>
__attribute__((target("avx2,fma"))) void Avx2Kernel::tile(int64_t kc, const float* a, int64_t lda,
                                                          const float* b, float* c, int64_t ldc,
                                                          int nc, bool accumulate, const float* bias) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
  const bool full = nc >= 16;
  __m256 c0[M], c1[M];
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      c0[i] = full ? _mm256_loadu_ps(c + i * ldc) : _mm256_maskload_ps(c + i * ldc, m0);
      c1[i] = full ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_maskload_ps(c + i * ldc + 8, m1);
    }
  } else {
    const __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    const __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) c0[i] = b0, c1[i] = b1;
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * 16), b1 = _mm256_loadu_ps(b + k * 16 + 8);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda + k);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
    if (full) {
      _mm256_storeu_ps(c + i * ldc, c0[i]);
      _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    } else {
      _mm256_maskstore_ps(c + i * ldc, m0, c0[i]);
      _mm256_maskstore_ps(c + i * ldc + 8, m1, c1[i]);
    }
  }
}

// Baseline x86-64 (SSE2) for CPUs without AVX2, written with GCC vector types so the 4 x 8
// accumulators are 8 registers (plain float arrays end up in memory).
template <int M>
void PortableKernel::tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                          int64_t ldc, int nc, bool accumulate, const float* bias) {
  typedef float v4 __attribute__((vector_size(16)));
  constexpr int NR = nr, V = NR / 4;
  float edge[M][NR] = {};  // c's partial columns (nc < NR), through memory
  if (accumulate)
    for (int i = 0; i < M; ++i) std::memcpy(edge[i], c + i * ldc, size_t(nc) * sizeof(float));
  v4 acc[M][V];
  for (int i = 0; i < M; ++i)
    for (int v = 0; v < V; ++v)
      std::memcpy(&acc[i][v], accumulate ? edge[i] + 4 * v : bias ? bias + 4 * v : edge[i] + 4 * v, 16);
  for (int64_t k = 0; k < kc; ++k) {
    v4 bk[V];
    std::memcpy(bk, b + k * NR, sizeof(bk));
    for (int i = 0; i < M; ++i) {
      const float ai = a[i * lda + k];
      for (int v = 0; v < V; ++v) acc[i][v] += ai * bk[v];
    }
  }
  for (int i = 0; i < M; ++i) {
    std::memcpy(edge[i], acc[i], sizeof(acc[i]));
    std::memcpy(c + i * ldc, edge[i], size_t(nc) * sizeof(float));
  }
}

// m -> tile<m>: the row remainder of a block dispatches to the matching instantiation.
using TileFn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, int, bool,
                        const float*);
template <class Kern, int... Ms>
constexpr std::array<TileFn, sizeof...(Ms)> tile_table(std::integer_sequence<int, Ms...>) {
  return {&Kern::template tile<Ms + 1>...};
}
template <class Kern>
void run_tile(int m, int64_t kc, const float* a, int64_t lda, const float* b, float* c,
              int64_t ldc, int nc, bool accumulate, const float* bias) {
  static constexpr auto table = tile_table<Kern>(std::make_integer_sequence<int, Kern::mr>{});
  table[size_t(m - 1)](kc, a, lda, b, c, ldc, nc, accumulate, bias);
}

// ---------------------------------------------------------------------------------------------
// Weight packing: rows of W into [K][nr] panels, f32. Dense weights go 8 rows x 8 inputs at a
// time through an 8x8 register transpose (F16C / shift / plain load widen them exactly as
// widen_row does); AWQ rows and the leftovers go through widen_row and a strided scatter.
// ---------------------------------------------------------------------------------------------

// 8 rows -> dst[k * nr + j] (j < 8) for k < K / 8 * 8. src: [8, K] elements of DT, row stride ld.
template <DType DT>
__attribute__((target("avx2,fma,f16c"))) void pack8_rows_avx2(const void* src, int64_t ld, int64_t K,
                                                              int64_t nr, float* dst) {
  constexpr int64_t es = DT == DType::F32 ? 4 : 2;  // element size
  const char* base = static_cast<const char*>(src);
  for (int64_t k0 = 0; k0 + 8 <= K; k0 += 8) {
    __m256 v[8];
    for (int i = 0; i < 8; ++i) v[i] = load8_f32<DT>(base + (i * ld + k0) * es);
    transpose8x8(v);  // v[k] lane i = row i, input k0 + k
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (k0 + k) * nr, v[k]);
  }
}

// Rows [r0, r0 + rows) of w into packed: [ceil(rows / nr)][K][nr], zero rows up to the last
// panel's end. tmp: [8, K] scratch. fast: AVX2 8-row transposes (dense weights straight from
// the matrix, others widened 8 rows at a time first); else widen_row and a strided scatter.
void pack_weight_rows(const Matrix& w, int64_t r0, int64_t rows, int64_t nr, bool fast,
                      float* packed, float* tmp) {
  const int64_t K = w.cols, padded = (rows + nr - 1) / nr * nr, k8 = K / 8 * 8;
  // column r % nr of panel r / nr
  auto col = [&](int64_t r) { return packed + (r / nr) * K * nr + r % nr; };
  const bool dense = !w.quantized() &&
                     (w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16);
  int64_t r = 0;
  for (; fast && r + 8 <= rows; r += 8) {
    if (dense) {
      const int64_t es = w.dtype == DType::F32 ? 4 : 2;
      const void* src = static_cast<const char*>(w.data) + (r0 + r) * K * es;  // [8, K]
      if (w.dtype == DType::F32) pack8_rows_avx2<DType::F32>(src, K, K, nr, col(r));
      else if (w.dtype == DType::F16) pack8_rows_avx2<DType::F16>(src, K, K, nr, col(r));
      else pack8_rows_avx2<DType::BF16>(src, K, K, nr, col(r));
    }
    if (!dense || k8 < K) {  // widen the rows (all of them, or for the K % 8 tail)
      if (w4_ready(w)) w4_dequantize_rows(w, r0 + r, 8, tmp);
      else for (int64_t i = 0; i < 8; ++i) widen_row(w, r0 + r + i, tmp + i * K);
      if (!dense) pack8_rows_avx2<DType::F32>(tmp, K, K, nr, col(r));
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t k = k8; k < K; ++k) col(r + i)[k * nr] = tmp[i * K + k];
    }
  }
  for (; r < padded; ++r) {
    float* dst = col(r);
    if (r < rows) {
      widen_row(w, r0 + r, tmp);
      for (int64_t k = 0; k < K; ++k) dst[k * nr] = tmp[k];
    } else {
      for (int64_t k = 0; k < K; ++k) dst[k * nr] = 0.0f;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Blocking. A task packs nc_blk rows of W ([K, nr] panels: K * nc_blk * 4 bytes, re-read once
// per block of kMc rows of x) and sweeps K in blocks of <= kKcMax so one panel slice
// (kc x nr) stays in L1 while a block of x rows (kMc x kc) streams from L2.
// ---------------------------------------------------------------------------------------------
constexpr int64_t kKcMax = 256;
constexpr int64_t kMc = 96;        // rows of x per sweep (rounded down to a multiple of mr)
constexpr int64_t kNcMax = 256;    // W rows per task

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

GemmIsa detect_isa() {
  const CpuIsaCap cap = cpu_isa_cap();
  if (cap == CpuIsaCap::Avx512 && gemm_isa_supported(GemmIsa::Avx512)) return GemmIsa::Avx512;
  if (cap != CpuIsaCap::Portable && gemm_isa_supported(GemmIsa::Avx2)) return GemmIsa::Avx2;
  return GemmIsa::Portable;
}

// ---------------------------------------------------------------------------------------------
// Few rows of x (decode): no packing, the weights are streamed once and widened in registers
// (F16C / shift), 4 rows of W at a time against every row of x. Memory-bound by design.
// ---------------------------------------------------------------------------------------------


template <DType DT>
float widen_one(const void* p, int64_t i) {
  if constexpr (DT == DType::F32) return static_cast<const float*>(p)[i];
  else if constexpr (DT == DType::F16) return fp16_to_f32(static_cast<const uint16_t*>(p)[i]);
  else return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
}

// y[i, r] = x[i] . w[r] (+ bias[r]) for i < NX, r in [r, r + R). x: [NX, K]; y: [NX, ldy].
template <DType DT, int NX, int R>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows(const float* x, const Matrix& w, int64_t r,
                                                       const float* bias, float* y, int64_t ldy) {
  constexpr int64_t es = DT == DType::F32 ? 4 : 2;
  const int64_t K = w.cols;
  const char* wr = static_cast<const char*>(w.data) + r * K * es;  // [R, K]
  __m256 acc[NX][R];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    // Rows are 1-2 pages long: too short for the hardware stream prefetcher to ramp up, so
    // fetch the next block's rows one cache line per row ahead (≈ +40 % on one core).
    if ((k * es) % 64 == 0)
      for (int j = 0; j < R; ++j) _mm_prefetch(wr + ((j + R) * K + k) * es, _MM_HINT_T0);
    __m256 wv[R];
    for (int j = 0; j < R; ++j) wv[j] = load8_f32<DT>(wr + (j * K + k) * es);
    for (int i = 0; i < NX; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * K + k);
      for (int j = 0; j < R; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < R; ++j) {
      float v = hsum8(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk) v += x[i * K + kk] * widen_one<DT>(wr + j * K * es, kk);
      y[i * ldy + r + j] = bias ? v + bias[r + j] : v;
    }
}

// The GEMV (matmul's 1-3 rows) and gemv_order_matmul (any n, the same sums): blocks of
// kOrderBlockRows rows of W (4 quads; 64 KB of fp16 at K = 2048), each against all n rows of x,
// 6 or 3 at a time. gemv_rows sums each (row of x, row of W) alone, in the same order for any
// NX and R, so the grouping does not change a bit.
constexpr int64_t kOrderBlockRows = 16;

template <DType DT, int R>
void gemv_order_rows(const float* x, int64_t n, const Matrix& w, int64_t r, const float* bias, float* y) {
  const int64_t K = w.cols, N = w.rows;
  int64_t i = 0;
  // 6 rows of x against 2 of W: 12 accumulators as 3 x 4, but a third fewer weight widenings a
  // product. (Widening the block to f32 once instead measured slower: twice the bytes from L2.)
  for (; i + 6 <= n; i += 6)
    for (int j = 0; j < R; j += 2) {
      if (j + 2 <= R) gemv_rows<DT, 6, 2>(x + i * K, w, r + j, bias, y + i * N, N);
      else gemv_rows<DT, 6, 1>(x + i * K, w, r + j, bias, y + i * N, N);
    }
  for (; i + 3 <= n; i += 3) gemv_rows<DT, 3, R>(x + i * K, w, r, bias, y + i * N, N);
  if (n - i == 2) gemv_rows<DT, 2, R>(x + i * K, w, r, bias, y + i * N, N);
  if (n - i == 1) gemv_rows<DT, 1, R>(x + i * K, w, r, bias, y + i * N, N);
}

template <DType DT>
void gemv_order(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias, float* y) {
  const int64_t N = w.rows, quads = N / 4, blocks = (quads * 4 + kOrderBlockRows - 1) / kOrderBlockRows;
  pool.parallel_for(blocks + 1, [&](int64_t b, int64_t e) {  // item `blocks`: the N % 4 last rows
    for (int64_t q = b; q < e; ++q) {
      if (q == blocks) {
        for (int64_t r = 4 * quads; r < N; ++r) gemv_order_rows<DT, 1>(x, n, w, r, bias, y);
        continue;
      }
      const int64_t r_end = std::min(4 * quads, (q + 1) * kOrderBlockRows);
      for (int64_t r = q * kOrderBlockRows; r < r_end; r += 4) gemv_order_rows<DT, 4>(x, n, w, r, bias, y);
    }
  }, /*min_chunk=*/std::max<int64_t>(1, 32 * 4 / kOrderBlockRows));  // 32 quads a chunk
}

}  // namespace

bool gemm_isa_supported(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Portable:
      return true;
    case GemmIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmIsa::Avx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

CpuIsaCap cpu_isa_cap() {
  // AWQ_CPU_ISA caps the choice (benchmarks; CPUs with slow AVX-512).
  static const CpuIsaCap cap = CpuIsaCap(env_choice("AWQ_CPU_ISA", std::getenv("AWQ_CPU_ISA"),
                                                    {{"avx512", "the default: the widest the CPU has"},
                                                     {"avxvnni", "at most AVX2, plus AVX-VNNI in the W4 kernels"},
                                                     {"avx2", "at most AVX2"},
                                                     {"portable", "plain C++ loops"}},
                                                    0));
  return cap;
}

GemmIsa gemm_best_isa() {
  static const GemmIsa isa = detect_isa();
  return isa;
}

const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Portable: return "portable";
    case GemmIsa::Avx2: return "avx2";
    case GemmIsa::Avx512: return "avx512";
  }
  return "?";
}

const TileKernel& tile_kernel(GemmIsa isa) {
  static constexpr TileKernel k512{Avx512Kernel::mr, Avx512Kernel::nr, run_tile<Avx512Kernel>};
  static constexpr TileKernel k256{Avx2Kernel::mr, Avx2Kernel::nr, run_tile<Avx2Kernel>};
  static constexpr TileKernel kPortable{PortableKernel::mr, PortableKernel::nr,
                                        run_tile<PortableKernel>};
  if (!gemm_isa_supported(isa))
    throw std::runtime_error(std::string("gemm: this CPU lacks ") + gemm_isa_name(isa));
  return isa == GemmIsa::Avx512 ? k512 : isa == GemmIsa::Avx2 ? k256 : kPortable;
}

void pack_panel(const float* src, int64_t ld, int64_t kc, int nc, int nr, float* panel) {
  for (int64_t k = 0; k < kc; ++k) {
    float* dst = panel + k * nr;
    std::memcpy(dst, src + k * ld, size_t(nc) * sizeof(float));
    std::fill(dst + nc, dst + nr, 0.0f);
  }
}

void pack_panel_t(const float* src, int64_t ld, int64_t kc, int nc, int nr, float* panel) {
  for (int64_t k = 0; k < kc; ++k) {
    float* dst = panel + k * nr;
    for (int j = 0; j < nc; ++j) dst[j] = src[j * ld + k];
    std::fill(dst + nc, dst + nr, 0.0f);
  }
}

void matmul_blocked(ThreadPool& pool, GemmIsa isa, const float* x, int64_t n, const Matrix& w,
                    const float* bias, float* y) {
  const TileKernel& tk = tile_kernel(isa);
  const int64_t K = w.cols, N = w.rows, mr = tk.mr, nr = tk.nr;
  if (n <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = bias ? bias[j] : 0.0f;
    return;
  }
  const int64_t kc_blk = ceil_div(K, ceil_div(K, kKcMax));  // near-equal K blocks
  const int64_t mc = std::max(mr, kMc / mr * mr);
  const int64_t threads = pool.size();
  // Column blocks: about 4 per thread (dynamic scheduling evens out uneven blocks and a core
  // shared with other work), each a multiple of nr.
  const int64_t nc_blk = std::clamp(ceil_div(ceil_div(N, 4 * threads), nr) * nr, nr, kNcMax);
  const int64_t col_blocks = ceil_div(N, nc_blk);
  // Too few column blocks to feed every thread (small N, e.g. k/v projections on many
  // threads): also split the rows; each row block then widens its columns again.
  int64_t row_blocks = 1;
  if (col_blocks < 2 * threads)
    row_blocks = std::clamp(ceil_div(2 * threads, col_blocks), int64_t(1), ceil_div(n, 4 * mr));
  const int64_t rows_per_block = ceil_div(ceil_div(n, row_blocks), mr) * mr;
  row_blocks = ceil_div(n, rows_per_block);
  const int64_t tasks = col_blocks * row_blocks;

  // The portable ISA also packs portably, so the tests cover that path on any CPU.
  const bool fast_pack = isa != GemmIsa::Portable && __builtin_cpu_supports("f16c");
  // Per thread, from the pool's scratch: packed: [panels][K][nr] | tmp: [8, K] | biasp: [panels * nr]
  const int64_t max_panels = ceil_div(nc_blk, nr);
  pool.reserve_scratch(size_t(max_panels * nr * K + 8 * K + max_panels * nr) * sizeof(float));
  std::atomic<int64_t> next{0};
  auto run_task = [&](int64_t t) {
    const int64_t c0 = (t / row_blocks) * nc_blk, cn = std::min(nc_blk, N - c0);
    const int64_t panels = ceil_div(cn, nr);
    float* packed = ThreadPool::scratch<float>();
    float* tmp = packed + panels * nr * K;
    float* biasp = tmp + 8 * K;
    pack_weight_rows(w, c0, cn, nr, fast_pack, packed, tmp);
    for (int64_t r = 0; r < panels * nr; ++r) biasp[r] = bias && r < cn ? bias[c0 + r] : 0.0f;
    const int64_t i0 = (t % row_blocks) * rows_per_block, i1 = std::min(n, i0 + rows_per_block);
    for (int64_t ic = i0; ic < i1; ic += mc) {
      const int64_t ie = std::min(i1, ic + mc);
      for (int64_t pc = 0; pc < K; pc += kc_blk) {
        const int64_t kc = std::min(kc_blk, K - pc);
        for (int64_t p = 0; p < panels; ++p) {
          const float* bp = packed + p * K * nr + pc * nr;  // [kc, nr]
          const int nc = int(std::min(nr, cn - p * nr));
          for (int64_t ir = ic; ir < ie; ir += mr)
            tk.run(int(std::min(mr, ie - ir)), kc, x + ir * K + pc, K, bp, y + ir * N + c0 + p * nr,
                   N, nc, pc > 0, bias ? biasp + p * nr : nullptr);
        }
      }
    }
  };
  const int64_t workers = std::min(threads, tasks);
  pool.parallel_for(workers, [&](int64_t, int64_t) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) run_task(t);
  });
}

namespace {
bool reference_only() {  // AWQ_MATMUL=reference
  static const bool r = env_choice("AWQ_MATMUL", std::getenv("AWQ_MATMUL"),
                                   {{"fast", "the default: the fastest kernels"}, {"reference", "the plain reference matmul"}},
                                   0) == 1;
  return r;
}
}  // namespace

void matmul(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias,
            float* y) {
  if (n <= 0) return;
  if (reference_only()) return matmul_ref(pool, x, n, w, bias, y);
  if (w4_ready(w)) {
    // int8-activation W4 kernels take any row count (each row's result is the same whatever
    // rows share the call); the exact f32 ones only decode, prefill dequantizes into the GEMM.
    const W4Isa isa4 = w4_isa_for_rows(n);
    if (w4_isa_int8(isa4) || n <= kW4GemvMaxRows) return w4_matmul(pool, isa4, x, n, w, bias, y);
  }
  if (n < kGemmMinRows) {
    if (dense_row_kernels_supported() && !w.quantized()) {
      switch (w.dtype) {
        case DType::F32: return gemv_order<DType::F32>(pool, x, n, w, bias, y);
        case DType::F16: return gemv_order<DType::F16>(pool, x, n, w, bias, y);
        case DType::BF16: return gemv_order<DType::BF16>(pool, x, n, w, bias, y);
        default: break;
      }
    }
    // AWQ weights without the W4 layout (shapes it does not fit) and CPUs without AVX2.
    return matmul_ref(pool, x, n, w, bias, y);
  }
  matmul_blocked(pool, gemm_best_isa(), x, n, w, bias, y);
}

bool dense_row_kernels_supported() {
  static const bool ok = gemm_best_isa() != GemmIsa::Portable && __builtin_cpu_supports("avx2") &&
                         __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
}

bool gemv_order_matmul(ThreadPool& pool, const float* x, int64_t n, const Matrix& w, const float* bias, float* y) {
  if (!dense_row_kernels_supported() || w.quantized() || reference_only()) return false;
  if (n <= 0) return true;
  switch (w.dtype) {
    case DType::F32: gemv_order<DType::F32>(pool, x, n, w, bias, y); return true;
    case DType::F16: gemv_order<DType::F16>(pool, x, n, w, bias, y); return true;
    case DType::BF16: gemv_order<DType::BF16>(pool, x, n, w, bias, y); return true;
    default: return false;
  }
}

void matmul_many(ThreadPool& pool, const float* x, int64_t n, const W4Product* ps, int count) {
  if (n <= 0 || count < 1) return;
  const W4Isa isa = w4_isa_for_rows(n);
  bool shared = !reference_only() && w4_isa_int8(isa);
  for (int j = 0; j < count && shared; ++j) shared = w4_can_share_x(*ps[0].w, *ps[j].w);
  if (shared) return w4_matmul_many(pool, isa, x, n, ps, count);
  for (int j = 0; j < count; ++j) matmul(pool, x, n, *ps[j].w, ps[j].bias, ps[j].y);
}

}  // namespace awq
