// GGUF export: the writer's bytes read back through io/gguf_reader, Q4_0/Q8_0 blocks against
// the format's definition and error bound, the q/k RoPE row permutation (its inverse, and
// that it turns Hugging Face rotate-half RoPE into ggml's interleaved RoPE), the tiny model
// exported as F16 and Q4_0 (from FP16 and from an AWQ checkpoint), and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/half.h"
#include "io/checkpoint.h"
#include "io/gguf_export.h"
#include "io/gguf_quant.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "io/model_config.h"
#include "model/llama_weights.h"
#include "ops/cpu/matmul.h"
#include "support/expect_error.h"
#include "support/run_cli.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(GgufWriter, RoundTripsMetadataAndTensors) {
  TempDir tmp;
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 22);
  w.add_i32("test.negative", -5);
  w.add_f32("llama.rope.freq_base", 10000.0f);
  w.add_bool("tokenizer.ggml.add_bos_token", true);
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "\xe2\x96\x81the", ""});
  w.add_f32_array("tokenizer.ggml.scores", {0.0f, -1.5f, 3.25f});
  w.add_i32_array("tokenizer.ggml.token_type", {2, 1, 5});
  const std::vector<float> a = random_vector(3 * 5, 1);   // F32 [3, 5]
  const std::vector<float> b = random_vector(2 * 64, 2);  // F16 and Q4_0 [2, 64]
  w.add_tensor("a", gguf::TensorType::F32, {3, 5});
  w.add_tensor("b16", gguf::TensorType::F16, {2, 64});
  w.add_tensor("bq", gguf::TensorType::Q4_0, {2, 64});
  const std::vector<const float*> src = {a.data(), b.data(), b.data()};
  const std::string path = tmp.file("t.gguf");
  // chunk_bytes = 1: one row per fill call, exercising the chunking.
  w.write(path, [&](size_t i, int64_t r0, int64_t r1, uint8_t* dst) {
    const auto& t = w.tensors()[i];
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = src[i] + r * t.shape.back();
      uint8_t* out = dst + (r - r0) * int64_t(t.row_bytes());
      if (t.type == gguf::TensorType::F32) std::memcpy(out, x, 20);
      if (t.type == gguf::TensorType::F16)
        for (int j = 0; j < 64; ++j) {
          const uint16_t h = f32_to_fp16(x[j]);
          std::memcpy(out + 2 * j, &h, 2);
        }
      if (t.type == gguf::TensorType::Q4_0) gguf::quantize_row_q4_0(x, 64, out);
    }
  }, nullptr, 1);

  const gguf::Reader r(path);
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.alignment(), 32u);
  EXPECT_EQ(r.keys().front(), "general.alignment");
  EXPECT_EQ(r.get("general.architecture").v, "llama");
  EXPECT_EQ(r.get("llama.block_count").type, gguf::ValueType::U32);
  EXPECT_EQ(r.get("llama.block_count").v, 22);
  EXPECT_EQ(r.get("test.negative").v, -5);
  EXPECT_EQ(r.get("llama.rope.freq_base").v.get<float>(), 10000.0f);
  EXPECT_EQ(r.get("tokenizer.ggml.add_bos_token").v, true);
  EXPECT_EQ(r.get("tokenizer.ggml.tokens").elem_type, gguf::ValueType::STRING);
  EXPECT_EQ(r.get("tokenizer.ggml.tokens").v, nlohmann::json({"<unk>", "\xe2\x96\x81the", ""}));
  EXPECT_EQ(r.get("tokenizer.ggml.scores").v, nlohmann::json({0.0, -1.5, 3.25}));
  EXPECT_EQ(r.get("tokenizer.ggml.token_type").v, nlohmann::json({2, 1, 5}));
  ASSERT_EQ(r.tensors().size(), 3u);
  const gguf::TensorInfo& ta = r.tensor("a");
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(ta.nbytes, 60u);
  EXPECT_EQ(std::memcmp(ta.data, a.data(), 60), 0);
  for (const gguf::TensorInfo& t : r.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  const gguf::TensorInfo& t16 = r.tensor("b16");
  for (int j = 0; j < 128; ++j) {
    uint16_t h;
    std::memcpy(&h, t16.data + 2 * j, 2);
    EXPECT_EQ(h, f32_to_fp16(b[size_t(j)]));
  }
  const gguf::TensorInfo& tq = r.tensor("bq");
  EXPECT_EQ(tq.type, gguf::TensorType::Q4_0);
  EXPECT_EQ(tq.nbytes, 4u * 18u);
  std::vector<uint8_t> expect(72);
  gguf::quantize_row_q4_0(b.data(), 128, expect.data());
  EXPECT_EQ(std::memcmp(tq.data, expect.data(), 72), 0);
}

