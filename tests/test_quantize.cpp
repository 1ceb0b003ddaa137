// awq quantize: calibration windows, the search's invariants on the tiny model, the AutoAWQ
// folder it writes, and its errors.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "core/error.h"
#include "io/model_config.h"
#include "io/checkpoint.h"
#include "model/decoder_layer.h"
#include "model/llama_model.h"
#include "model/llama_weights.h"
#include "model/rope.h"
#include "ops/cpu/ops.h"
#include "quant/awq_search.h"
#include "quant/awq_search_cuda.h"
#include "quant/calibration.h"
#include "quant/fake_quant.h"
#include "quant/quantize_model.h"
#include "quant/scale_fold.h"
#include "runtime/perplexity.h"
#include "support/clip_compare.h"
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
    ASSERT_EQ(l.scales.size(), 3u);  // qkv, gate_up, down: no v -> o under GQA by default
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

// The Gram-block clip search (the fast one) against the plain one that measures every
// candidate's partial outputs: the same loss, so the same clips, on random data with
// heavy-tailed inputs (a few large channels, as in real activations). Float rounding differs
// (a Gram over n tokens vs n dot products), so a near-tie may fall the other way: at most
// 1 % of the (row, group) choices may differ, and the clipped weights' output error may
// differ by 1e-3 relative at most.
TEST(QuantClip, GramSearchMatchesPlainSearch) {
  const int64_t n = 700, in = 256, out = 48;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(n * in)), w(size_t(out * in));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < in; ++k) x[size_t(t * in + k)] = normal(rng) * (k % 37 == 0 ? 8.0f : 1.0f);
  for (float& v : w) v = normal(rng) * 0.05f;
  for (int k = 0; k < 20; ++k) w[size_t(rng() % w.size())] *= 6.0f;  // outlier weights worth clipping
  AwqSearchOptions opt;
  ThreadPool pool(2);
  std::vector<float> plain = w, fast = w;
  awq_clip_linear(pool, plain.data(), out, in, x.data(), n, opt);
  const std::vector<float> grams = group_grams(pool, x.data(), n, in, opt.qp.group, {});
  awq_clip_linear_gram(pool, fast.data(), out, in, grams.data(), opt);
  const test::ClipChoiceCount c = test::count_clip_choices(w, plain, fast, out, in, opt.qp.group);
  EXPECT_LE(c.differ, out * in / opt.qp.group / 100);
  EXPECT_GT(c.clipped, 0) << "no group was clipped: the test would not see a wrong loss";
  auto out_err = [&](const std::vector<float>& wc) {
    return test::clipped_output_error(x, n, w, wc, out, in, opt.qp);
  };
  const double e_plain = out_err(plain), e_fast = out_err(fast), e_none = out_err(w);
  EXPECT_NEAR(e_fast, e_plain, 1e-3 * e_plain);
  EXPECT_LT(e_plain, e_none);  // clipping pays on these weights
  // the Gram of a subset of rows is the Gram of those rows gathered
  const std::vector<int64_t> rows = {3, 10, 11, 500, 699};
  std::vector<float> xs;
  for (int64_t r : rows) xs.insert(xs.end(), x.begin() + r * in, x.begin() + (r + 1) * in);
  const std::vector<float> a = group_grams(pool, x.data(), n, in, opt.qp.group, rows);
  const std::vector<float> b = group_grams(pool, xs.data(), int64_t(rows.size()), in, opt.qp.group, {});
  ASSERT_EQ(a.size(), size_t(2 * 128 * 128));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(a[i], b[i]) << i;
  // and H_g[i][j] = mean_t x[t][g + i] x[t][g + j]
  double h = 0.0;
  for (int64_t r : rows) h += double(x[size_t(r * in + 128 + 5)]) * x[size_t(r * in + 128 + 9)];
  EXPECT_NEAR(a[size_t(128 * 128 + 5 * 128 + 9)], h / 5.0, 1e-4 * std::abs(h) + 1e-6);
}

