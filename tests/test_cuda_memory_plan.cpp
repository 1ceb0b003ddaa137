// The GPU memory plan of the CUDA engine (ops/cuda/cuda_memory_plan.h): host arithmetic, run
// without a GPU (CI), on weights that are shapes only (the plan never reads them). The refusal
// on a real GPU is CudaTest.RefusesWhatDoesNotFitTheGpu (test_cuda_model.cpp).
#ifdef AWQ_HAVE_CUDA
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "ops/cuda/cuda_memory_plan.h"
#include "ops/cuda/w4a16.h"
#include "support/contains.h"

namespace awq {
namespace {

using test::contains;

const int32_t kWords[1] = {0};
const uint16_t kHalves[1] = {0};

// W: [rows, cols], AutoAWQ GEMM (tensors bound: the plan checks they are there) or dense fp16.
Matrix awq_matrix(int64_t rows, int64_t cols, int group) {
  Matrix m(DType::F16, rows, cols, kWords);
  m.kind = MatrixKind::AwqGemm;
  m.awq.bits = 4;
  m.awq.group = group;
  m.awq.qweight = kWords;
  m.awq.qzeros = kWords;
  m.awq.scales = kHalves;
  return m;
}
Matrix dense_matrix(int64_t rows, int64_t cols) { return Matrix(DType::F16, rows, cols, kHalves); }

// The Llama-2-7B shape (d 4096, ff 11008, 32 heads, 32 layers, vocab 32000), W4 g128.
ModelConfig llama2_7b() {
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = 32000;
  c.hidden_size = 4096;
  c.intermediate_size = 11008;
  c.num_layers = 32;
  c.num_heads = c.num_kv_heads = 32;
  c.head_dim = 128;
  c.max_position_embeddings = 4096;
  return c;
}
LlamaWeights weights_of(const ModelConfig& c, bool awq, bool tied) {
  static const uint16_t embed_data[1] = {0}, head_data[1] = {0};
  LlamaWeights w;
  w.embed = Matrix(DType::F16, c.vocab_size, c.hidden_size, embed_data);
  w.lm_head = Matrix(DType::F16, c.vocab_size, c.hidden_size, tied ? embed_data : head_data);
  w.final_norm.assign(size_t(c.hidden_size), 1.0f);
  const auto mat = [&](int64_t r, int64_t k) { return awq ? awq_matrix(r, k, 128) : dense_matrix(r, k); };
  for (int l = 0; l < c.num_layers; ++l) {
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm.assign(size_t(c.hidden_size), 1.0f);
    L.ffn_norm.assign(size_t(c.hidden_size), 1.0f);
    L.wq = mat(c.q_dim(), c.hidden_size);
    L.wk = mat(c.kv_dim(), c.hidden_size);
    L.wv = mat(c.kv_dim(), c.hidden_size);
    L.wo = mat(c.hidden_size, c.q_dim());
    L.w_gate = mat(c.intermediate_size, c.hidden_size);
    L.w_up = mat(c.intermediate_size, c.hidden_size);
    L.w_down = mat(c.hidden_size, c.intermediate_size);
  }
  return w;
}

int64_t w4a16_bytes(int64_t n, int64_t k) {
  cuda::W4A16Weight w;
  w.n = n, w.k = k, w.group = 128;
  return int64_t(w.bytes());
}

TEST(CudaMemoryPlan, WeightsAndKvCacheOfThe7BShape) {
  const ModelConfig c = llama2_7b();
  cuda::CudaLlamaOptions opt;
  opt.ctx = 4096;
  const cuda::CudaMemoryPlan p = cuda::cuda_memory_plan(c, weights_of(c, true, false), opt, 132);
  // Per layer: q | k | v, o, gate | up, down as W4A16 (codes + params), two norms; then the
  // embedding and lm_head (fp16) and the final norm.
  const int64_t layer = w4a16_bytes(12288, 4096) + w4a16_bytes(4096, 4096) + w4a16_bytes(22016, 4096) +
                        w4a16_bytes(4096, 11008) + 2 * 4096 * 4;
  EXPECT_EQ(p.weights, 32 * layer + 2 * 32000 * 4096 * 2 + 4096 * 4);
  EXPECT_NEAR(double(p.weights) / double(int64_t(1) << 30), 3.69, 0.01);  // 3.2 GiB of linears + 0.5 of fp16 tables
  EXPECT_EQ(p.kv_cache, int64_t(2) * 32 * 4096 * 2 * 4096);  // 2 GiB: K and V, 32 layers, fp16, 4096 positions
  EXPECT_EQ(p.per_position, 2 * 32 * 4096 * 2 + 128 * 4);     // and a row of the RoPE table
  // 512 rows (the prefill chunk) of the step's buffers, logits the largest (512 x 32000 f32).
  EXPECT_GT(p.activations, 512 * 32000 * 4);
  EXPECT_LT(p.activations, int64_t(256) << 20);
  EXPECT_GE(p.workspaces, (int64_t(32) << 20) + cuda::kCudaReserveBytes);
  EXPECT_EQ(p.total(), p.weights + p.kv_cache + p.activations + p.workspaces);
}

// The step buffers CudaLlama allocates (cuda_step_buffers) are what the plan counts.
TEST(CudaMemoryPlan, StepBuffersAreTheActivations) {
  ModelConfig c = llama2_7b();
  c.num_kv_heads = 8;  // GQA: k and v narrower than q
  cuda::CudaLlamaOptions opt;
  opt.slots = 640;  // more rows than a prefill chunk (512): the slots set R
  opt.ctx = 1024;
  const cuda::CudaStepBuffers b = cuda::cuda_step_buffers(c, opt, 132);
  EXPECT_EQ(b.rows, 640);
  EXPECT_EQ(b.qkv, 640 * (4096 + 2 * 1024));
  EXPECT_EQ(b.gu, 640 * 2 * 11008);
  EXPECT_EQ(b.logits, 640 * 32000);
  EXPECT_EQ(b.ints, 5 * 640);
  EXPECT_EQ(b.rope, 1024 * 128);
  EXPECT_GT(b.attn_scratch, 0);
  const int64_t f32 = b.x + b.logits + b.nll + b.ints + b.attn_scratch + b.rope;
  const int64_t f16 = b.h + b.qkv + b.att + b.o + b.gu + b.act;
  EXPECT_EQ(b.bytes(), 4 * f32 + 2 * f16);
  EXPECT_EQ(cuda::cuda_memory_plan(c, weights_of(c, true, false), opt, 132).activations, b.bytes());
}

TEST(CudaMemoryPlan, TiedEmbeddingOnceDenseLinearsInFp16) {
  const ModelConfig c = llama2_7b();
  cuda::CudaLlamaOptions opt;
  const cuda::CudaMemoryPlan untied = cuda::cuda_memory_plan(c, weights_of(c, true, false), opt, 132);
  const cuda::CudaMemoryPlan tied = cuda::cuda_memory_plan(c, weights_of(c, true, true), opt, 132);
  EXPECT_EQ(untied.weights - tied.weights, int64_t(32000) * 4096 * 2);
  const cuda::CudaMemoryPlan fp16 = cuda::cuda_memory_plan(c, weights_of(c, false, false), opt, 132);
  EXPECT_NEAR(double(fp16.weights) / double(int64_t(1) << 30), 12.55, 0.01);  // 6.74 B parameters x 2 bytes
  // One part dense: the fused linear runs dequantized to fp16.
  LlamaWeights mixed = weights_of(c, true, false);
  mixed.layers[0].wk = dense_matrix(4096, 4096);
  const cuda::CudaMemoryPlan m = cuda::cuda_memory_plan(c, mixed, opt, 132);
  EXPECT_EQ(m.weights - untied.weights, int64_t(12288) * 4096 * 2 - w4a16_bytes(12288, 4096));
  EXPECT_FALSE(cuda::fuses_as_w4a16({&mixed.layers[0].wq, &mixed.layers[0].wk}));
  EXPECT_TRUE(cuda::fuses_as_w4a16({&mixed.layers[0].wq, &mixed.layers[0].wv}));
}

TEST(CudaMemoryPlan, KvCacheScalesWithSlotsAndContext) {
  const ModelConfig c = llama2_7b();
  const LlamaWeights w = weights_of(c, true, false);
  cuda::CudaLlamaOptions a, b;
  a.ctx = 2048;
  b.ctx = 4096;
  b.slots = 8;
  EXPECT_EQ(cuda::cuda_memory_plan(c, w, b, 132).kv_cache, 16 * cuda::cuda_memory_plan(c, w, a, 132).kv_cache);
}

TEST(CudaMemoryPlan, RefusalNamesTheFiguresAndAContextThatFits) {
  const ModelConfig c = llama2_7b();
  const LlamaWeights w = weights_of(c, true, false);
  const int64_t GiB = int64_t(1) << 30;
  cuda::CudaLlamaOptions opt;
  opt.ctx = 32768;  // a 16 GiB KV cache
  const cuda::CudaMemoryPlan p = cuda::cuda_memory_plan(c, w, opt, 132);
  EXPECT_EQ(cuda::cuda_memory_refusal(p, opt, p.total(), 80 * GiB, "H100"), "");  // exactly fits
  const std::string r = cuda::cuda_memory_refusal(p, opt, 12 * GiB, 24 * GiB, "NVIDIA GeForce RTX 4090");
  std::printf("[ note     ] %s\n", r.c_str());
  EXPECT_TRUE(contains(r, "does not fit in GPU memory")) << r;
  EXPECT_TRUE(contains(r, "NVIDIA GeForce RTX 4090 has 12.00 GiB free of 24.00")) << r;
  EXPECT_TRUE(contains(r, "KV cache 16.00 for 1 sequence of 32768 positions")) << r;
  EXPECT_FALSE(contains(r, "--parallel")) << r;
  // The context it proposes fits, and 256 more positions would not.
  const size_t at = r.find("--ctx ");
  ASSERT_NE(at, std::string::npos) << r;
  cuda::CudaLlamaOptions fit = opt;
  fit.ctx = std::stoll(r.substr(at + 6));
  EXPECT_EQ(fit.ctx % 256, 0);
  EXPECT_EQ(cuda::cuda_memory_refusal(cuda::cuda_memory_plan(c, w, fit, 132), fit, 12 * GiB, 24 * GiB, "x"), "");
  fit.ctx += 256;
  EXPECT_NE(cuda::cuda_memory_refusal(cuda::cuda_memory_plan(c, w, fit, 132), fit, 12 * GiB, 24 * GiB, "x"), "");
  // Weights that alone exceed the free memory: no context helps.
  const std::string t = cuda::cuda_memory_refusal(p, opt, 3 * GiB, 4 * GiB, "T4");
  EXPECT_TRUE(contains(t, "the weights alone need 3.69 GiB")) << t;
  EXPECT_TRUE(contains(t, "--device cpu")) << t;
  EXPECT_FALSE(contains(t, "--ctx ")) << t;
  // The server's slots: --parallel is named too.
  cuda::CudaLlamaOptions server;
  server.slots = 4;
  server.ctx = 4096;
  const std::string s =
      cuda::cuda_memory_refusal(cuda::cuda_memory_plan(c, w, server, 132), server, 8 * GiB, 8 * GiB, "L4");
  EXPECT_TRUE(contains(s, "4 sequences of 4096 positions")) << s;
  EXPECT_TRUE(contains(s, "--parallel")) << s;
}

}  // namespace
}  // namespace awq
#endif  // AWQ_HAVE_CUDA
