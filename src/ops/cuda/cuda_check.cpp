#include "ops/cuda/cuda_check.h"

#include <string>

#include "core/error.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_llama.h"  // cuda_select_device

namespace awq::cuda {

void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  std::string msg = "CUDA error in ";
  msg += call;
  msg += " at ";
  msg += file;
  msg += ":" + std::to_string(line) + ": ";
  msg += cudaGetErrorName(e);
  msg += " (";
  msg += cudaGetErrorString(e);
  msg += ")";
  throw Error(msg);
}

void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  std::string msg = "cuBLAS error in ";
  msg += call;
  msg += " at ";
  msg += file;
  msg += ":" + std::to_string(line) + ": ";
  msg += cublas_api().status_name(s);
  msg += " (";
  msg += cublas_api().status_string(s);
  msg += ")";
  throw Error(msg);
}

namespace {

// The CUDA devices the runtime finds, or -1 with *why its error (no driver, ...).
int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaSuccess) return n;
  cudaGetLastError();  // clear the sticky-free error so later calls start clean
  *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  return -1;
}

}  // namespace

void cuda_select_device(int index) {
  std::string why;
  const int n = device_count(&why);
  if (n < 0) throw Error("no CUDA device: " + why);
  if (index < 0 || index >= n) {
    std::string names;
    for (int i = 0; i < n; ++i) {
      cudaDeviceProp p{};
      names += (i ? ", cuda:" : "cuda:") + std::to_string(i);
      if (cudaGetDeviceProperties(&p, i) == cudaSuccess) names += std::string(" ") + p.name;
    }
    throw Error("GPU " + std::to_string(index) + " does not exist: this machine has " + std::to_string(n) +
                (n == 1 ? " CUDA device" : " CUDA devices") + (n > 0 ? " (" + names + ")" : ""));
  }
  AWQ_CUDA_CHECK(cudaSetDevice(index));
}

bool cuda_available(std::string* why) {
  std::string none;
  const int n = device_count(&none);
  if (n <= 0) {
    if (why) *why = n < 0 ? none : "cudaGetDeviceCount found 0 devices";
    return false;
  }
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess || p.major < 8) {
    if (why) {
      *why = "device " + std::to_string(dev) + " (";
      *why += p.name;
      *why += ") has compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor) +
              "; the kernels need 8.0 or newer";
    }
    return false;
  }
  return true;
}

std::string device_summary() {
  int dev = 0;
  AWQ_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  AWQ_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  int clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
  std::string s = p.name;
  s += ", sm_" + std::to_string(p.major) + std::to_string(p.minor);
  s += ", " + std::to_string(p.multiProcessorCount) + " SMs";
  s += ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB";
  s += ", L2 " + std::to_string(p.l2CacheSize >> 20) + " MiB";
  s += ", bus " + std::to_string(p.memoryBusWidth) + " bit";
  s += ", SM clock " + std::to_string(clock_khz / 1000) + " MHz";
  return s;
}

}  // namespace awq::cuda
