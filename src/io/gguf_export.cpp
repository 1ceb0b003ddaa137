#include "io/gguf_export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "core/interrupt.h"
#include "io/checkpoint.h"
#include "io/gguf_quant.h"
#include "io/gguf_vocab.h"
#include "io/gguf_writer.h"
#include "io/model_config.h"
#include "model/llama_weights.h"
#include "ops/cpu/matmul.h"

namespace awq {
namespace fs = std::filesystem;
using gguf::TensorType;

int64_t ggml_rope_source_row(int64_t p, int64_t head_dim) { return (p % 2) * (head_dim / 2) + p / 2; }
int64_t hf_row_destination(int64_t r, int64_t head_dim) { return 2 * (r % (head_dim / 2)) + r / (head_dim / 2); }

namespace {

// Where a GGUF tensor's rows come from: a matrix (rows possibly permuted per head) or a vector.
struct Source {
  const Matrix* m = nullptr;
  int64_t rope_head_dim = 0;       // > 0: q/k permutation within heads of this size
  const std::vector<float>* v = nullptr;
};

void check_exportable(const ModelConfig& c, const std::string& dir) {
  if (c.model_type != "llama" && c.model_type != "mistral")
    throw Error(dir + "/config.json: model_type " + c.model_type +
                ": export-gguf writes llama and mistral models (llama.cpp's llama architecture) only; qwen2/qwen3 "
                "(q/k/v biases, q/k norms) are not supported yet");
  if (c.qkv_bias || c.o_bias || c.mlp_bias)
    throw Error(dir + "/config.json: attention_bias / mlp_bias is set: export-gguf does not write bias tensors");
  if (c.qk_norm) throw Error(dir + "/config.json: q/k norms are not supported by export-gguf");
  if (c.rope_scaling.type != "default" && c.rope_scaling.type != "linear")
    throw Error(dir + "/config.json: rope scaling '" + c.rope_scaling.type +
                "' is not exported (only default and linear); llama3 scaling needs llama.cpp's rope_freqs tensor");
  if (c.head_dim % 2 != 0) throw Error(dir + "/config.json: head_dim " + std::to_string(c.head_dim) + " is odd");
}

std::string model_name(const std::string& dir) {
  std::string n = fs::path(dir).lexically_normal().filename().string();
  if (n.empty() || n == ".") n = fs::path(dir).lexically_normal().parent_path().filename().string();
  return n.empty() ? "model" : n;
}

// One row of `src` (row index in the GGUF tensor) as f32: out: [cols].
void source_row(const Source& s, int64_t r, float* out) {
  if (s.v) {
    std::memcpy(out, s.v->data(), s.v->size() * sizeof(float));
    return;
  }
  int64_t src = r;
  if (s.rope_head_dim > 0) src = (r / s.rope_head_dim) * s.rope_head_dim + ggml_rope_source_row(r % s.rope_head_dim, s.rope_head_dim);
  widen_row(*s.m, src, out);
}

void encode_row(TensorType t, const float* x, int64_t n, uint8_t* dst, const std::string& name) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(dst, x, size_t(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i]) || std::abs(x[i]) > 65504.0f)
          throw Error(name + ": value " + std::to_string(x[i]) + " does not fit fp16; export with --type q4_0 or rescale the model");
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case TensorType::Q4_0: gguf::quantize_row_q4_0(x, n, dst); return;
    case TensorType::Q8_0: gguf::quantize_row_q8_0(x, n, dst); return;
    case TensorType::BF16: break;
  }
  throw Error(name + ": cannot encode " + gguf::type_name(t));
}

}  // namespace

