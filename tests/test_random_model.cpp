// awq random-model: the real shapes' configs (parameter counts of the published models), a
// small random checkpoint written through the same code (shards, index, dtype, statistics of
// the weights, determinism independent of threads), that it runs, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/half.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/random_checkpoint.h"
#include "model/llama_model.h"
#include "support/expect_error.h"
#include "support/run_cli.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

int64_t llama_parameters(const ModelConfig& c) {
  const int64_t d = c.hidden_size, ff = c.intermediate_size;
  const int64_t per_layer = d * c.q_dim() + 2 * d * c.kv_dim() + c.q_dim() * d + 3 * d * ff + 2 * d;
  return int64_t(c.vocab_size) * d * (c.tie_word_embeddings ? 1 : 2) + c.num_layers * per_layer + d;
}

ModelConfig parsed(const nlohmann::ordered_json& j) { return parse_model_config(nlohmann::json::parse(j.dump()), "test"); }

// The published parameter counts: TinyLlama-1.1B 1,100,048,384; Llama-2-7B 6,738,415,616.
TEST(RandomModel, RealShapesHaveThePublishedParameterCounts) {
  const ModelConfig tl = parsed(random_model_config("tinyllama-1.1b", DType::F16));
  EXPECT_EQ(tl.num_kv_heads, 4);
  EXPECT_EQ(tl.head_dim, 64);
  EXPECT_FALSE(tl.tie_word_embeddings);
  EXPECT_EQ(llama_parameters(tl), 1100048384);
  const ModelConfig l7 = parsed(random_model_config("llama2-7b", DType::BF16));
  EXPECT_EQ(l7.max_position_embeddings, 4096);
  EXPECT_EQ(l7.num_kv_heads, 32);
  EXPECT_EQ(l7.torch_dtype, "bfloat16");
  EXPECT_EQ(llama_parameters(l7), 6738415616);
}

nlohmann::ordered_json small_config() {
  nlohmann::ordered_json c = random_model_config("tinyllama-1.1b", DType::F16);
  c["hidden_size"] = 64;
  c["intermediate_size"] = 160;
  c["num_hidden_layers"] = 2;
  c["num_attention_heads"] = 4;
  c["num_key_value_heads"] = 2;
  return c;
}

RandomModelOptions small_options(const std::string& out, uint64_t seed = 7) {
  RandomModelOptions o;
  o.config = small_config();
  o.out_dir = out;
  o.tokenizer_dir = test::tiny_model_dir();
  o.seed = seed;
  return o;
}

