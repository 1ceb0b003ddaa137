// Decode speed of the CUDA engine on a random-weight Llama-2-7B-shape (or --model) AWQ W4 g128 model
// (the values do not change the speed; only the shapes and the format do), against the
// memory-bandwidth roofline measured in the same run.
//   awq_bench_decode [--model llama2-7b|llama3-8b|qwen2.5-7b] [--batch 1,8,32] [--pdl 0,1,2] [--rounds 2] [--prompt 16] [--gen 128] [--warmup 3] [--json FILE]
//   awq_bench_decode [--model ...] --prefill 512,2048,8192 [--rounds 3]
//   awq_bench_decode [--model ...] --pack 8x64,32x16 [--rounds 3]
// --prefill: instead of decode, the prefill of one sequence of each length (in the engine's
// chunks of 512 tokens, PDL on), min and median of `rounds` after one warm-up, with the FLOPs
// of the linears (2 x parameters a token) and of causal attention (4 x d x keys a query row).
// --pack KxL: K prompts of L tokens in K slots, prefilled one at a time (CudaLlama::prefill, as
// the server did before session 33) and packed into shared passes (prefill_many), min and
// median of `rounds` after one warm-up each.
// Per batch B and programmatic-dependent-launch mode (ops/cuda/pdl.h: 0 off, 1 on, 2 on + L2
// prefetch of the W4A16 weights; modes the device lacks run as 0 and are printed once): B
// sequences are prefilled with `prompt` random tokens, then `gen` greedy decode steps (argmax on
// the device, the ids copied back each step as generation does) are timed. Each mode captures
// its own graphs; the same random tokens are used for every mode of a batch, and the modes are
// run `rounds` times in turn (0, 1, 2, 0, 1, 2, ...) so that drift shows up as a difference
// between rounds rather than between modes.
// Roofline: a step must read every weight once plus the live KV cache, so
//   roofline tok/s = B * bandwidth / (weight bytes + KV bytes of the step),
// with bandwidth from a large device-to-device copy (bytes read + written).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "ops/cuda/cuda_llama.h"
#include "runtime/sampler.h"

namespace {

using namespace awq;

// The model shapes (--model): Llama-2-7B (the issue's), and two whose layers the W4A16 dispatch
// rules were not fitted on: Llama-3-8B (GQA, fused gate+up 28672 x 4096, vocab 128256) and
// Qwen2.5-7B (gate+up 37888 x 3584, q/k/v biases, vocab 152064). Random AWQ W4 g128 weights.
ModelConfig model_shape(const std::string& name) {
  struct Shape {
    const char *name, *type;
    int64_t vocab, hidden, ff;
    int layers, heads, kv_heads;
    double rope_theta;
    int64_t max_positions;
  };
  static const Shape kShapes[] = {
      {"llama2-7b", "llama", 32000, 4096, 11008, 32, 32, 32, 10000.0, 4096},
      {"llama3-8b", "llama", 128256, 4096, 14336, 32, 32, 8, 500000.0, 8192},
      {"qwen2.5-7b", "qwen2", 152064, 3584, 18944, 28, 28, 4, 1000000.0, 32768},
  };
  for (const Shape& sh : kShapes) {
    if (name != sh.name) continue;
    ModelConfig c;
    c.model_type = sh.type;
    c.vocab_size = sh.vocab;
    c.hidden_size = sh.hidden;
    c.intermediate_size = sh.ff;
    c.num_layers = sh.layers;
    c.num_heads = sh.heads;
    c.num_kv_heads = sh.kv_heads;
    c.head_dim = 128;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = sh.rope_theta;
    c.max_position_embeddings = sh.max_positions;
    c.quant.quant_method = "awq";
    c.quant.bits = 4;
    c.quant.group_size = 128;
    return c;
  }
  throw Error("--model " + name + ": the shapes are llama2-7b, llama3-8b and qwen2.5-7b");
}

// Fills dst with random 32-bit words (splitmix64), on several threads.
void random_words(uint32_t* dst, size_t n, uint64_t seed) {
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([=] {
      uint64_t x = seed * 0x9E3779B97F4A7C15ull + t;
      for (size_t i = t * n / threads, e = (t + 1) * n / threads; i < e; ++i) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        dst[i] = uint32_t(z ^ (z >> 31));
      }
    });
  for (auto& th : pool) th.join();
}

