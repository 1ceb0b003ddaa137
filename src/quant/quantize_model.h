// `awq quantize`: a Hugging Face FP16/BF16/FP32 Llama-family folder in, an AutoAWQ GEMM folder
// out. Streams one decoder layer at a time: only that layer's weights in f32 plus the
// calibration activations are held. model.safetensors is streamed too: its header (every
// tensor, quant/quantized_layout.h) is written first, then each packed tensor as soon as it
// is made, and freed; the mmapped source pages of a finished layer are dropped from the RSS.
// Everything goes into a staging folder renamed into place at the end (an error or Ctrl-C
// leaves nothing).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/memory_usage.h"  // peak_rss_mib, current_rss
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
  double peak_rss_mib = 0;      // getrusage: anonymous + file-backed pages
  // The largest RssAnon (heap: weights in f32, activations, packed tensors) and RssFile
  // (mmapped source pages) seen after each layer and at the end (/proc/self/status).
  double max_rss_anon_mib = 0, max_rss_file_mib = 0;
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

}  // namespace awq
