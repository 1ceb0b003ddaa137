#include "quant/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "core/interrupt.h"
#include "io/checkpoint.h"
#include "io/json_file.h"
#include "io/model_config.h"
#include "io/safetensors_stream.h"
#include "io/safetensors_writer.h"
#include "io/staging_dir.h"
#include "model/llama_weights.h"
#include "model/rope.h"
#include "quant/awq_search_cuda.h"
#include "quant/quantized_layout.h"
#include "ops/cpu/matmul.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Files of a model folder that travel with the weights (tokenizer, generation settings, chat template).
bool is_companion_file(const fs::path& p) {
  static const char* names[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt",
                                "added_tokens.json", "chat_template.json", "chat_template.jinja"};
  const std::string n = p.filename().string();
  for (const char* k : names)
    if (n == k) return true;
  return p.extension() == ".jinja";
}

// f32 -> fp16 bits; a value beyond fp16's range is an error (AWQ checkpoints are fp16).
std::vector<uint16_t> to_fp16(const float* v, int64_t n, const std::string& name) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i]) || std::abs(v[i]) > 65504.0f)
      throw Error(name + ": value " + std::to_string(v[i]) + " does not fit fp16, the dtype of AWQ checkpoints");
    out[size_t(i)] = f32_to_fp16(v[i]);
  }
  return out;
}
std::vector<uint16_t> to_fp16(const std::vector<float>& v, const std::string& name) {
  return to_fp16(v.data(), int64_t(v.size()), name);
}
// Writes m: [rows, cols] as F16 tensor `name`, converted a block of rows at a time (about
// 16 MiB each: an embedding of a large vocabulary is never held whole in fp16). With
// `release_from`, the mmapped source rows of each block written are dropped from memory (m is
// not read again: an untied lm_head, 131-500 MiB of pages otherwise resident at the end).
void write_matrix_fp16(SafetensorsStreamWriter& out, const std::string& name, const Matrix& m,
                       const Checkpoint* release_from = nullptr) {
  const int64_t block = std::max<int64_t>(1, (int64_t(16) << 20) / (m.cols * 2));
  std::vector<float> row(static_cast<size_t>(m.cols));
  std::vector<uint16_t> h;
  for (int64_t r0 = 0; r0 < m.rows; r0 += block) {
    const int64_t n = std::min(block, m.rows - r0);
    h.resize(static_cast<size_t>(n * m.cols));
    for (int64_t r = 0; r < n; ++r) {
      widen_row(m, r0 + r, row.data());
      const auto hr = to_fp16(row, name);
      std::copy(hr.begin(), hr.end(), h.begin() + r * m.cols);
    }
    out.write(name, DType::F16, {m.rows, m.cols}, h.data(), h.size() * sizeof(uint16_t));
    if (release_from) {
      const size_t row_bytes = size_t(m.cols) * dtype_size(m.dtype);
      release_from->release_pages(static_cast<const uint8_t*>(m.data) + size_t(r0) * row_bytes, size_t(n) * row_bytes);
    }
  }
}

// quantize_autoawq over blocks of 8 output rows in parallel (rows are independent; the result is
// the same). On an error the whole tensor is quantized again serially, so that the message names
// the row as quantize_autoawq counts it.
GroupQuantized quantize_rows_parallel(ThreadPool& pool, const uint16_t* h, int64_t rows, int64_t cols,
                                      const QuantParams& qp, const std::string& name) {
  check_quant_params(qp, rows, cols, name);
  const int64_t blocks = rows / 8, ng = cols / qp.group;
  GroupQuantized q;
  q.out = rows, q.in = cols, q.p = qp;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows * ng));
  q.zeros.resize(size_t(rows * ng));
  try {
    pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      const int64_t r0 = b0 * 8, n = (b1 - b0) * 8;
      const GroupQuantized part = quantize_autoawq(h + r0 * cols, n, cols, qp, name);
      std::copy(part.codes.begin(), part.codes.end(), q.codes.begin() + r0 * cols);
      std::copy(part.scales.begin(), part.scales.end(), q.scales.begin() + r0 * ng);
      std::copy(part.zeros.begin(), part.zeros.end(), q.zeros.begin() + r0 * ng);
    });
  } catch (const Error&) {
    return quantize_autoawq(h, rows, cols, qp, name);
  }
  return q;
}

