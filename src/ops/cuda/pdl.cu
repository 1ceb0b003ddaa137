// Programmatic dependent launch: the mode (AWQ_CUDA_PDL, PdlScope) and whether the device and
// this build's device code support it. Contract: pdl.h.
#include "ops/cuda/pdl.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "core/env_choice.h"
#include "core/error.h"
#include "ops/cuda/build_arch.h"

namespace awq::cuda {

namespace {

std::atomic<bool> launch_failed{false};  // pdl_launch_failed was called
std::atomic<bool> cooperative_failed{false};  // a cooperative launch with PDL failed

constexpr int kNoOverride = -1;
thread_local int scope_mode = kNoOverride;

}  // namespace

PdlMode parse_pdl_mode(const char* value) {
  static const PdlMode modes[] = {PdlMode::Off, PdlMode::On, PdlMode::OnL2Prefetch};
  return modes[env_choice("AWQ_CUDA_PDL", value,
                          {{"0", "no programmatic dependent launch"},
                           {"1", "the default: kernels of the decode step overlap their launch and first weight "
                                 "loads with the previous kernel, sm_90+"},
                           {"2", "as 1, plus an L2 prefetch of more weights"}},
                          1)];
}

PdlMode pdl_mode_from_env() {
  static const PdlMode mode = parse_pdl_mode(std::getenv("AWQ_CUDA_PDL"));
  return mode;
}

bool pdl_supported() {
  static bool supported = false;
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      cudaGetLastError();  // no device: PDL off, nothing sticky left behind
      return;
    }
    // An sm_80 build JIT-compiled for a Hopper device has no griddepcontrol instructions.
    supported = major >= 9 && device_code_arch().arch >= 900;
  });
  return supported && !launch_failed.load(std::memory_order_relaxed);
}

void pdl_launch_failed(cudaError_t e) {
  cudaGetLastError();  // the launch error, so that the retry starts clean
  if (!launch_failed.exchange(true))
    std::fprintf(stderr,
                 "warning: a kernel launch with programmatic dependent launch failed (%s: %s); "
                 "continuing without it (AWQ_CUDA_PDL=0 does the same without this warning)\n",
                 cudaGetErrorName(e), cudaGetErrorString(e));
}

bool cooperative_pdl_failed() { return cooperative_failed.load(std::memory_order_relaxed); }
void note_cooperative_pdl_failed() { cooperative_failed.store(true, std::memory_order_relaxed); }

PdlMode pdl_mode() {
  if (scope_mode == kNoOverride || !pdl_supported()) return PdlMode::Off;
  return PdlMode(scope_mode);
}

PdlScope::PdlScope(PdlMode mode) : previous_(scope_mode) { scope_mode = int(mode); }
PdlScope::~PdlScope() { scope_mode = previous_; }

}  // namespace awq::cuda
