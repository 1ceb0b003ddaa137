#include "model/llama_weights.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "ops/cpu/matmul.h"

namespace awq {

namespace {

class Binder {
 public:
  Binder(const Checkpoint& ckpt, LlamaWeights& w) : ckpt_(ckpt), w_(w) {}

  // W: [rows, cols]
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    return bind(name, {rows, cols}, rows, cols);
  }

  // v: [n], widened to f32
  std::vector<float> vector(const std::string& name, int64_t n) {
    Matrix m = bind(name, {n}, 1, n);
    std::vector<float> out(static_cast<size_t>(n));
    widen_row(m, 0, out.data());
    return out;
  }

  std::vector<float> optional_vector(bool wanted, const std::string& name, int64_t n) {
    return wanted ? vector(name, n) : std::vector<float>{};
  }

 private:
  Matrix bind(const std::string& name, const std::vector<int64_t>& shape, int64_t rows,
              int64_t cols) {
    const TensorView& t = ckpt_.get(name, shape);
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      throw Error(ckpt_.dir() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                  "; expected F32, F16 or BF16");
    Matrix m{t.dtype, rows, cols, t.data};
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
      // Safetensors only promises byte offsets; copy into a 64-byte aligned buffer.
      void* p = std::aligned_alloc(64, (t.nbytes + 63) / 64 * 64);
      if (!p) throw Error("out of memory copying tensor '" + name + "'");
      std::memcpy(p, t.data, t.nbytes);
      w_.owned.emplace_back(p, std::free);
      m.data = p;
    }
    return m;
  }

  const Checkpoint& ckpt_;
  LlamaWeights& w_;
};

}  // namespace

LlamaWeights load_llama_weights(const Checkpoint& ckpt, const ModelConfig& c) {
  if (c.quant.present())
    throw Error(ckpt.dir() + ": this is an AWQ-quantized checkpoint (quantization_config." +
                "quant_method = " + c.quant.quant_method + "); this build runs FP16/BF16/FP32 models only");
  LlamaWeights w;
  Binder b(ckpt, w);
  const int64_t d = c.hidden_size, ff = c.intermediate_size, qd = c.q_dim(), kvd = c.kv_dim();
  w.embed = b.matrix("model.embed_tokens.weight", c.vocab_size, d);
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    w.lm_head = b.matrix("lm_head.weight", c.vocab_size, d);
  }
  w.final_norm = b.vector("model.norm.weight", d);
  w.layers.resize(size_t(c.num_layers));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& L = w.layers[size_t(l)];
    L.attn_norm = b.vector(p + "input_layernorm.weight", d);
    L.ffn_norm = b.vector(p + "post_attention_layernorm.weight", d);
    L.wq = b.matrix(p + "self_attn.q_proj.weight", qd, d);
    L.wk = b.matrix(p + "self_attn.k_proj.weight", kvd, d);
    L.wv = b.matrix(p + "self_attn.v_proj.weight", kvd, d);
    L.wo = b.matrix(p + "self_attn.o_proj.weight", d, qd);
    L.bq = b.optional_vector(c.qkv_bias, p + "self_attn.q_proj.bias", qd);
    L.bk = b.optional_vector(c.qkv_bias, p + "self_attn.k_proj.bias", kvd);
    L.bv = b.optional_vector(c.qkv_bias, p + "self_attn.v_proj.bias", kvd);
    L.bo = b.optional_vector(c.o_bias, p + "self_attn.o_proj.bias", d);
    L.q_norm = b.optional_vector(c.qk_norm, p + "self_attn.q_norm.weight", c.head_dim);
    L.k_norm = b.optional_vector(c.qk_norm, p + "self_attn.k_norm.weight", c.head_dim);
    L.w_gate = b.matrix(p + "mlp.gate_proj.weight", ff, d);
    L.w_up = b.matrix(p + "mlp.up_proj.weight", ff, d);
    L.w_down = b.matrix(p + "mlp.down_proj.weight", d, ff);
    L.b_gate = b.optional_vector(c.mlp_bias, p + "mlp.gate_proj.bias", ff);
    L.b_up = b.optional_vector(c.mlp_bias, p + "mlp.up_proj.bias", ff);
    L.b_down = b.optional_vector(c.mlp_bias, p + "mlp.down_proj.bias", d);
  }
  return w;
}

}  // namespace awq
