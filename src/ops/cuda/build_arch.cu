// Device code architecture probe and build advice (build_arch.h).
#include "ops/cuda/build_arch.h"

#include <cuda_runtime.h>

#include <mutex>

namespace awq::cuda {

namespace {

// Writes __CUDA_ARCH__ of the code that runs, and 1 where it has the sm_90a features.
__global__ void device_code_arch_kernel(int* out) {
#ifdef __CUDA_ARCH__
  out[0] = __CUDA_ARCH__;
#ifdef __CUDA_ARCH_FEAT_SM90_ALL
  out[1] = 1;
#else
  out[1] = 0;
#endif
#endif
}

}  // namespace

DeviceCodeArch device_code_arch() {
  static DeviceCodeArch probed;
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0, host[2] = {0, 0};
    int* d = nullptr;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaMalloc(&d, sizeof(host)) != cudaSuccess) {
      cudaGetLastError();  // no device: nothing sticky left behind
      return;
    }
    device_code_arch_kernel<<<1, 1>>>(d);
    const bool ran = cudaGetLastError() == cudaSuccess &&
                     cudaMemcpy(host, d, sizeof(host), cudaMemcpyDeviceToHost) == cudaSuccess;
    cudaFree(d);
    cudaGetLastError();
    if (ran) probed = {host[0], host[1] == 1};
  });
  return probed;
}

std::string cuda_build_advice(int major, int minor, const std::string& gpu, DeviceCodeArch code) {
  if (major < 9 || code.arch == 0) return "";
  const std::string built = "this build's GPU code is sm_" + std::to_string(code.arch / 10) +
                            (code.sm90a ? "a" : "");
  const std::string rebuild = " (make build picks the architecture of the GPU it finds when it configures)";
  // Code of an older major architecture runs from its PTX, which the driver compiles at first use
  // (H200, sm_80 build, tiny model: the first load 6.4 s, the next 0.17 s; docs/gpu.md).
  const std::string jit = code.arch / 100 < major
                              ? "; until then the driver compiles the kernels from PTX at their first use (seconds, "
                                "then cached)"
                              : "";
  if (major == 9 && minor == 0) {
    if (code.sm90a) return "";
    return built + ": on this " + gpu + " (sm_90) the Hopper kernels are off (wgmma and TMA GEMMs" +
           (code.arch < 900 ? ", thread block clusters, programmatic dependent launch" : "") +
           "), so prefill and batched decode run slower; rebuild with -DCMAKE_CUDA_ARCHITECTURES=90a" + rebuild + jit;
  }
  if (code.arch >= 900) return "";
  const std::string cc = std::to_string(major) + std::to_string(minor);
  return built + ": on this " + gpu + " (sm_" + cc +
         ") thread block clusters and programmatic dependent launch are off; rebuild with "
         "-DCMAKE_CUDA_ARCHITECTURES=" + cc + rebuild + jit;
}

std::string cuda_build_advice_here() {
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return cuda_build_advice(p.major, p.minor, p.name, device_code_arch());
}

}  // namespace awq::cuda
