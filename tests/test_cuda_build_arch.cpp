// The advice where this build's GPU code leaves a GPU's fast kernels off (ops/cuda/build_arch.h):
// the wording is checked on the host for every case (runs in CI), and on a GPU machine the
// probe of the code that runs there.
#include <gtest/gtest.h>

#include <string>

#include "ops/cuda/build_arch.h"
#include "ops/cuda/cuda_check.h"
#include "support/contains.h"

namespace awq {
namespace {

using test::contains;

TEST(CudaBuildArch, AdviceOnlyWhereTheCodeDoesNotSuitTheGpu) {
  const cuda::DeviceCodeArch sm80{800, false}, sm90{900, false}, sm90a{900, true}, sm120{1200, false};
  // Ampere and Ada run sm_80 code fully; a Hopper GPU wants sm_90a.
  EXPECT_EQ(cuda::cuda_build_advice(8, 0, "A100", sm80), "");
  EXPECT_EQ(cuda::cuda_build_advice(8, 9, "L40S", sm80), "");
  EXPECT_EQ(cuda::cuda_build_advice(9, 0, "H100", sm90a), "");
  const std::string h100_sm80 = cuda::cuda_build_advice(9, 0, "NVIDIA H100 80GB HBM3", sm80);
  EXPECT_TRUE(contains(h100_sm80, "sm_80")) << h100_sm80;
  EXPECT_TRUE(contains(h100_sm80, "NVIDIA H100 80GB HBM3")) << h100_sm80;
  EXPECT_TRUE(contains(h100_sm80, "programmatic dependent launch")) << h100_sm80;
  EXPECT_TRUE(contains(h100_sm80, "-DCMAKE_CUDA_ARCHITECTURES=90a")) << h100_sm80;
  EXPECT_TRUE(contains(h100_sm80, "from PTX")) << h100_sm80;  // sm_80 code on a 9.x GPU: JIT at first use
  // sm_90 without the a: clusters and PDL are there, wgmma is not.
  const std::string h100_sm90 = cuda::cuda_build_advice(9, 0, "H100", sm90);
  EXPECT_TRUE(contains(h100_sm90, "sm_90:")) << h100_sm90;
  EXPECT_TRUE(contains(h100_sm90, "wgmma")) << h100_sm90;
  EXPECT_FALSE(contains(h100_sm90, "programmatic dependent launch")) << h100_sm90;
  EXPECT_FALSE(contains(h100_sm90, "from PTX")) << h100_sm90;  // its own major architecture: SASS
  // Blackwell: sm_80 code leaves clusters and PDL off; its own code is fine.
  const std::string b200_sm80 = cuda::cuda_build_advice(12, 0, "RTX 5090", sm80);
  EXPECT_TRUE(contains(b200_sm80, "-DCMAKE_CUDA_ARCHITECTURES=120")) << b200_sm80;
  EXPECT_TRUE(contains(b200_sm80, "from PTX")) << b200_sm80;
  EXPECT_EQ(cuda::cuda_build_advice(12, 0, "RTX 5090", sm120), "");
  // Nothing probed (no device): nothing to say.
  EXPECT_EQ(cuda::cuda_build_advice(9, 0, "H100", cuda::DeviceCodeArch{}), "");
}

// On a GPU: the probe names an architecture the build compiled for (sm_80 or newer), and the
// advice for this device follows from it.
TEST(CudaBuildArch, ProbeOfThisDevice) {
  std::string why;
  if (!cuda::cuda_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const cuda::DeviceCodeArch code = cuda::device_code_arch();
  EXPECT_GE(code.arch, 800);
  std::printf("[ note     ] %s runs code for sm_%d%s; advice: %s\n", cuda::device_summary().c_str(), code.arch / 10,
              code.sm90a ? "a" : "", cuda::cuda_build_advice_here().empty() ? "(none)" : cuda::cuda_build_advice_here().c_str());
}

}  // namespace
}  // namespace awq