TEST(GgufWriter, RejectsBadInput) {
  gguf::Writer w;
  w.add_u32("k", 1);
  EXPECT_AWQ_ERROR(w.add_u32("k", 2), {"'k'", "twice"});
  EXPECT_AWQ_ERROR(w.add_tensor("q", gguf::TensorType::Q4_0, {4, 48}), {"'q'", "48", "32", "--type f16"});
  w.add_tensor("t", gguf::TensorType::F32, {4});
  EXPECT_AWQ_ERROR(w.add_tensor("t", gguf::TensorType::F32, {4}), {"'t'", "twice"});
  EXPECT_AWQ_ERROR(w.add_tensor("z", gguf::TensorType::F32, {0, 4}), {"'z'", "positive"});
}

TEST(GgufReader, RejectsCorruptFiles) {
  TempDir tmp;
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_tensor("x", gguf::TensorType::F32, {64});
  const std::string path = tmp.file("ok.gguf");
  w.write(path, [](size_t, int64_t, int64_t, uint8_t* dst) { std::memset(dst, 0, 256); });
  const std::string bytes = test::read_text(path);
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(tmp.file(name), std::ios::binary) << b;
    return tmp.file(name);
  };
  EXPECT_AWQ_ERROR(gguf::Reader(write("magic.gguf", "GGUX" + bytes.substr(4))), {"magic.gguf", "not a GGUF file"});
  std::string v2 = bytes;
  v2[4] = 2;
  EXPECT_AWQ_ERROR(gguf::Reader(write("v2.gguf", v2)), {"v2.gguf", "version 2"});
  EXPECT_AWQ_ERROR(gguf::Reader(write("short.gguf", bytes.substr(0, 40))), {"short.gguf", "truncated"});
  EXPECT_AWQ_ERROR(gguf::Reader(write("nodata.gguf", bytes.substr(0, bytes.size() - 8))), {"nodata.gguf", "'x'", "past the end"});
}

// Q4_0 layout from the definition: a block whose largest-magnitude element is -8 has d = 1
// exactly, so every integer in -8..7 is coded exactly as value + 8; byte j holds element j
// (low nibble) and element j + 16 (high nibble).
TEST(GgufQuant, Q4_0BlockLayoutMatchesTheFormat) {
  float x[32];
  for (int j = 0; j < 16; ++j) x[j] = float(j - 8), x[16 + j] = float(7 - (j % 16));
  uint8_t blk[18];
  gguf::quantize_row_q4_0(x, 32, blk);
  uint16_t d;
  std::memcpy(&d, blk, 2);
  EXPECT_EQ(fp16_to_f32(d), 1.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(blk[2 + j] & 0x0f, j) << j;
    EXPECT_EQ(blk[2 + j] >> 4, 15 - j) << j;
  }
  float y[32];
  gguf::dequantize_row_q4_0(blk, 32, y);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]);
  // A positive extreme: d = -max/8 < 0, the maximum maps to code 0 and decodes exactly.
  for (int j = 0; j < 32; ++j) x[j] = 0.01f * float(j);
  x[5] = 2.0f;
  gguf::quantize_row_q4_0(x, 32, blk);
  gguf::dequantize_row_q4_0(blk, 32, y);
  EXPECT_EQ(blk[2 + 5] & 0x0f, 0);
  EXPECT_EQ(y[5], 2.0f);
  // All zeros: d = 0, codes 8, decodes to zeros.
  std::fill(x, x + 32, 0.0f);
  gguf::quantize_row_q4_0(x, 32, blk);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(blk[2 + j], 0x88);
}

