// awq quantize writes model.safetensors as it goes (header first, then each tensor as it is
// made): the file is byte for byte what the whole-file writer makes of the same tensors, in
// the documented order, and a quantization that fails half-way leaves nothing behind.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "quant/quantize_model.h"
#include "support/expect_error.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::tiny_model_dir;

// The tensor order of an AutoAWQ checkpoint written by awq quantize for a Llama without
// biases (the tiny model), as main wrote it before streaming: embeddings, then per layer the
// two norms and q, k, v, o, gate, up, down (qweight, qzeros, scales each), the final norm,
// and lm_head when untied.
std::vector<std::string> llama_output_order(const ModelConfig& c) {
  std::vector<std::string> names{"model.embed_tokens.weight"};
  for (int l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers.";
    p += std::to_string(l);
    p += '.';
    names.push_back(p + "input_layernorm.weight");
    names.push_back(p + "post_attention_layernorm.weight");
    for (const char* lin : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      for (const char* part : {".qweight", ".qzeros", ".scales"}) names.push_back(p + lin + part);
  }
  names.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

// Quantizes the tiny model, then checks the streamed file: tensors in the documented order,
// and the same bytes as write_safetensors (the writer main used, holding every tensor in
// memory) makes of the file's own tensors and metadata.
void expect_stream_equals_whole_file_writer(QuantizeOptions o) {
  TempDir tmp;
  o.model_dir = tiny_model_dir();
  o.out_dir = tmp.file("out");
  ThreadPool pool(2);
  const QuantizeReport r = quantize_model(pool, o);
  const std::string streamed = o.out_dir + "/model.safetensors";
  const SafetensorsFile f(streamed);
  std::vector<std::string> names;
  for (const TensorView& t : f.tensors()) names.push_back(t.name);  // in offset order
  EXPECT_EQ(names, llama_output_order(load_model_config(tiny_model_dir())));
  int64_t bytes = 0;
  for (const TensorView& t : f.tensors()) bytes += int64_t(t.nbytes);
  EXPECT_EQ(r.output_bytes, bytes);
  EXPECT_NE(f.metadata().at("quantized_by").find("method=" + o.method), std::string::npos);
  write_safetensors(tmp.file("whole.safetensors"), f.tensors(), f.metadata());
  EXPECT_TRUE(test::read_file_bytes(tmp.file("whole.safetensors")) == test::read_file_bytes(streamed))
      << "the streamed file differs from write_safetensors' file of the same tensors";
  EXPECT_GT(r.max_rss_anon_mib, 0.0);  // read from /proc/self/status
}

TEST(QuantStream, RtnOutputEqualsWholeFileWriter) {
  QuantizeOptions o;
  o.method = "rtn";
  o.search.search_scales = false;
  o.search.clip = false;
  expect_stream_equals_whole_file_writer(o);
}

TEST(QuantStream, AwqOutputEqualsWholeFileWriter) {
  QuantizeOptions o;
  o.calib.files = {test::shared_path("data/calib.txt")};
  o.calib.n_samples = 2;  // small: the search itself is tested in test_quantize.cpp
  o.calib.seqlen = 128;
  o.search.search_tokens = 128;
  o.search.clip = false;  // the clip search only changes values, not what is written; 40 s under ASan with it
  expect_stream_equals_whole_file_writer(o);
}

// A copy of the tiny model (symlinks, and the one rewritten shard) whose tensor `name` has an
// fp16 infinity as element 0.
std::string model_with_inf(const TempDir& tmp, const std::string& name) {
  const std::string dir = tmp.file("model");
  fs::create_directory(dir);
  const Checkpoint src(tiny_model_dir());
  std::string rewritten;
  for (const auto& f : src.files()) {
    if (!f->find(name)) continue;
    rewritten = fs::path(f->path()).filename().string();
    const TensorView& t = *f->find(name);
    std::vector<uint8_t> bad(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes);
    const uint16_t inf = 0x7c00;
    std::memcpy(bad.data(), &inf, 2);
    std::vector<TensorView> views = f->tensors();
    for (TensorView& v : views)
      if (v.name == name) v.data = bad.data();
    write_safetensors(dir + "/" + rewritten, views, f->metadata());
  }
  EXPECT_FALSE(rewritten.empty()) << name << " is not in the tiny model";
  for (const auto& e : fs::directory_iterator(tiny_model_dir()))
    if (e.path().filename() != rewritten) fs::create_symlink(e.path(), dir + "/" + e.path().filename().string());
  return dir;
}

// Layer 3's weights cannot be stored in fp16: the error comes after the embeddings and layers
// 0-2 were streamed into the temp file. It names the tensor, and leaves no output folder,
// no staging folder and no temp file.
TEST(QuantStream, FailureHalfWayLeavesNothing) {
  TempDir tmp;
  QuantizeOptions o;
  o.model_dir = model_with_inf(tmp, "model.layers.3.self_attn.q_proj.weight");
  o.out_dir = tmp.file("out");
  o.method = "rtn";
  o.search.search_scales = false;
  o.search.clip = false;
  ThreadPool pool(2);
  int layers_done = 0;
  EXPECT_AWQ_ERROR(quantize_model(pool, o, [&](int done, int, const LayerReport&) { layers_done = done; }),
                   {"model.layers.3.self_attn.q_proj.weight", "does not fit fp16"});
  EXPECT_EQ(layers_done, 3);
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"model"});
}

}  // namespace
}  // namespace awq
