// The fixture of the CUDA engine's tests: each test skips, saying why, where no usable GPU is
// present (CI compiles them; the GPU machine runs them). Header-only test helper.
#pragma once
#include <string>

#include <gtest/gtest.h>

#include "ops/cuda/cuda_llama.h"

namespace awq::test {

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda::cuda_device_available(&why))
      GTEST_SKIP() << "no usable CUDA device, CUDA tests skipped: " << why;
  }
};

}  // namespace awq::test
