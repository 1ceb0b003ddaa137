// Checkpoint folders: the real sharded reference model (every tensor checked against
// reference.json), and one test per way a folder can be broken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "io/checkpoint.h"
#include "io/safetensors_writer.h"
#include "support/expect_error.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::read_json;
using test::TempDir;

const std::string kModel = test::tiny_model_dir();
const char* kIndexName = "model.safetensors.index.json";
std::string shard_name(int i) { return "model-0000" + std::to_string(i) + "-of-00004.safetensors"; }

// A scratch copy of the reference model: the index and shards are symlinks to the
// originals, except those the test then replaces.
void link_model(const TempDir& tmp) {
  fs::create_symlink(kModel + "/" + kIndexName, tmp.file(kIndexName));
  for (int i = 1; i <= 4; ++i)
    fs::create_symlink(kModel + "/" + shard_name(i), tmp.file(shard_name(i)));
}

TEST(CheckpointReference, OpensShardedModel) {
  Checkpoint ck(kModel);
  EXPECT_EQ(ck.dir(), kModel);
  EXPECT_EQ(ck.files().size(), 4u);
  EXPECT_EQ(ck.names().size(), 74u);  // embed + 8 layers x 9 + final norm; lm_head is tied
  const TensorView& emb = ck.get("model.embed_tokens.weight", {32000, 384});
  EXPECT_EQ(emb.dtype, DType::F16);
  EXPECT_EQ(emb.nbytes, 32000u * 384u * 2u);
  const TensorView& k = ck.get("model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.shape, (std::vector<int64_t>{128, 384}));  // GQA: 2 KV heads x 64
  EXPECT_TRUE(ck.has("model.norm.weight"));
  EXPECT_FALSE(ck.has("lm_head.weight"));
  EXPECT_EQ(ck.find("lm_head.weight"), nullptr);
  const std::vector<std::string> names = ck.names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

// release_pages drops a tensor's pages from the RSS only: read again, the tensor has the same
// bytes (they fault back in from the file). Ranges not inside a mapped file (an owned copy,
// a range running past a file's end) are left alone.
TEST(CheckpointPages, ReleasedTensorReadsTheSameBytes) {
  const Checkpoint ck(kModel);
  const TensorView& t = ck.get("model.layers.2.mlp.down_proj.weight");
  const auto* p = static_cast<const uint8_t*>(t.data);
  const std::vector<uint8_t> before(p, p + t.nbytes);
  EXPECT_TRUE(ck.release_pages(t.data, t.nbytes));
  EXPECT_TRUE(std::memcmp(before.data(), t.data, t.nbytes) == 0);
  EXPECT_TRUE(ck.release_pages(p + 1, 3));  // widened to the whole page
  EXPECT_TRUE(std::memcmp(before.data(), t.data, t.nbytes) == 0);
  std::vector<uint8_t> heap(before);
  EXPECT_FALSE(ck.release_pages(heap.data(), heap.size()));
  EXPECT_TRUE(heap == before);
  const SafetensorsFile& f = *ck.files()[0];
  const TensorView& last = f.tensors().back();
  EXPECT_FALSE(ck.release_pages(last.data, last.nbytes + 1));
  EXPECT_FALSE(ck.release_pages(t.data, 0));
}

// Every tensor's file, dtype, shape, sum and max |w| against reference.json (model_files),
// which PyTorch computed as tensor.double().sum() and tensor.abs().max().
// Tolerance: each fp16 value is a multiple of 2^-24 and every partial sum here is far below
// 2^29, so a double sum of fp16 values is EXACT in any order (53-bit mantissa); ours equals
// PyTorch's bit for bit. The only difference is reference.json's rounding of the sum to 10
// significant digits (relative error <= 5e-10) and of abs_max to 8 (<= 5e-8): hence
// tolerances of 1e-9 and 1e-7 relative.
TEST(CheckpointReference, EveryTensorMatchesReferenceJson) {
  const nlohmann::json ref = read_json(kModel + "/reference.json").at("model_files").at("tensors");
  Checkpoint ck(kModel);
  ASSERT_EQ(ck.names().size(), ref.size());
  for (auto it = ref.begin(); it != ref.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& r = it.value();
    SCOPED_TRACE(name);
    const TensorView* t = ck.find(name);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(r.at("dtype").get<std::string>(), "float16");
    ASSERT_EQ(t->dtype, DType::F16);
    EXPECT_EQ(t->shape, r.at("shape").get<std::vector<int64_t>>());
    // The shard that holds it is the one reference.json names.
    bool in_named_file = false;
    for (const auto& f : ck.files())
      if (fs::path(f->path()).filename() == r.at("file").get<std::string>())
        in_named_file = f->find(name) == t;
    EXPECT_TRUE(in_named_file);

    const auto* bytes = static_cast<const uint8_t*>(t->data);
    double sum = 0, amax = 0;
    for (int64_t i = 0; i < t->numel(); ++i) {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);  // the mapping may be unaligned: memcpy, no cast
      const double v = fp16_to_f32(h);
      sum += v;
      amax = std::max(amax, std::fabs(v));
    }
    const double ref_sum = r.at("sum").get<double>(), ref_max = r.at("abs_max").get<double>();
    EXPECT_NEAR(sum, ref_sum, 1e-9 * std::fabs(ref_sum) + 1e-12);
    EXPECT_NEAR(amax, ref_max, 1e-7 * ref_max);
  }
}

TEST(CheckpointReference, SingleFilePathAndFolderWithModelSafetensors) {
  const std::string shard = kModel + "/" + shard_name(4);
  Checkpoint one(shard);
  EXPECT_EQ(one.dir(), kModel);
  EXPECT_EQ(one.files().size(), 1u);
  EXPECT_TRUE(one.has("model.norm.weight"));
  EXPECT_AWQ_ERROR(one.get("model.embed_tokens.weight"),
                   {shard + ": tensor 'model.embed_tokens.weight' is missing"});

  TempDir tmp;
  fs::create_symlink(shard, tmp.file("model.safetensors"));
  Checkpoint folder(tmp.path());
  EXPECT_EQ(folder.names(), one.names());
}

TEST(CheckpointBadInput, MissingTensorAndWrongShape) {
  Checkpoint ck(kModel);
  EXPECT_AWQ_ERROR(ck.get("lm_head.weight"), {kModel + ": tensor 'lm_head.weight' is missing"});
  EXPECT_AWQ_ERROR(ck.get("model.norm.weight", {385}),
                   {kModel + ": tensor 'model.norm.weight' has shape [384], expected [385]"});
}

TEST(CheckpointBadInput, TruncatedShard) {
  TempDir tmp;
  link_model(tmp);
  const std::string victim = tmp.file(shard_name(4));
  fs::remove(victim);
  fs::copy_file(kModel + "/" + shard_name(4), victim);
  fs::resize_file(victim, fs::file_size(victim) - 100);
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()},
                   {victim, "tensor '", "lie outside the data section", "truncated or corrupt"});
  // Cut inside the header: the header length now runs past the end.
  fs::resize_file(victim, 100);
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {victim, "runs past the end of the file (100 bytes)"});
}

