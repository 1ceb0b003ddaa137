// cuBLAS loaded at its first use (ops/cuda/cublas_loader.h), not at start-up. These tests need
// the CUDA build (the toolkit's libcublas on disk) but no GPU: loading the library and
// resolving its entry points work without a driver, so they run in CI too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "ops/cuda/cublas_loader.h"
#include "support/expect_error.h"
#include "support/run_cli.h"

namespace awq {
namespace {

TEST(CudaBlas, LoadsAndResolvesEveryEntryPoint) {
  const cuda::CublasApi& api = cuda::cublas_api();
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.destroy, nullptr);
  EXPECT_NE(api.set_stream, nullptr);
  EXPECT_NE(api.set_workspace, nullptr);
  EXPECT_NE(api.gemm_ex, nullptr);
  EXPECT_NE(api.gemm_strided_batched_ex, nullptr);
  EXPECT_NE(api.sgemm_strided_batched, nullptr);
  // A call into the library that needs no device: the status names are its own strings.
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_EQ(&api, &cuda::cublas_api());  // loaded once
}

TEST(CudaBlas, MissingLibraryIsAClearError) {
  EXPECT_AWQ_ERROR(cuda::load_cublas("libawq-no-such-cublas.so.0"),
                   {"cannot load cuBLAS", "libawq-no-such-cublas.so.0", "LD_LIBRARY_PATH"});
}

TEST(CudaBlas, LibraryWithoutTheEntryPointsIsAClearError) {
  // libm loads but is not cuBLAS: the first entry point it lacks is named.
  EXPECT_AWQ_ERROR(cuda::load_cublas("libm.so.6"), {"libm.so.6", "has no entry point", "cublasCreate_v2"});
}

TEST(CudaBlas, AwqStartsWithoutLoadingCublas) {
  // The dynamic loader lists every library it loads (LD_DEBUG=files, on stderr): a CPU command
  // of the CUDA build must not load libcublas (or libcublasLt).
  test::TempDir tmp;
  const std::string log = tmp.file("ld_debug");
  const std::string cmd = "LD_DEBUG=files " + test::shell_quote(AWQ_BINARY) + " --version >/dev/null 2>" +
                          test::shell_quote(log);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string loads = test::read_file_bytes(log);
  ASSERT_NE(loads.find("file=libcudart"), std::string::npos)
      << "LD_DEBUG listed no library loads, so this test would prove nothing:\n" << loads;
  EXPECT_EQ(loads.find("libcublas"), std::string::npos) << loads;
}

}  // namespace
}  // namespace awq
