// AutoAWQ-format checkpoints in the engine: the tiny model quantized (w4, g128) with
// quantize_autoawq + pack_gemm and written exactly as AutoAWQ lays it out; its logits against
// an FP model holding the dequantized weights; `awq inspect` / `awq perplexity` on it; a small
// synthetic model for 3-bit, symmetric, modules_to_not_convert and every bad-input error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <filesystem>
#include <random>
#include <cctype>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "io/safetensors_writer.h"
#include "model/llama_model.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4.h"
#include "quant/autoawq_pack.h"
#include "support/expect_error.h"
#include "support/run_cli.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Tensors to write, with storage that outlives the views.
class TensorList {
 public:
  template <class T>
  void add(const std::string& name, DType dt, std::vector<int64_t> shape, std::vector<T> data) {
    auto& bytes = store_.emplace_back(data.size() * sizeof(T));
    std::memcpy(bytes.data(), data.data(), bytes.size());
    views_.push_back(TensorView{name, dt, std::move(shape), bytes.data(), bytes.size()});
  }
  void add_view(const TensorView& t) { views_.push_back(t); }
  // Drops `name`, or replaces its shape (same bytes reinterpreted) / dtype.
  void remove(const std::string& name) {
    std::erase_if(views_, [&](const TensorView& t) { return t.name == name; });
  }
  TensorView* find(const std::string& name) {
    for (auto& t : views_)
      if (t.name == name) return &t;
    return nullptr;
  }
  void write(const std::string& path) const { write_safetensors(path, views_); }

 private:
  std::deque<std::vector<uint8_t>> store_;
  std::vector<TensorView> views_;
};

