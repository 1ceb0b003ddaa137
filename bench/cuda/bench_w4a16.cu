// W4A16 linear (ops/cuda/w4a16.h) vs cuBLAS FP16 (fp16_linear) on the Llama-2-7B linear shapes,
// same run, same data sizes. Built with -DAWQ_CUDA=ON; run by scripts/gpu-check (docs/gpu.md).
//   bench_cuda_w4a16 [reps [sweep|lsweep|psweep|wsweep[:i,j..]|ksweep|-] [shape [m[,m...]]]]   (default 30; shape: only names containing it ("-": all), or NxK for that shape instead (e.g. 3584x18944); m: only those m (any m, e.g. 9..15, for the sweep; a comma list, e.g. 64,160,512); sweep: also time every kernel configuration (lsweep: the legacy ones only; psweep: the legacy ones, each plain/with PDL),
//                                      printed as mt/wk/wn/rt=us for the legacy kernels (m <= 32; an x after rt: x staged in shared memory; an s: the scale applied after the mma) and
//                                      Ti:bm x bn/threads/stages s<K splits>=us for the tiled GEMM
//                                      (every m), * = the one w4a16_linear picks)
// The table's W4A16 column is w4a16_linear (AWQ_W4A16_KERNEL honoured), "legacy" the
// register-streaming kernels alone at the same m, "kernel" the one w4a16_linear ran; these and
// the sweep run without programmatic dependent launch (ops/cuda/pdl.h). "PDL us" is the same
// w4a16_linear graph with PDL (mode 1: each call's launch and first weight stages overlap the
// previous call's tail), "PDL+L2 us" with mode 2 (plus an L2 prefetch of more weights before
// the wait); "-" where the device or build has no PDL. Back-to-back linears are the kernels'
// best case for PDL; in the decode step small kernels sit between them (bench_decode measures that).
// Method (.library METHOD.md): random data (never zeros); each timed sample replays a CUDA graph
// of R calls that cycle through enough weight copies to overflow L2, so every call streams its
// weights from HBM and no launch gap is counted; samples = reps, the median is reported (the
// table's cuBLAS, W4A16 and PDL columns: the fastest of 3 such medians, in rotating order).
// Bandwidth ceilings are measured here too: a device-to-device copy (read + write bytes) and a
// read-only kernel; "% BW" divides achieved bytes/s (weights + x + y, each once) by the larger.
// Each shape is tuned first as the engine tunes its layers at load (AWQ_W4A16_TUNE, on by default;
// ops/cuda/w4a16_tune.h): "tuned" in the kernel column where the measured pick runs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda_common/graph_timing.cuh"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/fill_random.h"
#include "ops/cuda/pdl.h"
#include "ops/cuda/w4a16.h"
#include "ops/cuda/w4a16_kernels.h"
#include "ops/cuda/w4a16_tune.h"

using namespace awq;
using namespace awq::cuda;