// Quantizes and packs w: [rows, cols] and writes PREFIX.qweight / .qzeros / .scales
// (quantized_linear_specs); the packed buffers are freed on return.
void write_quantized_linear(ThreadPool& pool, SafetensorsStreamWriter& out, const std::string& prefix,
                            const std::vector<float>& w, int64_t rows, int64_t cols, const QuantParams& qp) {
  const std::vector<uint16_t> h = to_fp16(w, prefix + ".weight");
  const PackedGemm p = pack_gemm(quantize_rows_parallel(pool, h.data(), rows, cols, qp, prefix + ".weight"));
  const std::vector<TensorSpec> s = quantized_linear_specs(prefix, rows, cols, qp);  // qweight, qzeros, scales
  out.write(s[0].name, s[0].dtype, s[0].shape, p.qweight.data(), p.qweight.size() * sizeof(int32_t));
  out.write(s[1].name, s[1].dtype, s[1].shape, p.qzeros.data(), p.qzeros.size() * sizeof(int32_t));
  out.write(s[2].name, s[2].dtype, s[2].shape, p.scales.data(), p.scales.size() * sizeof(uint16_t));
}

// v: [n] as F16 tensor `name`; nothing when v is empty (the source has no such tensor).
void write_vector(SafetensorsStreamWriter& out, const std::string& name, const std::vector<float>& v) {
  if (v.empty()) return;
  const std::vector<uint16_t> h = to_fp16(v, name);
  out.write(name, DType::F16, {int64_t(v.size())}, h.data(), h.size() * sizeof(uint16_t));
}

// The f32 weights of projection `which` of a layer.
const std::vector<float>& layer_linear(const LayerF32& layer, LayerLinear which) {
  switch (which) {
    case LayerLinear::Q: return layer.wq;
    case LayerLinear::K: return layer.wk;
    case LayerLinear::V: return layer.wv;
    case LayerLinear::O: return layer.wo;
    case LayerLinear::Gate: return layer.w_gate;
    case LayerLinear::Up: return layer.w_up;
    case LayerLinear::Down: return layer.w_down;
  }
  throw std::logic_error("layer_linear: unknown projection");
}

// Drops the mmapped source pages of a layer's matrices from the RSS once its f32 copy
// exists (the quantizer never reads them again); owned copies are left alone.
void release_source_pages(const Checkpoint& ckpt, const LayerWeights& L) {
  for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
    ckpt.release_pages(m->data, size_t(m->rows * m->cols) * dtype_size(m->dtype));
}

void note_rss(QuantizeReport& r) {
  const RssBreakdown now = current_rss();
  r.max_rss_anon_mib = std::max(r.max_rss_anon_mib, now.anon_mib);
  r.max_rss_file_mib = std::max(r.max_rss_file_mib, now.file_mib);
}

}  // namespace

