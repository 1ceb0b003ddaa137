// The AWQ search on the GPU (quant/awq_search_cuda.h): the algorithm of quant/awq_search.cpp
// with the FP layer, the scale candidates' losses and the clip search on the device.
#include "quant/awq_search_cuda.h"

#include <cublas_v2.h>  // types; the calls go through cublas_loader.h
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "ops/cuda/cuda_attention.h"
#include "ops/cuda/cuda_flash_prefill.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_ops.h"
#include "quant/awq_search_detail.h"
#include "quant/scale_fold.h"

namespace awq {

namespace {

constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr int kReduceBlocks = 512;  // fixed grid of the MSE reduction: a deterministic sum

unsigned blocks_for(int64_t threads) { return unsigned((threads + kBlock - 1) / kBlock); }

// ---------------------------------------------------------------------------------------------
// Kernels

// The quantization grid of one group, as quant/fake_quant.cpp computes it. Every operation is
// an explicitly rounded IEEE f32 op (no fused multiply-add), so the values equal the CPU's.
struct GroupGrid {
  float s = 1.0f, z = 0.0f, lo = 0.0f, hi = 0.0f;
  bool zp = true;
};

__device__ GroupGrid group_grid(float mn, float mx, float amax, int bits, bool zp) {
  GroupGrid g;
  g.zp = zp;
  if (zp) {
    const float max_int = float((1 << bits) - 1);
    g.s = __fdiv_rn(fmaxf(__fsub_rn(mx, mn), 1e-5f), max_int);
    g.z = fminf(fmaxf(-rintf(__fdiv_rn(mn, g.s)), 0.0f), max_int);
    g.lo = 0.0f, g.hi = max_int;
  } else {
    const float max_int = float((1 << (bits - 1)) - 1);
    g.s = __fdiv_rn(fmaxf(amax, 1e-5f), max_int);
    g.lo = -float(1 << (bits - 1)), g.hi = max_int;
  }
  return g;
}

__device__ float fake_quant_value(float v, const GroupGrid& g) {
  if (g.zp) return __fmul_rn(__fsub_rn(fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(v, g.s)), g.z), g.lo), g.hi), g.z), g.s);
  return __fmul_rn(fminf(fmaxf(rintf(__fdiv_rn(v, g.s)), g.lo), g.hi), g.s);
}

__device__ void warp_min_max(float& mn, float& mx, float& amax) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  }
}

__device__ void store(float* p, float v) { *p = v; }
__device__ void store(__half* p, float v) { *p = __float2half_rn(v); }

// out = Q(w * s) / s per group of G columns (s null: Q(w)); one warp per (row, group).
// w: [rows, cols] f32; s: [cols] or null; out: [rows, cols] (f32 or fp16; may equal w for f32).
template <class Out>
__global__ void fake_quant_kernel(const float* w, const float* __restrict__ s, int64_t rows, int64_t cols,
                                  int G, int bits, bool zp, Out* out) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t ng = cols / G;
  if (warp >= rows * ng) return;  // whole warps leave together (blockDim is a multiple of 32)
  const int64_t off = (warp / ng) * cols + (warp % ng) * G;
  const float* src = w + off;
  const float* sc = s ? s + (warp % ng) * G : nullptr;
  float mn = INFINITY, mx = -INFINITY, amax = 0.0f;
  for (int k = lane; k < G; k += kWarp) {
    const float v = sc ? __fmul_rn(src[k], sc[k]) : src[k];
    mn = fminf(mn, v), mx = fmaxf(mx, v), amax = fmaxf(amax, fabsf(v));
  }
  warp_min_max(mn, mx, amax);
  const GroupGrid g = group_grid(mn, mx, amax, bits, zp);
  // out may alias w: each element is read and then written by the same lane only.
  for (int k = lane; k < G; k += kWarp) {
    const float v = sc ? __fmul_rn(src[k], sc[k]) : src[k];
    float q = fake_quant_value(v, g);
    if (sc) q = __fdiv_rn(q, sc[k]);
    store(out + off + k, q);
  }
}

// Clip search, per (row, group) of w [out, in]: amax = max |w|, best_max = amax, best_err = inf.
__global__ void clip_init_kernel(const float* __restrict__ w, int64_t out, int64_t in, int G, float* amax,
                                 float* best_max, double* best_err) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t ng = in / G;
  if (warp >= out * ng) return;
  const float* src = w + (warp / ng) * in + (warp % ng) * G;
  float m = 0.0f, unused0 = 0.0f, unused1 = 0.0f;
  for (int k = lane; k < G; k += kWarp) m = fmaxf(m, fabsf(src[k]));
  warp_min_max(unused0, unused1, m);
  if (lane == 0) {
    amax[warp] = best_max[warp] = m;
    best_err[warp] = INFINITY;
  }
}

// dw = Q(clamp(w, -mv, mv)) - w with mv = amax * shrink, per (row, group). w, dw: [out, in].
__global__ void clip_delta_kernel(const float* __restrict__ w, int64_t out, int64_t in, int G, int bits, bool zp,
                                  const float* __restrict__ amax, float shrink, float* __restrict__ dw) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t ng = in / G;
  if (warp >= out * ng) return;
  const int64_t off = (warp / ng) * in + (warp % ng) * G;
  const float mv = __fmul_rn(amax[warp], shrink);
  float mn = INFINITY, mx = -INFINITY, am = 0.0f;
  for (int k = lane; k < G; k += kWarp) {
    const float v = fminf(fmaxf(w[off + k], -mv), mv);
    mn = fminf(mn, v), mx = fmaxf(mx, v), am = fmaxf(am, fabsf(v));
  }
  warp_min_max(mn, mx, am);
  const GroupGrid g = group_grid(mn, mx, am, bits, zp);
  for (int k = lane; k < G; k += kWarp) {
    const float src = w[off + k];
    dw[off + k] = __fsub_rn(fake_quant_value(fminf(fmaxf(src, -mv), mv), g), src);
  }
}

// err = dw . e per (row, group) in double; keeps the least error's clip. dw, e: [out, in].
__global__ void clip_pick_kernel(const float* __restrict__ dw, const float* __restrict__ e, int64_t out,
                                 int64_t in, int G, const float* __restrict__ amax, float shrink, float* best_max,
                                 double* best_err) {
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  const int64_t ng = in / G;
  if (warp >= out * ng) return;
  const int64_t off = (warp / ng) * in + (warp % ng) * G;
  double err = 0.0;
  for (int k = lane; k < G; k += kWarp) err += double(dw[off + k]) * double(e[off + k]);
  for (int o = kWarp / 2; o > 0; o /= 2) err += __shfl_xor_sync(0xffffffffu, err, o);
  if (lane == 0 && err < best_err[warp]) {
    best_err[warp] = err;
    best_max[warp] = __fmul_rn(amax[warp], shrink);
  }
}

