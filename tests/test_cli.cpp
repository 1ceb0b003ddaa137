// The `awq` binary end to end: reference generations and perplexity, and bad input giving a
// one-line error that names the problem, exit status 1, no crash.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "support/run_cli.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::run_awq;
using test::TempDir;
using test::tiny_model_dir;

// A writable copy of the tiny model: small files copied, the big shards symlinked.
std::string copy_tiny_model(const TempDir& tmp) {
  const std::string dst = tmp.file("model");
  fs::create_directory(dst);
  for (const auto& e : fs::directory_iterator(tiny_model_dir())) {
    const fs::path to = fs::path(dst) / e.path().filename();
    if (e.path().extension() == ".safetensors")
      fs::create_symlink(e.path(), to);
    else
      fs::copy_file(e.path(), to);
  }
  return dst;
}

void replace_in_file(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = test::read_file_bytes(path);
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << path;
  s.replace(at, from.size(), to);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << s;
}

// The contract for bad input: exit status 1, nothing on stdout, and exactly one stderr line
// "error: ..." containing each expected part.
void expect_one_line_error(const test::CliResult& r, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "missing '" << p << "' in: " << r.err;
}

// Greedy generation reproduces reference.json token for token: prompt + stdout is the
// reference full_text (stdout carries only the generated text, ending in a newline). The
// default fp16 KV cache for every prompt, --kv-type f32 for the first.
TEST(Cli, GenerateGreedyMatchesReference) {
  bool first = true;
  for (const auto& g : test::tiny_reference()["greedy"]) {
    const std::string prompt = g["prompt"];
    for (const char* kv : {"f16", "f32"}) {
      if (!first && std::string(kv) == "f32") continue;
      auto r = run_awq({"generate", tiny_model_dir(), "-p", prompt, "-n", "32", "--temp", "0", "-t", "2", "--kv-type", kv});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      ASSERT_FALSE(r.out.empty());
      EXPECT_EQ(r.out.back(), '\n');
      EXPECT_EQ(prompt + r.out.substr(0, r.out.size() - 1), g["full_text"].get<std::string>()) << "kv " << kv;
      EXPECT_NE(r.err.find("tok/s"), std::string::npos) << "timings belong on stderr";
      EXPECT_NE(r.err.find(std::string("kv: ") + kv), std::string::npos) << r.err;
    }
    first = false;
  }
}

TEST(CliErrors, UnknownKvType) {
  auto r = run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--kv-type", "bf16"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("--kv-type"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("f16"), std::string::npos) << r.err;
}

// The first 6 windows of val.txt against the per-window NLL computed by transformers in fp32
// (tests/data/tiny_val_window_nll.json, scripts/ref/make_references.py). 6 windows keep the
// ASan run short; the full file is `make check-full`. Tolerance 2e-5 relative on the mean NLL:
// both sides are f32 math on the same weights, and 3066 tokens average per-token noise of
// ~1e-6 down further; a wrong window layout or off-by-one changes it by >1e-2. The default
// fp16 KV cache stays inside it too: over 20 windows it moves the mean NLL by 6e-8
// (3.47112042 vs 3.47112048 with --kv-type f32; docs/results/cpu.md).
TEST(Cli, PerplexityPrefixMatchesTransformers) {
  const auto ref = test::read_json(std::string(AWQ_TEST_DATA_DIR) + "/tiny_val_window_nll.json");
  const int windows = 6;
  double nll = 0;
  int64_t tokens = 0;
  for (int w = 0; w < windows; ++w) {
    nll += ref["per_window"][w]["nll_sum"].get<double>();
    tokens += ref["per_window"][w]["tokens"].get<int64_t>();
  }
  auto r = run_awq({"perplexity", tiny_model_dir(), "-f", test::shared_path("data/val.txt"), "--max-windows",
                    std::to_string(windows), "--json", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got["tokens"].get<int64_t>(), tokens);
  EXPECT_EQ(got["windows"].get<int64_t>(), windows);
  EXPECT_NEAR(got["nll_mean"].get<double>(), nll / double(tokens), 2e-5 * nll / double(tokens));
}

// AWQ_LM_HEAD=q8 (ops/cpu/q8_rows.h: lm_head as int8 per 32 inputs, the inputs as 16-bit codes):
// the tiny model's greedy tokens still equal reference.json, and the perplexity prefix stays within
// 2e-4 relative of transformers' fp32 figure (measured: +1.8e-5 on the mean NLL over 25 windows,
// docs/results/cpu.md; the int8 weights' error is ~0.5 % rms a logit, which moves the NLL by
// parts in 1e5, while a wrong block or row moves it by > 1e-2). The variable goes to the child only.
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() { unsetenv(name); }
};