// Error bound: with the f32 scale d the rounding error is <= |d| / 2 per element, except
// that codes stop at 15 = +7 d: an element of the other sign than the extreme m with
// x / d > 7.5 is clamped, error <= |d| (Q4_0's asymmetry). Decoding uses fp16(d), adding at
// most 8 * |fp16(d) - d| (|q - 8| <= 8). Q8_0: <= d / 2 + 127 * |fp16(d) - d|.
TEST(GgufQuant, RoundTripWithinTheFormatsError) {
  const std::vector<float> x = random_vector(32 * 64, 7, 0.02f);
  std::vector<uint8_t> q4(64 * 18), q8(64 * 34);
  std::vector<float> y4(x.size()), y8(x.size());
  gguf::quantize_row_q4_0(x.data(), int64_t(x.size()), q4.data());
  gguf::dequantize_row_q4_0(q4.data(), int64_t(x.size()), y4.data());
  gguf::quantize_row_q8_0(x.data(), int64_t(x.size()), q8.data());
  gguf::dequantize_row_q8_0(q8.data(), int64_t(x.size()), y8.data());
  for (int b = 0; b < 64; ++b) {
    float m = 0, amax = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[size_t(b * 32 + j)]) > amax) amax = std::fabs(x[size_t(b * 32 + j)]), m = x[size_t(b * 32 + j)];
    const float d4 = m / -8.0f, d8 = amax / 127.0f;
    const float fp16_err4 = 8 * std::fabs(fp16_to_f32(f32_to_fp16(d4)) - d4) + 1e-7f;
    const float e8 = d8 / 2 + 127 * std::fabs(fp16_to_f32(f32_to_fp16(d8)) - d8) + 1e-7f;
    for (int j = 0; j < 32; ++j) {
      const size_t i = size_t(b * 32 + j);
      const float e4 = (x[i] / d4 > 7.5f ? std::fabs(d4) : std::fabs(d4) / 2) + fp16_err4;
      EXPECT_LE(std::fabs(y4[i] - x[i]), e4) << i;
      EXPECT_LE(std::fabs(y8[i] - x[i]), e8) << i;
    }
  }
}

TEST(GgufRope, PermutationInverseAndMeaning) {
  for (int64_t hd : {2, 4, 8, 64, 128}) {
    std::vector<bool> seen(size_t(hd), false);
    for (int64_t p = 0; p < hd; ++p) {
      const int64_t s = ggml_rope_source_row(p, hd);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, hd);
      EXPECT_FALSE(seen[size_t(s)]);
      seen[size_t(s)] = true;
      EXPECT_EQ(hf_row_destination(s, hd), p);
    }
  }
  // Meaning: HF rotate-half RoPE of a head vector q equals, read through the permutation,
  // ggml's interleaved RoPE (pairs 2i, 2i+1, same frequencies) of the permuted vector.
  const int64_t hd = 64;
  const std::vector<float> q = random_vector(size_t(hd), 3);
  for (int pos : {0, 1, 17, 1000}) {
    std::vector<double> hf(static_cast<size_t>(hd)), gg(static_cast<size_t>(hd)), qp(static_cast<size_t>(hd));
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double th = pos * std::pow(10000.0, -2.0 * double(i) / double(hd));
      hf[size_t(i)] = q[size_t(i)] * std::cos(th) - q[size_t(i + hd / 2)] * std::sin(th);
      hf[size_t(i + hd / 2)] = q[size_t(i + hd / 2)] * std::cos(th) + q[size_t(i)] * std::sin(th);
    }
    for (int64_t p = 0; p < hd; ++p) qp[size_t(p)] = q[size_t(ggml_rope_source_row(p, hd))];
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double th = pos * std::pow(10000.0, -2.0 * double(i) / double(hd));
      gg[size_t(2 * i)] = qp[size_t(2 * i)] * std::cos(th) - qp[size_t(2 * i + 1)] * std::sin(th);
      gg[size_t(2 * i + 1)] = qp[size_t(2 * i)] * std::sin(th) + qp[size_t(2 * i + 1)] * std::cos(th);
    }
    for (int64_t p = 0; p < hd; ++p) EXPECT_NEAR(gg[size_t(p)], hf[size_t(ggml_rope_source_row(p, hd))], 1e-12) << p;
  }
}