namespace {

// Reads every 16-byte word once; one xor per thread is written so the loads stay.
__global__ void read_kernel(const uint4* __restrict__ a, int64_t count, uint32_t* sink) {
  uint32_t acc = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldcs(a + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

float last_min_us = 0;  // the fastest sample of the last time_graph (wsweep prints it beside the median)

// Median over reps of (time of one replay of a graph made of `calls` calls of f) / calls, in us.
template <class F>
float time_graph(cudaStream_t s, int calls, int reps, F&& f) {
  const awq_bench::GraphTime t = awq_bench::time_graph(s, calls, reps, f);
  last_min_us = t.min_us;
  return t.median_us;
}

struct Bandwidth { double copy_gbs, read_gbs; };

Bandwidth measure_bandwidth(cudaStream_t s, int reps) {
  const size_t bytes = size_t(1) << 30;
  void *a, *b;
  uint32_t* sink;
  AWQ_CUDA_CHECK(cudaMalloc(&a, bytes));
  AWQ_CUDA_CHECK(cudaMalloc(&b, bytes));
  AWQ_CUDA_CHECK(cudaMalloc(&sink, 4));
  fill_uniform_f16(static_cast<__half*>(a), int64_t(bytes / 2), -1, 1, 1, s);
  const float copy_us = time_graph(s, 2, reps, [&](int) {
    AWQ_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));
  });
  int sms = 0;
  AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const float read_us = time_graph(s, 2, reps, [&](int) {
    read_kernel<<<sms * 8, 512, 0, s>>>(static_cast<const uint4*>(a), int64_t(bytes / 16), sink);
  });
  cudaFree(a);
  cudaFree(b);
  cudaFree(sink);
  return {2.0 * double(bytes) / copy_us * 1e-3, double(bytes) / read_us * 1e-3};
}

struct Shape { int64_t n, k; const char* what; };

// A comma-separated list of integers >= lo ("64,160,512"); anything else: an error saying `what`.
std::vector<int64_t> int_list(const char* text, int64_t lo, const char* what) {
  std::vector<int64_t> v;
  for (const char* p = text; *p;) {
    char* end = nullptr;
    const long long x = std::strtoll(p, &end, 10);
    if (end == p || x < lo) throw std::runtime_error(what);
    v.push_back(x);
    p = *end == ',' ? end + 1 : end;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) try {
  const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 30;
  const std::string mode = argc > 2 ? argv[2] : "";
  const bool sweep = mode == "sweep" || mode == "lsweep" || mode == "psweep";
  // wsweep: only the wgmma configurations (cp.async ones and the warp-specialized TMA ones) at
  // m = 64, 128, 256 (or the m asked for), each with 1, 2, 3, 4, 6 and 8 K splits, at the full repeats,
  // printed as Wi:bm x bn/threads/stages s<splits>=median/min us (* = w4a16_linear's pick).
  // wsweep:i,j,...: only the configurations i, j, ... (the printed global indices) and the pick.
  const bool wsweep = mode.rfind("wsweep", 0) == 0;
  const std::vector<int64_t> wsweep_only =
      wsweep && mode.size() > 7 ? int_list(mode.c_str() + 7, 0, "expected wsweep:i,j,... (config indices)")
                                : std::vector<int64_t>{};
  // ksweep: only the K-slice configurations (w4a16_kslice.cu) at m = 1, 2, 4, 8, 16 (or the m asked
  // for), each with 1, 2, 3, 4, 6 and 8 K splits where they fit, at the full repeats, printed as
  // Ki:mt/wn/wk/u s<splits>=median/min us (* = w4a16_linear's pick), then the register-streaming
  // variant and the tiled GEMM that the dispatch ran before them (AWQ_W4A16_KSLICE=0).
  const bool ksweep = mode == "ksweep";
  const bool sweep_tiled = mode == "sweep";  // lsweep / psweep: the legacy kernels only
  const bool sweep_pdl = mode == "psweep";   // psweep: each legacy configuration plain / with PDL
  const std::string only = argc > 3 && std::string(argv[3]) != "-" ? argv[3] : "";  // shapes whose name has this
  const std::vector<int64_t> only_ms =  // non-empty: only these m
      int_list(argc > 4 ? argv[4] : "", 1, "m must be positive integers, comma-separated");
  const int64_t only_m = only_ms.empty() ? 0 : *std::max_element(only_ms.begin(), only_ms.end());
  std::string why;
  if (!cuda_available(&why)) {
    std::printf("no CUDA device: %s\n", why.c_str());
    return 0;
  }
  std::printf("device: %s\n", device_summary().c_str());
  cudaStream_t s;
  AWQ_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t h;
  AWQ_CUBLAS_CHECK(cublas_api().create(&h));
  void* ws;
  const size_t ws_bytes = size_t(64) << 20;
  AWQ_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  AWQ_CUBLAS_CHECK(cublas_api().set_workspace(h, ws, ws_bytes));  // no allocation inside graph capture
  AWQ_CUBLAS_CHECK(cublas_api().set_stream(h, s));

  const Bandwidth bw = measure_bandwidth(s, reps);
  const double roof = std::max(bw.copy_gbs, bw.read_gbs);
  std::printf("bandwidth: device-to-device copy %.0f GB/s (read + write), read kernel %.0f GB/s; "
              "roofline used below: %.0f GB/s\n", bw.copy_gbs, bw.read_gbs, roof);
  int l2 = 0;
  AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));