// w = clamp(w, -best_max, best_max) per (row, group). w: [out, in]; best_max: [out, in / G].
__global__ void clip_apply_kernel(float* w, int64_t out, int64_t in, int G, const float* __restrict__ best_max) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= out * in) return;
  const float m = best_max[(i / in) * (in / G) + (i % in) / G];
  w[i] = fminf(fmaxf(w[i], -m), m);
}

// H = H / n, then (scales given) H[g][i][j] / (s[gG + i] * s[gG + j]): the Gram blocks of
// x / s. h: [ng, G, G]; s: [ng * G] or null.
__global__ void gram_finish_kernel(float* h, int64_t ng, int G, float n, const float* __restrict__ s) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t gg = int64_t(G) * G;
  if (i >= ng * gg) return;
  float v = __fdiv_rn(h[i], n);
  if (s) {
    const int64_t g = i / gg, r = (i % gg) / G, c = i % G;
    v = __fdiv_rn(v, __fmul_rn(s[g * G + r], s[g * G + c]));
  }
  h[i] = v;
}

// Per column partial sums of |x| over a chunk of rows. x: [rows, cols] fp16;
// partial: [gridDim.y, cols] double.
__global__ void abs_sum_kernel(const __half* __restrict__ x, int64_t rows, int64_t cols, double* partial) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t chunk = (rows + gridDim.y - 1) / gridDim.y;
  const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(rows, r0 + chunk);
  double acc = 0.0;
  for (int64_t r = r0; r < r1; ++r) acc += fabs(double(__half2float(x[r * cols + c])));
  partial[int64_t(blockIdx.y) * cols + c] = acc;
}

// out[c] = float(sum_p partial[p][c] / n). partial: [parts, cols]; out: [cols].
__global__ void abs_mean_kernel(const double* __restrict__ partial, int parts, int64_t cols, double n, float* out) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double acc = 0.0;
  for (int p = 0; p < parts; ++p) acc += partial[int64_t(p) * cols + c];
  out[c] = float(acc / n);
}

// partial[block] = sum (a - b)^2 over a grid-stride share. a, b: [n] f32; partial: [gridDim.x].
__global__ void sq_diff_kernel(const float* __restrict__ a, const float* __restrict__ b, int64_t n, double* partial) {
  __shared__ double red[kBlock];
  double acc = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double d = double(a[i]) - double(b[i]);
    acc += d * d;
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int o = kBlock / 2; o > 0; o /= 2) {
    if (int(threadIdx.x) < o) red[threadIdx.x] += red[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = red[0];
}

// *acc += sum of partial[0 .. parts) in a fixed order. One block of kBlock threads.
__global__ void sum_partials_kernel(const double* __restrict__ partial, int parts, double* acc) {
  __shared__ double red[kBlock];
  double v = 0.0;
  for (int i = int(threadIdx.x); i < parts; i += kBlock) v += partial[i];
  red[threadIdx.x] = v;
  __syncthreads();
  for (int o = kBlock / 2; o > 0; o /= 2) {
    if (int(threadIdx.x) < o) red[threadIdx.x] += red[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) *acc += red[0];
}

// dst[i] = fp16(src[i]). n elements.
__global__ void to_half_kernel(const float* __restrict__ src, int64_t n, __half* __restrict__ dst) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __float2half_rn(src[i]);
}

// y[r][j] += bias[j]. y: [m, n]; bias: [n] f32.
template <class T>
__global__ void add_bias_kernel(T* y, const float* __restrict__ bias, int64_t m, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m * n) return;
  if constexpr (std::is_same_v<T, float>) {
    y[i] += bias[i % n];
  } else {
    y[i] = __float2half_rn(__half2float(y[i]) + bias[i % n]);
  }
}

// x += widen(delta). x: [n] f32; delta: [n] fp16.
__global__ void add_residual_kernel(float* x, const __half* __restrict__ delta, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += __half2float(delta[i]);
}

// dst[i] = src[rows[i]], rows of `cols` fp16. dst: [n, cols].
__global__ void gather_rows_kernel(const __half* __restrict__ src, const int64_t* __restrict__ rows, int64_t n,
                                   int64_t cols, __half* __restrict__ dst) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * cols) return;
  dst[i] = src[rows[i / cols] * cols + i % cols];
}

// ---------------------------------------------------------------------------------------------
// Device memory

// Counts the bytes this process's search allocated and samples the device's use.
struct MemTracker {
  int64_t allocated = 0;
  double peak_used = 0;  // bytes, total - free
  void sample() {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      peak_used = std::max(peak_used, double(total_b - free_b));
  }
};

template <class T>
class DevBuf {
 public:
  DevBuf() = default;
  DevBuf(int64_t count, MemTracker& mem, const char* what) : n_(count), mem_(&mem) {
    if (count <= 0) return;
    const cudaError_t e = cudaMalloc(&p_, size_t(count) * sizeof(T));
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(std::string("--device cuda: cannot allocate ") + std::to_string((size_t(count) * sizeof(T)) >> 20) +
                  " MiB of GPU memory for " + what + " (" + cudaGetErrorString(e) +
                  "); use fewer calibration tokens (--n-samples, --seqlen) or --device cpu");
    }
    mem.allocated += count * int64_t(sizeof(T));
    mem.sample();
  }
  DevBuf(DevBuf&& o) noexcept { *this = std::move(o); }
  DevBuf& operator=(DevBuf&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_), std::swap(mem_, o.mem_);
    return *this;
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p_) {
      cudaFree(p_);
      if (mem_) mem_->allocated -= n_ * int64_t(sizeof(T));
    }
  }
  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
  MemTracker* mem_ = nullptr;
};

template <class T>
void upload(T* dst, const T* src, int64_t count, cudaStream_t s) {
  if (count > 0) AWQ_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(count) * sizeof(T), cudaMemcpyHostToDevice, s));
}
template <class T>
void download(T* dst, const T* src, int64_t count, cudaStream_t s) {
  if (count > 0) AWQ_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(count) * sizeof(T), cudaMemcpyDeviceToHost, s));
  AWQ_CUDA_CHECK(cudaStreamSynchronize(s));
}