// Row r of the GGUF tensor decoded to f32 (F16, F32, Q4_0, Q8_0): out: [cols].
void gguf_row(const gguf::TensorInfo& t, int64_t r, float* out) {
  const int64_t cols = t.shape.back();
  const uint64_t row_bytes = t.nbytes / uint64_t(t.shape.size() > 1 ? t.shape[0] : 1);
  const uint8_t* row = t.data + uint64_t(r) * row_bytes;
  switch (t.type) {
    case gguf::TensorType::F32: std::memcpy(out, row, size_t(cols) * 4); return;
    case gguf::TensorType::F16:
      for (int64_t j = 0; j < cols; ++j) {
        uint16_t h;
        std::memcpy(&h, row + 2 * j, 2);
        out[j] = fp16_to_f32(h);
      }
      return;
    case gguf::TensorType::Q4_0: gguf::dequantize_row_q4_0(row, cols, out); return;
    case gguf::TensorType::Q8_0: gguf::dequantize_row_q8_0(row, cols, out); return;
    default: FAIL() << "unexpected type";
  }
}

// Checks every linear of one layer and the embeddings of an exported file against the source
// weights: exact for F16 (both are fp16 of the same f32), within Q4_0's bound for Q4_0.
void expect_matches_source(const gguf::Reader& r, const std::string& model_dir, bool q4) {
  const ModelConfig c = load_model_config(model_dir);
  const Checkpoint ck(model_dir);
  const LlamaWeights W = load_llama_weights(ck, c);
  const LayerWeights& L = W.layers[1];
  struct Item {
    std::string name;
    const Matrix* m;
    bool rope;
  };
  const gguf::TensorType linear_t = q4 ? gguf::TensorType::Q4_0 : gguf::TensorType::F16;
  const gguf::TensorType embed_t = !q4 ? gguf::TensorType::F16
                                   : c.tie_word_embeddings ? gguf::TensorType::Q8_0 : gguf::TensorType::Q4_0;
  for (const Item& it : std::vector<Item>{{"blk.1.attn_q.weight", &L.wq, true}, {"blk.1.attn_k.weight", &L.wk, true},
                                          {"blk.1.attn_v.weight", &L.wv, false}, {"blk.1.attn_output.weight", &L.wo, false},
                                          {"blk.1.ffn_gate.weight", &L.w_gate, false}, {"blk.1.ffn_down.weight", &L.w_down, false},
                                          {"token_embd.weight", &W.embed, false}}) {
    const gguf::TensorInfo& t = r.tensor(it.name);
    ASSERT_EQ(t.shape, (std::vector<int64_t>{it.m->rows, it.m->cols})) << it.name;
    const gguf::TensorType want_t = it.m == &W.embed ? embed_t : linear_t;
    ASSERT_EQ(t.type, want_t) << it.name;
    std::vector<float> got(size_t(it.m->cols)), want(size_t(it.m->cols));
    for (int64_t row = 0; row < it.m->rows; row += std::max<int64_t>(1, it.m->rows / 37)) {
      const int64_t hd = c.head_dim;
      const int64_t src = it.rope ? row / hd * hd + ggml_rope_source_row(row % hd, hd) : row;
      widen_row(*it.m, src, want.data());
      gguf_row(t, row, got.data());
      for (int64_t b = 0; b < it.m->cols; b += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(want[size_t(b + j)]));
        // Q4_0: |d| = amax / 8 (the clamped end, see RoundTripWithinTheFormatsError; +1 % for
        // fp16(d)); Q8_0: d / 2 + 127 * |fp16(d) - d| <= d * (0.5 + 127 / 2048), d = amax / 127;
        // F16: exact.
        const float tol = want_t == gguf::TensorType::Q4_0   ? amax / 8 * 1.01f + 1e-6f
                          : want_t == gguf::TensorType::Q8_0 ? amax / 127 * (0.5f + 127.0f / 2048) + 1e-6f
                                                             : 0.0f;
        for (int j = 0; j < 32; ++j) {
          const float w = want_t != gguf::TensorType::F16 ? want[size_t(b + j)] : fp16_to_f32(f32_to_fp16(want[size_t(b + j)]));
          ASSERT_LE(std::fabs(got[size_t(b + j)] - w), tol) << it.name << " row " << row << " col " << b + j;
        }
      }
    }
  }
  const gguf::TensorInfo& n = r.tensor("blk.1.ffn_norm.weight");
  EXPECT_EQ(n.type, gguf::TensorType::F32);
  EXPECT_EQ(std::memcmp(n.data, L.ffn_norm.data(), L.ffn_norm.size() * 4), 0);
}

