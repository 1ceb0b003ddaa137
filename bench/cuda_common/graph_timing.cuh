// Timing by CUDA graph replay, shared by the CUDA benchmarks (bench/cuda, bench/cuda_cluster).
// Header-only and free of the project library, so that a probe of the hardware alone can use it.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace awq_bench {

// Throws std::runtime_error naming `what` when e is an error.
inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

struct GraphTime {
  float median_us, min_us;  // per call
};

// A graph of `calls` launches made by f(i) (i = 0 .. calls - 1) captured on stream s, replayed
// 3 times to warm up and then `reps` times, each replay timed by events: the median and the
// fastest replay, divided by `calls`, in microseconds. Errors throw std::runtime_error.
template <class F>
GraphTime time_graph(cudaStream_t s, int calls, int reps, F&& f) {
  cudaGraph_t g;
  cudaGraphExec_t ge;
  check_cuda(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  for (int i = 0; i < calls; ++i) f(i);
  check_cuda(cudaStreamEndCapture(s, &g), "cudaStreamEndCapture");
  check_cuda(cudaGraphInstantiate(&ge, g, 0), "cudaGraphInstantiate");
  cudaEvent_t e0, e1;
  check_cuda(cudaEventCreate(&e0), "cudaEventCreate");
  check_cuda(cudaEventCreate(&e1), "cudaEventCreate");
  for (int w = 0; w < 3; ++w) check_cuda(cudaGraphLaunch(ge, s), "cudaGraphLaunch");
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    check_cuda(cudaEventRecord(e0, s), "cudaEventRecord");
    check_cuda(cudaGraphLaunch(ge, s), "cudaGraphLaunch");
    check_cuda(cudaEventRecord(e1, s), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    t.push_back(ms * 1000.0f / float(calls));
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaGraphExecDestroy(ge);
  cudaGraphDestroy(g);
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

}  // namespace awq_bench