// A stream and a cuBLAS handle on it.
struct Gpu {
  cudaStream_t s = nullptr;
  cublasHandle_t blas = nullptr;
  Gpu() {
    std::string why;
    if (!cuda::cuda_available(&why)) throw Error("--device cuda: no usable CUDA device: " + why + "; use --device cpu");
    AWQ_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    AWQ_CUBLAS_CHECK(cuda::cublas_api().create(&blas));
    AWQ_CUBLAS_CHECK(cuda::cublas_api().set_stream(blas, s));
  }
  ~Gpu() {
    if (blas) cuda::cublas_api().destroy(blas);
    if (s) cudaStreamDestroy(s);
  }
  Gpu(const Gpu&) = delete;
  Gpu& operator=(const Gpu&) = delete;
};

// ---------------------------------------------------------------------------------------------
// Launchers

void launch_fake_quant_f32(const float* w, const float* s, int64_t rows, int64_t cols, const QuantParams& p,
                           float* out, cudaStream_t st) {
  fake_quant_kernel<float><<<blocks_for(rows * (cols / p.group) * kWarp), kBlock, 0, st>>>(
      w, s, rows, cols, p.group, p.bits, p.zero_point, out);
  AWQ_CUDA_CHECK_LAUNCH();
}
void launch_fake_quant_f16(const float* w, const float* s, int64_t rows, int64_t cols, const QuantParams& p,
                           __half* out, cudaStream_t st) {
  fake_quant_kernel<__half><<<blocks_for(rows * (cols / p.group) * kWarp), kBlock, 0, st>>>(
      w, s, rows, cols, p.group, p.bits, p.zero_point, out);
  AWQ_CUDA_CHECK_LAUNCH();
}

void to_half(const float* src, int64_t n, __half* dst, cudaStream_t s) {
  if (n <= 0) return;
  to_half_kernel<<<blocks_for(n), kBlock, 0, s>>>(src, n, dst);
  AWQ_CUDA_CHECK_LAUNCH();
}