TEST(GgufExport, TinyModelF16MetadataVocabAndTensors) {
  TempDir tmp;
  ThreadPool pool(2);
  const std::string m = test::tiny_model_dir();
  const GgufExportReport rep = export_gguf(pool, {m, tmp.file("t.gguf"), "f16", false});
  EXPECT_EQ(rep.tensors, 1 + 8 * 9 + 1);  // tied: no output.weight
  const gguf::Reader r(tmp.file("t.gguf"));
  EXPECT_EQ(r.get("general.architecture").v, "llama");
  EXPECT_EQ(r.get("general.file_type").v, 1);
  EXPECT_EQ(r.get("llama.block_count").v, 8);
  EXPECT_EQ(r.get("llama.embedding_length").v, 384);
  EXPECT_EQ(r.get("llama.feed_forward_length").v, 1024);
  EXPECT_EQ(r.get("llama.attention.head_count").v, 6);
  EXPECT_EQ(r.get("llama.attention.head_count_kv").v, 2);
  EXPECT_EQ(r.get("llama.rope.dimension_count").v, 64);
  EXPECT_EQ(r.get("llama.context_length").v, 2048);
  EXPECT_EQ(r.get("llama.rope.freq_base").v.get<float>(), 10000.0f);
  EXPECT_EQ(r.get("llama.attention.layer_norm_rms_epsilon").v.get<float>(), 1e-5f);
  EXPECT_FALSE(r.has("output.weight") || r.has("llama.attention.key_length"));
  EXPECT_EQ(r.get("tokenizer.ggml.model").v, "llama");
  const auto& tokens = r.get("tokenizer.ggml.tokens").v;
  const auto& types = r.get("tokenizer.ggml.token_type").v;
  const auto& scores = r.get("tokenizer.ggml.scores").v;
  ASSERT_EQ(tokens.size(), 32000u);
  ASSERT_EQ(types.size(), 32000u);
  ASSERT_EQ(scores.size(), 32000u);
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(types[0], 2);   // <unk>: UNKNOWN
  EXPECT_EQ(types[1], 3);   // <s>: CONTROL
  EXPECT_EQ(tokens[13], "<0x0A>");
  EXPECT_EQ(types[13], 6);  // BYTE
  // The tokenizer.json's first merge is "▁ t": "▁t" gets the highest score of the merged tokens.
  const auto it = std::find(tokens.begin(), tokens.end(), "\xe2\x96\x81t");
  ASSERT_NE(it, tokens.end());
  EXPECT_EQ(scores[size_t(it - tokens.begin())], 0.0);
  EXPECT_EQ(r.get("tokenizer.ggml.bos_token_id").v, 1);
  EXPECT_EQ(r.get("tokenizer.ggml.eos_token_id").v, 2);
  EXPECT_EQ(r.get("tokenizer.ggml.add_bos_token").v, true);
  EXPECT_EQ(r.get("tokenizer.ggml.add_space_prefix").v, true);
  expect_matches_source(r, m, false);
}

