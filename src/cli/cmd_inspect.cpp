// awq inspect MODEL_DIR: architecture, quantization, and every tensor with dtype, shape, size.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/checkpoint.h"
#include "io/model_config.h"

namespace awq::cli {

namespace {

struct InspectArgs {
  std::string model_dir;
  bool no_tensors = false;
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

void run(const InspectArgs& a) {
  const ModelConfig c = load_model_config(a.model_dir);
  const Checkpoint ckpt(a.model_dir);
  std::printf("model         %s\n", a.model_dir.c_str());
  std::printf("architecture  %s: %d layers, d_model %d, d_ff %d, %d heads x %d (kv heads %d%s), vocab %d\n",
              c.model_type.c_str(), c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads,
              c.head_dim, c.num_kv_heads, c.num_kv_heads < c.num_heads ? ", GQA" : "", c.vocab_size);
  std::printf("              rms_norm_eps %g, rope_theta %g, rope_scaling %s", c.rms_norm_eps, c.rope_theta,
              c.rope_scaling.type.c_str());
  if (c.rope_scaling.type != "default") std::printf(" (factor %g)", c.rope_scaling.factor);
  std::printf(", max positions %d, tied embeddings %s%s%s%s\n", c.max_position_embeddings,
              c.tie_word_embeddings ? "yes" : "no", c.qkv_bias ? ", q/k/v bias" : "",
              c.qk_norm ? ", q/k norm" : "",
              c.sliding_window ? (", sliding window " + std::to_string(*c.sliding_window)).c_str() : "");
  if (c.quant.present()) {
    std::printf("quantization  %s %d-bit, group %d, zero point %s, version %s\n",
                c.quant.quant_method.c_str(), c.quant.bits, c.quant.group_size,
                c.quant.zero_point ? "yes" : "no", c.quant.version.c_str());
  } else {
    std::printf("quantization  none (%s)\n", c.torch_dtype.empty() ? "dtype not stated" : c.torch_dtype.c_str());
  }
  int64_t params = 0, bytes = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, bytes)
  for (const std::string& name : ckpt.names()) {
    const TensorView& t = ckpt.get(name);
    params += t.numel();
    bytes += int64_t(t.nbytes);
    auto& d = by_dtype[dtype_name(t.dtype)];
    d.first++;
    d.second += int64_t(t.nbytes);
  }
  std::printf("files         %zu safetensors file(s), %zu tensors, %lld elements, %s\n",
              ckpt.files().size(), ckpt.names().size(), (long long)params, human_bytes(double(bytes)).c_str());
  for (const auto& [dt, v] : by_dtype)
    std::printf("              %-5s %5lld tensors  %s\n", dt.c_str(), (long long)v.first, human_bytes(double(v.second)).c_str());
  if (a.no_tensors) return;
  std::printf("\n%-56s %-5s %-18s %s\n", "tensor", "dtype", "shape", "size");
  for (const std::string& name : ckpt.names()) {
    const TensorView& t = ckpt.get(name);
    std::printf("%-56s %-5s %-18s %s\n", name.c_str(), dtype_name(t.dtype), t.shape_str().c_str(),
                human_bytes(double(t.nbytes)).c_str());
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model's architecture, quantization and tensors");
  add_model_dir(cmd, args->model_dir);
  cmd->add_flag("--no-tensors", args->no_tensors, "Only the summary, not the tensor table");
  cmd->callback([args] { run(*args); });
}

}  // namespace awq::cli
