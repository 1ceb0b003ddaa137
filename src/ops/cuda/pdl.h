// Programmatic dependent launch (PDL; sm_90+, CUDA >= 12.3, also inside CUDA graphs) for the
// kernels of the decode step, and the one launch helper every such kernel goes through.
//
// What PDL does (CUDA programming guide, "Programmatic Dependent Launch and Synchronization";
// PTX ISA, griddepcontrol): a kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization
// may start before the previous kernel in its stream has finished, as soon as every block of
// that previous ("primary") kernel has executed griddepcontrol.launch_dependents
// (cudaTriggerProgrammaticLaunchCompletion) or exited. The dependent then runs its preamble
// (here: the W4A16 kernels' first weight loads, which never depend on the previous kernel) and
// executes griddepcontrol.wait (cudaGridDependencySynchronize), which blocks until the primary
// grids have COMPLETED and their memory operations are performed and visible to this grid. The
// visibility guarantee is only at the wait: before it, a dependent must neither read anything an
// earlier kernel writes nor write anything an earlier kernel reads. Because the wait waits for
// the primary's full completion (not for its trigger), triggering early is always safe for
// correctness: the trigger only lets the dependent's blocks be scheduled sooner.
//
// The contract every kernel launched through launch_kernel (pdl_device.cuh) keeps:
//  1. every block executes pdl_wait() before its first access to activations, caches or
//     anything else another kernel of the step writes, and before any early return (so that a
//     grid never completes before its primary: "B complete" implies "A complete", which is what
//     makes chains A -> B -> C safe, C waiting on B only);
//  2. only immutable data (weights, norms, tables) is read before the wait;
//  3. pdl_trigger() comes right after the wait: the next kernel's blocks launch while this one
//     runs, but no further kernel launches before this one's wait has returned (triggering
//     before the wait would let the whole step's kernels launch at once and sit on the SMs).
// A kernel launched without the attribute (PDL off, sm_80, the legacy default stream) runs
// after its predecessor as usual; griddepcontrol.wait returns at once then, so the code and the
// order of arithmetic are the same either way: results are bit-identical with PDL on and off.
#pragma once
#include <cuda_runtime.h>

#include "ops/cuda/cuda_check.h"

namespace awq::cuda {

// AWQ_CUDA_PDL: 0 = off; 1 (default, also unset or "") = PDL with the W4A16 kernels' first
// weight stages loaded before the wait; 2 = as 1 plus an L2 prefetch (cp.async.bulk.prefetch.L2)
// of the next part of each W4A16 block's weights before the wait. Other values: awq::Error.
enum class PdlMode { Off = 0, On = 1, OnL2Prefetch = 2 };
PdlMode parse_pdl_mode(const char* value);
PdlMode pdl_mode_from_env();  // parse_pdl_mode(getenv("AWQ_CUDA_PDL")), read once

// True when the current device is sm_90+ and this build's device code was compiled for sm_90+
// (an sm_80 build JIT-compiled for an H100 has no griddepcontrol instructions: launching it
// with the attribute would let kernels overlap without waiting). Queried once; false without a
// device. Call it once outside any graph capture (upload_w4a16 and CudaLlama do).
// After pdl_launch_failed, false for the rest of the process.
bool pdl_supported();

// Called by launch_kernel when a launch with the PDL attribute fails: clears the (non-sticky)
// launch error, prints one warning to stderr naming it, and turns PDL off for the process, so
// that the launch can be retried without the attribute (a driver or tool that refuses the
// attribute costs the overlap, not the run).
void pdl_launch_failed(cudaError_t e);

// The mode launches from this thread use now: the innermost PdlScope's; Off outside any scope
// (PDL is opt-in: callers other than the engine, e.g. the GPU AWQ search, whose kernels may
// follow copies in their stream, launch as before) and where PDL is unsupported.
PdlMode pdl_mode();

// Sets the mode for launches from this thread until destroyed (nests). CudaLlama wraps its
// forward passes in one (mode from CudaLlamaOptions::pdl, by default AWQ_CUDA_PDL); tests and
// benchmarks use it to compare modes in one process.
class PdlScope {
 public:
  explicit PdlScope(PdlMode mode);
  ~PdlScope();
  PdlScope(const PdlScope&) = delete;
  PdlScope& operator=(const PdlScope&) = delete;