// The whole decoder layer on one sequence. x: [n, d] -> [n, d]
std::vector<float> run_layer(const ModelConfig& c, const LayerWeights& L, const float* inv_freq,
                             const std::vector<float>& x, int64_t n) {
  ThreadPool pool(2);
  const int64_t d = c.hidden_size;
  std::vector<float> h(x.size()), o(x.size()), y = x, kc(size_t(n * c.kv_dim())), vc(kc.size());
  std::vector<int32_t> pos;
  for (int64_t i = 0; i < n; ++i) pos.push_back(int32_t(i));
  LayerScratch s;
  rmsnorm(y.data(), L.attn_norm.data(), n, d, c.rms_norm_eps, h.data());
  attention_sublayer(pool, c, L, inv_freq, h.data(), n, pos.data(), KvLayer{KvType::F32, kc.data(), vc.data(), n, c.kv_dim()},
                     s, o.data());
  for (size_t i = 0; i < y.size(); ++i) y[i] += o[i];
  rmsnorm(y.data(), L.ffn_norm.data(), n, d, c.rms_norm_eps, h.data());
  mlp_sublayer(pool, c, L, h.data(), n, s, o.data());
  for (size_t i = 0; i < y.size(); ++i) y[i] += o[i];
  return y;
}

// q head h reads kv head h / (n_heads / n_kv_heads) (HF repeat_kv): with 6 q heads and 2 kv
// heads of 64, q heads 0-2 take kv head 0 and 3-5 kv head 1.
TEST(QuantFold, GqaHeadMapping) {
  const ModelConfig c = load_model_config(tiny_model_dir());
  ASSERT_EQ(c.num_heads, 6);
  ASSERT_EQ(c.num_kv_heads, 2);
  std::vector<float> s(size_t(c.kv_dim()));
  for (size_t i = 0; i < s.size(); ++i) s[i] = float(i);
  const std::vector<float> q = expand_kv_to_q(c, s);
  ASSERT_EQ(q.size(), size_t(c.q_dim()));
  EXPECT_EQ(q[2 * 64 + 5], 5.0f);
  EXPECT_EQ(q[3 * 64 + 5], 64.0f + 5.0f);
  EXPECT_EQ(q[5 * 64 + 63], 127.0f);
  std::vector<float> v(size_t(c.q_dim()));
  for (int64_t h = 0; h < 6; ++h) v[size_t(h * 64 + 1)] = float(h);
  const std::vector<float> m = mean_over_group_heads(c, v);
  EXPECT_FLOAT_EQ(m[1], (0.0f + 1.0f + 2.0f) / 3.0f);
  EXPECT_FLOAT_EQ(m[64 + 1], (3.0f + 4.0f + 5.0f) / 3.0f);
}

// Folding any positive scales (here in [1/4, 4], far from 1 so a wrong fold shows) into the
// tiny model's layer 1 leaves its output unchanged: each group alone, then all four. The
// tolerance, 1e-4 of the output's max, covers float rounding of the rescaled weights and
// activations (measured errors are ~1e-6 relative); a wrong head mapping or a missing
// division changes outputs by O(1).
TEST(QuantFold, FoldedScalesKeepTheLayerFunction) {
  const ModelConfig c = load_model_config(tiny_model_dir());
  const Checkpoint ckpt(tiny_model_dir());
  const LlamaWeights W = load_llama_weights(ckpt, c);
  const std::vector<float> inv_freq = rope_inv_freq(c);
  const int64_t n = 48, d = c.hidden_size;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(n * d));
  for (float& v : x) v = normal(rng);
  const LayerF32 original(W.layers[1], c);
  const std::vector<float> want = run_layer(c, original.L, inv_freq.data(), x, n);
  float ymax = 0.0f;
  for (float v : want) ymax = std::max(ymax, std::abs(v));
  auto random_scales = [&](int64_t k) {
    std::uniform_real_distribution<float> e(-2.0f, 2.0f);  // log2 of the scale
    std::vector<float> s(static_cast<size_t>(k));
    for (float& v : s) v = std::exp2(e(rng));
    return s;
  };
  const std::vector<std::pair<std::string, int64_t>> groups = {
      {"qkv", d}, {"o", c.kv_dim()}, {"gate_up", d}, {"down", c.intermediate_size}};
  LayerF32 all = original;
  for (const auto& [name, k] : groups) {
    const std::vector<float> s = random_scales(k);
    LayerF32 one = original;
    fold_scales(one, c, name, s);
    fold_scales(all, c, name, s);
    const std::vector<float> got = run_layer(c, one.L, inv_freq.data(), x, n);
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - want[i])));
    EXPECT_LT(worst, 1e-4 * ymax) << name;
  }
  const std::vector<float> got = run_layer(c, all.L, inv_freq.data(), x, n);
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - want[i])));
  EXPECT_LT(worst, 1e-4 * ymax) << "all four groups";
  // the check can fail: o_proj's columns scaled without v_proj's rows is a different function
  LayerF32 broken = original;
  const std::vector<float> s = random_scales(c.kv_dim());
  const std::vector<float> sq = expand_kv_to_q(c, s);
  for (size_t i = 0; i < broken.wo.size(); ++i) broken.wo[i] *= sq[i % size_t(c.q_dim())];
  const std::vector<float> bad = run_layer(c, broken.L, inv_freq.data(), x, n);
  double diff = 0.0;
  for (size_t i = 0; i < bad.size(); ++i) diff = std::max(diff, double(std::abs(bad[i] - want[i])));
  EXPECT_GT(diff, 1e-2 * ymax);
  EXPECT_AWQ_ERROR(fold_scales(broken, c, "o", std::vector<float>(size_t(c.q_dim()), 1.0f)), {"fold_scales(o)", "expected 128"});
}

