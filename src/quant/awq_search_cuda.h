// The AWQ search of quant/awq_search.h on a CUDA GPU (`awq quantize --device cuda`): the same
// algorithm, search set, candidate scales (computed on the host by the same code), fold
// (quant/scale_fold.h on the host) and clip search, with the heavy parts on the device:
//  - the FP layer over every calibration token: fp16 weights and activations, cuBLAS GEMMs on
//    fp16 tensor cores with f32 accumulation (as AutoAWQ computes in fp16), the residual stream
//    in f32, the attention and RoPE kernels of the CUDA inference engine (ops/cuda). The inputs
//    of the linear groups are captured in fp16 on the device (half the memory of f32: the
//    Llama-2-7B shape at 128 x 512 tokens needs 2.9 GiB of captures instead of 5.8);
//  - mean|x| (double accumulation), the scale candidates' fake quantization (a kernel with the
//    arithmetic of quant/fake_quant.cpp, IEEE f32 ops without contraction, so Q(W * s) / s is
//    bit-identical to the CPU's on the same f32 inputs; then rounded to fp16 for the GEMM), the
//    module outputs in f32 (the last GEMM writes f32) and their MSE (double, deterministic);
//  - the clip search from the Gram blocks X_g^T X_g of the fp16 captures (batched cuBLAS, f32
//    accumulation; the folded scales applied to the Gram blocks in f32, not to the captures),
//    the candidate losses dw H_g dw^T as an f32 batched SGEMM plus a double dot product kernel.
// The next layer's input is the FP layer's output (f32, kept on the device between layers).
// Not supported on the GPU: nothing of AwqSearchOptions is refused; a head_dim other than 64,
// 128 or 256 (the attention kernel's) is refused with an awq::Error.
// This header is free of CUDA types; without AWQ_HAVE_CUDA every entry point throws
// awq::Error ("built without CUDA").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_config.h"
#include "quant/awq_search.h"
#include "quant/layer_f32.h"

namespace awq {

// True when this build has CUDA and a usable device; else false and *why says why.
bool awq_cuda_search_available(std::string* why);

// Device state of the GPU search for one model, reused by every layer.
class AwqCudaSearch {
 public:
  // Allocates the device buffers for n_seq x seqlen calibration tokens of a model shaped c.
  // inv_freq: [head_dim / 2] (model/rope.h). Throws awq::Error without CUDA / a GPU, on an
  // unsupported head_dim, or when the device memory does not suffice.
  AwqCudaSearch(const ModelConfig& c, const std::vector<float>& inv_freq, int64_t n_seq, int64_t seqlen,
                const AwqSearchOptions& opt);
  ~AwqCudaSearch();
  AwqCudaSearch(const AwqCudaSearch&) = delete;
  AwqCudaSearch& operator=(const AwqCudaSearch&) = delete;

  // x: [n_seq * seqlen, d] the first layer's calibration input (copied to the device).
  void set_input(const std::vector<float>& x);
  // The search of one layer, as awq_search_layer: scales folded and weights clipped in `layer`
  // (host), the device input replaced by the FP layer's output.
  LayerReport search_layer(LayerF32& layer);
  // x: [n_seq * seqlen, d] the current device input (the previous layer's FP output).
  std::vector<float> input() const;

  double peak_gpu_used_mib() const;   // max of (total - free) from cudaMemGetInfo, sampled
  double allocated_mib() const;       // the device buffers this object holds
  std::string device_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Kernel-level entry points for the tests (host memory in and out, synchronous).
// The fake quantization kernel: w: [rows, cols] in place (quant/fake_quant.h fake_quantize).
void cuda_fake_quantize(float* w, int64_t rows, int64_t cols, const QuantParams& p);
// The Gram blocks of the GPU search: x is rounded to fp16 (as the captures are), then
// H_g = X_g^T X_g / n over rows 0, stride, 2 stride, ... < n_all. x: [n_all, in] -> [in / G, G, G]
std::vector<float> cuda_group_grams(const float* x, int64_t n_all, int64_t in, int G, int64_t stride);
// The clip search of the GPU (awq_clip_linear_gram). w: [out, in] in place; grams: [in / G, G, G].
void cuda_clip_linear_gram(float* w, int64_t out, int64_t in, const float* grams, const AwqSearchOptions& opt);

}  // namespace awq
