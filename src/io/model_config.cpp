#include "io/model_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace awq {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Field readers that name the file and field in every error.
struct Reader {
  const json& j;
  const std::string& src;

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(src + ": field '" + field + "' " + what);
  }
  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  int positive_int(const char* k) const {
    if (!has(k)) fail(k, "is missing");
    if (!j[k].is_number_integer()) fail(k, "must be an integer, got " + j[k].dump());
    long long v = j[k].get<long long>();
    if (v <= 0 || v > (1LL << 31) - 1) fail(k, "must be a positive integer, got " + std::to_string(v));
    return int(v);
  }
  int int_or(const char* k, int dflt) const { return has(k) ? positive_int(k) : dflt; }
  double number_or(const char* k, double dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_number()) fail(k, "must be a number, got " + j[k].dump());
    return j[k].get<double>();
  }
  bool bool_or(const char* k, bool dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_boolean()) fail(k, "must be true or false, got " + j[k].dump());
    return j[k].get<bool>();
  }
  std::string string_or(const char* k, const std::string& dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_string()) fail(k, "must be a string, got " + j[k].dump());
    return j[k].get<std::string>();
  }
};

RopeScaling parse_rope_scaling(const json& r, const std::string& src, const std::string& field) {
  RopeScaling rs;
  if (!r.is_object()) throw Error(src + ": field '" + field + "' must be an object");
  std::string type = r.value("rope_type", r.value("type", std::string("default")));
  Reader rd{r, src};
  if (type == "default") return rs;
  if (type != "linear" && type != "llama3")
    throw Error(src + ": field '" + field + ".rope_type' is '" + type +
                "'; supported: default, linear, llama3");
  rs.type = type;
  rs.factor = rd.number_or("factor", 1.0);
  if (!(rs.factor > 0)) throw Error(src + ": field '" + field + ".factor' must be > 0");
  if (type == "llama3") {
    rs.low_freq_factor = rd.number_or("low_freq_factor", 1.0);
    rs.high_freq_factor = rd.number_or("high_freq_factor", 4.0);
    rs.original_max_position_embeddings = rd.int_or("original_max_position_embeddings", 8192);
    if (!(rs.high_freq_factor > rs.low_freq_factor))
      throw Error(src + ": field '" + field + "': high_freq_factor must exceed low_freq_factor");
  }
  return rs;
}

std::vector<int> int_or_list(const json& v, const std::string& src, const char* field) {
  std::vector<int> out;
  if (v.is_null()) return out;
  if (v.is_number_integer()) return {v.get<int>()};
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) throw Error(src + ": field '" + field + "' must hold integers");
      out.push_back(e.get<int>());
    }
    return out;
  }
  throw Error(src + ": field '" + field + "' must be an integer or a list of integers");
}

QuantConfig parse_quant_config(const json& q, const std::string& src) {
  if (!q.is_object()) throw Error(src + ": field 'quantization_config' must be an object");
  QuantConfig qc;
  Reader rd{q, src};
  qc.quant_method = rd.string_or("quant_method", "");
  if (qc.quant_method != "awq")
    throw Error(src + ": quantization_config.quant_method is '" + qc.quant_method +
                "'; only 'awq' checkpoints are supported");
  qc.bits = rd.int_or("bits", rd.int_or("w_bit", 4));
  qc.group_size = rd.int_or("group_size", rd.int_or("q_group_size", 128));
  qc.zero_point = rd.bool_or("zero_point", true);
  qc.version = rd.string_or("version", "gemm");
  for (auto& c : qc.version) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (q.contains("modules_to_not_convert") && q["modules_to_not_convert"].is_array())
    for (const auto& m : q["modules_to_not_convert"])
      if (m.is_string()) qc.modules_to_not_convert.push_back(m.get<std::string>());
  return qc;
}

}  // namespace