TEST(RandomModel, WritesShardedCheckpointWithNormalWeightsAndUnitNorms) {
  TempDir tmp;
  ThreadPool pool(2);
  RandomModelOptions o = small_options(tmp.file("m"));
  o.max_shard_bytes = 3 << 20;  // embeddings (4 MB) and lm_head each get their own shard
  const RandomModelReport r = write_random_model(pool, o);
  EXPECT_EQ(r.parameters, llama_parameters(parsed(o.config)));
  EXPECT_EQ(r.bytes, uint64_t(r.parameters) * 2);
  EXPECT_GE(r.shards, 3);
  EXPECT_TRUE(fs::exists(tmp.file("m/model.safetensors.index.json")));
  EXPECT_TRUE(fs::exists(tmp.file("m/tokenizer.json")));
  const Checkpoint ck(tmp.file("m"));
  EXPECT_EQ(int(ck.files().size()), r.shards);
  const TensorView& emb = ck.get("model.embed_tokens.weight", {32000, 64});
  EXPECT_EQ(emb.dtype, DType::F16);
  // 2.048 M samples: the sample std is within 1 % of 0.02 and the mean within 3e-5 (1000 sigma/sqrt(n)
  // would be far looser; these bounds are 5+ standard errors). |w| <= 2 sqrt(3) std by construction.
  double sum = 0, sq = 0, mx = 0;
  const uint16_t* w = static_cast<const uint16_t*>(emb.data);
  for (int64_t i = 0; i < emb.numel(); ++i) {
    const double v = fp16_to_f32(w[i]);
    sum += v, sq += v * v, mx = std::max(mx, std::abs(v));
  }
  const double n = double(emb.numel()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(sd, 0.02, 0.0002);
  EXPECT_NEAR(mean, 0.0, 3e-5);
  EXPECT_LE(mx, 2 * std::sqrt(3.0) * 0.02 * 1.001);
  EXPECT_GT(mx, 2.5 * 0.02);  // the tails exist
  for (const std::string name : {"model.norm.weight", "model.layers.1.input_layernorm.weight"}) {
    const TensorView& t = ck.get(name, {64});
    for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(fp16_to_f32(static_cast<const uint16_t*>(t.data)[i]), 1.0f);
  }
  EXPECT_TRUE(ck.has("lm_head.weight"));
  ck.get("model.layers.1.self_attn.k_proj.weight", {32, 64});
}

TEST(RandomModel, SameSeedSameBytesWhateverTheThreadsAndShards) {
  TempDir tmp;
  ThreadPool one(1), two(2);
  write_random_model(one, small_options(tmp.file("a")));
  RandomModelOptions b = small_options(tmp.file("b"));
  b.max_shard_bytes = 1 << 20;  // different sharding, same tensors
  write_random_model(two, b);
  write_random_model(two, small_options(tmp.file("c"), 8));
  const Checkpoint ca(tmp.file("a")), cb(tmp.file("b")), cc(tmp.file("c"));
  EXPECT_EQ(ca.files().size(), 1u);
  EXPECT_GT(cb.files().size(), 1u);
  for (const std::string& name : ca.names()) {
    const TensorView &x = ca.get(name), &y = cb.get(name), &z = cc.get(name);
    ASSERT_EQ(x.nbytes, y.nbytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << name;
    if (name.find("norm") == std::string::npos) {
      EXPECT_NE(std::memcmp(x.data, z.data, x.nbytes), 0) << name;
    }
  }
}

TEST(RandomModel, Bf16CheckpointRunsWithFiniteLogits) {
  TempDir tmp;
  ThreadPool pool(2);
  RandomModelOptions o = small_options(tmp.file("m"));
  o.dtype = DType::BF16;
  o.config["torch_dtype"] = "bfloat16";
  write_random_model(pool, o);
  LlamaModel m(tmp.file("m"));
  EXPECT_EQ(m.checkpoint().get("lm_head.weight").dtype, DType::BF16);
  KvCache cache = m.new_cache(16);
  const int32_t ids[] = {1, 415, 3340, 302};
  std::vector<float> logits;
  m.forward(pool, ids, 4, cache, true, logits);
  ASSERT_EQ(logits.size(), 4u * 32000u);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(RandomModel, BadInput) {
  TempDir tmp;
  ThreadPool pool(1);
  EXPECT_AWQ_ERROR(random_model_config("llama-70b", DType::F16), {"llama-70b", "tinyllama-1.1b", "llama2-7b"});
  RandomModelOptions o = small_options(tmp.file("m"));
  o.tokenizer_dir = tmp.path();  // no tokenizer.json there
  EXPECT_AWQ_ERROR(write_random_model(pool, o), {tmp.path(), "tokenizer.json", "--tokenizer"});
  EXPECT_FALSE(fs::exists(tmp.file("m")));
  fs::create_directory(tmp.file("exists"));
  EXPECT_AWQ_ERROR(write_random_model(pool, small_options(tmp.file("exists"))), {"exists", "--force"});
  const test::CliResult r = test::run_awq({"random-model", "--shape", "gpt-5", "-o", tmp.file("x")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("gpt-5"), std::string::npos) << r.err;
  const test::CliResult r2 = test::run_awq({"random-model", "--shape", "tinyllama-1.1b", "-o", tmp.file("x"),
                                            "--tokenizer", tmp.path()});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("tokenizer.json"), std::string::npos) << r2.err;
  EXPECT_FALSE(fs::exists(tmp.file("x")));
}

}  // namespace
}  // namespace awq