// --gqa-o-scale: the v -> o group is searched under GQA (4 groups a layer), its choice is
// never worse than RTN on its loss, and the folded, quantized model still runs well.
TEST(QuantAwq, GqaOScaleRunsAndFolds) {
  TempDir tmp;
  QuantizeOptions o;
  o.model_dir = tiny_model_dir();
  o.out_dir = tmp.file("awq");
  o.calib.files = {calib_txt()};
  o.calib.n_samples = 2;
  o.calib.seqlen = 128;
  o.search.search_tokens = 128;
  o.search.gqa_o_scale = true;
  ThreadPool pool(2);
  const QuantizeReport r = quantize_model(pool, o);
  ASSERT_EQ(r.layers.size(), 8u);
  for (const LayerReport& l : r.layers) {
    ASSERT_EQ(l.scales.size(), 4u);
    EXPECT_EQ(l.scales[1].group, "o");
    for (const ScaleChoice& s : l.scales) EXPECT_LE(s.loss_best, s.loss_rtn) << s.group;
  }
  LlamaModel m(o.out_dir);
  const Tokenizer tok = Tokenizer::load(o.out_dir);
  const auto ids = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 1500), false);  // short: ASan
  PerplexityOptions po;
  po.ctx = 256;
  po.bos_id = 1;
  LlamaModel fp(tiny_model_dir());
  // as in TinyModelEndToEnd: a wrong v -> o fold (unscaled v rows) costs far more than 5 %
  EXPECT_LT(perplexity(m, pool, ids, po).ppl(), perplexity(fp, pool, ids, po).ppl() * 1.05);
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

// --device: anything but cpu or cuda is refused; --device cuda where the GPU search cannot run
// (a build without CUDA, or no GPU) says why and writes nothing. With a GPU the search itself is
// tested in tests/test_cuda_quant.cpp.
TEST(QuantCli, DeviceErrors) {
  TempDir tmp;
  const std::string out = tmp.file("out");
  const std::string m = tiny_model_dir();
  auto r = test::run_awq({"quantize", m, "-o", out, "--calib", calib_txt(), "--device", "tpu"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
  std::string why;
  if (awq_cuda_search_available(&why)) {
    EXPECT_FALSE(fs::exists(out));
    GTEST_SKIP() << "a GPU is present: --device cuda runs (tests/test_cuda_quant.cpp)";
  }
  expect_cli_error(test::run_awq({"quantize", m, "-o", out, "--calib", calib_txt(), "--n-samples", "2", "--device", "cuda"}),
                   "--device cuda");
  EXPECT_FALSE(fs::exists(out));
  QuantizeOptions o;
  o.model_dir = m;
  o.out_dir = out;
  o.device = "gpu";
  ThreadPool pool(1);
  EXPECT_AWQ_ERROR(quantize_model(pool, o), {"--device gpu", "cpu or cuda"});
}

// Ctrl-C during the search, with model.safetensors half-streamed: exit non-zero, no output
// folder, no staging folder (and so no temp file).
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
  // wait until model.safetensors is being streamed into the staging folder (the calibration is
  // done, the layers are being searched), so the signal lands mid-file
  const auto streaming = [&] {
    try {
      for (const std::string& staging : tmp.list())
        for (const auto& e : fs::directory_iterator(tmp.file(staging)))
          if (e.path().filename().string().rfind("model.safetensors.tmp", 0) == 0) return true;
    } catch (const fs::filesystem_error&) {  // the folder is being made: look again
    }
    return false;
  };
  bool started = false;
  for (int i = 0; i < 600 && !(started = streaming()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(started) << "the quantizer never started writing model.safetensors";
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_TRUE(tmp.list().empty()) << "left behind: " << (tmp.list().empty() ? "" : tmp.list()[0]);
}

}  // namespace
}  // namespace awq
