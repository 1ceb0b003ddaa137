// awq quantize: calibration windows, the search's invariants on the tiny model, the AutoAWQ
// folder it writes, and its errors.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "io/model_config.h"
#include "model/llama_model.h"
#include "quant/calibration.h"
#include "quant/fake_quant.h"
#include "quant/quantize_model.h"
#include "runtime/perplexity.h"
#include "support/expect_error.h"
#include "support/run_cli.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::tiny_model_dir;

std::string calib_txt() { return test::shared_path("data/calib.txt"); }

TEST(QuantCalibration, WindowsStartWithBosAndAreDeterministic) {
  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  CalibOptions o;
  o.files = {calib_txt()};
  o.n_samples = 16;
  o.seqlen = 64;
  const CalibWindows a = make_calibration_windows(tok, o), b = make_calibration_windows(tok, o);
  ASSERT_EQ(a.ids.size(), size_t(16 * 64));
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.stream_tokens, 227360);  // shared/data/README.md: calib.txt is 227,360 tokens
  EXPECT_EQ(a.stream_chunks, 227360 / 63);
  for (int64_t i = 0; i < 16; ++i) EXPECT_EQ(a.ids[size_t(i * 64)], 1) << "window " << i;
  EXPECT_TRUE(std::is_sorted(a.chunk_index.begin(), a.chunk_index.end()));
  EXPECT_EQ(std::adjacent_find(a.chunk_index.begin(), a.chunk_index.end()), a.chunk_index.end());
  o.seed = 7;
  EXPECT_NE(make_calibration_windows(tok, o).chunk_index, a.chunk_index);
}

TEST(QuantCalibration, Errors) {
  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  CalibOptions o;
  o.files = {"/nonexistent/calib.txt"};
  EXPECT_AWQ_ERROR(make_calibration_windows(tok, o), {"/nonexistent/calib.txt"});
  TempDir tmp;
  o.files = {tmp.write("short.txt", "Only a few words here.")};
  EXPECT_AWQ_ERROR(make_calibration_windows(tok, o), {"too short", "--n-samples"});
  o.files = {tmp.write("empty.txt", "")};
  EXPECT_AWQ_ERROR(make_calibration_windows(tok, o), {"empty"});
}

