// Which GPU code this build runs on the device, and what to say when it does not suit the GPU.
// An sm_80 build (CMake's default where configure found no GPU, e.g. CI) runs on an H100 or H200
// by JIT from its PTX: correct, but without the Hopper paths (the wgmma and TMA GEMMs need
// sm_90a code; thread block clusters and programmatic dependent launch need sm_90 code), so
// prefill and batched decode run the mma.sync kernels (docs/gpu.md).
#pragma once
#include <string>

namespace awq::cuda {

// What the device code that runs on the current device was compiled for: arch = __CUDA_ARCH__
// (800 for an sm_80 build JIT-compiled for a Hopper GPU), sm90a = with the sm_90a features
// (wgmma). {0, false} without a usable device. Probed once (a one-thread kernel).
struct DeviceCodeArch {
  int arch = 0;
  bool sm90a = false;
};
DeviceCodeArch device_code_arch();

// The advice for a GPU of compute capability major.minor named `gpu` running `code`: "" where the
// code suits it, else one sentence naming what is off and the CMake flag that fixes it.
std::string cuda_build_advice(int major, int minor, const std::string& gpu, DeviceCodeArch code);
// The same for the current device ("" without one).
std::string cuda_build_advice_here();

}  // namespace awq::cuda
