// runtime/generate.h: the context `awq generate` sizes its KV cache for by default.
#include <gtest/gtest.h>

#include "runtime/generate.h"

namespace awq {
namespace {

TEST(DefaultGenerateCtx, PromptPlusTokensToGenerate) {
  // What one run can use: the prompt and the tokens to generate (the last is never fed back).
  EXPECT_EQ(default_generate_ctx(7, 128, 131072), 135);
  EXPECT_EQ(default_generate_ctx(1, 1, 2048), 2);
}

TEST(DefaultGenerateCtx, AtMostTheModelsPositions) {
  // -n 2^40 ("until EOS") and a long prompt stop at max_position_embeddings; a prompt longer
  // than that gets the model's length, and generate() then refuses the prompt with a message.
  EXPECT_EQ(default_generate_ctx(100, int64_t(1) << 40, 8192), 8192);
  EXPECT_EQ(default_generate_ctx(9000, 16, 8192), 8192);
}

TEST(DefaultGenerateCtx, NothingToGenerateStillHoldsThePrompt) {
  EXPECT_EQ(default_generate_ctx(50, 0, 4096), 51);
  EXPECT_EQ(default_generate_ctx(0, 0, 4096), 1);
}

}  // namespace
}  // namespace awq
