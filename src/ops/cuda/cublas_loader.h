// cuBLAS, loaded with dlopen at its first use instead of linked: libcublas.so pulls in
// libcublasLt (540 MB), whose relocations and static constructors cost every process that
// links it ~0.5 s and ~215 MB of resident memory at start-up (measured on the CI machine), GPU
// or not. A CUDA build of awq runs CPU models, --help, the tokenizer, ... too; those now start
// without it, and the GPU paths (cuBLAS FP16 linears, the AWQ search's GEMMs, the benches)
// load it once, on the first cublas_api() call.
#pragma once
#include <cublas_v2.h>

#include <string>

namespace awq::cuda {

// The cuBLAS entry points awq uses, with the library's own signatures (checked at compile time
// against cublas_v2.h in cublas_loader.cpp).
struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched;
  // cublas_api.h overloads these two in C++ (an old cudaDataType compute type): the pointers
  // have the C entry points' types.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n,
                            int k, const void* alpha, const void* a, cudaDataType a_type, int lda,
                            const void* b, cudaDataType b_type, int ldb, const void* beta, void* c,
                            cudaDataType c_type, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo);
  cublasStatus_t (*gemm_strided_batched_ex)(
      cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n, int k, const void* alpha,
      const void* a, cudaDataType a_type, int lda, long long stride_a, const void* b,
      cudaDataType b_type, int ldb, long long stride_b, const void* beta, void* c,
      cudaDataType c_type, int ldc, long long stride_c, int batch, cublasComputeType_t compute,
      cublasGemmAlgo_t algo);
};

// "libcublas.so.<major>" of the toolkit awq was built with.
const char* cublas_library_name();

// Loads `library` (a file name searched the dynamic loader's way, then in the build's CUDA
// library folder; or a path) and resolves every entry point. awq::Error naming the library and
// the missing piece where it cannot. Each call loads anew (tests); use cublas_api().
CublasApi load_cublas(const std::string& library);

// The process's cuBLAS: loaded at the first call (thread-safe), the same table after.
const CublasApi& cublas_api();

}  // namespace awq::cuda
