// `awq quantize`: a Hugging Face FP16/BF16/FP32 Llama-family folder in, an AutoAWQ GEMM folder
// out. Streams one decoder layer at a time: only that layer's weights in f32 plus the
// calibration activations are held; the packed output (1/4 of the FP16 size) accumulates in
// memory and is written at the end into a temporary folder that is renamed into place.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "quant/awq_search.h"
#include "quant/calibration.h"

namespace awq {

struct QuantizeOptions {
  std::string model_dir, out_dir;
  std::string method = "awq";  // awq | rtn
  AwqSearchOptions search;     // qp (bits, group, zero point), clip, duo scaling, search tokens
  CalibOptions calib;
  bool force = false;          // replace an existing out_dir
  std::string device = "cpu";  // where the AWQ search runs: cpu | cuda (quant/awq_search_cuda.h)
};

struct QuantizeReport {
  std::vector<LayerReport> layers;
  int64_t calib_tokens = 0;
  double seconds = 0;
  double peak_rss_mib = 0;
  int64_t output_bytes = 0;
  // --device cuda only: the GPU, its peak memory in use during the run (cudaMemGetInfo
  // total - free, sampled after each allocation and search phase: includes the CUDA context
  // and cuBLAS workspaces) and the buffers the search allocated.
  std::string gpu_name;
  double peak_gpu_used_mib = 0;
  double gpu_allocated_mib = 0;
};

// on_layer(done, total, report of the layer just finished)
QuantizeReport quantize_model(ThreadPool& pool, const QuantizeOptions& opt,
                              const std::function<void(int, int, const LayerReport&)>& on_layer = nullptr);

// Peak resident set size of this process so far, MiB.
double peak_rss_mib();

}  // namespace awq
