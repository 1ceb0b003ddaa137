#include "model/llama_weights.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/w4.h"
#include "quant/autoawq_pack.h"

namespace awq {

namespace {

// Checks quantization_config once, before any tensor is bound.
void check_quant_config(const QuantConfig& q, const std::string& dir) {
  const std::string where = dir + "/config.json: quantization_config.";
  if (q.version != "gemm")
    throw Error(where + "version is '" + q.version + "'; only 'gemm' (the AutoAWQ GEMM layout: " +
                "qweight [in, out/8], qzeros, scales) is supported; re-export the model with " +
                "version=\"gemm\"");
  if (q.bits != 4 && q.bits != 3)
    throw Error(where + "bits is " + std::to_string(q.bits) +
                "; supported: 4, or 3 (stored in the same 4-bit nibble layout)");
  if (q.group_size <= 0)
    throw Error(where + "group_size is " + std::to_string(q.group_size) +
                "; a positive group size is required (per-channel -1 is not supported)");
}

class Binder {
 public:
  Binder(const Checkpoint& ckpt, const QuantConfig& quant, LlamaWeights& w)
      : ckpt_(ckpt), quant_(quant), w_(w) {}

  // W: [rows, cols]
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    return bind(name, {rows, cols}, rows, cols);
  }

  // A decoder linear `prefix` (e.g. model.layers.0.self_attn.q_proj), W: [out, in]. In an AWQ
  // checkpoint: PREFIX.qweight [in, out/8] I32, .qzeros [in/group, out/8] I32, .scales
  // [in/group, out] F16, unless modules_to_not_convert names it (then PREFIX.weight).
  Matrix linear(const std::string& prefix, int64_t out, int64_t in) {
    if (!quant_.present() || (not_converted(prefix) && ckpt_.has(prefix + ".weight")))
      return matrix(prefix + ".weight", out, in);
    return awq_linear(prefix, out, in);
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
    return Matrix{t.dtype, rows, cols, aligned(t)};
  }

  // AutoAWQ's exclude_layers_to_not_quantize: any entry that is a substring of the name.
  bool not_converted(const std::string& prefix) const {
    for (const std::string& m : quant_.modules_to_not_convert)
      if (!m.empty() && prefix.find(m) != std::string::npos) return true;
    return false;
  }

  Matrix awq_linear(const std::string& prefix, int64_t out, int64_t in) {
    const QuantParams p{quant_.bits, quant_.group_size, quant_.zero_point};
    check_quant_params(p, out, in, "'" + prefix + "' in " + ckpt_.dir());
    if (!ckpt_.has(prefix + ".qweight") && ckpt_.has(prefix + ".weight"))
      throw Error(ckpt_.dir() + ": tensor '" + prefix + ".qweight' is missing; the checkpoint " +
                  "holds '" + prefix + ".weight' unquantized (list the module in " +
                  "quantization_config.modules_to_not_convert if that is intended)");
    const int64_t ng = in / p.group;
    const TensorView& qw = typed(prefix + ".qweight", {in, out / 8}, DType::I32);
    const TensorView& qz = typed(prefix + ".qzeros", {ng, out / 8}, DType::I32);
    const TensorView& sc = typed(prefix + ".scales", {ng, out}, DType::F16);
    Matrix m(DType::I32, out, in, aligned(qw));
    m.kind = MatrixKind::AwqGemm;
    m.awq.bits = p.bits;
    m.awq.group = p.group;
    m.awq.qweight = static_cast<const int32_t*>(m.data);
    m.awq.qzeros = static_cast<const int32_t*>(aligned(qz));
    m.awq.scales = static_cast<const uint16_t*>(aligned(sc));
    auto rows = std::make_shared<AwqRows>(repack_rows(m.awq.qweight, m.awq.qzeros, m.awq.scales,
                                                      out, in, p, ckpt_.dir() + ": " + prefix));
    m.awq.row_zeros = rows->zeros.data();
    m.awq.row_scales = rows->scales.data();
    if (w4_layout_fits(in, p.group)) {
      // The fast kernels' tiles replace the row codes (same bytes in another order); the
      // reference path then reads the checkpoint's strided qweight (dequantize_gemm_row).
      auto tiles = std::make_shared<W4Tiles>(w4_repack(rows->codes.data(), rows->zeros.data(),
                                                       rows->scales.data(), out, in, p.group));
      w4_attach(m, *tiles);
      std::vector<uint32_t>().swap(rows->codes);
      w_.owned.push_back(std::move(tiles));
    } else {
      m.awq.row_codes = rows->codes.data();
    }
    w_.owned.push_back(std::move(rows));
    return m;
  }

  // The tensor with its shape and dtype checked.
  const TensorView& typed(const std::string& name, const std::vector<int64_t>& shape, DType dt) {
    const TensorView& t = ckpt_.get(name, shape);
    if (t.dtype != dt)
      throw Error(ckpt_.dir() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                  "; expected " + dtype_name(dt) + " (AutoAWQ GEMM layout)");
    return t;
  }

  // t's data, or an aligned copy of it held in w_.owned when the file leaves it unaligned.
  const void* aligned(const TensorView& t) {
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) == 0) return t.data;
    // Safetensors only promises byte offsets; copy into a 64-byte aligned buffer.
    void* p = std::aligned_alloc(64, (t.nbytes + 63) / 64 * 64);
    if (!p) throw Error("out of memory copying tensor '" + t.name + "'");
    std::memcpy(p, t.data, t.nbytes);
    w_.owned.emplace_back(p, std::free);
    return p;
  }

  const Checkpoint& ckpt_;
  const QuantConfig& quant_;
  LlamaWeights& w_;
};

}  // namespace

LlamaWeights load_llama_weights(const Checkpoint& ckpt, const ModelConfig& c) {
  if (c.quant.present()) check_quant_config(c.quant, ckpt.dir());
  LlamaWeights w;
  Binder b(ckpt, c.quant, w);
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
    L.wq = b.linear(p + "self_attn.q_proj", qd, d);
    L.wk = b.linear(p + "self_attn.k_proj", kvd, d);
    L.wv = b.linear(p + "self_attn.v_proj", kvd, d);
    L.wo = b.linear(p + "self_attn.o_proj", d, qd);
    L.bq = b.optional_vector(c.qkv_bias, p + "self_attn.q_proj.bias", qd);
    L.bk = b.optional_vector(c.qkv_bias, p + "self_attn.k_proj.bias", kvd);
    L.bv = b.optional_vector(c.qkv_bias, p + "self_attn.v_proj.bias", kvd);
    L.bo = b.optional_vector(c.o_bias, p + "self_attn.o_proj.bias", d);
    L.q_norm = b.optional_vector(c.qk_norm, p + "self_attn.q_norm.weight", c.head_dim);
    L.k_norm = b.optional_vector(c.qk_norm, p + "self_attn.k_norm.weight", c.head_dim);
    L.w_gate = b.linear(p + "mlp.gate_proj", ff, d);
    L.w_up = b.linear(p + "mlp.up_proj", ff, d);
    L.w_down = b.linear(p + "mlp.down_proj", d, ff);
    L.b_gate = b.optional_vector(c.mlp_bias, p + "mlp.gate_proj.bias", ff);
    L.b_up = b.optional_vector(c.mlp_bias, p + "mlp.up_proj.bias", ff);
    L.b_down = b.optional_vector(c.mlp_bias, p + "mlp.down_proj.bias", d);
  }
  return w;
}

}  // namespace awq