QuantizeReport quantize_model(ThreadPool& pool, const QuantizeOptions& opt,
                              const std::function<void(int, int, const LayerReport&)>& on_layer) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig c = load_model_config(opt.model_dir);
  if (c.quant.present())
    throw Error(opt.model_dir + ": the model is already quantized (quantization_config.quant_method = " +
                c.quant.quant_method + "); quantize the original FP16/BF16 model");
  if (opt.method != "awq" && opt.method != "rtn")
    throw Error("--method " + opt.method + ": expected awq or rtn");
  if (opt.device != "cpu" && opt.device != "cuda")
    throw Error("--device " + opt.device + ": expected cpu or cuda");
  if (opt.device == "cuda" && opt.method == "awq") {
    std::string why;
    if (!awq_cuda_search_available(&why)) throw Error("--device cuda: " + why + "; use --device cpu");
  }
  const QuantParams& qp = opt.search.qp;
  const int64_t d = c.hidden_size;
  // Every linear's shape must suit the group size and the 8-per-word packing, checked up front
  // (named without the layer: the shapes are every layer's).
  visit_layer_tensors(c, LayerWeights{}, 0, [](const std::string&, const std::vector<float>&) {},
                      [&](const std::string&, LayerLinear which, int64_t rows, int64_t cols) {
                        check_quant_params(qp, rows, cols, std::string(layer_linear_name(which)) + " [" + std::to_string(rows) +
                                                               ", " + std::to_string(cols) + "]");
                      });

  StagingDir staging(opt.out_dir, opt.force);  // refuses an existing folder before any work
  const Checkpoint ckpt(opt.model_dir);
  const LlamaWeights W = load_llama_weights(ckpt, c);
  const std::vector<float> inv_freq = rope_inv_freq(c);

  QuantizeReport report;
  const bool awq = opt.method == "awq";
  std::vector<float> x;  // [n_samples * seqlen, d] the current layer's calibration input
  int64_t n_seq = 0, seqlen = 0;
  if (awq) {
    const Tokenizer tok = Tokenizer::load(opt.model_dir);
    const CalibWindows cw = make_calibration_windows(tok, opt.calib);
    n_seq = cw.n_samples, seqlen = cw.seqlen;
    report.calib_tokens = n_seq * seqlen;
    x.resize(size_t(report.calib_tokens * d));
    for (int64_t t = 0; t < report.calib_tokens; ++t) widen_row(W.embed, cw.ids[size_t(t)], x.data() + t * d);
  }

  AwqCaptures captures;  // reused by every layer's search (CPU)
  std::unique_ptr<AwqCudaSearch> gpu;  // --device cuda: the search's device state
  if (awq && opt.device == "cuda") {
    gpu = std::make_unique<AwqCudaSearch>(c, inv_freq, n_seq, seqlen, opt.search);
    gpu->set_input(x);
    std::vector<float>().swap(x);  // the activations live on the GPU from here on
    report.gpu_name = gpu->device_name();
  }
  // model.safetensors is streamed: its header lists every tensor up front (quantized_layout.h),
  // then each tensor is written as soon as it is made and freed, so the packed output never
  // accumulates in memory. The file sits under a temp name inside the staging folder until the end.
  std::ostringstream how;
  how << "method=" << opt.method << " w_bit=" << qp.bits << " group=" << qp.group
      << " zero_point=" << (qp.zero_point ? "asymmetric" : "symmetric (stored with zero 2^(bits-1))")
      << (awq ? std::string(" clip=") + (opt.search.clip ? "yes" : "no") +
                    " duo_scaling=" + (opt.search.duo_scaling ? "yes" : "no") +
                    " gqa_o_scale=" + (opt.search.gqa_o_scale ? "yes" : "no") +
                    " n_samples=" + std::to_string(n_seq) + " seqlen=" + std::to_string(seqlen) +
                    " search_tokens=" + std::to_string(opt.search.search_tokens) +
                    " clip_tokens=" + std::to_string(opt.search.clip_tokens) +
                    " seed=" + std::to_string(opt.calib.seed) +
                    (opt.device == "cuda" ? " search_device=cuda" : "")
              : std::string());
  SafetensorsStreamWriter out(staging.file("model.safetensors"), quantized_checkpoint_specs(c, W, qp),
                              {{"format", "pt"}, {"quantized_by", "awq.cpp " + how.str()}});
  write_matrix_fp16(out, "model.embed_tokens.weight", W.embed);
  // Not read again (the calibration inputs are made; a tied lm_head is not written).
  ckpt.release_pages(W.embed.data, size_t(W.embed.rows * W.embed.cols) * dtype_size(W.embed.dtype));
  for (int l = 0; l < c.num_layers; ++l) {
    throw_if_interrupted();
    LayerF32 layer(W.layers[size_t(l)], c);  // freed at the end of the iteration
    release_source_pages(ckpt, W.layers[size_t(l)]);
    LayerReport lr;
    if (awq) {
      lr = gpu ? gpu->search_layer(layer)
               : awq_search_layer(pool, c, inv_freq.data(), layer, x, n_seq, seqlen, opt.search, captures);
    }
    visit_layer_tensors(
        c, layer.L, l, [&](const std::string& name, const std::vector<float>& v) { write_vector(out, name, v); },
        [&](const std::string& prefix, LayerLinear which, int64_t rows, int64_t cols) {
          write_quantized_linear(pool, out, prefix, layer_linear(layer, which), rows, cols, qp);
        });
    report.layers.push_back(lr);
    note_rss(report);
    if (on_layer) on_layer(l + 1, c.num_layers, lr);
  }
  write_vector(out, "model.norm.weight", W.final_norm);
  if (!c.tie_word_embeddings) write_matrix_fp16(out, "lm_head.weight", W.lm_head, &ckpt);
  throw_if_interrupted();
  out.commit();

  // config.json: the original, plus quantization_config (AutoAWQ's keys) and dtype float16.
  json cfg = read_json_file((fs::path(opt.model_dir) / "config.json").string());
  cfg["quantization_config"] = {{"quant_method", "awq"},   {"bits", qp.bits},
                                {"group_size", qp.group},  {"zero_point", true},
                                {"version", "gemm"},       {"modules_to_not_convert", nullptr}};
  cfg["torch_dtype"] = "float16";
  if (cfg.contains("dtype")) cfg["dtype"] = "float16";
  write_file_atomic(staging.file("config.json"), cfg.dump(2) + "\n");
  for (const auto& e : fs::directory_iterator(opt.model_dir))
    if (e.is_regular_file() && is_companion_file(e.path()))
      fs::copy_file(e.path(), staging.file(e.path().filename().string()));
  throw_if_interrupted();
  staging.commit();
  report.output_bytes = int64_t(out.data_bytes());
  note_rss(report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.peak_rss_mib = peak_rss_mib();
  if (gpu) report.peak_gpu_used_mib = gpu->peak_gpu_used_mib(), report.gpu_allocated_mib = gpu->allocated_mib();
  return report;
}

}  // namespace awq
