// Reproducible pseudo-random fp16 data made on the device: scratch inputs for timing kernels.
// Timing with zeros would flatter some kernels: tensor cores multiplying zeros draw less power, so
// the clocks stay higher, and more so for the compute-heavier tiles (docs/results/gpu.md, session
// 22's ablation caveat; the W4A16 tuner, w4a16_tune.h, and the benchmarks fill their inputs here).
#pragma once
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace awq::cuda {

// a: [count] fp16 = uniform in [lo, hi), element i from a hash of (i, seed); enqueued on s.
void fill_uniform_f16(__half* a, int64_t count, float lo, float hi, uint32_t seed, cudaStream_t s);

}  // namespace awq::cuda