template <class T>
T* own(LlamaWeights& w, size_t n) {
  std::shared_ptr<T[]> p(new T[n]);
  w.owned.push_back(std::shared_ptr<void>(p, p.get()));
  return p.get();
}

// A random AutoAWQ GEMM matrix W: [out, in]: random codes and zero points, scales near
// 1 / (6 sqrt(in)) so that activations keep unit scale through the layers.
Matrix random_awq(LlamaWeights& w, int64_t out, int64_t in, int group, uint64_t seed) {
  const int64_t ng = in / group;
  uint32_t* qw = own<uint32_t>(w, size_t(in * out / 8));
  uint32_t* qz = own<uint32_t>(w, size_t(ng * out / 8));
  uint16_t* sc = own<uint16_t>(w, size_t(ng * out));
  random_words(qw, size_t(in * out / 8), seed);
  random_words(qz, size_t(ng * out / 8), seed + 1);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  const float s0 = 1.0f / (6.0f * std::sqrt(float(in)));
  for (int64_t i = 0; i < ng * out; ++i) sc[i] = f32_to_fp16(u(rng) * s0);
  Matrix m(DType::I32, out, in, qw);
  m.kind = MatrixKind::AwqGemm;
  m.awq.bits = 4;
  m.awq.group = group;
  m.awq.qweight = reinterpret_cast<const int32_t*>(qw);
  m.awq.qzeros = reinterpret_cast<const int32_t*>(qz);
  m.awq.scales = sc;
  return m;
}

// fp16 values uniform in [-0.035, 0.035] (std ~0.02), from random words, on several threads (a
// 150k-token vocabulary's embedding is half a billion values).
Matrix random_f16(LlamaWeights& w, int64_t rows, int64_t cols, uint64_t seed) {
  const size_t n = size_t(rows * cols);
  uint16_t* p = own<uint16_t>(w, n);
  random_words(reinterpret_cast<uint32_t*>(p), n / 2, seed);
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([=] {
      for (size_t i = t * n / threads, e = (t + 1) * n / threads; i < e; ++i)
        p[i] = f32_to_fp16((float(p[i]) / 65535.0f - 0.5f) * 0.07f);
    });
  for (auto& th : pool) th.join();
  return Matrix(DType::F16, rows, cols, p);
}

