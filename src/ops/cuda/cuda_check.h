// CUDA error checking and device discovery for src/ops/cuda. A failing CUDA or cuBLAS call
// becomes awq::Error naming the call, the file:line and the CUDA error text.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace awq::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line);

// True when the current CUDA device (0 unless cuda_select_device, cuda_llama.h, chose another) can be used;
// otherwise false and *why (if non-null) says why (no driver, no device, compute capability under
// 8.0, ...). Tests skip with "no CUDA device: <why>".
bool cuda_available(std::string* why = nullptr);

// One line about the current device: name, compute capability, SMs, memory, L2, bus width.
std::string device_summary();

}  // namespace awq::cuda

#define AWQ_CUDA_CHECK(call)                                                         \
  do {                                                                               \
    cudaError_t awq_cuda_err_ = (call);                                              \
    if (awq_cuda_err_ != cudaSuccess)                                                \
      ::awq::cuda::throw_cuda_error(awq_cuda_err_, #call, __FILE__, __LINE__);       \
  } while (0)

// After a kernel launch: the launch error (bad configuration, no device), not a sync.
#define AWQ_CUDA_CHECK_LAUNCH() AWQ_CUDA_CHECK(cudaGetLastError())

#define AWQ_CUBLAS_CHECK(call)                                                       \
  do {                                                                               \
    cublasStatus_t awq_cublas_st_ = (call);                                          \
    if (awq_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::awq::cuda::throw_cublas_error(awq_cublas_st_, #call, __FILE__, __LINE__);    \
  } while (0)
