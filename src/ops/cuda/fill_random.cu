// Pseudo-random fp16 fill (fill_random.h).
#include "ops/cuda/fill_random.h"

#include "ops/cuda/cuda_check.h"

namespace awq::cuda {

namespace {

__device__ uint32_t hash32(uint64_t i, uint32_t seed) {
  uint32_t x = uint32_t(i) * 0x9E3779B1u ^ uint32_t(i >> 32) ^ seed;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void fill_uniform_kernel(__half* a, int64_t count, float lo, float hi, uint32_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    a[i] = __float2half(lo + (hi - lo) * float(hash32(uint64_t(i), seed) >> 8) * (1.0f / 16777216.0f));
}

}  // namespace

void fill_uniform_f16(__half* a, int64_t count, float lo, float hi, uint32_t seed, cudaStream_t s) {
  if (count <= 0) return;
  fill_uniform_kernel<<<1024, 256, 0, s>>>(a, count, lo, hi, seed);
  AWQ_CUDA_CHECK_LAUNCH();
}

}  // namespace awq::cuda
