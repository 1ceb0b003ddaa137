// The GPU AWQ search's entry points in a build without CUDA (-DAWQ_CUDA=OFF): each says so.
// With CUDA they are src/ops/cuda/awq_search_cuda.cu.
#ifndef AWQ_HAVE_CUDA
#include "core/error.h"
#include "quant/awq_search_cuda.h"

namespace awq {

namespace {
[[noreturn]] void no_cuda() {
  throw Error("--device cuda: this awq was built without CUDA (configure with -DAWQ_CUDA=ON on a machine "
              "with nvcc, e.g. make build); use --device cpu");
}
}  // namespace

bool awq_cuda_search_available(std::string* why) {
  if (why) *why = "this awq was built without CUDA (-DAWQ_CUDA=OFF)";
  return false;
}

struct AwqCudaSearch::Impl {};

AwqCudaSearch::AwqCudaSearch(const ModelConfig&, const std::vector<float>&, int64_t, int64_t,
                             const AwqSearchOptions&) {
  no_cuda();
}
AwqCudaSearch::~AwqCudaSearch() = default;
void AwqCudaSearch::set_input(const std::vector<float>&) { no_cuda(); }
LayerReport AwqCudaSearch::search_layer(LayerF32&) { no_cuda(); }
std::vector<float> AwqCudaSearch::input() const { no_cuda(); }
double AwqCudaSearch::peak_gpu_used_mib() const { return 0.0; }
double AwqCudaSearch::allocated_mib() const { return 0.0; }
std::string AwqCudaSearch::device_name() const { return ""; }

void cuda_fake_quantize(float*, int64_t, int64_t, const QuantParams&) { no_cuda(); }
std::vector<float> cuda_group_grams(const float*, int64_t, int64_t, int, int64_t) { no_cuda(); }
void cuda_clip_linear_gram(float*, int64_t, int64_t, const float*, const AwqSearchOptions&) { no_cuda(); }

}  // namespace awq
#endif