TEST(CheckpointBadInput, MissingShard) {
  TempDir tmp;
  link_model(tmp);
  fs::remove(tmp.file(shard_name(3)));
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {tmp.file(kIndexName), "shard '" + shard_name(3) + "'",
                                            "is missing", "tensor '"});
}

TEST(CheckpointBadInput, MalformedIndex) {
  TempDir tmp;
  const std::string idx = tmp.write(kIndexName, R"({"weight_map": {"a": "x.safetensors",)");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {idx, "not valid JSON"});
  tmp.write(kIndexName, R"({"metadata": {}})");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {idx, "weight_map"});
  tmp.write(kIndexName, R"({"weight_map": {"a": 3}})");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {idx, "tensor 'a'", "file name"});
  tmp.write(kIndexName, R"({"weight_map": {}})");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {idx, "weight_map", "empty"});
}

TEST(CheckpointBadInput, IndexNamesWrongShard) {
  TempDir tmp;
  link_model(tmp);
  nlohmann::json idx = read_json(kModel + "/" + kIndexName);
  idx["weight_map"]["model.norm.weight"] = shard_name(1);  // really in shard 4
  fs::remove(tmp.file(kIndexName));
  tmp.write(kIndexName, idx.dump());
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()},
                   {tmp.file(kIndexName), "tensor 'model.norm.weight'", shard_name(1)});
}

TEST(CheckpointBadInput, TensorInTwoShards) {
  TempDir tmp;
  const std::vector<uint8_t> buf(8, 1);
  const TensorView a{"a", DType::F32, {2}, buf.data(), 8}, b{"b", DType::U8, {8}, buf.data(), 8};
  write_safetensors(tmp.file("s1.safetensors"), {a});
  write_safetensors(tmp.file("s2.safetensors"), {a, b});
  tmp.write(kIndexName, R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()},
                   {"tensor 'a'", tmp.file("s1.safetensors"), tmp.file("s2.safetensors"), "twice"});
}

TEST(CheckpointBadInput, EmptyOrMissingFolder) {
  TempDir tmp;
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()},
                   {tmp.path() + ": no model.safetensors or model.safetensors.index.json found"});
  EXPECT_AWQ_ERROR(Checkpoint{tmp.file("nope")}, {tmp.file("nope"), "no such file"});
}

TEST(CheckpointBadInput, BadSingleFile) {
  TempDir tmp;
  const std::string p = tmp.write("model.safetensors", "short");
  EXPECT_AWQ_ERROR(Checkpoint{tmp.path()}, {p, "5 bytes"});
}

}  // namespace
}  // namespace awq