 private:
  int previous_;
};

// How to launch one kernel. pdl: may this launch carry the PDL attribute (false for a kernel
// whose predecessor in the stream may be a copy, e.g. the first kernel of a forward pass).
struct LaunchShape {
  dim3 grid, block;
  size_t smem = 0;
  cudaStream_t stream = nullptr;
  unsigned cluster_z = 1;  // > 1: thread block clusters of (1, 1, cluster_z)
  bool pdl = true;
};

// True when a launch on stream s gets the PDL attribute: pdl_mode() != Off and s is a created
// stream (the legacy default stream, nullptr, keeps its implicit synchronisation: tests and
// tools that launch there rely on it).
inline bool pdl_launch(cudaStream_t s) { return s != nullptr && pdl_mode() != PdlMode::Off; }

// kernel<<<l.grid, l.block, l.smem, l.stream>>>(args...) through cudaLaunchKernelEx, with the
// programmatic-stream-serialization attribute where pdl_launch(l.stream) and l.pdl, and a
// cluster dimension where l.cluster_z > 1. A launch that fails with the PDL attribute is
// retried once without it (pdl_launch_failed); other failures throw awq::Error (AWQ_CUDA_CHECK).
// l's grid, block, shared memory and stream as a launch configuration (no attributes yet).
inline cudaLaunchConfig_t launch_config(const LaunchShape& l) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = l.grid;
  cfg.blockDim = l.block;
  cfg.dynamicSmemBytes = l.smem;
  cfg.stream = l.stream;
  return cfg;
}

template <class... Params, class... Args>
void launch_kernel(const LaunchShape& l, void (*kernel)(Params...), const Args&... args) {
  cudaLaunchConfig_t cfg = launch_config(l);
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (l.cluster_z > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = 1;
    attr[n].val.clusterDim.y = 1;
    attr[n].val.clusterDim.z = l.cluster_z;
    ++n;
  }
  const bool with_pdl = l.pdl && pdl_launch(l.stream);
  if (with_pdl) {  // last, so that dropping it leaves the cluster attribute
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cfg.attrs = n ? attr : nullptr;
  cfg.numAttrs = n;
  cudaError_t launched = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (launched != cudaSuccess && with_pdl) {
    pdl_launch_failed(launched);
    cfg.numAttrs = n - 1;
    cfg.attrs = n - 1 ? attr : nullptr;
    launched = cudaLaunchKernelEx(&cfg, kernel, args...);
  }
  AWQ_CUDA_CHECK(launched);
}

// kernel<<<...>>>(args...) as a cooperative launch (cudaLaunchAttributeCooperative: every block
// of the grid resident at once, or the launch fails; the driver, MPS and compute-sanitizer then
// keep the grid co-scheduled), with the PDL attribute where pdl_launch(l.stream) and l.pdl. For
// kernels whose blocks wait for each other (the W4A16 split-K through L2). l.cluster_z must be
// 1. Returns false, with the launch error cleared, where the launch failed with and without PDL
// (the caller then runs another kernel); a failure with PDL only drops PDL for cooperative
// launches, not for the process.
bool cooperative_pdl_failed();
void note_cooperative_pdl_failed();
template <class... Params, class... Args>
bool try_launch_cooperative(const LaunchShape& l, void (*kernel)(Params...), const Args&... args) {
  cudaLaunchConfig_t cfg = launch_config(l);
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = l.pdl && pdl_launch(l.stream) && !cooperative_pdl_failed() ? 2 : 1;
  cudaError_t launched = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (launched != cudaSuccess && cfg.numAttrs == 2) {
    (void)cudaGetLastError();
    note_cooperative_pdl_failed();
    cfg.numAttrs = 1;
    launched = cudaLaunchKernelEx(&cfg, kernel, args...);
  }
  if (launched != cudaSuccess) (void)cudaGetLastError();
  return launched == cudaSuccess;
}

}  // namespace awq::cuda
