#include "io/random_checkpoint.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/half.h"
#include "core/interrupt.h"
#include "io/model_config.h"
#include "io/safetensors_writer.h"
#include "io/staging_dir.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

ojson llama_config(int hidden, int layers, int heads, int kv_heads, int ffn, int max_pos, DType dtype) {
  ojson c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  c["hidden_act"] = "silu";
  c["hidden_size"] = hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = ffn;
  c["max_position_embeddings"] = max_pos;
  c["mlp_bias"] = false;
  c["model_type"] = "llama";
  c["num_attention_heads"] = heads;
  c["num_hidden_layers"] = layers;
  c["num_key_value_heads"] = kv_heads;
  c["pretraining_tp"] = 1;
  c["rms_norm_eps"] = 1e-5;
  c["rope_scaling"] = nullptr;
  c["rope_theta"] = 10000.0;
  c["tie_word_embeddings"] = false;
  c["torch_dtype"] = dtype == DType::BF16 ? "bfloat16" : "float16";
  c["use_cache"] = true;
  c["vocab_size"] = 32000;
  return c;
}

enum class Fill { Normal, Ones };

struct Planned {
  TensorSpec spec;
  Fill fill;
  uint64_t key;
};

std::vector<Planned> plan_tensors(const ModelConfig& c, DType dt, uint64_t seed) {
  std::vector<Planned> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, Fill f) {
    t.push_back({TensorSpec{name, dt, std::move(shape)}, f, random_tensor_key(seed, name)});
  };
  const int64_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.intermediate_size;
  add("model.embed_tokens.weight", {c.vocab_size, d}, Fill::Normal);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d}, Fill::Ones);
    add(p + "self_attn.q_proj.weight", {qd, d}, Fill::Normal);
    add(p + "self_attn.k_proj.weight", {kvd, d}, Fill::Normal);
    add(p + "self_attn.v_proj.weight", {kvd, d}, Fill::Normal);
    add(p + "self_attn.o_proj.weight", {d, qd}, Fill::Normal);
    add(p + "post_attention_layernorm.weight", {d}, Fill::Ones);
    add(p + "mlp.gate_proj.weight", {ff, d}, Fill::Normal);
    add(p + "mlp.up_proj.weight", {ff, d}, Fill::Normal);
    add(p + "mlp.down_proj.weight", {d, ff}, Fill::Normal);
  }
  add("model.norm.weight", {d}, Fill::Ones);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, d}, Fill::Normal);
  return t;
}

// Shards: consecutive tensors, a new shard when the next tensor would pass max_bytes.
std::vector<std::vector<size_t>> split_shards(const std::vector<Planned>& t, uint64_t max_bytes) {
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const uint64_t n = t[i].spec.nbytes();
    if (!shards.back().empty() && in_shard + n > max_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(i);
    in_shard += n;
  }
  return shards;
}

std::string shard_name(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
  return buf;
}

void check_tokenizer(const std::string& dir, const ModelConfig& c) {
  if (!fs::is_regular_file(fs::path(dir) / "tokenizer.json"))
    throw Error(dir + ": no tokenizer.json; --tokenizer must name a folder with the tokenizer files of a " +
                std::to_string(c.vocab_size) + "-token Llama/Mistral vocabulary (e.g. ../shared/models/tiny-llama-gqa)");
  const Tokenizer tok = Tokenizer::load(dir);
  if (tok.vocab_size() > c.vocab_size)
    throw Error(dir + "/tokenizer.json: " + std::to_string(tok.vocab_size()) + " tokens, more than the model's vocab_size " +
                std::to_string(c.vocab_size) + "; use a tokenizer with a " + std::to_string(c.vocab_size) + "-token vocabulary");
}

}  // namespace

std::vector<std::string> random_model_shapes() { return {"tinyllama-1.1b", "llama2-7b"}; }

ojson random_model_config(const std::string& shape, DType dtype) {
  if (dtype != DType::F16 && dtype != DType::BF16) throw Error("random model: dtype must be f16 or bf16");
  // TinyLlama/TinyLlama-1.1B-Chat-v1.0 and meta-llama/Llama-2-7b-hf config.json values.
  if (shape == "tinyllama-1.1b") return llama_config(2048, 22, 32, 4, 5632, 2048, dtype);
  if (shape == "llama2-7b") return llama_config(4096, 32, 32, 32, 11008, 4096, dtype);
  std::string known;
  for (const std::string& s : random_model_shapes()) known += (known.empty() ? "" : ", ") + s;
  throw Error("--shape " + shape + ": unknown shape; known shapes: " + known);
}