// y[m, n] = x[m, k] W^T (+ bias), fp16 operands, f32 accumulation; y fp16 or f32.
// w: [n, k] fp16 row-major; bias: [n] f32 or null.
template <class Out>
void gemm(cublasHandle_t h, const __half* x, int64_t m, int64_t k, const __half* w, int64_t n, const float* bias,
          Out* y, cudaStream_t s) {
  if (m <= 0) return;
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType yt = std::is_same_v<Out, float> ? CUDA_R_32F : CUDA_R_16F;
  // Column-major: y^T [n, m] = W [n, k] (row-major = col-major [k, n], transposed) * x^T [k, m].
  AWQ_CUBLAS_CHECK(cuda::cublas_api().gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, w, CUDA_R_16F, int(k), x,
                                CUDA_R_16F, int(k), &zero, y, yt, int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (bias) {
    add_bias_kernel<Out><<<blocks_for(m * n), kBlock, 0, s>>>(y, bias, m, n);
    AWQ_CUDA_CHECK_LAUNCH();
  }
}

// Gram blocks of x rows 0, stride, .. < n_all: h: [in / G, G, G] = X_g^T X_g / n (/ s_i s_j).
// x: [n_all, in] fp16; s: [in] or null.
void grams(cublasHandle_t blas, const __half* x, int64_t n_all, int64_t in, int G, int64_t stride, const float* s,
           float* h, cudaStream_t st) {
  const int64_t n = (n_all + stride - 1) / stride, ng = in / G;
  const float one = 1.0f, zero = 0.0f;
  // Column-major, x is [in, n_all] (ld in); the rows we use are its columns 0, stride, ..: ld
  // in * stride. Group g is the sub-block of rows gG..gG+G: C_g [G, G] = A_g A_g^T.
  AWQ_CUBLAS_CHECK(cuda::cublas_api().gemm_strided_batched_ex(
      blas, CUBLAS_OP_N, CUBLAS_OP_T, G, G, int(n), &one, x, CUDA_R_16F, int(in * stride), G, x, CUDA_R_16F,
      int(in * stride), G, &zero, h, CUDA_R_32F, G, int64_t(G) * G, int(ng), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  gram_finish_kernel<<<blocks_for(ng * G * G), kBlock, 0, st>>>(h, ng, G, float(n), s);
  AWQ_CUDA_CHECK_LAUNCH();
}

// Scratch of clip_linear for the largest linear.
struct ClipScratch {
  DevBuf<float> dw, e, amax, best_max;  // [out, in] x2, [out, in / G] x2
  DevBuf<double> best_err;              // [out, in / G]
  ClipScratch() = default;
  ClipScratch(int64_t max_elems, int64_t max_groups, MemTracker& mem)
      : dw(max_elems, mem, "the clip search"), e(max_elems, mem, "the clip search"),
        amax(max_groups, mem, "the clip search"), best_max(max_groups, mem, "the clip search"),
        best_err(max_groups, mem, "the clip search") {}
};

// awq_clip_linear_gram on the device. w: [out, in] f32 in place; h: [in / G, G, G].
void clip_linear(cublasHandle_t blas, float* w, int64_t out, int64_t in, const float* h, const AwqSearchOptions& opt,
                 ClipScratch& sc, cudaStream_t st) {
  const int G = opt.qp.group;
  const int64_t ng = in / G, warps = out * ng;
  const int steps = int(opt.max_shrink * opt.n_grid);
  clip_init_kernel<<<blocks_for(warps * kWarp), kBlock, 0, st>>>(w, out, in, G, sc.amax.get(), sc.best_max.get(),
                                                                 sc.best_err.get());
  AWQ_CUDA_CHECK_LAUNCH();
  const float one = 1.0f, zero = 0.0f;
  for (int i = 0; i < steps; ++i) {
    const float shrink = 1.0f - float(i) / float(opt.n_grid);
    clip_delta_kernel<<<blocks_for(warps * kWarp), kBlock, 0, st>>>(w, out, in, G, opt.qp.bits, opt.qp.zero_point,
                                                                    sc.amax.get(), shrink, sc.dw.get());
    AWQ_CUDA_CHECK_LAUNCH();
    // e_g = dw_g H_g per group. Column-major: E_g [G, out] (ld in) = H_g [G, G] * DW_g [G, out]
    // (ld in); H_g is symmetric, so its row-major storage serves as itself.
    AWQ_CUBLAS_CHECK(cuda::cublas_api().sgemm_strided_batched(blas, CUBLAS_OP_N, CUBLAS_OP_N, G, int(out), G, &one, h, G,
                                               int64_t(G) * G, sc.dw.get(), int(in), G, &zero, sc.e.get(), int(in), G,
                                               int(ng)));
    clip_pick_kernel<<<blocks_for(warps * kWarp), kBlock, 0, st>>>(sc.dw.get(), sc.e.get(), out, in, G,
                                                                   sc.amax.get(), shrink, sc.best_max.get(),
                                                                   sc.best_err.get());
    AWQ_CUDA_CHECK_LAUNCH();
  }
  clip_apply_kernel<<<blocks_for(out * in), kBlock, 0, st>>>(w, out, in, G, sc.best_max.get());
  AWQ_CUDA_CHECK_LAUNCH();
}

void check_shapes(int64_t rows, int64_t cols, int G, const char* what) {
  if (rows <= 0 || cols <= 0 || G <= 0 || cols % G != 0)
    throw Error(std::string(what) + ": [" + std::to_string(rows) + ", " + std::to_string(cols) +
                "] is not a whole number of groups of " + std::to_string(G));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The layer search

struct AwqCudaSearch::Impl {
  ModelConfig c;
  AwqSearchOptions opt;
  int64_t n_seq = 0, seqlen = 0, T = 0;
  int64_t d = 0, qd = 0, kvd = 0, ff = 0, qkv_n = 0;
  int64_t chunk_seqs = 0, R = 0;  // sequences / rows per forward chunk
  detail::SearchSet set;
  int64_t n_s = 0, n_r = 0;  // search sequences, search rows
  bool fold_vo = false;
  bool has_qkv_bias = false, has_o_bias = false, has_mlp_bias = false;

  MemTracker mem;
  Gpu gpu;
  std::string name;

  // Weights of the current layer: f32 masters, fp16 working copies (what the GEMMs read).
  DevBuf<float> wq, wk, wv, wo, wg, wu, wd;
  DevBuf<float> attn_norm, ffn_norm, q_norm, k_norm;
  DevBuf<float> b_qkv, b_o, b_gu, b_down;  // fused; empty where the model has none
  DevBuf<__half> w_qkv16, w_o16, w_gu16, w_down16;  // [q+2kv, d], [d, q], [2ff, d], [d, ff]

  // Activations.
  DevBuf<float> x;                                  // [T, d] the layer input / FP output
  DevBuf<__half> cap_h_attn, cap_att, cap_h_mlp, cap_act;  // [T, d], [T, q], [T, d], [T, ff]
  DevBuf<__half> qkv16, o16, gu16, act16;           // [R, q+2kv], [R, d], [R, 2ff], [R, ff]
  DevBuf<__half> h16, att16;                        // [R, d], [R, q] (runs without captures)
  DevBuf<__half> k_cache, v_cache;                  // [chunk_seqs, seqlen, kv]
  DevBuf<int32_t> pos_slot;                         // [2, R]
  DevBuf<float> rope;                               // [seqlen, head_dim / 2, 2]
  DevBuf<float> x_search, y_search, fp_search;      // [n_s * seqlen, d]
  DevBuf<__half> h_search;                          // [n_s * seqlen, d] when n_s < n_seq
  DevBuf<__half> att_rows, hm_rows, act_rows;       // [n_r, q], [n_r, d], [n_r, ff] when n_r < T
  DevBuf<int64_t> rows_idx;                         // [n_r]
  DevBuf<float> ref_out, trial_out;                 // [max(n_s * seqlen, n_r), d]
  DevBuf<float> scales;                             // [n_grid, max(d, q, ff)]
  DevBuf<float> fold_s;                             // [max(d, q, ff)]
  DevBuf<double> partial, losses;                   // [max(kReduceBlocks, 64 * ff)], [n_grid + 2]
  DevBuf<float> col_mean;                           // [max(d, q, ff)]
  DevBuf<float> gram;                               // [max(in) * G]
  ClipScratch clip;

  cudaStream_t s() const { return gpu.s; }

  Impl(const ModelConfig& cfg, const std::vector<float>& inv_freq, int64_t ns, int64_t sl,
       const AwqSearchOptions& o)
      : c(cfg), opt(o), n_seq(ns), seqlen(sl), T(ns * sl) {
    if (!cuda::attention_supports(c.head_dim))
      throw Error("--device cuda: head_dim " + std::to_string(c.head_dim) +
                  " is not supported by the CUDA attention kernel (64, 128 or 256); use --device cpu");
    if (n_seq < 1 || seqlen < 1) throw Error("AwqCudaSearch: no calibration tokens");
    if (opt.n_grid < 1) throw Error("AWQ search: n_grid must be at least 1");
    d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size, qkv_n = qd + 2 * kvd;
    const int G = opt.qp.group;
    for (const int64_t in : {d, qd, ff})
      if (G <= 0 || in % G != 0)
        throw Error("--group " + std::to_string(G) + " does not divide the input size " + std::to_string(in));
    chunk_seqs = std::clamp<int64_t>(4096 / seqlen, 1, n_seq);
    R = chunk_seqs * seqlen;
    set = detail::pick_search_set(n_seq, seqlen, opt.search_tokens);
    n_s = int64_t(set.seqs.size()), n_r = int64_t(set.rows.size());
    fold_vo = opt.gqa_o_scale || (kvd == d && qd == d);
    has_qkv_bias = c.qkv_bias, has_o_bias = c.o_bias, has_mlp_bias = c.mlp_bias;
    int dev = 0;
    AWQ_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp prop{};
    AWQ_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    name = prop.name;
    mem.sample();

    wq = DevBuf<float>(qd * d, mem, "weights"), wk = DevBuf<float>(kvd * d, mem, "weights");
    wv = DevBuf<float>(kvd * d, mem, "weights"), wo = DevBuf<float>(d * qd, mem, "weights");
    wg = DevBuf<float>(ff * d, mem, "weights"), wu = DevBuf<float>(ff * d, mem, "weights");
    wd = DevBuf<float>(d * ff, mem, "weights");
    attn_norm = DevBuf<float>(d, mem, "norms"), ffn_norm = DevBuf<float>(d, mem, "norms");
    if (c.qk_norm) q_norm = DevBuf<float>(c.head_dim, mem, "norms"), k_norm = DevBuf<float>(c.head_dim, mem, "norms");
    if (has_qkv_bias) b_qkv = DevBuf<float>(qkv_n, mem, "biases");
    if (has_o_bias) b_o = DevBuf<float>(d, mem, "biases");
    if (has_mlp_bias) b_gu = DevBuf<float>(2 * ff, mem, "biases"), b_down = DevBuf<float>(d, mem, "biases");
    w_qkv16 = DevBuf<__half>(qkv_n * d, mem, "fp16 weights"), w_o16 = DevBuf<__half>(d * qd, mem, "fp16 weights");
    w_gu16 = DevBuf<__half>(2 * ff * d, mem, "fp16 weights"), w_down16 = DevBuf<__half>(d * ff, mem, "fp16 weights");

    x = DevBuf<float>(T * d, mem, "the calibration activations");
    cap_h_attn = DevBuf<__half>(T * d, mem, "the captured inputs");
    cap_att = DevBuf<__half>(T * qd, mem, "the captured inputs");
    cap_h_mlp = DevBuf<__half>(T * d, mem, "the captured inputs");
    cap_act = DevBuf<__half>(T * ff, mem, "the captured inputs");
    qkv16 = DevBuf<__half>(R * qkv_n, mem, "activations"), o16 = DevBuf<__half>(R * d, mem, "activations");
    gu16 = DevBuf<__half>(R * 2 * ff, mem, "activations"), act16 = DevBuf<__half>(R * ff, mem, "activations");
    h16 = DevBuf<__half>(R * d, mem, "activations"), att16 = DevBuf<__half>(R * qd, mem, "activations");
    k_cache = DevBuf<__half>(R * kvd, mem, "the KV cache"), v_cache = DevBuf<__half>(R * kvd, mem, "the KV cache");
    pos_slot = DevBuf<int32_t>(2 * R, mem, "positions");
    {
      std::vector<int32_t> ps(size_t(2 * R));
      for (int64_t r = 0; r < R; ++r) ps[size_t(r)] = int32_t(r % seqlen), ps[size_t(R + r)] = int32_t(r / seqlen);
      upload(pos_slot.get(), ps.data(), 2 * R, s());
      const std::vector<float> cs = cuda::rope_cos_sin_table(inv_freq, seqlen);
      rope = DevBuf<float>(int64_t(cs.size()), mem, "the RoPE table");
      upload(rope.get(), cs.data(), int64_t(cs.size()), s());
      AWQ_CUDA_CHECK(cudaStreamSynchronize(s()));  // the host vectors go out of scope
    }
    const int64_t ns_rows = n_s * seqlen;
    x_search = DevBuf<float>(ns_rows * d, mem, "the search sequences");
    y_search = DevBuf<float>(ns_rows * d, mem, "the search sequences");
    fp_search = DevBuf<float>(ns_rows * d, mem, "the search sequences");
    if (n_s < n_seq) h_search = DevBuf<__half>(ns_rows * d, mem, "the search sequences");
    if (n_r < T) {
      if (fold_vo) att_rows = DevBuf<__half>(n_r * qd, mem, "the search rows");
      hm_rows = DevBuf<__half>(n_r * d, mem, "the search rows");
      act_rows = DevBuf<__half>(n_r * ff, mem, "the search rows");
      rows_idx = DevBuf<int64_t>(n_r, mem, "the search rows");
      upload(rows_idx.get(), set.rows.data(), n_r, s());
      AWQ_CUDA_CHECK(cudaStreamSynchronize(s()));
    }
    const int64_t out_rows = std::max(ns_rows, n_r), max_in = std::max({d, qd, ff});
    ref_out = DevBuf<float>(out_rows * d, mem, "module outputs");
    trial_out = DevBuf<float>(out_rows * d, mem, "module outputs");
    scales = DevBuf<float>(int64_t(opt.n_grid) * max_in, mem, "scales");
    fold_s = DevBuf<float>(max_in, mem, "scales");
    partial = DevBuf<double>(std::max<int64_t>(kReduceBlocks, 64 * max_in), mem, "reductions");
    losses = DevBuf<double>(opt.n_grid + 2, mem, "reductions");
    col_mean = DevBuf<float>(max_in, mem, "reductions");
    gram = DevBuf<float>(max_in * G, mem, "Gram blocks");
    const int64_t max_elems = std::max({kvd * d, d * qd, ff * d});
    clip = ClipScratch(max_elems, max_elems / G, mem);
    mem.sample();
  }

  // ---- uploads

  void upload_layer(const LayerF32& l) {
    upload(wq.get(), l.wq.data(), qd * d, s()), upload(wk.get(), l.wk.data(), kvd * d, s());
    upload(wv.get(), l.wv.data(), kvd * d, s()), upload(wo.get(), l.wo.data(), d * qd, s());
    upload(wg.get(), l.w_gate.data(), ff * d, s()), upload(wu.get(), l.w_up.data(), ff * d, s());
    upload(wd.get(), l.w_down.data(), d * ff, s());
    const LayerWeights& L = l.L;
    upload(attn_norm.get(), L.attn_norm.data(), d, s()), upload(ffn_norm.get(), L.ffn_norm.data(), d, s());
    if (c.qk_norm) upload(q_norm.get(), L.q_norm.data(), c.head_dim, s()), upload(k_norm.get(), L.k_norm.data(), c.head_dim, s());
    // Fused biases, zero where one linear of the group has none.
    auto fused = [&](DevBuf<float>& dst, std::vector<const std::vector<float>*> parts, std::vector<int64_t> sizes) {
      if (!dst.get()) return;
      std::vector<float> b;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (parts[i]->empty()) b.insert(b.end(), size_t(sizes[i]), 0.0f);
        else b.insert(b.end(), parts[i]->begin(), parts[i]->end());
      }
      upload(dst.get(), b.data(), int64_t(b.size()), s());
      AWQ_CUDA_CHECK(cudaStreamSynchronize(s()));
    };
    fused(b_qkv, {&L.bq, &L.bk, &L.bv}, {qd, kvd, kvd});
    fused(b_o, {&L.bo}, {d});
    fused(b_gu, {&L.b_gate, &L.b_up}, {ff, ff});
    fused(b_down, {&L.b_down}, {d});
  }

  // The fp16 working copies from the f32 masters (fake_quantized: Q(W) instead).
  void refresh_fp16(bool fake_quantized) {
    auto conv = [&](const float* src, int64_t rows, int64_t cols, __half* dst) {
      if (fake_quantized) launch_fake_quant_f16(src, nullptr, rows, cols, opt.qp, dst, s());
      else to_half(src, rows * cols, dst, s());
    };
    conv(wq.get(), qd, d, w_qkv16.get());
    conv(wk.get(), kvd, d, w_qkv16.get() + qd * d);
    conv(wv.get(), kvd, d, w_qkv16.get() + (qd + kvd) * d);
    conv(wo.get(), d, qd, w_o16.get());
    conv(wg.get(), ff, d, w_gu16.get());
    conv(wu.get(), ff, d, w_gu16.get() + ff * d);
    conv(wd.get(), d, ff, w_down16.get());
  }

  // ---- the layer's pieces (rows: a whole number of sequences, at most R)

  // h: [rows, d] -> att: [rows, q] (q/k/v projections, q/k norm, RoPE, causal attention).
  void attention_block(const __half* h, int64_t rows, __half* att) {
    gemm(gpu.blas, h, rows, d, w_qkv16.get(), qkv_n, b_qkv.get(), qkv16.get(), s());
    const cuda::KvCacheView kv{k_cache.get(), v_cache.get(), seqlen, pos_slot.get(), pos_slot.get() + R};
    cuda::qk_norm_rope_store(qkv16.get(), rows, c.num_heads, c.num_kv_heads, c.head_dim,
                             reinterpret_cast<const float2*>(rope.get()), q_norm.get(), k_norm.get(),
                             float(c.rms_norm_eps), kv, s());
    const cuda::AttentionDims ad = cuda::attention_dims(c);
    if (cuda::flash_prefill_supports(ad)) {  // rows / seqlen sequences, sequence i in slot i
      std::vector<cuda::PrefillSegment> segs;
      for (int64_t r = 0; r < rows; r += seqlen) segs.push_back({int32_t(r), int32_t(seqlen), int32_t(r / seqlen), 0});
      cuda::flash_prefill_attention(qkv16.get(), qkv_n, segs.data(), int(segs.size()), ad, kv.k, kv.v, seqlen, att,
                                    s());
    } else {
      cuda::attention(qkv16.get(), qkv_n, rows, ad, kv, 1, nullptr, att, s());
    }
  }

  // h: [rows, d] -> act: [rows, ff] = silu(gate) * up (rows <= R).
  void mlp_act(const __half* h, int64_t rows, __half* act) {
    gemm(gpu.blas, h, rows, d, w_gu16.get(), 2 * ff, b_gu.get(), gu16.get(), s());
    cuda::silu_mul(gu16.get(), rows, ff, act, s());
  }

  // The whole layer over sequences, x: [n_rows, d] f32 in place; with captures, the inputs of
  // the linear groups go to rows row0.. of the captures.
  void layer(float* xs, int64_t n_rows, int64_t cap_row0, bool capture) {
    const float eps = float(c.rms_norm_eps);
    for (int64_t r0 = 0; r0 < n_rows; r0 += R) {
      const int64_t rows = std::min(R, n_rows - r0), cr = cap_row0 + r0;
      float* xc = xs + r0 * d;
      __half* h = capture ? cap_h_attn.get() + cr * d : h16.get();
      cuda::add_rmsnorm(xc, nullptr, attn_norm.get(), rows, d, eps, h, s());
      __half* att = capture ? cap_att.get() + cr * qd : att16.get();
      attention_block(h, rows, att);
      gemm(gpu.blas, att, rows, qd, w_o16.get(), d, b_o.get(), o16.get(), s());
      __half* hm = capture ? cap_h_mlp.get() + cr * d : h16.get();
      cuda::add_rmsnorm(xc, o16.get(), ffn_norm.get(), rows, d, eps, hm, s());
      __half* act = capture ? cap_act.get() + cr * ff : act16.get();
      mlp_act(hm, rows, act);
      gemm(gpu.blas, act, rows, ff, w_down16.get(), d, b_down.get(), o16.get(), s());
      add_residual_kernel<<<blocks_for(rows * d), kBlock, 0, s()>>>(xc, o16.get(), rows * d);
      AWQ_CUDA_CHECK_LAUNCH();
    }
  }

  // ---- reductions

  // losses[idx] = MSE(a, b) over n elements (asynchronous).
  void mse(const float* a, const float* b, int64_t n, int idx) {
    AWQ_CUDA_CHECK(cudaMemsetAsync(losses.get() + idx, 0, sizeof(double), s()));
    sq_diff_kernel<<<kReduceBlocks, kBlock, 0, s()>>>(a, b, n, partial.get());
    AWQ_CUDA_CHECK_LAUNCH();
    sum_partials_kernel<<<1, kBlock, 0, s()>>>(partial.get(), kReduceBlocks, losses.get() + idx);
    AWQ_CUDA_CHECK_LAUNCH();
  }
  std::vector<double> read_losses(int count) {
    std::vector<double> h(static_cast<size_t>(count));
    download(h.data(), losses.get(), count, s());  // sums of squares, not yet divided
    return h;
  }

  // mean |x| per column over every calibration token. x: [T, cols] fp16 -> host [cols]
  std::vector<float> mean_abs(const __half* xs, int64_t cols) {
    const int parts = 64;
    const dim3 grid(blocks_for(cols), unsigned(parts));
    abs_sum_kernel<<<grid, kBlock, 0, s()>>>(xs, T, cols, partial.get());
    AWQ_CUDA_CHECK_LAUNCH();
    abs_mean_kernel<<<blocks_for(cols), kBlock, 0, s()>>>(partial.get(), parts, cols, double(T), col_mean.get());
    AWQ_CUDA_CHECK_LAUNCH();
    std::vector<float> h(static_cast<size_t>(cols));
    download(h.data(), col_mean.get(), cols, s());
    return h;
  }

  // ---- the module outputs of the scale search (f32, [rows, d])

  enum class Module { Attn, O, Mlp, Down };

  const __half* search_input(Module m) const {
    switch (m) {
      case Module::Attn: return n_s < n_seq ? h_search.get() : cap_h_attn.get();
      case Module::O: return n_r < T ? att_rows.get() : cap_att.get();
      case Module::Mlp: return n_r < T ? hm_rows.get() : cap_h_mlp.get();
      case Module::Down: return n_r < T ? act_rows.get() : cap_act.get();
    }
    return nullptr;
  }
  int64_t module_rows(Module m) const { return m == Module::Attn ? n_s * seqlen : n_r; }

  void module_out(Module m, float* out) {
    const __half* in = search_input(m);
    const int64_t n = module_rows(m);
    for (int64_t r0 = 0; r0 < n; r0 += R) {
      const int64_t rows = std::min(R, n - r0);
      float* y = out + r0 * d;
      switch (m) {
        case Module::Attn:
          attention_block(in + r0 * d, rows, att16.get());
          gemm(gpu.blas, att16.get(), rows, qd, w_o16.get(), d, b_o.get(), y, s());
          break;
        case Module::O: gemm(gpu.blas, in + r0 * qd, rows, qd, w_o16.get(), d, b_o.get(), y, s()); break;
        case Module::Mlp:
          mlp_act(in + r0 * d, rows, act16.get());
          gemm(gpu.blas, act16.get(), rows, ff, w_down16.get(), d, b_down.get(), y, s());
          break;
        case Module::Down: gemm(gpu.blas, in + r0 * ff, rows, ff, w_down16.get(), d, b_down.get(), y, s()); break;
      }
    }
  }

  struct Member {
    const float* master;          // [rows, in] f32
    int64_t rows;
    __half* w16;                  // where its fp16 copy lives
    const std::vector<float>* host;  // the original on the host (duo scaling's w_mean)
  };

  // One scale group's grid search; returns the best scales (the [kv_dim] ones for per_kv_head).
  std::vector<float> search_group(const std::string& group, const std::vector<Member>& members, int64_t in,
                                  const __half* cap, Module m, bool per_kv_head, LayerReport& rep) {
    std::vector<float> x_mean = mean_abs(cap, in);
    std::vector<float> w_mean;
    if (opt.duo_scaling) {
      std::vector<const std::vector<float>*> ws;
      for (const Member& mb : members) ws.push_back(mb.host);
      w_mean = detail::mean_normalised_weight(ws, in, opt.qp.group);
    }
    if (per_kv_head) {
      x_mean = mean_over_group_heads(c, x_mean);
      if (opt.duo_scaling) w_mean = mean_over_group_heads(c, w_mean);
    }
    // Every candidate's scales (on the members' input channels) up front: one upload.
    std::vector<std::vector<float>> cand;
    std::vector<float> all(size_t(int64_t(opt.n_grid) * in));
    for (int i = 0; i < opt.n_grid; ++i) {
      const double ratio = double(i) / opt.n_grid;
      cand.push_back(detail::candidate_scales(x_mean, opt.duo_scaling ? &w_mean : nullptr, ratio));
      const std::vector<float> s_in = per_kv_head ? expand_kv_to_q(c, cand.back()) : cand.back();
      std::copy(s_in.begin(), s_in.end(), all.begin() + int64_t(i) * in);
    }
    upload(scales.get(), all.data(), int64_t(all.size()), s());
    const int64_t n_out = module_rows(m) * d;
    module_out(m, ref_out.get());
    for (int i = 0; i < opt.n_grid; ++i) {
      for (const Member& mb : members)
        launch_fake_quant_f16(mb.master, scales.get() + int64_t(i) * in, mb.rows, in, opt.qp, mb.w16, s());
      module_out(m, trial_out.get());
      mse(trial_out.get(), ref_out.get(), n_out, i);
    }
    for (const Member& mb : members) to_half(mb.master, mb.rows * in, mb.w16, s());  // restore
    const std::vector<double> sums = read_losses(opt.n_grid);  // synchronises (all uploads done)
    ScaleChoice sc;
    sc.group = group;
    double best = std::numeric_limits<double>::infinity();
    int best_i = 0;
    for (int i = 0; i < opt.n_grid; ++i) {
      const double loss = n_out > 0 ? sums[size_t(i)] / double(n_out) : 0.0;
      sc.losses.push_back(loss);
      if (i == 0) sc.loss_rtn = loss;
      if (loss < best) best = loss, sc.ratio = double(i) / opt.n_grid, best_i = i;
    }
    sc.loss_best = best;
    rep.scales.push_back(sc);
    return cand[size_t(best_i)];
  }

  // The layer's output error on the search sequences with the current fp16 weights vs fp_search.
  double layer_error() {
    const int64_t n = n_s * seqlen;
    AWQ_CUDA_CHECK(cudaMemcpyAsync(y_search.get(), x_search.get(), size_t(n * d) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, s()));
    layer(y_search.get(), n, 0, false);
    mse(y_search.get(), fp_search.get(), n * d, opt.n_grid + 1);
    AWQ_CUDA_CHECK(cudaStreamSynchronize(s()));
    double v = 0.0;
    download(&v, losses.get() + opt.n_grid + 1, 1, s());
    return n > 0 ? v / double(n * d) : 0.0;
  }

  LayerReport search(LayerF32& l) {
    const auto t0 = std::chrono::steady_clock::now();
    LayerReport rep;
    upload_layer(l);
    refresh_fp16(false);
    // The search sequences' inputs, then the FP forward over everything with captures.
    for (int64_t i = 0; i < n_s; ++i)
      AWQ_CUDA_CHECK(cudaMemcpyAsync(x_search.get() + i * seqlen * d, x.get() + set.seqs[size_t(i)] * seqlen * d,
                                     size_t(seqlen * d) * sizeof(float), cudaMemcpyDeviceToDevice, s()));
    for (int64_t s0 = 0; s0 < n_seq; s0 += chunk_seqs) {
      const int64_t ns = std::min(chunk_seqs, n_seq - s0);
      layer(x.get() + s0 * seqlen * d, ns * seqlen, s0 * seqlen, true);
    }
    // The search inputs: sequences and rows gathered from the captures (unless all are used).
    if (n_s < n_seq)
      for (int64_t i = 0; i < n_s; ++i)
        AWQ_CUDA_CHECK(cudaMemcpyAsync(h_search.get() + i * seqlen * d,
                                       cap_h_attn.get() + set.seqs[size_t(i)] * seqlen * d,
                                       size_t(seqlen * d) * sizeof(__half), cudaMemcpyDeviceToDevice, s()));
    if (n_r < T) {
      auto gather = [&](const __half* src, int64_t cols, __half* dst) {
        gather_rows_kernel<<<blocks_for(n_r * cols), kBlock, 0, s()>>>(src, rows_idx.get(), n_r, cols, dst);
        AWQ_CUDA_CHECK_LAUNCH();
      };
      if (fold_vo) gather(cap_att.get(), qd, att_rows.get());
      gather(cap_h_mlp.get(), d, hm_rows.get());
      gather(cap_act.get(), ff, act_rows.get());
    }
    // The report's FP reference and RTN error, on the search sequences.
    {
      const int64_t n = n_s * seqlen;
      AWQ_CUDA_CHECK(cudaMemcpyAsync(fp_search.get(), x_search.get(), size_t(n * d) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, s()));
      layer(fp_search.get(), n, 0, false);
      refresh_fp16(true);
      rep.out_err_rtn = layer_error();
      refresh_fp16(false);
    }
    mem.sample();

    std::vector<float> s_qkv, s_o, s_gu, s_down;  // the chosen scales (empty: none)
    // Member::host points at l's weights, still the originals until the fold below.
    if (opt.search_scales) {
      s_qkv = search_group("qkv",
                           {{wq.get(), qd, w_qkv16.get(), &l.wq},
                            {wk.get(), kvd, w_qkv16.get() + qd * d, &l.wk},
                            {wv.get(), kvd, w_qkv16.get() + (qd + kvd) * d, &l.wv}},
                           d, cap_h_attn.get(), Module::Attn, false, rep);
      if (fold_vo)
        s_o = search_group("o", {{wo.get(), d, w_o16.get(), &l.wo}}, qd, cap_att.get(), Module::O, true, rep);
      s_gu = search_group("gate_up",
                          {{wg.get(), ff, w_gu16.get(), &l.w_gate},
                           {wu.get(), ff, w_gu16.get() + ff * d, &l.w_up}},
                          d, cap_h_mlp.get(), Module::Mlp, false, rep);
      s_down = search_group("down", {{wd.get(), d, w_down16.get(), &l.w_down}}, ff, cap_act.get(),
                            Module::Down, false, rep);
      // The fold on the host, exactly as the CPU search (quant/scale_fold.h), then re-upload.
      fold_scales(l, c, "qkv", s_qkv);
      if (fold_vo) fold_scales(l, c, "o", s_o);
      fold_scales(l, c, "gate_up", s_gu);
      fold_scales(l, c, "down", s_down);
      upload_layer(l);
    }
    mem.sample();

    if (opt.clip) {
      const int G = opt.qp.group;
      int64_t stride = 1;
      if (opt.clip_tokens > 0 && opt.clip_tokens < T) stride = std::max<int64_t>(1, T / opt.clip_tokens);
      // The Gram blocks of the scaled inputs x / s: the captures hold x, the scales go in after.
      auto gram_of = [&](const __half* cap, int64_t in, const std::vector<float>& sc) {
        const float* sd = nullptr;
        if (!sc.empty()) {
          upload(fold_s.get(), sc.data(), in, s());
          sd = fold_s.get();
        }
        grams(gpu.blas, cap, T, in, G, stride, sd, gram.get(), s());
        AWQ_CUDA_CHECK(cudaStreamSynchronize(s()));  // fold_s is reused by the next call
      };
      auto clip_w = [&](float* w, int64_t out, int64_t in) { clip_linear(gpu.blas, w, out, in, gram.get(), opt, clip, s()); };
      gram_of(cap_h_attn.get(), d, s_qkv);
      clip_w(wv.get(), kvd, d);
      gram_of(cap_att.get(), qd, s_o.empty() ? s_o : expand_kv_to_q(c, s_o));
      clip_w(wo.get(), d, qd);
      gram_of(cap_h_mlp.get(), d, s_gu);
      clip_w(wg.get(), ff, d);
      clip_w(wu.get(), ff, d);
      gram_of(cap_act.get(), ff, s_down);
      clip_w(wd.get(), d, ff);
      download(l.wv.data(), wv.get(), kvd * d, s());
      download(l.wo.data(), wo.get(), d * qd, s());
      download(l.w_gate.data(), wg.get(), ff * d, s());
      download(l.w_up.data(), wu.get(), ff * d, s());
      download(l.w_down.data(), wd.get(), d * ff, s());
    }
    mem.sample();

    // The report's AWQ error: the scaled + clipped weights, fake-quantized, with the folded norms.
    refresh_fp16(true);
    rep.out_err_awq = layer_error();
    mem.sample();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
  }
};

bool awq_cuda_search_available(std::string* why) { return cuda::cuda_available(why); }

AwqCudaSearch::AwqCudaSearch(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t n_seq,
                             int64_t seqlen, const AwqSearchOptions& opt)
    : impl_(std::make_unique<Impl>(c, inv_freq, n_seq, seqlen, opt)) {}
AwqCudaSearch::~AwqCudaSearch() = default;

void AwqCudaSearch::set_input(const std::vector<float>& x) {
  Impl& m = *impl_;
  if (int64_t(x.size()) != m.T * m.d)
    throw Error("AwqCudaSearch::set_input: " + std::to_string(x.size()) + " values, expected " +
                std::to_string(m.T * m.d));
  upload(m.x.get(), x.data(), m.T * m.d, m.s());
  AWQ_CUDA_CHECK(cudaStreamSynchronize(m.s()));
}

LayerReport AwqCudaSearch::search_layer(LayerF32& layer) { return impl_->search(layer); }

std::vector<float> AwqCudaSearch::input() const {
  std::vector<float> h(static_cast<size_t>(impl_->T * impl_->d));
  download(h.data(), impl_->x.get(), impl_->T * impl_->d, impl_->s());
  return h;
}

double AwqCudaSearch::peak_gpu_used_mib() const { return impl_->mem.peak_used / 1048576.0; }
double AwqCudaSearch::allocated_mib() const { return double(impl_->mem.allocated) / 1048576.0; }
std::string AwqCudaSearch::device_name() const { return impl_->name; }

// ---------------------------------------------------------------------------------------------
// Kernel-level entry points for the tests

void cuda_fake_quantize(float* w, int64_t rows, int64_t cols, const QuantParams& p) {
  check_shapes(rows, cols, p.group, "cuda_fake_quantize");
  Gpu gpu;
  MemTracker mem;
  DevBuf<float> dw(rows * cols, mem, "cuda_fake_quantize");
  upload(dw.get(), w, rows * cols, gpu.s);
  launch_fake_quant_f32(dw.get(), nullptr, rows, cols, p, dw.get(), gpu.s);
  download(w, dw.get(), rows * cols, gpu.s);
}

std::vector<float> cuda_group_grams(const float* x, int64_t n_all, int64_t in, int G, int64_t stride) {
  check_shapes(n_all, in, G, "cuda_group_grams");
  if (stride < 1) throw Error("cuda_group_grams: stride must be at least 1");
  Gpu gpu;
  MemTracker mem;
  DevBuf<float> xf(n_all * in, mem, "cuda_group_grams");
  DevBuf<__half> xh(n_all * in, mem, "cuda_group_grams");
  DevBuf<float> h(in * G, mem, "cuda_group_grams");
  upload(xf.get(), x, n_all * in, gpu.s);
  to_half(xf.get(), n_all * in, xh.get(), gpu.s);
  grams(gpu.blas, xh.get(), n_all, in, G, stride, nullptr, h.get(), gpu.s);
  std::vector<float> out(static_cast<size_t>(in * G));
  download(out.data(), h.get(), in * G, gpu.s);
  return out;
}

void cuda_clip_linear_gram(float* w, int64_t out, int64_t in, const float* grams_host, const AwqSearchOptions& opt) {
  check_shapes(out, in, opt.qp.group, "cuda_clip_linear_gram");
  Gpu gpu;
  MemTracker mem;
  DevBuf<float> dw(out * in, mem, "cuda_clip_linear_gram"), h(in * opt.qp.group, mem, "cuda_clip_linear_gram");
  ClipScratch sc(out * in, out * in / opt.qp.group, mem);
  upload(dw.get(), w, out * in, gpu.s);
  upload(h.get(), grams_host, in * opt.qp.group, gpu.s);
  clip_linear(gpu.blas, dw.get(), out, in, h.get(), opt, sc, gpu.s);
  download(w, dw.get(), out * in, gpu.s);
}

}  // namespace awq