TEST(GgufExport, AwqCheckpointDequantizedToF16AndQ4_0) {
  TempDir tmp;
  ThreadPool pool(2);
  const test::CliResult q =
      test::run_awq({"quantize", test::tiny_model_dir(), "-o", tmp.file("w4"), "--method", "rtn", "-t", "2"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  const GgufExportReport rep = export_gguf(pool, {tmp.file("w4"), tmp.file("w4.gguf"), "f16", false});
  EXPECT_TRUE(rep.from_awq);
  expect_matches_source(gguf::Reader(tmp.file("w4.gguf")), tmp.file("w4"), false);
  export_gguf(pool, {tmp.file("w4"), tmp.file("q4.gguf"), "q4_0", false});
  const gguf::Reader r(tmp.file("q4.gguf"));
  expect_matches_source(r, tmp.file("w4"), true);
  EXPECT_EQ(r.get("general.file_type").v, 2);
  EXPECT_EQ(r.get("general.quantization_version").v, 2);
  // tied embeddings double as the output matrix: Q8_0 (io/gguf_export.h)
  EXPECT_EQ(r.tensor("token_embd.weight").type, gguf::TensorType::Q8_0);
}

TEST(GgufExport, Q4_0FromFp16WithinQ4_0Error) {
  TempDir tmp;
  ThreadPool pool(2);
  const std::string m = test::tiny_model_dir();
  export_gguf(pool, {m, tmp.file("q.gguf"), "q4_0", false});
  expect_matches_source(gguf::Reader(tmp.file("q.gguf")), m, true);
}

TEST(GgufExport, BadInput) {
  TempDir tmp;
  ThreadPool pool(1);
  const std::string m = test::tiny_model_dir();
  // qwen2: refused with the reason
  fs::create_directory(tmp.file("qwen"));
  for (const auto& e : fs::directory_iterator(m))
    if (e.path().filename() != "config.json") fs::create_symlink(e.path(), tmp.file("qwen/" + e.path().filename().string()));
  nlohmann::json cfg = test::read_json(m + "/config.json");
  cfg["model_type"] = "qwen2";
  std::ofstream(tmp.file("qwen/config.json")) << cfg.dump();
  EXPECT_AWQ_ERROR(export_gguf(pool, {tmp.file("qwen"), tmp.file("q.gguf"), "f16", false}), {"qwen2", "llama and mistral"});
  // byte-level BPE tokenizer: refused
  fs::create_directory(tmp.file("bl"));
  for (const auto& e : fs::directory_iterator(m))
    if (e.path().filename() != "tokenizer.json") fs::create_symlink(e.path(), tmp.file("bl/" + e.path().filename().string()));
  std::ofstream(tmp.file("bl/tokenizer.json")) << R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "ByteLevel"}})";
  EXPECT_AWQ_ERROR(export_gguf(pool, {tmp.file("bl"), tmp.file("b.gguf"), "f16", false}), {"tokenizer.json", "byte-level BPE"});
  EXPECT_FALSE(fs::exists(tmp.file("q.gguf")) || fs::exists(tmp.file("b.gguf")));
  // existing output
  std::ofstream(tmp.file("exists.gguf")) << "x";
  EXPECT_AWQ_ERROR(export_gguf(pool, {m, tmp.file("exists.gguf"), "f16", false}), {"exists.gguf", "--force"});
  // CLI: bad --type, missing model folder
  const test::CliResult r = test::run_awq({"export-gguf", m, "-o", tmp.file("x.gguf"), "--type", "q2_k"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("q2_k"), std::string::npos) << r.err;
  const test::CliResult r2 = test::run_awq({"export-gguf", tmp.file("qwen"), "-o", tmp.file("x.gguf")});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("error: "), std::string::npos) << r2.err;
  EXPECT_FALSE(fs::exists(tmp.file("x.gguf")));
}

}  // namespace
}  // namespace awq