LlamaWeights random_weights(const ModelConfig& c) {
  LlamaWeights w;
  const int64_t d = c.hidden_size, ff = c.intermediate_size, qd = c.q_dim(), kvd = c.kv_dim();
  const int g = c.quant.group_size;
  w.embed = random_f16(w, c.vocab_size, d, 1);
  w.lm_head = random_f16(w, c.vocab_size, d, 2);
  w.final_norm.assign(size_t(d), 1.0f);
  uint64_t seed = 100;
  for (int l = 0; l < c.num_layers; ++l) {
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm.assign(size_t(d), 1.0f);
    L.ffn_norm.assign(size_t(d), 1.0f);
    L.wq = random_awq(w, qd, d, g, seed += 2);
    L.wk = random_awq(w, kvd, d, g, seed += 2);
    L.wv = random_awq(w, kvd, d, g, seed += 2);
    L.wo = random_awq(w, d, qd, g, seed += 2);
    L.w_gate = random_awq(w, ff, d, g, seed += 2);
    L.w_up = random_awq(w, ff, d, g, seed += 2);
    L.w_down = random_awq(w, d, ff, g, seed += 2);
  }
  return w;
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) v.push_back(std::stoi(item));
  return v;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The prefill table (--prefill): one sequence of each length, timed end to end (host to the
// last chunk's logits), min and median of `rounds` after one warm-up.
int run_prefill(const ModelConfig& c, const LlamaWeights& w, const std::vector<int>& lens, int rounds) {
  for (int n : lens)
    if (n < 1) throw Error("--prefill: lengths must be positive");
  cuda::CudaLlamaOptions o;
  o.slots = 1;
  o.ctx = *std::max_element(lens.begin(), lens.end());
  cuda::CudaLlama llm(c, w, o);
  const double d = double(c.hidden_size), ff = double(c.intermediate_size);
  const double params = double(c.num_layers) * (d * (c.q_dim() + 2.0 * c.kv_dim()) + double(c.q_dim()) * d + 3.0 * d * ff);
  std::printf("device: %s | prefill of one sequence, chunks of %lld tokens, %d rounds after a warm-up\n",
              llm.device_name().c_str(), static_cast<long long>(o.prefill_chunk), rounds);
  std::printf("| tokens | ms min | ms median | tok/s (median) | linear TFLOP | attention TFLOP | TFLOPS (median) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> tokd(3, c.vocab_size - 1);
  for (const int n : lens) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& t : ids) t = tokd(rng);
    std::vector<float> logits;
    std::vector<double> ms;
    for (int r = 0; r <= rounds; ++r) {
      llm.clear(0);
      const double t0 = now();
      llm.prefill(0, ids.data(), n, false, logits);
      if (r > 0) ms.push_back((now() - t0) * 1e3);  // round 0: the warm-up
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    const double lin = 2.0 * params * n / 1e12;
    const double att = 4.0 * double(c.q_dim()) * c.num_layers * (double(n) * (n + 1) / 2.0) / 1e12;
    std::printf("| %d | %.2f | %.2f | %.0f | %.2f | %.2f | %.1f |\n", n, ms.front(), med, n / (med * 1e-3), lin, att,
                (lin + att) / (med * 1e-3));
    std::fflush(stdout);
  }
  return 0;
}

// "8x64,32x16" -> {(8, 64), (32, 16)}.
std::vector<std::pair<int, int>> parse_packs(const std::string& s) {
  std::vector<std::pair<int, int>> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    const size_t x = item.find('x');
    if (x == std::string::npos) throw Error("--pack " + item + ": expected KxL, e.g. 8x64");
    v.emplace_back(std::stoi(item.substr(0, x)), std::stoi(item.substr(x + 1)));
    if (v.back().first < 1 || v.back().second < 1) throw Error("--pack " + item + ": K and L must be positive");
  }
  return v;
}

// The packed-prefill table (--pack): K prompts of L tokens, one at a time and in shared passes.
int run_pack(const ModelConfig& c, const LlamaWeights& w, const std::vector<std::pair<int, int>>& packs, int rounds) {
  cuda::CudaLlamaOptions o;
  o.slots = 1;
  o.ctx = 1;
  for (const auto& [k, l] : packs) o.slots = std::max(o.slots, k), o.ctx = std::max<int64_t>(o.ctx, l);
  cuda::CudaLlama llm(c, w, o);
  std::printf("device: %s | K prompts of L tokens in K slots: one prefill each, then prefill_many (passes of up to %lld rows)\n",
              llm.device_name().c_str(), static_cast<long long>(std::max<int64_t>(o.slots, o.prefill_chunk)));
  std::printf("| K x L | one at a time, ms min | median | packed, ms min | median | speed-up (medians) |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  std::mt19937 rng(13);
  std::uniform_int_distribution<int32_t> tokd(3, c.vocab_size - 1);
  for (const auto& [k, l] : packs) {
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(k), std::vector<int32_t>(static_cast<size_t>(l)));
    for (auto& p : prompts)
      for (auto& t : p) t = tokd(rng);
    std::vector<int> slots(static_cast<size_t>(k));
    std::vector<const int32_t*> toks;
    std::vector<int64_t> ns(static_cast<size_t>(k), l);
    for (int i = 0; i < k; ++i) slots[size_t(i)] = i, toks.push_back(prompts[size_t(i)].data());
    std::vector<double> one, packed;
    std::vector<float> logits;
    for (int r = 0; r <= rounds; ++r) {
      llm.clear_all();
      double t0 = now();
      for (int i = 0; i < k; ++i) llm.prefill(i, toks[size_t(i)], l, false, logits);
      if (r > 0) one.push_back((now() - t0) * 1e3);
      llm.clear_all();
      t0 = now();
      llm.prefill_many(slots.data(), toks.data(), ns.data(), k, logits);
      if (r > 0) packed.push_back((now() - t0) * 1e3);  // round 0: the warm-up
    }
    std::sort(one.begin(), one.end());
    std::sort(packed.begin(), packed.end());
    const double m1 = one[one.size() / 2], m2 = packed[packed.size() / 2];
    std::printf("| %d x %d | %.2f | %.2f | %.2f | %.2f | %.2fx |\n", k, l, one.front(), m1, packed.front(), m2, m1 / m2);
    std::fflush(stdout);
  }
  return 0;
}

