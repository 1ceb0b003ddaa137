#include "ops/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <type_traits>

#include "core/error.h"

namespace awq::cuda {

namespace {

#define AWQ_STRINGIFY_(x) #x
#define AWQ_STRINGIFY(x) AWQ_STRINGIFY_(x)

// The hand-written pointer types of the two overloaded entry points: each static_cast compiles
// only if cublas_api.h declares an overload of exactly that type (unevaluated: no link reference).
static_assert(std::is_same_v<decltype(CublasApi::gemm_ex),
                             decltype(static_cast<decltype(CublasApi::gemm_ex)>(&cublasGemmEx))>);
static_assert(std::is_same_v<decltype(CublasApi::gemm_strided_batched_ex),
                             decltype(static_cast<decltype(CublasApi::gemm_strided_batched_ex)>(
                                 &cublasGemmStridedBatchedEx))>);

void* open_library(const std::string& library, std::string* error) {
  if (void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
  *error = dlerror();
#ifdef AWQ_CUDA_LIBRARY_DIR
  // The toolkit the build used, for installs whose loader path does not name it.
  if (library.find('/') == std::string::npos) {
    const std::string path = std::string(AWQ_CUDA_LIBRARY_DIR) + "/" + library;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    *error += "; ";
    *error += dlerror();
  }
#endif
  return nullptr;
}

template <typename Fn>
void resolve(void* lib, const std::string& library, const char* symbol, Fn* fn) {
  dlerror();
  *fn = reinterpret_cast<Fn>(dlsym(lib, symbol));
  if (!*fn)
    throw Error("cuBLAS library " + library + " has no entry point " + symbol +
                " (a different CUDA major version than awq was built with?)");
}

}  // namespace

const char* cublas_library_name() { return "libcublas.so." AWQ_STRINGIFY(CUBLAS_VER_MAJOR); }

CublasApi load_cublas(const std::string& library) {
  std::string why;
  void* lib = open_library(library, &why);
  if (!lib)
    throw Error("cannot load cuBLAS (" + library + "): " + why +
                ". The CUDA paths of awq need the CUDA toolkit's cuBLAS at run time: install it, "
                "or add its lib64 folder to LD_LIBRARY_PATH");
  CublasApi api{};
  resolve(lib, library, "cublasCreate_v2", &api.create);
  resolve(lib, library, "cublasDestroy_v2", &api.destroy);
  resolve(lib, library, "cublasSetStream_v2", &api.set_stream);
  resolve(lib, library, "cublasSetWorkspace_v2", &api.set_workspace);
  resolve(lib, library, "cublasGetStatusName", &api.status_name);
  resolve(lib, library, "cublasGetStatusString", &api.status_string);
  resolve(lib, library, "cublasSgemmStridedBatched", &api.sgemm_strided_batched);
  resolve(lib, library, "cublasGemmEx", &api.gemm_ex);
  resolve(lib, library, "cublasGemmStridedBatchedEx", &api.gemm_strided_batched_ex);
  return api;  // the library stays loaded for the process's life
}

const CublasApi& cublas_api() {
  static const CublasApi api = load_cublas(cublas_library_name());
  return api;
}

}  // namespace awq::cuda
