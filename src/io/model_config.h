// The model hyper-parameters of a Hugging Face config.json, for the Llama family.
// Supported model_type: llama, mistral, qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace awq {

// rope_scaling / rope_parameters. "default": plain RoPE; "linear": positions / factor;
// "llama3": Llama-3.1 frequency-dependent scaling of inv_freq.
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

// quantization_config of an AWQ checkpoint (AutoAWQ GEMM layout).
struct QuantConfig {
  std::string quant_method;  // "awq"; empty when the checkpoint is not quantized
  int bits = 4;
  int group_size = 128;
  bool zero_point = true;
  std::string version = "gemm";
  std::vector<std::string> modules_to_not_convert;
  bool present() const { return !quant_method.empty(); }
};

struct ModelConfig {
  std::string model_type;  // llama | mistral | qwen2 | qwen3
  int vocab_size = 0;
  int hidden_size = 0;        // d_model
  int intermediate_size = 0;  // d_ff
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // GQA: num_heads % num_kv_heads == 0
  int head_dim = 0;      // hidden_size / num_heads unless given
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // qwen2, or llama with attention_bias
  bool o_bias = false;    // llama attention_bias also biases o_proj
  bool mlp_bias = false;
  bool qk_norm = false;   // qwen3
  std::optional<int> sliding_window;  // mistral / qwen2 with use_sliding_window
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype;  // as written ("float16", "bfloat16", ...), informational
  QuantConfig quant;

  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }
};

// Reads and checks DIR/config.json (or a path to a config.json). Unknown model_type, missing
// or inconsistent fields -> awq::Error naming the file and the field.
ModelConfig load_model_config(const std::string& path);
// The same from parsed JSON; `source` names it in error messages.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);

}  // namespace awq