  std::vector<Shape> shapes = {{4096, 4096, "o_proj"}, {12288, 4096, "qkv fused"},
                               {11008, 4096, "gate|up"}, {22016, 4096, "gate+up fused"},
                               {4096, 11008, "down_proj"}};
  // A shape "NxK" (n outputs, k inputs; n % 8 == 0, k % 128 == 0) instead of the 7B ones, e.g.
  // 3584x18944 (Qwen2-7B's down_proj).
  long long custom_n = 0, custom_k = 0;
  char rest = 0;
  if (std::sscanf(only.c_str(), "%lldx%lld%c", &custom_n, &custom_k, &rest) == 2) {
    if (custom_n <= 0 || custom_k <= 0 || custom_n % 8 != 0 || custom_k % 128 != 0) {
      std::fprintf(stderr, "bench_cuda_w4a16: shape %s: expected NxK with N %% 8 == 0 and K %% 128 == 0\n", only.c_str());
      return 2;
    }
    shapes = {{custom_n, custom_k, only.c_str()}};
  }
  const int64_t ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  const W4A16Path path = w4a16_path_from_env();
  std::printf("\nW4A16 = w4a16_linear (AWQ_W4A16_KERNEL=%s); legacy = the register-streaming kernels "
              "for the same m; kernel = what w4a16_linear ran (legacy mt/wk/wn/rt, kslice mt/wn/wk/u, or tiled bm x bn)\n",
              path == W4A16Path::Auto ? "auto" : path == W4A16Path::Legacy ? "legacy" : "tiled");
  const bool pdl = pdl_supported();
  std::printf("programmatic dependent launch: %s\n",
              pdl ? "supported (PDL columns measured)" : "not available on this device/build (PDL columns: -)");
  std::printf("\n| shape (n x k) | M | cuBLAS FP16 us | W4A16 us | speed-up | W4A16 GB/s | %% of %.0f GB/s | legacy us | kernel | PDL us | PDL+L2 us |\n",
              roof);
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
  const PdlScope no_pdl(PdlMode::Off);  // every timing below but the PDL columns
  const int group = 128;
  for (const Shape& sh : shapes) {
    if (!only.empty() && std::string(sh.what).find(only) == std::string::npos) continue;
    const int64_t n = sh.n, k = sh.k, ng = k / group;
    // Random AutoAWQ tensors on the host (codes, zeros uniform 0..15; scales 0.002..0.02).
    std::mt19937 rng(uint32_t(n * 31 + k));
    std::vector<int32_t> qweight(size_t(k * (n / 8))), qzeros(size_t(ng * (n / 8)));
    for (auto& w : qweight) w = int32_t(rng());
    for (auto& w : qzeros) w = int32_t(rng());
    std::vector<uint16_t> scales(size_t(ng * n));
    std::uniform_real_distribution<float> sd(0.002f, 0.02f);
    for (auto& v : scales) v = __half_as_ushort(__float2half(sd(rng)));
    AwqMatrix am;
    am.bits = 4;
    am.group = group;
    am.qweight = qweight.data();
    am.qzeros = qzeros.data();
    am.scales = scales.data();
    const W4A16Weight w0 = upload_w4a16(am, n, k, s);
    // Enough copies that one pass over them is >= 3x L2: every call reads HBM.
    const int copies_q = int(std::max<int64_t>(2, (3 * int64_t(l2)) / int64_t(w0.bytes()) + 1));
    std::vector<W4A16Weight> wq(static_cast<size_t>(copies_q), w0);
    const int64_t tiles_n = (n + 15) / 16, chunks = (k + 63) / 64;
    const size_t codes_bytes = size_t(tiles_n * chunks * 32 * 16), params_bytes = size_t(tiles_n * ng * 64);
    for (int c = 1; c < copies_q; ++c) {
      AWQ_CUDA_CHECK(cudaMalloc(&wq[c].codes, codes_bytes));
      AWQ_CUDA_CHECK(cudaMalloc(&wq[c].params, params_bytes));
      AWQ_CUDA_CHECK(cudaMemcpy(wq[c].codes, w0.codes, codes_bytes, cudaMemcpyDeviceToDevice));
      AWQ_CUDA_CHECK(cudaMemcpy(wq[c].params, w0.params, params_bytes, cudaMemcpyDeviceToDevice));
    }
    const size_t wf_bytes = size_t(n * k) * 2;
    const int copies_f = int(std::max<int64_t>(2, (3 * int64_t(l2)) / int64_t(wf_bytes) + 1));
    std::vector<__half*> wf(static_cast<size_t>(copies_f));
    for (int c = 0; c < copies_f; ++c) {
      AWQ_CUDA_CHECK(cudaMalloc(&wf[c], wf_bytes));
      fill_uniform_f16(wf[c], n * k, -0.05f, 0.05f, uint32_t(c + 7), s);
    }
    const int64_t mmax = std::max<int64_t>(256, only_m);  // x and y hold the largest m timed
    __half *x, *y;
    AWQ_CUDA_CHECK(cudaMalloc(&x, size_t(mmax * k) * 2));
    AWQ_CUDA_CHECK(cudaMalloc(&y, size_t(mmax * n) * 2));
    fill_uniform_f16(x, mmax * k, -1.0f, 1.0f, 3, s);
    AWQ_CUDA_CHECK(cudaStreamSynchronize(s));

    // time_graph of `calls` calls of launch(codes, params) that cycle through the weight copies.
    const auto time_w4 = [&](int calls, int r, auto&& launch) {
      return time_graph(s, calls, r, [&](int i) {
        const W4A16Weight& wi = wq[size_t(i % copies_q)];
        launch(static_cast<const uint4*>(wi.codes), static_cast<const uint2*>(wi.params));
      });
    };
    {
      // The floor of a streaming kernel on this shape: read_kernel over the codes and params of
      // one weight copy (cycling copies as below), back to back in a graph like the linears.
      uint32_t* sink;
      AWQ_CUDA_CHECK(cudaMalloc(&sink, 4));
      int sms = 0;
      AWQ_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
      const float t_codes = time_w4(2 * copies_q, reps, [&](const uint4* codes, const uint2*) {
        read_kernel<<<sms * 8, 512, 0, s>>>(codes, int64_t(codes_bytes / 16), sink);
      });
      std::printf("read floor %s: %.2f us for the %.2f MB of codes alone (read_kernel, %.0f GB/s)\n", sh.what,
                  t_codes, double(codes_bytes) * 1e-6, double(codes_bytes) / t_codes * 1e-3);
      cudaFree(sink);
    }
    // The measured picks the engine makes at load (AWQ_W4A16_TUNE, on by default; w4a16.h), over
    // the weight copies as the engine cycles through its layers: the table's W4A16 column then
    // runs what the model runs (its "PDL us" column is the engine's launch mode).
    {
      // Under PDL where the device has it, as the engine's default steps run (AWQ_CUDA_PDL=1).
      const PdlScope tune_pdl(pdl_supported() ? PdlMode::On : PdlMode::Off);
      std::vector<const W4A16Weight*> ws;
      for (const W4A16Weight& wi : wq) ws.push_back(&wi);
      const std::string line = w4a16_tune_linear(ws, mmax, x, y, s);
      if (!line.empty()) std::printf("%s\n", line.c_str());
    }
    if (sweep) {
      // Every compiled kernel configuration at these m: what picks the defaults. A third of the
      // repeats (at least 5) per entry keeps the sweep's time in bounds; the legacy kernels only
      // up to m = 32 (beyond, the tiled GEMM is the only candidate; the table keeps a legacy column).
      const int sweep_reps = std::max(5, reps / 3);
      std::vector<int64_t> sweep_ms = {1, 4, 8, 16, 32, 64, 128, 256};
      if (only_m > 0) sweep_ms = only_ms;  // any m when asked for (e.g. 2, 9..15)
      for (const int64_t m : sweep_ms) {
        std::printf("sweep %s m=%lld:", sh.what, (long long)m);
        for (int v = 0; m <= 32 && v < w4a16_variant_count(); ++v) {
          const W4A16Variant cfg = w4a16_variant(v);
          const int calls = 2 * copies_q;
          const auto variant = [&](const uint4* codes, const uint2* params) {
            launch_w4a16_variant(v, codes, params, x, nullptr, y, n, k, group, m, s);
          };
          const float t = time_w4(calls, sweep_reps, variant);
          const char* sa = cfg.sa ? "s" : "";
          char pdl_t[16] = "";
          if (sweep_pdl && pdl_supported()) {
            const PdlScope with_pdl(PdlMode::On);
            std::snprintf(pdl_t, sizeof pdl_t, "/%.1f", time_w4(calls, sweep_reps, variant));
          }
          std::printf(" %d/%d/%d/%d%s%s=%.1f%s%s", cfg.mt, cfg.wk, cfg.wn, cfg.rt, cfg.xs ? "x" : "", sa, t, pdl_t,
                      v == w4a16_default_variant(m, n, k) ? "*" : "");
        }
        // The tiled GEMM's configurations (w4a16_tiled.cu) at every m (m <= 8: what the 16-token
        // tiles would give decode against the legacy kernels), each with 1, 2 and 4
        // K splits (split-K only where available: sm_90 code), printed as
        // Ti:bm x bn/threads/stages s<splits>=us.
        const W4A16TiledChoice pick = w4a16_default_tiled(m, n, k);
        for (int t = 0; sweep_tiled && t < w4a16_tiled_count(); ++t) {
          const W4A16TiledConfig cfg = w4a16_tiled_config(t);
          std::printf(" %s%d:%dx%d/%d/%d", cfg.wgmma ? "W" : "T", t, cfg.bm, cfg.bn, cfg.threads, cfg.stages);
          for (int splits = 1; splits <= (w4a16_split_k_available() && !cfg.stream_k ? 4 : 1); splits *= 2) {
            const int calls = 2 * copies_q;
            const float tt = time_w4(calls, sweep_reps, [&](const uint4* codes, const uint2* params) {
              launch_w4a16_tiled(t, splits, codes, params, x, nullptr, y, n, k, group, m, s);
            });
            std::printf(" s%d=%.1f%s", splits, tt,
                        w4a16_auto_uses_tiled(m, n, k) && t == pick.config && splits == pick.splits ? "*" : "");
          }
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
    if (wsweep) {
      std::vector<int64_t> wsweep_ms = {64, 128, 256};
      if (only_m > 0) wsweep_ms = only_ms;
      const int first_wgmma = w4a16_tiled_count() - w4a16_wgmma_count();
      for (const int64_t m : wsweep_ms) {
        std::printf("wsweep %s m=%lld:", sh.what, (long long)m);
        const W4A16TiledChoice pick = w4a16_dispatch(true, m, n, k, group, W4A16Path::Tiled).tiled;
        for (int t = first_wgmma; w4a16_wgmma_available() && t < w4a16_tiled_count(); ++t) {
          if (!wsweep_only.empty() && t != pick.config &&
              std::find(wsweep_only.begin(), wsweep_only.end(), t) == wsweep_only.end())
            continue;
          const W4A16TiledConfig cfg = w4a16_tiled_config(t);
          // The TMA tiles' rt is their chunks per ring slot ("c2": two chunks of 64 inputs a slot).
          const bool ws = t - first_wgmma >= w4a16_wgmma_ws_first();
          std::printf(" %s%d:%dx%d/%d/%d%s%s", ws ? "WS" : "W", t, cfg.bm, cfg.bn, cfg.threads, cfg.stages,
                      ws && cfg.rt > 1 ? "c2" : "", cfg.stream_k ? "sk" : cfg.l2_split ? "l2" : "");
          // A stream-K configuration takes no K splits: timed once.
          const int max_splits = w4a16_split_k_available() && !cfg.stream_k ? 8 : 1;
          for (const int splits : {1, 2, 3, 4, 6, 8}) {
            if (splits > max_splits) break;
            const float tt = time_w4(2 * copies_q, reps, [&](const uint4* codes, const uint2* params) {
              launch_w4a16_tiled(t, splits, codes, params, x, nullptr, y, n, k, group, m, s);
            });
            std::printf(" s%d=%.1f/%.1f%s", splits, tt, last_min_us,
                        t == pick.config && splits == pick.splits ? "*" : "");
          }
        }
        std::printf("\n");
        std::fflush(stdout);
      }
    }
    if (ksweep) {
      std::vector<int64_t> ksweep_ms = {1, 2, 4, 8, 16};
      if (only_m > 0) ksweep_ms = only_ms;
      for (const int64_t m : ksweep_ms) {
        std::printf("ksweep %s m=%lld:", sh.what, (long long)m);
        const W4A16KSliceChoice pick = w4a16_dispatch(true, m, n, k, group, W4A16Path::Auto).ks;
        for (int c = 0; c < w4a16_kslice_count(); ++c) {
          const W4A16KSliceConfig cfg = w4a16_kslice_config(c);
          std::printf(" K%d:%d/%d/%d/%d", c, cfg.mt, cfg.wn, cfg.wk, cfg.u);
          for (const int splits : {1, 2, 3, 4, 6, 8}) {
            if (!w4a16_kslice_fits(c, splits, m, k)) continue;
            const float tk = time_w4(2 * copies_q, reps, [&](const uint4* codes, const uint2* params) {
              launch_w4a16_kslice(c, splits, codes, params, x, nullptr, y, n, k, group, m, s);
            });
            std::printf(" s%d=%.1f/%.1f%s", splits, tk, last_min_us,
                        c == pick.config && splits == pick.splits ? "*" : "");
          }
        }
        // The pick without the K-slice kernels (AWQ_W4A16_KSLICE=0's dispatch), same call.
        const bool tiled = w4a16_auto_uses_tiled(m, n, k);
        const float tb = time_w4(2 * copies_q, reps, [&](const uint4* codes, const uint2* params) {
          if (tiled) {
            const W4A16TiledChoice tp = w4a16_default_tiled(m, n, k);
            launch_w4a16_tiled(tp.config, tp.splits, codes, params, x, nullptr, y, n, k, group, m, s);
          } else {
            launch_w4a16_variant(w4a16_default_variant(m, n, k), codes, params, x, nullptr, y, n, k, group, m,
                                 s);
          }
        });
        std::printf(" | before: %s %.1f/%.1f\n", tiled ? "tiled" : "streaming", tb, last_min_us);
        std::fflush(stdout);
      }
    }
    std::vector<int64_t> table_ms(std::begin(ms), std::end(ms));
    if (only_m > 0) table_ms = only_ms;  // any m when asked for
    for (const int64_t m : table_ms) {
      const int calls = 2 * std::max(copies_q, copies_f);
      // cuBLAS, W4A16, W4A16 with PDL (modes 1 and 2): timed in 3 rounds whose order rotates,
      // each keeping its fastest round's median, so that none is always the one timed right
      // after another (measured once each in a fixed order, cuBLAS first, W4A16 at m = 256 on
      // the H200 took 39.7 us in one run and 45.0 in the next, while the same calls with PDL,
      // timed later, took 38.3 and 38.4; docs/results/gpu.md, session 27).
      const int timed = pdl ? 4 : 2;
      const auto time_column = [&](int c) {
        if (c == 0)
          return time_graph(s, calls, reps, [&](int i) { fp16_linear(h, wf[size_t(i % copies_f)], n, k, x, m, nullptr, y, s); });
        std::optional<PdlScope> with_pdl;
        if (c > 1) with_pdl.emplace(c == 2 ? PdlMode::On : PdlMode::OnL2Prefetch);
        return time_graph(s, calls, reps, [&](int i) { w4a16_linear(wq[size_t(i % copies_q)], x, m, nullptr, y, s); });
      };
      float best[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
      for (int round = 0; round < 3; ++round)
        for (int j = 0; j < timed; ++j) {
          const int c = (j + round) % timed;
          best[c] = std::min(best[c], time_column(c));
        }
      const float t16 = best[0], t4 = best[1];
      const float t_legacy = time_w4(calls, reps, [&](const uint4* codes, const uint2* params) {
        launch_w4a16(codes, params, x, nullptr, y, n, k, group, m, W4A16Path::Legacy, s);
      });
      char t_pdl[2][16] = {"-", "-"};
      for (int p = 0; pdl && p < 2; ++p) std::snprintf(t_pdl[p], sizeof t_pdl[p], "%.2f", best[2 + p]);
      const double bytes = double(w0.bytes()) + double(m * k * 2) + double(m * n * 2);
      const double gbs = bytes / t4 * 1e-3;
      // What launch_w4a16 runs (x is cudaMalloc'd: 16-byte aligned).
      const W4A16Dispatch d = w4a16_dispatch(true, m, n, k, group, path);
      const char* tuned = d.tuned ? " tuned" : "";
      char kernel[64];
      if (d.kind == W4A16Dispatch::Kind::KSlice) {
        const W4A16KSliceConfig c = w4a16_kslice_config(d.ks.config);
        std::snprintf(kernel, sizeof kernel, "kslice %d/%d/%d/%d split %d%s", c.mt, c.wn, c.wk, c.u, d.ks.splits, tuned);
      } else if (d.kind == W4A16Dispatch::Kind::Tiled) {
        const W4A16TiledConfig c = w4a16_tiled_config(d.tiled.config);
        std::snprintf(kernel, sizeof kernel, "%s %dx%d/%d %s %d%s", c.wgmma ? "wgmma" : "tiled", c.bm, c.bn,
                      c.threads, c.stream_k ? "stream-K" : c.l2_split ? "L2 split" : "split",
                      c.stream_k ? 1 : d.tiled.splits, tuned);
      } else {
        const W4A16Variant v = w4a16_variant(d.variant);
        std::snprintf(kernel, sizeof kernel, "legacy %d/%d/%d/%d%s%s%s", v.mt, v.wk, v.wn, v.rt, v.xs ? "x" : "",
                      v.sa ? "s" : "", tuned);
      }
      std::printf("| %s %lld x %lld | %lld | %.2f | %.2f | %.2fx | %.0f | %.0f %% | %.2f | %s | %s | %s |\n", sh.what,
                  (long long)n, (long long)k, (long long)m, t16, t4, t16 / t4, gbs, 100.0 * gbs / roof,
                  t_legacy, kernel, t_pdl[0], t_pdl[1]);
      std::fflush(stdout);
    }
    for (int c = 0; c < copies_q; ++c) free_w4a16(wq[size_t(c)]);
    for (__half* p : wf) cudaFree(p);
    cudaFree(x);
    cudaFree(y);
  }
  cublas_api().destroy(h);
  cudaFree(ws);
  cudaStreamDestroy(s);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_cuda_w4a16: %s\n", e.what());
  return 1;
}