GgufExportReport export_gguf(ThreadPool& pool, const GgufExportOptions& opt,
                             const std::function<void(uint64_t, uint64_t)>& progress) {
  if (opt.type != "f16" && opt.type != "q4_0") throw Error("--type " + opt.type + ": expected f16 or q4_0");
  if (fs::exists(opt.out_path) && !opt.force)
    throw Error(opt.out_path + ": already exists; choose another output file or pass --force to replace it");
  const ModelConfig c = load_model_config(opt.model_dir);
  check_exportable(c, opt.model_dir);
  const gguf::Vocab vocab = gguf::load_vocab(opt.model_dir, c.vocab_size);
  const Checkpoint ckpt(opt.model_dir);
  const LlamaWeights W = load_llama_weights(ckpt, c);

  const bool q4 = opt.type == "q4_0";
  const TensorType linear_t = q4 ? TensorType::Q4_0 : TensorType::F16;
  const TensorType output_t = q4 ? TensorType::Q8_0 : TensorType::F16;
  const TensorType embed_t = q4 ? (c.tie_word_embeddings ? TensorType::Q8_0 : TensorType::Q4_0) : TensorType::F16;

  gguf::Writer w;
  const std::string arch = "llama";
  w.add_string("general.architecture", arch);
  w.add_string("general.name", model_name(opt.model_dir));
  w.add_u32("general.file_type", uint32_t(q4 ? gguf::FileType::MOSTLY_Q4_0 : gguf::FileType::MOSTLY_F16));
  w.add_u32("general.quantization_version", 2);
  w.add_u32(arch + ".vocab_size", uint32_t(c.vocab_size));
  w.add_u32(arch + ".context_length", uint32_t(c.max_position_embeddings));
  w.add_u32(arch + ".embedding_length", uint32_t(c.hidden_size));
  w.add_u32(arch + ".block_count", uint32_t(c.num_layers));
  w.add_u32(arch + ".feed_forward_length", uint32_t(c.intermediate_size));
  w.add_u32(arch + ".attention.head_count", uint32_t(c.num_heads));
  w.add_u32(arch + ".attention.head_count_kv", uint32_t(c.num_kv_heads));
  if (c.head_dim * c.num_heads != c.hidden_size) {
    w.add_u32(arch + ".attention.key_length", uint32_t(c.head_dim));
    w.add_u32(arch + ".attention.value_length", uint32_t(c.head_dim));
  }
  w.add_f32(arch + ".attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w.add_f32(arch + ".rope.freq_base", float(c.rope_theta));
  w.add_u32(arch + ".rope.dimension_count", uint32_t(c.head_dim));
  if (c.rope_scaling.type == "linear") {
    w.add_string(arch + ".rope.scaling.type", "linear");
    w.add_f32(arch + ".rope.scaling.factor", float(c.rope_scaling.factor));
  }
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", vocab.tokens);
  w.add_f32_array("tokenizer.ggml.scores", vocab.scores);
  w.add_i32_array("tokenizer.ggml.token_type", vocab.types);
  if (vocab.bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(vocab.bos));
  if (vocab.eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(vocab.eos));
  if (vocab.unk >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(vocab.unk));
  w.add_bool("tokenizer.ggml.add_bos_token", vocab.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", vocab.add_eos);
  w.add_bool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
  if (!vocab.chat_template.empty()) w.add_string("tokenizer.chat_template", vocab.chat_template);

  std::vector<Source> sources;
  auto add_matrix = [&](const std::string& name, TensorType t, const Matrix& m, int64_t rope_head_dim = 0) {
    w.add_tensor(name, t, {m.rows, m.cols});
    sources.push_back(Source{&m, rope_head_dim, nullptr});
  };
  auto add_norm = [&](const std::string& name, const std::vector<float>& v) {
    w.add_tensor(name, TensorType::F32, {int64_t(v.size())});
    sources.push_back(Source{nullptr, 0, &v});
  };
  add_matrix("token_embd.weight", embed_t, W.embed);
  for (int l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = W.layers[size_t(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    add_norm(p + "attn_norm.weight", L.attn_norm);
    add_matrix(p + "attn_q.weight", linear_t, L.wq, c.head_dim);
    add_matrix(p + "attn_k.weight", linear_t, L.wk, c.head_dim);
    add_matrix(p + "attn_v.weight", linear_t, L.wv);
    add_matrix(p + "attn_output.weight", linear_t, L.wo);
    add_norm(p + "ffn_norm.weight", L.ffn_norm);
    add_matrix(p + "ffn_gate.weight", linear_t, L.w_gate);
    add_matrix(p + "ffn_up.weight", linear_t, L.w_up);
    add_matrix(p + "ffn_down.weight", linear_t, L.w_down);
  }
  add_norm("output_norm.weight", W.final_norm);
  if (!c.tie_word_embeddings) add_matrix("output.weight", output_t, W.lm_head);

  GgufExportReport rep;
  rep.architecture = arch;
  rep.tensors = int(w.tensors().size());
  rep.from_awq = c.quant.present();
  for (const auto& t : w.tensors()) rep.bytes += t.nbytes();

  fs::path parent = fs::path(opt.out_path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw Error(opt.out_path + ": the folder " + parent.string() + " does not exist");
  w.write(opt.out_path, [&](size_t i, int64_t r0, int64_t r1, uint8_t* dst) {
    throw_if_interrupted();
    const gguf::Writer::Tensor& t = w.tensors()[i];
    const Source& s = sources[i];
    const int64_t cols = t.shape.back();
    pool.parallel_for(r1 - r0, [&](int64_t b, int64_t e) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = b; r < e; ++r) {
        source_row(s, r0 + r, row.data());
        encode_row(t.type, row.data(), cols, dst + uint64_t(r) * t.row_bytes(), t.name);
      }
    }, 8);
  }, progress);
  return rep;
}

}  // namespace awq
