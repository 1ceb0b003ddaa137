// W4A16 linear: repack (AutoAWQ GEMM layout -> kernel layout, on the GPU) and the tensor-core
// kernel; fp16_linear through cuBLAS. Layout and contract: w4a16.h.
#include "ops/cuda/w4a16.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/env_choice.h"
#include "core/error.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"

namespace awq::cuda {

size_t W4A16Weight::bytes() const {
  const int64_t tiles_n = (n + 15) / 16, chunks_k = (k + 63) / 64;
  return size_t(tiles_n * chunks_k * 32 * 16) + size_t(tiles_n * (k / group) * 8 * 8);
}

W4A16Weight upload_w4a16(const AwqMatrix& m, int64_t n_out, int64_t k_in, cudaStream_t s) {
  check(m.qweight && m.qzeros && m.scales,
        "upload_w4a16: the AWQ matrix has no qweight/qzeros/scales (checkpoint layout) to upload");
  check(m.bits == 4 || m.bits == 3,
        "upload_w4a16: bits = " + std::to_string(m.bits) + " (the CUDA kernels take 3 or 4)");
  check(n_out > 0 && k_in > 0 && n_out % 8 == 0,
        "upload_w4a16: out_features " + std::to_string(n_out) + " must be a positive multiple of 8");
  const int g = m.group;
  check(g >= 16 && (g & (g - 1)) == 0 && k_in % g == 0,
        "upload_w4a16: group " + std::to_string(g) + " with in_features " + std::to_string(k_in) +
            ": the CUDA kernels need a power-of-two group >= 16 that divides in_features");
  W4A16Weight w;
  w.n = n_out;
  w.k = k_in;
  w.group = g;
  w.bits = m.bits;
  const int64_t tiles_n = (n_out + 15) / 16, chunks_k = (k_in + 63) / 64, ng = k_in / g;
  const size_t qw_bytes = size_t(k_in * (n_out / 8)) * 4, qz_bytes = size_t(ng * (n_out / 8)) * 4;
  const size_t sc_bytes = size_t(ng * n_out) * 2;
  void *d_qw = nullptr, *d_qz = nullptr, *d_sc = nullptr;
  try {
    AWQ_CUDA_CHECK(cudaMalloc(&w.codes, size_t(tiles_n * chunks_k * 32) * 16));
    AWQ_CUDA_CHECK(cudaMalloc(&w.params, size_t(tiles_n * ng * 8) * 8));
    AWQ_CUDA_CHECK(cudaMalloc(&d_qw, qw_bytes));
    AWQ_CUDA_CHECK(cudaMalloc(&d_qz, qz_bytes));
    AWQ_CUDA_CHECK(cudaMalloc(&d_sc, sc_bytes));
    AWQ_CUDA_CHECK(cudaMemcpyAsync(d_qw, m.qweight, qw_bytes, cudaMemcpyHostToDevice, s));
    AWQ_CUDA_CHECK(cudaMemcpyAsync(d_qz, m.qzeros, qz_bytes, cudaMemcpyHostToDevice, s));
    AWQ_CUDA_CHECK(cudaMemcpyAsync(d_sc, m.scales, sc_bytes, cudaMemcpyHostToDevice, s));
    launch_repack(static_cast<const int32_t*>(d_qw), static_cast<const int32_t*>(d_qz),
                  static_cast<const __half*>(d_sc), n_out, k_in, g, static_cast<uint4*>(w.codes),
                  static_cast<uint2*>(w.params), s);
    w4a16_prepare_tiled();  // kernel attributes set outside any later graph capture
    w4a16_prepare_streaming();
    w4a16_prepare_kslice();
    pdl_supported();        // likewise its device probe (ops/cuda/pdl.h)
    AWQ_CUDA_CHECK(cudaStreamSynchronize(s));
  } catch (...) {
    cudaFree(d_qw);
    cudaFree(d_qz);
    cudaFree(d_sc);
    free_w4a16(w);
    throw;
  }
  AWQ_CUDA_CHECK(cudaFree(d_qw));
  AWQ_CUDA_CHECK(cudaFree(d_qz));
  AWQ_CUDA_CHECK(cudaFree(d_sc));
  return w;
}

void free_w4a16(W4A16Weight& w) {
  if (w.codes) cudaFree(w.codes);
  if (w.params) cudaFree(w.params);
  w.codes = w.params = nullptr;
}

void w4a16_linear(const W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* y,
                  cudaStream_t s) {
  check(m >= 0, "w4a16_linear: negative token count");
  if (m == 0) return;
  check(w.codes && w.params, "w4a16_linear: the weight was not uploaded (upload_w4a16)");
  launch_w4a16(static_cast<const uint4*>(w.codes), static_cast<const uint2*>(w.params), x, bias, y,
               w.n, w.k, w.group, m, w4a16_path_from_env(), s);
}

void w4a16_linear_silu(const W4A16Weight& w, const __half* x, int64_t m, const __half* bias, __half* gu,
                       __half* act, cudaStream_t s) {
  check(m >= 0, "w4a16_linear_silu: negative token count");
  if (m == 0) return;
  check(w.codes && w.params, "w4a16_linear_silu: the weight was not uploaded (upload_w4a16)");
  check(w.n % 16 == 0, "w4a16_linear_silu: the gate/up projection needs n % 16 == 0");
  launch_w4a16_silu(static_cast<const uint4*>(w.codes), static_cast<const uint2*>(w.params), x, bias, gu, act, w.n,
                    w.k, w.group, m, w4a16_path_from_env(), s);
}

std::string w4a16_tune_linear(const std::vector<const W4A16Weight*>& ws, int64_t m_max, __half* x, __half* y,
                              cudaStream_t s) {
  check(!ws.empty(), "w4a16_tune_linear: no weights");
  const W4A16Weight& w = *ws[0];
  std::vector<W4A16Codes> codes;
  for (const W4A16Weight* wi : ws) {
    check(wi->codes && wi->params, "w4a16_tune_linear: a weight was not uploaded (upload_w4a16)");
    check(wi->n == w.n && wi->k == w.k && wi->group == w.group, "w4a16_tune_linear: weights of different shapes");
    codes.push_back({static_cast<const uint4*>(wi->codes), static_cast<const uint2*>(wi->params)});
  }
  if (!w4a16_tune_from_env()) return "";
  const W4A16TuneReport r = w4a16_tune(codes, w.n, w.k, w.group, m_max, x, y, s);
  if (r.buckets == 0 && r.cached == 0) return "";
  char line[1024];
  if (r.buckets == 0)
    std::snprintf(line, sizeof line, "W4A16 %lld x %lld: %d token buckets' picks read from %s, %d differ from the rules",
                  (long long)w.n, (long long)w.k, r.cached, r.cache.c_str(), r.changed);
  else
    std::snprintf(line, sizeof line, "W4A16 %lld x %lld: tuned %d token buckets in %.2f s%s, %d differ from the rules; %s%s%s",
                  (long long)w.n, (long long)w.k, r.buckets, r.seconds,
                  r.cached ? (" (" + std::to_string(r.cached) + " more from the cache)").c_str() : "", r.changed,
                  r.cache.empty() ? "not saved (no cache file)"
                  : r.cache_error.empty() ? "saved to "
                                          : "not saved: ",
                  r.cache.empty() ? "" : r.cache_error.empty() ? r.cache.c_str() : r.cache_error.c_str(),
                  r.unsteady && !r.cache.empty()
                      ? (" (" + std::to_string(r.unsteady) + " not: their timing was unsteady, a busy GPU?)").c_str()
                      : "");
  return line;
}

W4A16Path parse_w4a16_path(const char* value) {
  static const W4A16Path paths[] = {W4A16Path::Auto, W4A16Path::Legacy, W4A16Path::Tiled};
  return paths[env_choice("AWQ_W4A16_KERNEL", value,
                          {{"auto", "default"},
                           {"legacy", "the register-streaming kernels for every m"},
                           {"tiled", "the shared-memory tiled GEMM for every m"}},
                          0)];
}

W4A16Path w4a16_path_from_env() {
  static const W4A16Path path = parse_w4a16_path(std::getenv("AWQ_W4A16_KERNEL"));
  return path;
}

namespace {

// The W4A16 dispatch's 0/1 switches: "0" = off (the kernels before a change: the baseline for
// comparisons, or a fallback without a rebuild), "1" or unset = on; anything else: awq::Error
// (env_choice's message: the variable, the value and both meanings).
struct W4A16Switch {
  const char* name;
  const char* off;  // what "0" does
  const char* on;   // what "1" does (the default)
};
constexpr W4A16Switch kXsmem{"AWQ_W4A16_XSMEM", "the decode kernels read x from L2, warp by warp",
                             "the decode kernels stage x in shared memory (default)"};
constexpr W4A16Switch kScaleAfter{
    "AWQ_W4A16_SCALE_AFTER",
    "the decode kernels (m <= 8) scale the weights before the mma (as AutoAWQ rounds them)",
    "where measured faster, they scale each chunk's products after the mma (default)"};
constexpr W4A16Switch kLongK{
    "AWQ_W4A16_LONG_K", "m = 1 on a long K (down_proj) runs 8 warps splitting K, as before",
    "it runs 10 warps splitting K (default)"};
constexpr W4A16Switch kTma{"AWQ_W4A16_TMA",
                           "m > 32 never runs the TMA wgmma configurations (the cp.async ones, as before)",
                           "it runs them where they measured faster (default)"};

constexpr W4A16Switch kStreamK{"AWQ_W4A16_STREAM_K",
                               "m > 32 never runs the stream-K TMA tiles (the picks before them)",
                               "it runs them where they measured faster (default)"};

constexpr W4A16Switch kWaveTiles{"AWQ_W4A16_WAVE_TILES",
                                 "m > 96 never runs the 192-row TMA tiles (the picks before them)",
                                 "the wave rule runs them where their grid fills whole waves (default)"};

constexpr W4A16Switch kL2Split{"AWQ_W4A16_L2_SPLIT",
                               "the wave rule never takes the 192-row tiles' split-K through L2 (the picks before)",
                               "it takes them where splits of 3..8 fill one wave (default)"};

constexpr W4A16Switch kWgmmaFrom17{"AWQ_W4A16_WGMMA_FROM_17",
                                   "m = 17..32 run the mma.sync 32-token tiles (the picks before session 25)",
                                   "they run the wgmma tiles picked for m = 33 (default)"};

constexpr W4A16Switch kClusterPush{
    "AWQ_W4A16_CLUSTER_PUSH",
    "the wgmma split-K clusters reduce by remote loads from every block, as before branch gpu10",
    "each block stores its partials into the owning block's shared memory (default)"};

constexpr W4A16Switch kKSlice{
    "AWQ_W4A16_KSLICE",
    "m = 2..16 never runs the K-slice kernels (the register-streaming variants or the tiled GEMM, as before)",
    "it runs them where they measured faster (default)"};

constexpr W4A16Switch kKSlicePdl{
    "AWQ_W4A16_KSLICE_PDL", "the K-slice kernels' cluster launches go without PDL (as the tiled GEMM's)",
    "they carry the PDL attribute where PDL is on (default)"};

constexpr W4A16Switch kKSliceThin{
    "AWQ_W4A16_KSLICE_THIN",
    "where the K-slice rule's grid is too thin (qkv of a 7B at m = 2..16), the picks before session 26",
    "2 splits of a narrower K-slice configuration there (default)"};

constexpr W4A16Switch kSplit3{
    "AWQ_W4A16_SPLIT3",
    "the 64 x 64 wgmma tile at m = 17..128 splits K 1, 2 or 4 ways, as before session 27",
    "it splits K 3 ways instead of 4 where that grid is 1.4-1.7 blocks per SM (default)"};

constexpr W4A16Switch kWaveMid{
    "AWQ_W4A16_WAVE_MID",
    "the wave rule leaves out m = 65..96 (the cp.async 64 x 64 tile there, as before session 28)",
    "it takes m = 65..96 as one 128-token block (default)"};

constexpr W4A16Switch kT256From161{
    "AWQ_W4A16_T256_FROM_161",
    "a 70B's n = 8192 layers at m = 161..192 run the wave rule's 64 x 192 tile, as before session 28",
    "they run the 256 x 128 tile split 2 where that is one wave (default)"};

constexpr W4A16Switch kTune{
    "AWQ_W4A16_TUNE", "the tiled GEMM runs the rules' picks (the same in every process)",
    "the CUDA model times the candidate tiles of its layer shapes at load and runs the fastest (default)"};

constexpr W4A16Switch kWideMid{
    "AWQ_W4A16_WIDE_MID",
    "layers the wave rule does not take at m = 33..128 keep the 7B-derived picks, as before session 28",
    "they take the rules from other models' wide layers (default)"};

bool parse_switch(const W4A16Switch& sw, const char* value) {
  return env_choice(sw.name, value, {{"0", sw.off}, {"1", sw.on}}, 1) == 1;
}

// The switch's value from the environment, parsed once per switch (a bad value throws from
// every call: a static whose initialization throws is tried again).
template <const W4A16Switch& kSwitch>
bool switch_from_env() {
  static const bool on = parse_switch(kSwitch, std::getenv(kSwitch.name));
  return on;
}

}  // namespace

bool parse_w4a16_xsmem(const char* value) { return parse_switch(kXsmem, value); }
bool w4a16_xsmem_from_env() { return switch_from_env<kXsmem>(); }
bool parse_w4a16_scale_after(const char* value) { return parse_switch(kScaleAfter, value); }
bool w4a16_scale_after_from_env() { return switch_from_env<kScaleAfter>(); }
bool parse_w4a16_long_k(const char* value) { return parse_switch(kLongK, value); }
bool w4a16_long_k_from_env() { return switch_from_env<kLongK>(); }
bool parse_w4a16_tma(const char* value) { return parse_switch(kTma, value); }
bool w4a16_tma_from_env() { return switch_from_env<kTma>(); }
bool parse_w4a16_stream_k(const char* value) { return parse_switch(kStreamK, value); }
bool w4a16_stream_k_from_env() { return switch_from_env<kStreamK>(); }
bool parse_w4a16_wave_tiles(const char* value) { return parse_switch(kWaveTiles, value); }
bool w4a16_wave_tiles_from_env() { return switch_from_env<kWaveTiles>(); }
bool parse_w4a16_l2_split(const char* value) { return parse_switch(kL2Split, value); }
bool w4a16_l2_split_from_env() { return switch_from_env<kL2Split>(); }
bool parse_w4a16_wgmma_from_17(const char* value) { return parse_switch(kWgmmaFrom17, value); }
bool w4a16_wgmma_from_17_from_env() { return switch_from_env<kWgmmaFrom17>(); }
bool parse_w4a16_cluster_push(const char* value) { return parse_switch(kClusterPush, value); }
bool w4a16_cluster_push_from_env() { return switch_from_env<kClusterPush>(); }

bool parse_w4a16_kslice(const char* value) { return parse_switch(kKSlice, value); }
bool w4a16_kslice_from_env() { return switch_from_env<kKSlice>(); }
bool parse_w4a16_kslice_pdl(const char* value) { return parse_switch(kKSlicePdl, value); }
bool w4a16_kslice_pdl_from_env() { return switch_from_env<kKSlicePdl>(); }
bool parse_w4a16_kslice_thin(const char* value) { return parse_switch(kKSliceThin, value); }
bool w4a16_kslice_thin_from_env() { return switch_from_env<kKSliceThin>(); }
bool parse_w4a16_split3(const char* value) { return parse_switch(kSplit3, value); }
bool w4a16_split3_from_env() { return switch_from_env<kSplit3>(); }
bool parse_w4a16_wave_mid(const char* value) { return parse_switch(kWaveMid, value); }
bool w4a16_wave_mid_from_env() { return switch_from_env<kWaveMid>(); }
bool parse_w4a16_t256_from_161(const char* value) { return parse_switch(kT256From161, value); }
bool w4a16_t256_from_161_from_env() { return switch_from_env<kT256From161>(); }
bool parse_w4a16_tune(const char* value) { return parse_switch(kTune, value); }
bool w4a16_tune_from_env() { return switch_from_env<kTune>(); }
bool parse_w4a16_wide_mid(const char* value) { return parse_switch(kWideMid, value); }
bool w4a16_wide_mid_from_env() { return switch_from_env<kWideMid>(); }

void fp16_linear(cublasHandle_t h, const __half* w, int64_t n, int64_t k, const __half* x,
                 int64_t m, const __half* bias, __half* y, cudaStream_t s) {
  check(m >= 0 && n > 0 && k > 0, "fp16_linear: bad shape");
  if (m == 0) return;
  AWQ_CUBLAS_CHECK(cublas_api().set_stream(h, s));
  const float one = 1.0f, zero = 0.0f;
  // Column-major view: y^T [n, m] = (W [n, k] row-major = W^T col-major)^T * x^T [k, m].
  AWQ_CUBLAS_CHECK(cublas_api().gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, w,
                                CUDA_R_16F, int(k), x, CUDA_R_16F, int(k), &zero, y, CUDA_R_16F,
                                int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (bias) launch_add_bias(y, bias, m, n, s);
}

}  // namespace awq::cuda
