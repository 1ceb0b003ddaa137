// Timing by CUDA graph replay, shared by the CUDA benchmarks (bench/cuda, bench/cuda_cluster).
// Header-only and free of the project library, so that a probe of the hardware alone can use it.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace awq_bench {

inline void graph_timing_check(cudaError_t e, const char* what) {
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
  graph_timing_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  for (int i = 0; i < calls; ++i) f(i);
  graph_timing_check(cudaStreamEndCapture(s, &g), "cudaStreamEndCapture");
  graph_timing_check(cudaGraphInstantiate(&ge, g, 0), "cudaGraphInstantiate");
  cudaEvent_t e0, e1;
  graph_timing_check(cudaEventCreate(&e0), "cudaEventCreate");
  graph_timing_check(cudaEventCreate(&e1), "cudaEventCreate");
  for (int w = 0; w < 3; ++w) graph_timing_check(cudaGraphLaunch(ge, s), "cudaGraphLaunch");
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    graph_timing_check(cudaEventRecord(e0, s), "cudaEventRecord");
    graph_timing_check(cudaGraphLaunch(ge, s), "cudaGraphLaunch");
    graph_timing_check(cudaEventRecord(e1, s), "cudaEventRecord");
    graph_timing_check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    graph_timing_check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
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