// llm-awq's pseudo_quantize_tensor on a group computed by hand, 3 bits:
// w = [-1, 0, 0.5, 2]: s = (2 - -1) / 7 = 3/7; z = -round(-1 / s) = -round(-2.33) = 2;
// round(w / s) = [-2, 0, 1, 5] -> q = [0, 2, 3, 7] -> w' = (q - 2) * s = [-2s, 0, s, 5s].
TEST(QuantFake, MatchesLlmAwqArithmetic) {
  float w[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
  QuantParams p;
  p.bits = 3;
  p.group = 4;
  fake_quantize_group(w, 4, p);
  const float s = 3.0f / 7.0f;
  const float want[4] = {-2 * s, 0.0f, s, 5 * s};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(w[i], want[i]) << i;
  // a constant positive group: the range clamps to 1e-5, z = 0 and every code saturates at 7,
  // so the group collapses to 7 * (1e-5 / 7) = 1e-5, exactly as in llm-awq and AutoAWQ
  // (shared/testdata/awq/README.md, row 0); reproduced, not "fixed".
  float c[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  fake_quantize_group(c, 4, p);
  for (float v : c) EXPECT_FLOAT_EQ(v, 7.0f * (1e-5f / 7.0f));
  // symmetric: s = max|w| / 3 = 2/3; round(w / s) = [-2 (-1.5 ties to even), 0, 1 (0.75), 3]
  float y[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
  p.zero_point = false;
  fake_quantize_group(y, 4, p);
  const float t = 2.0f / 3.0f;
  const float want_sym[4] = {-2 * t, 0.0f, t, 3 * t};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y[i], want_sym[i]) << i;
}

// A small but complete AWQ run: every chosen scale is no worse than RTN on the search loss
// (alpha = 0 is RTN and is among the candidates: guaranteed), every layer's output error
// falls below RTN's (the point of AWQ; measured), and the folder loads and runs.
TEST(QuantAwq, TinyModelEndToEnd) {
  TempDir tmp;
  QuantizeOptions o;
  o.model_dir = tiny_model_dir();
  o.out_dir = tmp.file("awq");
  o.calib.files = {calib_txt()};
  o.calib.n_samples = 4;  // small so the ASan run stays short; the full-size run is in docs
  o.calib.seqlen = 128;
  o.search.search_tokens = 256;
  ThreadPool pool(2);
  const QuantizeReport r = quantize_model(pool, o);
  ASSERT_EQ(r.layers.size(), 8u);
  for (const LayerReport& l : r.layers) {
    ASSERT_EQ(l.scales.size(), 3u);  // qkv, gate_up, down: no v->o under GQA
    for (const ScaleChoice& s : l.scales) EXPECT_LE(s.loss_best, s.loss_rtn) << s.group;
    EXPECT_LT(l.out_err_awq, l.out_err_rtn);
  }
  const ModelConfig c = load_model_config(o.out_dir);
  EXPECT_EQ(c.quant.quant_method, "awq");
  EXPECT_EQ(c.quant.bits, 4);
  EXPECT_EQ(c.quant.group_size, 128);
  EXPECT_EQ(c.quant.version, "gemm");
  EXPECT_TRUE(fs::exists(o.out_dir + "/tokenizer.json"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/tokenizer_config.json"));
  EXPECT_FALSE(fs::exists(o.out_dir + "/reference.json"));
  // nothing else left beside the output
  for (const auto& e : fs::directory_iterator(tmp.path())) EXPECT_EQ(e.path().filename(), "awq");

  LlamaModel m(o.out_dir);
  EXPECT_TRUE(m.weights().layers[0].wq.quantized());
  const Tokenizer tok = Tokenizer::load(o.out_dir);
  const auto ids = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 4000), false);
  PerplexityOptions po;
  po.ctx = 256;
  po.bos_id = 1;
  const double ppl = perplexity(m, pool, ids, po).ppl();
  LlamaModel fp(tiny_model_dir());
  const double ppl_fp = perplexity(fp, pool, ids, po).ppl();
  // W4 g128 costs ~1 % perplexity on this model (reference.json: 55.46 -> ~56.0); 5 % bounds a
  // broken fold (a scale applied twice or not at all costs far more).
  EXPECT_GT(ppl, ppl_fp * 0.99);
  EXPECT_LT(ppl, ppl_fp * 1.05);
}

void expect_cli_error(const test::CliResult& r, const std::string& part) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
}

TEST(QuantCli, BadInput) {
  TempDir tmp;
  const std::string out = tmp.file("out");
  const std::string m = tiny_model_dir();
  expect_cli_error(test::run_awq({"quantize", m, "-o", out, "--method", "rtn", "--w-bit", "5"}), "--w-bit 5");
  expect_cli_error(test::run_awq({"quantize", m, "-o", out, "--method", "rtn", "--group", "100"}), "group size 100");
  expect_cli_error(test::run_awq({"quantize", m, "-o", out}), "--calib");
  auto r = test::run_awq({"quantize", m, "-o", out, "--calib", "/nonexistent/c.txt"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/c.txt"), std::string::npos) << r.err;
  const std::string shorttxt = tmp.write("short.txt", "A short text.");
  expect_cli_error(test::run_awq({"quantize", m, "-o", out, "--calib", shorttxt}), "too short");
  EXPECT_FALSE(fs::exists(out));
  // an existing folder is refused without --force and replaced with it
  ASSERT_EQ(test::run_awq({"quantize", m, "-o", out, "--method", "rtn"}).exit_code, 0);
  expect_cli_error(test::run_awq({"quantize", m, "-o", out, "--method", "rtn"}), "already exists");
  EXPECT_EQ(test::run_awq({"quantize", m, "-o", out, "--method", "rtn", "--force"}).exit_code, 0);
  // quantizing an AWQ checkpoint again is refused
  expect_cli_error(test::run_awq({"quantize", out, "-o", tmp.file("twice"), "--method", "rtn"}), "already quantized");
  // only the output folder and the short text remain: no staging folders
  std::vector<std::string> names = tmp.list();
  EXPECT_EQ(names, (std::vector<std::string>{"out", "short.txt"}));
}

// Ctrl-C during the search: exit non-zero, no output folder, no staging folder.
TEST(QuantCli, InterruptLeavesNoPartialOutput) {
  TempDir tmp;
  const std::string out = tmp.file("out");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execl(AWQ_BINARY, AWQ_BINARY, "quantize", tiny_model_dir().c_str(), "-o", out.c_str(), "--calib",
          calib_txt().c_str(), "--n-samples", "32", "-t", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  // wait until the staging folder exists, so the signal lands mid-run
  for (int i = 0; i < 600 && tmp.list().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(tmp.list().empty()) << "the quantizer never created its staging folder";
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_TRUE(tmp.list().empty()) << "left behind: " << (tmp.list().empty() ? "" : tmp.list()[0]);
}

}  // namespace
}  // namespace awq