uint64_t random_tensor_key(uint64_t seed, const std::string& tensor_name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name, mixed with the seed
  for (unsigned char ch : tensor_name) h = (h ^ ch) * 0x100000001b3ull;
  return splitmix64(h ^ splitmix64(seed));
}

float random_normalish(uint64_t key, uint64_t i, float std) {
  const uint64_t r = splitmix64(key + i * 0xd1b54a32d192ed03ull);
  const float sum = float(r & 0xffff) + float((r >> 16) & 0xffff) + float((r >> 32) & 0xffff) + float(r >> 48);
  // Each 16-bit uniform has variance ~65536^2/12; four summed: mean 2*65536, variance 65536^2/3.
  return (sum * (1.0f / 65536.0f) - 2.0f) * (std * 1.7320508f);
}

RandomModelReport write_random_model(ThreadPool& pool, const RandomModelOptions& opt,
                                     const std::function<void(uint64_t, uint64_t)>& progress) {
  if (opt.dtype != DType::F16 && opt.dtype != DType::BF16) throw Error("random model: dtype must be f16 or bf16");
  const ModelConfig c = parse_model_config(nlohmann::json::parse(opt.config.dump()), "random model config");
  if (c.model_type != "llama") throw Error("random model: only model_type llama is generated (got " + c.model_type + ")");
  check_tokenizer(opt.tokenizer_dir, c);

  StagingDir staging(opt.out_dir, opt.force);  // refuses an existing folder before any work
  const std::vector<Planned> tensors = plan_tensors(c, opt.dtype, opt.seed);
  const auto shards = split_shards(tensors, opt.max_shard_bytes);
  RandomModelReport rep;
  uint64_t total = 0;
  for (const Planned& t : tensors) total += t.spec.nbytes(), rep.parameters += t.spec.numel();

  const bool bf16 = opt.dtype == DType::BF16;
  const uint16_t one = bf16 ? f32_to_bf16(1.0f) : f32_to_fp16(1.0f);
  ojson weight_map = ojson::object();
  char how[160];
  std::snprintf(how, sizeof how, "awq random-model seed=%llu std=%g", static_cast<unsigned long long>(opt.seed),
                double(opt.weight_std));
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file = shards.size() == 1 ? "model.safetensors" : shard_name(k, shards.size());
    std::vector<TensorSpec> specs;
    for (size_t i : shards[k]) specs.push_back(tensors[i].spec), weight_map[tensors[i].spec.name] = file;
    write_safetensors_streamed(staging.file(file), specs, {{"format", "pt"}, {"generated_by", how}},
                               [&](size_t j, size_t offset, uint8_t* dst, size_t n) {
                                 throw_if_interrupted();
                                 const Planned& t = tensors[shards[k][j]];
                                 uint16_t* out = reinterpret_cast<uint16_t*>(dst);
                                 const int64_t first = int64_t(offset / 2), count = int64_t(n / 2);
                                 pool.parallel_for(count, [&](int64_t b, int64_t e) {
                                   for (int64_t i = b; i < e; ++i) {
                                     if (t.fill == Fill::Ones) {
                                       out[i] = one;
                                       continue;
                                     }
                                     const float v = random_normalish(t.key, uint64_t(first + i), opt.weight_std);
                                     out[i] = bf16 ? f32_to_bf16(v) : f32_to_fp16(v);
                                   }
                                 }, 4096);
                                 rep.bytes += n;
                                 if (progress) progress(rep.bytes, total);
                               });
  }
  if (shards.size() > 1) {
    ojson index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = weight_map;
    write_file_atomic(staging.file("model.safetensors.index.json"), index.dump(2) + "\n");
  }
  write_file_atomic(staging.file("config.json"), opt.config.dump(2) + "\n");
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"}) {
    const fs::path src = fs::path(opt.tokenizer_dir) / name;
    if (!fs::is_regular_file(src)) continue;
    fs::copy_file(src, staging.file(name));
    // The source may be read-only (shared data); the copy belongs to the user like the weights.
    fs::permissions(staging.file(name), fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                            fs::perms::others_read);
  }
  throw_if_interrupted();
  staging.commit();
  rep.shards = int(shards.size());
  return rep;
}

}  // namespace awq
