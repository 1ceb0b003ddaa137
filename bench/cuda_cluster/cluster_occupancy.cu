// How thread block clusters of one-block-per-SM kernels pack on this GPU, and what an empty
// launch of such a grid costs. No project library: the question is the hardware's. Built with
// AWQ_CUDA as awq_bench_cluster (run it on an sm_90 GPU; elsewhere it says so and exits 0), or
// alone: nvcc -O2 -std=c++17 -arch=sm_90a -o /tmp/c bench/cuda_cluster/cluster_occupancy.cu && /tmp/c
// Why: the TMA W4A16 tiles (w4a16_wgmma_ws.cu) take ~150-230 KB of shared memory, so one block
// per SM, and their split-K runs the splits of a tile as a cluster along z. A cluster must fit
// in one GPC, and H100 GPCs hold 16-18 SMs: clusters of 3 or 6 may leave SMs over, so a grid of
// 132 / c clusters may not fit in one wave. For each cluster size c this prints
// cudaOccupancyMaxActiveClusters (how many run at once) against the SM count / c, and the time
// of an empty launch of 132 blocks in clusters of c (graph of 50 launches; median of 9 after 3
// warm-up replays), the fixed cost a launch of these kernels pays whatever it computes.
#include <cuda_runtime.h>
#include <cooperative_groups.h>

#include <cstdio>
#include <exception>

#include "../cuda_common/graph_timing.cuh"

// One error path for the whole probe: main reports what throws.
#define CHECK(x) awq_bench::check_cuda((x), #x)

// Touches its shared memory once (so that the allocation is real) and, in a cluster, meets the
// other blocks once (as the split-K reduction does).
__global__ void __launch_bounds__(512, 1) empty_kernel(int* sink, int cluster) {
  extern __shared__ int smem[];
  smem[threadIdx.x] = int(threadIdx.x);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (cluster > 1) cooperative_groups::this_cluster().sync();
  else __syncthreads();
#else
  (void)cluster;  // clusters need sm_90 (main does not launch this build's code elsewhere)
  __syncthreads();
#endif
  if (smem[(threadIdx.x + 1) % blockDim.x] == -1) *sink = 1;
}

int main() try {
  int dev = 0, sms = 0, optin = 0, count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    std::printf("awq_bench_cluster: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return 1;
  }
  CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, dev));
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (prop.major < 9) {
    std::printf("awq_bench_cluster: %s is sm_%d%d; thread block clusters need sm_90 or newer\n", prop.name, prop.major,
                prop.minor);
    return 0;
  }
  const size_t smem = 200 * 1024;  // as the 128 x 192 tile (8 slots, groups of 16 or 32): one block per SM
  CHECK(cudaFuncSetAttribute(empty_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  CHECK(cudaFuncSetAttribute(empty_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  std::printf("device: %s, %d SMs, shared memory opt-in %d B; blocks of 512 threads, %zu B shared\n", prop.name, sms,
              optin, smem);
  std::printf("| cluster | max active clusters | SMs / cluster | blocks at once | of %d SMs | empty launch of %d blocks, us |\n",
              sms, sms);
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  int* sink = nullptr;
  CHECK(cudaMalloc(&sink, sizeof(int)));
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  for (int c : {1, 2, 3, 4, 6, 8, 16}) {
    cudaLaunchConfig_t cfg{};
    const int grid = sms / c * c;  // whole clusters
    cfg.gridDim = dim3(unsigned(grid));
    cfg.blockDim = dim3(512);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = unsigned(c);
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int active = 0;
    if (cudaOccupancyMaxActiveClusters(&active, empty_kernel, &cfg) != cudaSuccess) {
      (void)cudaGetLastError();
      std::printf("| %d | (not launchable here) | | | | |\n", c);
      continue;
    }
    // Time: a graph of 50 launches, 9 replays, the median per launch.
    const awq_bench::GraphTime t =
        awq_bench::time_graph(s, 50, 9, [&](int) { CHECK(cudaLaunchKernelEx(&cfg, empty_kernel, sink, c)); });
    std::printf("| %d | %d | %d | %d | %.0f %% | %.2f |\n", c, active, sms / c, active * c, 100.0 * active * c / sms,
                t.median_us);
  }
  cudaFree(sink);
  cudaStreamDestroy(s);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "awq_bench_cluster: %s\n", e.what());
  return 1;
}