int run(int argc, char** argv) {
  std::vector<int> batches = {1, 8, 32};
  std::vector<int> pdl_modes = {0, 1, 2};
  int prompt = 16, gen = 128, warmup = 3, rounds = 2;
  std::string json_path, model = "llama2-7b";
  std::vector<int> prefill_lens;
  std::vector<std::pair<int, int>> packs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--batch") batches = parse_list(next());
    else if (a == "--pdl") pdl_modes = parse_list(next());
    else if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--prompt") prompt = std::stoi(next());
    else if (a == "--gen") gen = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--json") json_path = next();
    else if (a == "--model") model = next();
    else if (a == "--prefill") prefill_lens = parse_list(next());
    else if (a == "--pack") packs = parse_packs(next());
    else if (a == "--help" || a == "-h") {
      std::printf("usage: awq_bench_decode [--model llama2-7b|llama3-8b|qwen2.5-7b] [--batch 1,8,32] [--pdl 0,1,2] [--rounds 2] [--prompt 16] [--gen 128] [--warmup 3] [--json FILE]\n"
                  "       awq_bench_decode [--model ...] --prefill 512,2048,8192 [--rounds 3]\n"
                  "       awq_bench_decode [--model ...] --pack 8x64,32x16 [--rounds 3]\n");
      return 0;
    } else {
      throw Error("unknown argument " + a + " (see --help)");
    }
  }
  if (batches.empty() || pdl_modes.empty() || rounds < 1 || prompt < 1 || gen < 1 || warmup < 1)
    throw Error("bad arguments (see --help)");
  for (int p : pdl_modes)
    if (p < 0 || p > 2) throw Error("--pdl " + std::to_string(p) + ": modes are 0, 1 and 2");
  std::string why;
  if (!cuda::cuda_device_available(&why)) throw Error(why);

  const ModelConfig c = model_shape(model);
  double t0 = now();
  const LlamaWeights w = random_weights(c);
  std::fprintf(stderr, "random %s-shape AWQ W4 g128 weights built in %.1f s\n", model.c_str(), now() - t0);
  if (!prefill_lens.empty()) return run_prefill(c, w, prefill_lens, rounds);
  if (!packs.empty()) return run_pack(c, w, packs, rounds);
  const double bw = cuda::measure_copy_bandwidth(int64_t(1) << 30, 10);
  cuda::CudaLlamaOptions o;
  o.slots = *std::max_element(batches.begin(), batches.end());
  o.ctx = prompt + warmup + gen + 1;
  t0 = now();
  cuda::CudaLlama llm(c, w, o);
  std::fprintf(stderr, "uploaded (and tuned) in %.1f s to %s\n", now() - t0, llm.device_name().c_str());
  // The W4A16 tuning at load (AWQ_W4A16_TUNE; ops/cuda/w4a16.h): a line per layer shape.
  std::printf("%s", llm.tuning_log().empty() ? "W4A16 tuning: none (AWQ_W4A16_TUNE=0)\n"
                                             : llm.tuning_log().c_str());

  const int64_t wbytes = llm.weight_bytes_per_step();
  const int64_t kv_row = int64_t(c.num_layers) * c.kv_dim() * 2 * 2;  // k + v, fp16, all layers
  std::printf("device: %s | copy bandwidth %.0f GB/s | weights read per step %.3f GB | prompt %d, %d decode steps timed\n",
              llm.device_name().c_str(), bw / 1e9, double(wbytes) / 1e9, prompt, gen);
  std::printf("| batch | PDL | round | tok/s | ms/step | bytes/step (GB) | roofline tok/s | %% of roofline | vs PDL 0 | graph |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n");
  std::string json = "{\"device\": \"" + llm.device_name() + "\", \"bandwidth_Bps\": " + std::to_string(bw) +
                     ", \"weight_bytes\": " + std::to_string(wbytes) + ", \"prompt\": " + std::to_string(prompt) +
                     ", \"gen\": " + std::to_string(gen) + ", \"runs\": [";
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tokd(3, c.vocab_size - 1);
  bool first_run = true;
  for (const int B : batches) {
    // The prompts and first tokens of this batch, the same for every mode.
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B), std::vector<int32_t>(static_cast<size_t>(prompt)));
    for (auto& ids : prompts)
      for (auto& t : ids) t = tokd(rng);
    for (int round = 1; round <= rounds; ++round) {
      double tps_off = 0.0;
      std::vector<int> done;  // effective modes already run for this batch in this round
      for (const int mode : pdl_modes) {
        llm.set_pdl(mode);
        const int eff = llm.pdl_mode();
        if (std::find(done.begin(), done.end(), eff) != done.end()) {
          if (round == 1) std::printf("(--pdl %d runs as mode %d on this device/build: not repeated)\n", mode, eff);
          continue;
        }
        done.push_back(eff);
        llm.clear_all();
        std::vector<int32_t> next(static_cast<size_t>(B));
        std::vector<float> logits;
        for (int b = 0; b < B; ++b) {
          llm.prefill(b, prompts[size_t(b)].data(), prompt, false, logits);
          next[size_t(b)] = argmax(logits.data(), int64_t(logits.size()));
        }
        for (int i = 0; i < warmup; ++i) llm.decode_greedy(next.data(), B, next.data());
        const double s0 = now();
        for (int i = 0; i < gen; ++i) llm.decode_greedy(next.data(), B, next.data());
        const double secs = now() - s0;
        const double tps = double(B) * gen / secs;
        if (eff == 0) tps_off = tps;
        const double avg_len = prompt + warmup + (gen + 1) / 2.0;  // keys read per sequence, mean over steps
        const double bytes = double(wbytes) + double(B) * avg_len * double(kv_row);
        const double roof = double(B) * bw / bytes;
        char vs_off[32] = "-";
        if (tps_off > 0.0 && eff != 0) std::snprintf(vs_off, sizeof vs_off, "%.3fx", tps / tps_off);
        std::printf("| %d | %d | %d | %.1f | %.3f | %.3f | %.1f | %.1f %% | %s | %s |\n", B, eff, round, tps, secs / gen * 1e3,
                    bytes / 1e9, roof, 100.0 * tps / roof, vs_off, llm.graph_used() ? "yes" : "no");
        std::fflush(stdout);
        json += std::string(first_run ? "" : ", ") + "{\"batch\": " + std::to_string(B) + ", \"pdl\": " +
                std::to_string(eff) + ", \"round\": " + std::to_string(round) + ", \"tok_s\": " + std::to_string(tps) + ", \"bytes_per_step\": " +
                std::to_string(bytes) + ", \"roofline_tok_s\": " + std::to_string(roof) + "}";
        first_run = false;
      }
    }
  }
  json += "]}\n";
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) throw Error(json_path + ": cannot write");
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
