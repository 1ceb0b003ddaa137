// Device side of programmatic dependent launch (pdl.h has the contract): griddepcontrol.wait /
// launch_dependents, and a bulk L2 prefetch for weights. All three compile to nothing below
// sm_90 (no such instructions there; pdl_supported() keeps the host from setting the launch
// attribute for such code) and are harmless in a kernel launched without the attribute.
#pragma once
#include <cstdint>

namespace awq::cuda::pdl_device {

// Blocks until the previous kernel in the stream has completed and its memory is visible
// (cudaGridDependencySynchronize). Returns at once when launched without PDL.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// Lets the next kernel in the stream launch once every block of this one has executed this or
// exited (cudaTriggerProgrammaticLaunchCompletion). Says nothing about this kernel's writes:
// the dependent's pdl_wait() waits for this kernel's completion.
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Asks for [p, p + bytes) to be brought into L2 (a hint; no data comes back to the thread).
// p 16-byte aligned, bytes a multiple of 16.
__device__ __forceinline__ void prefetch_l2(const void* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (bytes) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(bytes) : "memory");
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace awq::cuda::pdl_device