TEST(Cli, LmHeadQ8KeepsGreedyTokensAndPerplexity) {
  const auto& g = test::tiny_reference()["greedy"][0];
  const std::string prompt = g["prompt"];
  test::CliResult r, ppl;
  {
    const ScopedEnv q8("AWQ_LM_HEAD", "q8");
    r = run_awq({"generate", tiny_model_dir(), "-p", prompt, "-n", "32", "--temp", "0", "-t", "2"});
    ppl = run_awq({"perplexity", tiny_model_dir(), "-f", test::shared_path("data/val.txt"), "--max-windows", "2",
                   "--json", "-t", "2"});
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(prompt + r.out.substr(0, r.out.size() - 1), g["full_text"].get<std::string>());
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  const auto ref = test::read_json(std::string(AWQ_TEST_DATA_DIR) + "/tiny_val_window_nll.json");
  double nll = 0;
  int64_t tokens = 0;
  for (int w = 0; w < 2; ++w) {
    nll += ref["per_window"][w]["nll_sum"].get<double>();
    tokens += ref["per_window"][w]["tokens"].get<int64_t>();
  }
  const auto got = nlohmann::json::parse(ppl.out);
  EXPECT_NEAR(got["nll_mean"].get<double>(), nll / double(tokens), 2e-4 * nll / double(tokens));
}

TEST(CliErrors, UnknownLmHeadValue) {
  const ScopedEnv bad("AWQ_LM_HEAD", "int4");
  auto r = run_awq({"generate", tiny_model_dir(), "-p", "Hi", "-n", "2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("AWQ_LM_HEAD='int4'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("q8"), std::string::npos) << r.err;
}

TEST(Cli, TokenizeAddsBosOnRequest) {
  auto r = run_awq({"tokenize", tiny_model_dir(), "-p", "The history of", "--add-special"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1,415,3340,302]\n");
  r = run_awq({"tokenize", tiny_model_dir(), "-p", "The history of"});
  EXPECT_EQ(r.out, "[415,3340,302]\n");
}

TEST(Cli, InspectShowsArchitectureAndTensors) {
  auto r = run_awq({"inspect", tiny_model_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("llama: 8 layers, d_model 384"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kv heads 2, GQA"), std::string::npos);
  EXPECT_NE(r.out.find("quantization  none"), std::string::npos);
  EXPECT_NE(r.out.find("model.layers.7.mlp.down_proj.weight"), std::string::npos);
  EXPECT_NE(r.out.find("[384, 1024]"), std::string::npos);
}

TEST(Cli, HelpEverywhere) {
  for (std::string cmd : {"generate", "perplexity", "tokenize", "inspect"}) {
    auto r = run_awq({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("MODEL_DIR"), std::string::npos) << cmd;
  }
  for (std::string cmd : {"generate", "chat", "perplexity", "bench", "serve"}) {
    auto r = run_awq({cmd, "--help"});
    EXPECT_NE(r.out.find("--kv-type"), std::string::npos) << cmd;
    EXPECT_NE(r.out.find("--device"), std::string::npos) << cmd;
  }
  // Every command's help is read by people: no CLI11 internals such as the "{false}" that a
  // negated flag ("!--no-x") prints after its name.
  for (std::string cmd : {"quantize", "generate", "chat", "perplexity", "tokenize", "inspect", "bench", "serve",
                          "random-model", "export-gguf"}) {
    auto r = run_awq({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_EQ(r.out.find("{false}"), std::string::npos) << cmd << ":\n" << r.out;
    EXPECT_EQ(r.out.find("{true}"), std::string::npos) << cmd << ":\n" << r.out;
  }
  auto r = run_awq({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("perplexity"), std::string::npos);
}

// awq bench on the tiny model (fp16): its JSON line, the bytes of a decode step (every weight
// once: 2 bytes per parameter of the matrices, 4 per norm element; the KV cache's rows), and
// the roofline share those make with the measured bandwidth.
TEST(Cli, BenchJson) {
  auto r = run_awq({"bench", tiny_model_dir(), "--prompt", "8", "--gen", "4", "--repeat", "2", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt"], 8);
  EXPECT_EQ(j["gen"], 4);
  EXPECT_EQ(j["engine"].get<std::string>().rfind("1 threads", 0), 0u) << j["engine"];
  EXPECT_GT(j["prefill_tps"]["min"].get<double>(), 0.0);
  EXPECT_GE(j["decode_tps"]["median"].get<double>(), j["decode_tps"]["min"].get<double>());
  const nlohmann::json cfg = test::read_json(tiny_model_dir() + "/config.json");
  const double d = cfg["hidden_size"], ff = cfg["intermediate_size"], layers = cfg["num_hidden_layers"],
               vocab = cfg["vocab_size"], heads = cfg["num_attention_heads"], kv_heads = cfg["num_key_value_heads"];
  const double kv_dim = d / heads * kv_heads;
  const double matrices = layers * (d * d * 2 + d * kv_dim * 2 + 3 * d * ff) + vocab * d + d;  // + lm_head, embedding row
  const double norms = (2 * layers + 1) * d;
  EXPECT_NEAR(j["weight_bytes_per_token"].get<double>(), 2 * matrices + 4 * norms, 1.0);
  // positions 8..11 attend to 9..12 keys: mean 10.5 rows of kv_dim fp16 keys and values per layer
  EXPECT_NEAR(j["kv_bytes_per_token"].get<double>(), 10.5 * 2 * layers * kv_dim * 2, 1.0);
  EXPECT_GT(j["bandwidth_gbs"].get<double>(), 0.0);
  // The JSON prints roofline_pct to 2 decimals and the two rates to 3: the ratio of the printed
  // rates differs from the printed share by up to 0.005 plus the rates' rounding (0.0005 each,
  // relative to their size: decode_gbs is small on a slow build, e.g. under ASan).
  const double gbs = j["decode_gbs"].get<double>(), bw = j["bandwidth_gbs"].get<double>(), pct = 100.0 * gbs / bw;
  const double rounding = 0.005 + pct * (0.0005 / gbs + 0.0005 / bw) + 1e-9;
  EXPECT_NEAR(j["roofline_pct"].get<double>(), pct, rounding) << "decode " << gbs << " GB/s, bandwidth " << bw << " GB/s";
}

TEST(CliErrors, EmptyPrompt) {
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", ""}), {"empty prompt"});
}

TEST(CliErrors, PromptLongerThanContext) {
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "one two three four five six seven", "--ctx", "4"}),
                        {"prompt is", "tokens", "context holds 4"});
}

TEST(CliErrors, UnknownModelType) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  replace_in_file(m + "/config.json", "\"model_type\": \"llama\"", "\"model_type\": \"gpt_neox\"");
  expect_one_line_error(run_awq({"generate", m, "-p", "Hi"}), {"config.json", "model_type 'gpt_neox'", "not supported"});
  expect_one_line_error(run_awq({"inspect", m}), {"gpt_neox"});
}

TEST(CliErrors, WrongConfigField) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  replace_in_file(m + "/config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
  expect_one_line_error(run_awq({"generate", m, "-p", "Hi"}), {"config.json", "num_key_value_heads"});
}

TEST(CliErrors, ShapeMismatchAgainstConfig) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  replace_in_file(m + "/config.json", "\"intermediate_size\": 1024", "\"intermediate_size\": 1000");
  expect_one_line_error(run_awq({"generate", m, "-p", "Hi"}), {"model.layers.0.mlp.gate_proj.weight", "[1024, 384]", "[1000, 384]"});
}

TEST(CliErrors, MissingTensor) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  replace_in_file(m + "/model.safetensors.index.json", "\"model.norm.weight\"", "\"model.norm_renamed.weight\"");
  auto r = run_awq({"generate", m, "-p", "Hi"});
  expect_one_line_error(r, {"model.norm"});
}

TEST(CliErrors, TruncatedShard) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  const std::string shard = m + "/model-00004-of-00004.safetensors";
  std::string bytes = test::read_file_bytes(shard);
  fs::remove(shard);
  std::ofstream(shard, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_one_line_error(run_awq({"generate", m, "-p", "Hi"}), {"model-00004-of-00004.safetensors"});
  expect_one_line_error(run_awq({"inspect", m}), {"model-00004-of-00004.safetensors"});
}

TEST(CliErrors, HeaderLengthPastEndOfFile) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  const std::string shard = m + "/model-00004-of-00004.safetensors";
  std::string bytes = test::read_file_bytes(shard);
  fs::remove(shard);
  bytes[6] = '\x7f';  // header length u64 LE: set a high byte
  std::ofstream(shard, std::ios::binary) << bytes;
  expect_one_line_error(run_awq({"perplexity", m, "-f", test::shared_path("data/val.txt")}),
                        {"model-00004-of-00004.safetensors", "header"});
}

TEST(CliErrors, MalformedTokenizerJson) {
  TempDir tmp;
  const std::string m = copy_tiny_model(tmp);
  std::string tj = test::read_file_bytes(m + "/tokenizer.json");
  std::ofstream(m + "/tokenizer.json", std::ios::binary | std::ios::trunc) << tj.substr(0, tj.size() / 3);
  expect_one_line_error(run_awq({"tokenize", m, "-p", "Hi"}), {"tokenizer.json"});
  expect_one_line_error(run_awq({"generate", m, "-p", "Hi"}), {"tokenizer.json"});
}

TEST(CliErrors, MissingFilesAndFolders) {
  auto r = run_awq({"generate", "/nonexistent/model", "-p", "Hi"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
  TempDir tmp;
  expect_one_line_error(run_awq({"generate", tmp.path(), "-p", "Hi"}), {"config.json"});
  r = run_awq({"perplexity", tiny_model_dir(), "-f", "/nonexistent/val.txt"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/val.txt"), std::string::npos) << r.err;
}

#ifndef AWQ_HAVE_CUDA  // a CUDA build runs --device cuda (tests/test_cuda_model.cpp)
TEST(CliErrors, DeviceNotBuilt) {
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "cuda"}), {"--device cuda"});
  expect_one_line_error(run_awq({"perplexity", tiny_model_dir(), "-f", test::shared_path("data/val.txt"), "--device", "cuda"}),
                        {"--device cuda", "-DAWQ_CUDA=ON"});
  expect_one_line_error(run_awq({"chat", tiny_model_dir(), "--device", "cuda"}), {"--device cuda", "-DAWQ_CUDA=ON"});
  expect_one_line_error(run_awq({"bench", tiny_model_dir(), "--device", "cuda"}), {"--device cuda", "-DAWQ_CUDA=ON"});
  expect_one_line_error(run_awq({"serve", tiny_model_dir(), "--port", "0", "--device", "cuda"}),
                        {"--device cuda", "-DAWQ_CUDA=ON"});
}
#endif

// Caches of 1024 slots x 2^24 positions (64 TiB for the tiny model) are refused before any is
// allocated, with the figures and a context that fits.
TEST(CliErrors, KvCachesBeyondMemory) {
  const test::CliResult r = run_awq({"serve", tiny_model_dir(), "--port", "0", "--parallel", "1024", "--ctx", "16777216"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  for (const char* part : {"error: the KV cache does not fit in memory", "1024 sequences of 16777216 positions need",
                           "--ctx", "--parallel"})
    EXPECT_NE(r.err.find(part), std::string::npos) << part << " in: " << r.err;
}

TEST(CliErrors, NegativePrefillChunk) {  // a usage error (CLI11's range check), before the model loads
  const test::CliResult r = run_awq({"serve", tiny_model_dir(), "--port", "0", "--prefill-chunk", "-1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("--prefill-chunk: Value -1 not in range"), std::string::npos) << r.err;
}

// --device cuda:N: a malformed index is an unknown device; a GPU the machine cannot have (or, in a
// build without CUDA, any GPU) is a one-line error too.
TEST(CliErrors, DeviceIndex) {
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "cuda:x"}),
                        {"--device cuda:x", "cuda:N"});
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "cuda:-1"}), {"--device cuda:-1"});
#ifdef AWQ_HAVE_CUDA
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "cuda:999"}), {"--device cuda:999"});
#else
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "cuda:999"}),
                        {"--device cuda", "-DAWQ_CUDA=ON"});
#endif
}

TEST(CliErrors, UnknownDevice) {
  expect_one_line_error(run_awq({"generate", tiny_model_dir(), "-p", "Hi", "--device", "tpu"}), {"--device tpu"});
  expect_one_line_error(run_awq({"chat", tiny_model_dir(), "--device", "tpu"}), {"--device tpu"});
  expect_one_line_error(run_awq({"serve", tiny_model_dir(), "--port", "0", "--device", "tpu"}), {"--device tpu"});
  // the CUDA engine's cache is fp16 only, in every build
  expect_one_line_error(run_awq({"serve", tiny_model_dir(), "--port", "0", "--device", "cuda", "--kv-type", "f32"}),
                        {"--kv-type f32"});
}

}  // namespace
}  // namespace awq