ModelConfig parse_model_config(const json& j, const std::string& src) {
  if (!j.is_object()) throw Error(src + ": expected a JSON object");
  Reader rd{j, src};
  ModelConfig c;
  c.model_type = rd.string_or("model_type", "");
  if (c.model_type.empty()) rd.fail("model_type", "is missing");
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2" &&
      c.model_type != "qwen3")
    throw Error(src + ": model_type '" + c.model_type +
                "' is not supported (supported: llama, mistral, qwen2, qwen3)");

  c.vocab_size = rd.positive_int("vocab_size");
  c.hidden_size = rd.positive_int("hidden_size");
  c.intermediate_size = rd.positive_int("intermediate_size");
  c.num_layers = rd.positive_int("num_hidden_layers");
  c.num_heads = rd.positive_int("num_attention_heads");
  c.num_kv_heads = rd.int_or("num_key_value_heads", c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    rd.fail("num_key_value_heads", std::to_string(c.num_kv_heads) +
                                       " does not divide num_attention_heads " +
                                       std::to_string(c.num_heads));
  if (rd.has("head_dim")) {
    c.head_dim = rd.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_heads != 0)
      rd.fail("hidden_size", "is not divisible by num_attention_heads and head_dim is not given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) rd.fail("head_dim", "must be even for RoPE");
  c.rms_norm_eps = rd.number_or("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0)) rd.fail("rms_norm_eps", "must be > 0");
  c.max_position_embeddings = rd.int_or("max_position_embeddings", 2048);
  c.tie_word_embeddings = rd.bool_or("tie_word_embeddings", false);

  // transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; older configs write
  // rope_theta and rope_scaling at the top level.
  c.rope_theta = rd.number_or("rope_theta", 10000.0);
  if (rd.has("rope_parameters")) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) rd.fail("rope_parameters", "must be an object");
    if (rp.contains("rope_theta") && rp["rope_theta"].is_number())
      c.rope_theta = rp["rope_theta"].get<double>();
    c.rope_scaling = parse_rope_scaling(rp, src, "rope_parameters");
  }
  if (rd.has("rope_scaling")) c.rope_scaling = parse_rope_scaling(j["rope_scaling"], src, "rope_scaling");
  if (!(c.rope_theta > 0)) rd.fail("rope_theta", "must be > 0");

  if (rd.has("hidden_act")) {
    std::string act = rd.string_or("hidden_act", "silu");
    if (act != "silu" && act != "swish")
      rd.fail("hidden_act", "is '" + act + "'; only silu is supported");
  }
  const bool attention_bias = rd.bool_or("attention_bias", false);
  c.qkv_bias = c.model_type == "qwen2" || attention_bias;
  c.o_bias = attention_bias && c.model_type != "qwen2";
  c.mlp_bias = rd.bool_or("mlp_bias", false);
  c.qk_norm = c.model_type == "qwen3";
  if (rd.has("sliding_window") && j["sliding_window"].is_number_integer()) {
    // qwen2/qwen3 only slide when use_sliding_window is set; mistral always does.
    bool use = c.model_type == "mistral" || rd.bool_or("use_sliding_window", false);
    if (use) c.sliding_window = j["sliding_window"].get<int>();
  }
  if (j.contains("bos_token_id")) {
    auto b = int_or_list(j["bos_token_id"], src, "bos_token_id");
    if (!b.empty()) c.bos_token_id = b[0];
  }
  if (j.contains("eos_token_id")) c.eos_token_ids = int_or_list(j["eos_token_id"], src, "eos_token_id");
  c.torch_dtype = rd.string_or("torch_dtype", rd.string_or("dtype", ""));
  if (rd.has("quantization_config")) c.quant = parse_quant_config(j["quantization_config"], src);
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  std::ifstream in(file);
  if (!in) throw Error(file + ": cannot open (is this a Hugging Face model folder?)");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw Error(file + ": invalid JSON: " + e.what());
  }
  return parse_model_config(j, file);
}

}  // namespace awq