bool is_decoder_linear(const std::string& name) {
  // model.layers.N.(self_attn|mlp).X_proj.weight (no std::regex: GCC 12 + ASan warns inside it)
  const std::string pre = "model.layers.", suf = "_proj.weight";
  if (name.rfind(pre, 0) != 0 || name.size() < pre.size() + suf.size() ||
      name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
    return false;
  size_t i = pre.size();
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return false;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  return name.compare(i, 10, ".self_attn") == 0 || name.compare(i, 4, ".mlp") == 0;
}

// Adds PREFIX.qweight / .qzeros / .scales (AutoAWQ GEMM) of w: [out, in] fp16 to `awq_t` and
// the dequantized PREFIX.weight (fp16 [out, in]) to `fp_t`.
void add_quantized(const std::string& prefix, const uint16_t* w, int64_t out, int64_t in,
                   const QuantParams& p, TensorList& awq_t, TensorList& fp_t) {
  const GroupQuantized q = quantize_autoawq(w, out, in, p, prefix);
  PackedGemm pk = pack_gemm(q);
  awq_t.add(prefix + ".qweight", DType::I32, {in, out / 8}, std::move(pk.qweight));
  awq_t.add(prefix + ".qzeros", DType::I32, {in / p.group, out / 8}, std::move(pk.qzeros));
  awq_t.add(prefix + ".scales", DType::F16, {in / p.group, out}, std::move(pk.scales));
  fp_t.add(prefix + ".weight", DType::F16, {out, in}, dequantize(q));
}

json quantization_config(const QuantParams& p) {
  return json{{"quant_method", "awq"}, {"bits", p.bits}, {"group_size", p.group},
              {"zero_point", p.zero_point}, {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
}

void write_json(const std::string& path, const json& j) { write_file_atomic(path, j.dump(2)); }

// The tiny model quantized (4-bit, group 128) in AutoAWQ's layout, and its dequantized FP twin.
struct TinyAwq {
  test::TempDir awq_dir, fp_dir;
  TinyAwq() {
    const std::string src = test::tiny_model_dir();
    const Checkpoint ck(src);
    const QuantParams p{4, 128, true};
    TensorList awq_t, fp_t;
    for (const std::string& name : ck.names()) {
      const TensorView& t = ck.get(name);
      if (!is_decoder_linear(name)) {
        awq_t.add_view(t);
        fp_t.add_view(t);
        continue;
      }
      EXPECT_EQ(t.dtype, DType::F16) << name;
      std::vector<uint16_t> w(size_t(t.numel()));
      std::memcpy(w.data(), t.data, t.nbytes);
      add_quantized(name.substr(0, name.size() - 7), w.data(), t.dim(0), t.dim(1), p, awq_t, fp_t);
    }
    awq_t.write(awq_dir.file("model.safetensors"));
    fp_t.write(fp_dir.file("model.safetensors"));
    json cfg = test::read_json(src + "/config.json");
    write_json(fp_dir.file("config.json"), cfg);
    cfg["quantization_config"] = quantization_config(p);
    write_json(awq_dir.file("config.json"), cfg);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      for (const auto* d : {&awq_dir, &fp_dir}) fs::copy_file(src + "/" + f, d->file(f));
  }
};

const TinyAwq& tiny_awq() {
  static const TinyAwq t;
  return t;
}

// logits: [n, vocab] for every position of `ids`.
// The exact W4 kernels (f32 activations: the reference's products) while in scope, so a
// model's logits can be compared with its dequantized FP twin's to float rounding; the default
// integer-activation kernels (int8x2, int8) move them by more (their own bounds are tested in
// test_w4_kernels.cpp).
struct ExactW4Kernels {
  ExactW4Kernels() { w4_override_isa(w4_isa_supported(W4Isa::Avx512) ? W4Isa::Avx512 : W4Isa::Scalar); }
  ~ExactW4Kernels() { w4_override_isa(std::nullopt); }
  ExactW4Kernels(const ExactW4Kernels&) = delete;
  ExactW4Kernels& operator=(const ExactW4Kernels&) = delete;
};

std::vector<float> all_logits(LlamaModel& m, const std::vector<int32_t>& ids) {
  ThreadPool pool(4);
  KvCache cache = m.new_cache(int64_t(ids.size()));
  std::vector<float> logits;
  m.forward(pool, ids.data(), int64_t(ids.size()), cache, true, logits);
  return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// A reference prompt followed by its greedy continuation: [n] token ids.
std::vector<int32_t> prompt_ids() {
  const auto& g = test::tiny_reference()["greedy"][0];
  std::vector<int32_t> ids = g["prompt_ids"].get<std::vector<int32_t>>();
  for (int32_t t : g["greedy_ids"].get<std::vector<int32_t>>()) ids.push_back(t);
  return ids;
}

TEST(AwqCheckpoint, LoadsLinearsAsAwqGemm) {
  LlamaModel m(tiny_awq().awq_dir.path());
  EXPECT_EQ(m.config().quant.quant_method, "awq");
  const LlamaWeights& w = m.weights();
  EXPECT_FALSE(w.embed.quantized());
  EXPECT_FALSE(w.lm_head.quantized());
  for (const LayerWeights& L : w.layers)
    for (const Matrix* x : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      ASSERT_EQ(x->kind, MatrixKind::AwqGemm);
      EXPECT_EQ(x->awq.bits, 4);
      EXPECT_EQ(x->awq.group, 128);
      EXPECT_NE(x->awq.w4_codes, nullptr);  // the fast kernels' layout (ops/cpu/w4.h)
    }
  EXPECT_EQ(w.layers[0].w_down.rows, 384);
  EXPECT_EQ(w.layers[0].w_down.cols, 1024);
}

// The quantized model's logits equal those of an FP model holding fp16((q - z) * s): the
// kernel dequantizes exactly as AutoAWQ's dequantize_gemm does.
TEST(AwqCheckpoint, LogitsEqualDequantizedFpModel) {
  const ExactW4Kernels exact;
  LlamaModel q(tiny_awq().awq_dir.path());
  LlamaModel d(tiny_awq().fp_dir.path());
  LlamaModel fp(test::tiny_model_dir());
  const std::vector<int32_t> ids = prompt_ids();
  const std::vector<float> lq = all_logits(q, ids), ld = all_logits(d, ids), lf = all_logits(fp, ids);
  const float err = max_abs_diff(lq, ld), qerr = max_abs_diff(lq, lf);
  std::printf("[ info ] %zu positions: max |logit(awq) - logit(dequantized fp16)| = %g; "
              "vs the unquantized model: %g\n", ids.size(), err, qerr);
  EXPECT_LE(err, 1e-4f);
  EXPECT_GT(qerr, 1e-3f);  // quantization did change the weights
  EXPECT_LT(qerr, 2.0f);   // ... but not beyond what 4-bit g128 RTN does to this model
}

// The strided read of the checkpoint layout (the reference, widen_row) equals the W4 kernel
// tiles made at load, dequantized, on real model tensors.
TEST(AwqCheckpoint, GemmLayoutRowsEqualW4Rows) {
  LlamaModel m(tiny_awq().awq_dir.path());
  const LayerWeights& L = m.weights().layers[3];
  for (const Matrix* x : {&L.wq, &L.wk, &L.w_down}) {
    ASSERT_EQ(x->awq.row_codes, nullptr);  // widen_row reads the checkpoint's qweight
    std::vector<float> a(size_t(x->cols)), b(size_t(x->cols));
    for (int64_t r = 0; r < x->rows; ++r) {
      widen_row(*x, r, a.data());
      w4_dequantize_rows(*x, r, 1, b.data());
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "row " << r;
    }
  }
}

TEST(AwqCheckpoint, InspectShowsQuantization) {
  const test::CliResult r = test::run_awq({"inspect", tiny_awq().awq_dir.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("quantization  awq 4-bit, group 128, zero point yes, version gemm"), std::string::npos) << r.out;
  // a table row: name, dtype and shape separated by runs of spaces
  auto has_row = [&](const std::string& name, const std::string& dtype, const std::string& shape) {
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string n, d, rest;
      f >> n >> d;
      std::getline(f, rest);
      if (n == name && d == dtype && rest.find(shape) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has_row("model.layers.0.self_attn.q_proj.qweight", "I32", "[384, 48]")) << r.out;
  EXPECT_TRUE(has_row("model.layers.7.mlp.down_proj.qzeros", "I32", "[8, 48]")) << r.out;
  EXPECT_TRUE(has_row("model.layers.7.mlp.down_proj.scales", "F16", "[8, 384]")) << r.out;
}

// `awq perplexity DIR` on the first 2 windows of val.txt: (ppl, seconds).
std::pair<double, double> cli_ppl(const std::string& dir) {
  const test::CliResult r = test::run_awq({"perplexity", dir, "-f", test::shared_path("data/val.txt"),
                                           "--max-windows", "2", "--json", "--threads", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {NAN, NAN};
  const json j = json::parse(r.out);
  return {j["ppl"].get<double>(), j["seconds"].get<double>()};
}

// `awq perplexity` runs on the AWQ folder. Printed beside it: the unquantized model on the
// same windows and the reference's full-file figures (llm-awq's f32 RTN, not AutoAWQ's fp16
// arithmetic, so no equality is expected).
TEST(AwqCheckpoint, PerplexityRuns) {
  const auto [pq, tq] = cli_ppl(tiny_awq().awq_dir.path());
  const auto [pd, td] = cli_ppl(tiny_awq().fp_dir.path());
  const auto [pf, tf] = cli_ppl(test::tiny_model_dir());
  const auto& ref = test::tiny_reference()["ppl"];
  std::printf("[ info ] ppl, first 2 windows of val.txt: awq w4g128 %.4f (%.2f s), dequantized fp16 %.4f "
              "(%.2f s), fp16 %.4f (%.2f s); reference over all 224 windows: fp16 %.5f, llm-awq f32 "
              "RTN w4g128 %.5f\n", pq, tq, pd, td, pf, tf, ref["fp16"]["val"]["ppl"].get<double>(),
              ref["rtn_w4g128"]["val"]["ppl"].get<double>());
  EXPECT_NEAR(pq, pd, 1e-3 * pd);
  EXPECT_GT(pq, 0.97 * pf);
  EXPECT_LT(pq, 1.05 * pf);
}

// ---- a small synthetic model: every variant and every error ----

struct Synth {
  QuantParams p{4, 32, true};
  std::string version = "gemm";
  json not_convert = nullptr;
  bool bias = false;  // attention_bias: q/k/v/o biases
};

// Writes config.json + model.safetensors of a 2-layer llama (d 64, ff 128, 2 heads x 32, 1 kv
// head, vocab 96) into awq_dir (AWQ) and, when fp_dir is given, its dequantized twin. `edit`
// may change the AWQ tensors before they are written.
void write_synth(const std::string& awq_dir, const std::string* fp_dir, const Synth& s,
                 const std::function<void(TensorList&)>& edit = {}) {
  const int64_t d = 64, ff = 128, kvd = 32, vocab = 96;
  json cfg = {{"model_type", "llama"}, {"vocab_size", vocab}, {"hidden_size", d},
              {"intermediate_size", ff}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
              {"num_key_value_heads", 1}, {"head_dim", 32}, {"rms_norm_eps", 1e-5},
              {"max_position_embeddings", 64}, {"tie_word_embeddings", false},
              {"attention_bias", s.bias}, {"torch_dtype", "float16"}};
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  auto randw = [&](int64_t n, float mean = 0.0f) {
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = f32_to_fp16(mean + nd(rng));
    return v;
  };
  TensorList awq_t, fp_t;
  auto both = [&](const std::string& name, std::vector<int64_t> shape, std::vector<uint16_t> v) {
    awq_t.add(name, DType::F16, shape, v);
    fp_t.add(name, DType::F16, shape, std::move(v));
  };
  both("model.embed_tokens.weight", {vocab, d}, randw(vocab * d));
  both("lm_head.weight", {vocab, d}, randw(vocab * d));
  both("model.norm.weight", {d}, randw(d, 1.0f));
  auto not_converted = [&](const std::string& prefix) {
    if (!s.not_convert.is_array()) return false;
    for (const auto& m : s.not_convert)
      if (prefix.find(m.get<std::string>()) != std::string::npos) return true;
    return false;
  };
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    both(p + "input_layernorm.weight", {d}, randw(d, 1.0f));
    both(p + "post_attention_layernorm.weight", {d}, randw(d, 1.0f));
    const std::vector<std::tuple<std::string, int64_t, int64_t>> linears = {
        {"self_attn.q_proj", d, d}, {"self_attn.k_proj", kvd, d}, {"self_attn.v_proj", kvd, d},
        {"self_attn.o_proj", d, d}, {"mlp.gate_proj", ff, d}, {"mlp.up_proj", ff, d},
        {"mlp.down_proj", d, ff}};
    for (const auto& [name, out, in] : linears) {
      const std::vector<uint16_t> w = randw(out * in);
      if (not_converted(p + name))
        both(p + name + ".weight", {out, in}, w);
      else
        add_quantized(p + name, w.data(), out, in, s.p, awq_t, fp_t);
      if (s.bias && name.starts_with("self_attn")) both(p + name + ".bias", {out}, randw(out));
    }
  }
  if (edit) edit(awq_t);
  awq_t.write(awq_dir + "/model.safetensors");
  json qc = quantization_config(s.p);
  qc["version"] = s.version;
  qc["modules_to_not_convert"] = s.not_convert;
  json acfg = cfg;
  acfg["quantization_config"] = qc;
  write_json(awq_dir + "/config.json", acfg);
  if (fp_dir) {
    fp_t.write(*fp_dir + "/model.safetensors");
    write_json(*fp_dir + "/config.json", cfg);
  }
}

// 4/3-bit, asymmetric/symmetric, with biases and an excluded module: logits equal the
// dequantized FP twin's.
TEST(AwqCheckpoint, SyntheticVariantsEqualDequantizedTwin) {
  const ExactW4Kernels exact;
  for (int bits : {4, 3})
    for (bool zp : {true, false}) {
      test::TempDir a, f;
      Synth s;
      s.p = QuantParams{bits, 32, zp};
      s.bias = true;
      s.not_convert = json::array({"layers.1.mlp.down_proj"});
      write_synth(a.path(), &f.path(), s);
      LlamaModel q(a.path()), d(f.path());
      EXPECT_EQ(q.weights().layers[0].wq.kind, MatrixKind::AwqGemm);
      EXPECT_EQ(q.weights().layers[0].wq.awq.bits, bits);
      EXPECT_EQ(q.weights().layers[0].w_down.kind, MatrixKind::AwqGemm);
      EXPECT_EQ(q.weights().layers[1].w_down.kind, MatrixKind::Dense);  // modules_to_not_convert
      EXPECT_FALSE(q.weights().layers[0].bq.empty());
      const std::vector<int32_t> ids = {1, 5, 17, 33, 2, 90, 64, 7, 8, 9, 50, 3};
      const float err = max_abs_diff(all_logits(q, ids), all_logits(d, ids));
      EXPECT_LE(err, 1e-4f) << "bits " << bits << " zero_point " << zp;
    }
}

std::string synth_error(const Synth& s, const std::function<void(TensorList&)>& edit = {}) {
  test::TempDir a;
  write_synth(a.path(), nullptr, s, edit);
  try {
    LlamaModel m(a.path());
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loading did not throw";
  return "";
}

TEST(AwqCheckpoint, QweightWithWrongShape) {
  const std::string msg = synth_error(Synth{}, [](TensorList& t) {
    TensorView* v = t.find("model.layers.0.self_attn.q_proj.qweight");
    ASSERT_NE(v, nullptr);
    v->shape = {32, 16};  // [in, out/8] = [64, 8] expected; same byte count
  });
  test::expect_contains_all(msg, {"model.layers.0.self_attn.q_proj.qweight", "[32, 16]", "[64, 8]"});
}

TEST(AwqCheckpoint, MissingQzeros) {
  const std::string msg = synth_error(Synth{}, [](TensorList& t) { t.remove("model.layers.1.mlp.up_proj.qzeros"); });
  test::expect_contains_all(msg, {"model.layers.1.mlp.up_proj.qzeros", "missing"});
}

TEST(AwqCheckpoint, WrongDtypes) {
  std::string msg = synth_error(Synth{}, [](TensorList& t) {
    TensorView* v = t.find("model.layers.0.mlp.gate_proj.scales");
    v->dtype = DType::BF16;
  });
  test::expect_contains_all(msg, {"model.layers.0.mlp.gate_proj.scales", "BF16", "F16"});
  msg = synth_error(Synth{}, [](TensorList& t) {
    TensorView* v = t.find("model.layers.0.mlp.gate_proj.qweight");
    v->dtype = DType::F32;
  });
  test::expect_contains_all(msg, {"model.layers.0.mlp.gate_proj.qweight", "F32", "I32"});
}

// Loading a valid synthetic AWQ folder whose quantization_config got `patch` merged in.
std::string config_error(const json& patch) {
  test::TempDir a;
  write_synth(a.path(), nullptr, Synth{});
  json cfg = test::read_json(a.file("config.json"));
  cfg["quantization_config"].merge_patch(patch);
  write_json(a.file("config.json"), cfg);
  return test::error_message([&] { LlamaModel m(a.path()); });
}

TEST(AwqCheckpoint, UnsupportedVersionsAndParams) {
  for (const char* v : {"gemv", "marlin", "gemv_fast", "exllama"})
    test::expect_contains_all(config_error({{"version", v}}),
                              {"config.json", "quantization_config.version", v, "gemm"});
  test::expect_contains_all(config_error({{"bits", 8}}), {"config.json", "quantization_config.bits", "8"});
  test::expect_contains_all(config_error({{"bits", 2}}), {"config.json", "quantization_config.bits", "2"});
  test::expect_contains_all(config_error({{"group_size", -1}}), {"group_size", "-1"});
  test::expect_contains_all(config_error({{"group_size", 48}}),
                            {"group size 48 does not divide in_features 64", "model.layers.0.self_attn.q_proj"});
}

// A decoder linear left in FP without being listed in modules_to_not_convert.
TEST(AwqCheckpoint, UnquantizedLinearNotListed) {
  const std::string msg = synth_error(Synth{}, [](TensorList& t) {
    const std::string p = "model.layers.0.self_attn.o_proj";
    t.remove(p + ".qweight");
    t.remove(p + ".qzeros");
    t.remove(p + ".scales");
    t.add(p + ".weight", DType::F16, {64, 64}, std::vector<uint16_t>(64 * 64, 0));
  });
  test::expect_contains_all(msg, {"model.layers.0.self_attn.o_proj.qweight", "missing",
                                  "modules_to_not_convert"});
}

TEST(AwqCheckpoint, ThreeBitCodeOutOfRange) {
  Synth s;
  s.p.bits = 3;
  const std::string msg = synth_error(s, [](TensorList& t) {
    TensorView* v = t.find("model.layers.1.self_attn.k_proj.qweight");
    int32_t w0;
    std::memcpy(&w0, v->data, 4);
    w0 = int32_t(uint32_t(w0) | 0x80000000u);
    std::memcpy(const_cast<void*>(v->data), &w0, 4);
  });
  test::expect_contains_all(msg, {"model.layers.1.self_attn.k_proj", "qweight", "3 bits"});
}

}  // namespace
}  // namespace awq
