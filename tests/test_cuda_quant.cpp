// The AWQ search on the GPU (quant/awq_search_cuda.h, -DAWQ_CUDA=ON builds only) against the
// CPU search (quant/awq_search.h): each kernel against its CPU reference, then the whole search
// on the tiny model. Every test skips with a message when no GPU is present.
// Why the tolerances: the GPU search runs the layer in fp16 (weights and activations rounded to
// fp16, 2^-11 relative, f32 accumulation) where the CPU runs f32, so the candidates' losses
// differ by ~1e-3 relative and candidates tied that closely may be ordered differently. The
// fake quantization has no such excuse: it is the same f32 arithmetic, compared bit for bit.
#ifdef AWQ_HAVE_CUDA
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "io/checkpoint.h"
#include "model/llama_model.h"
#include "model/llama_weights.h"
#include "model/rope.h"
#include "ops/cpu/matmul.h"
#include "quant/awq_search.h"
#include "quant/awq_search_cuda.h"
#include "quant/calibration.h"
#include "quant/fake_quant.h"
#include "quant/layer_f32.h"
#include "quant/quantize_model.h"
#include "runtime/perplexity.h"
#include "support/clip_compare.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

using test::tiny_model_dir;

class CudaQuant : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!awq_cuda_search_available(&why)) GTEST_SKIP() << "no usable CUDA device, GPU AWQ tests skipped: " << why;
  }
};

std::vector<float> random_weights(int64_t n, uint32_t seed, float outlier_scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = normal(rng) * 0.05f;
  for (int k = 0; k < 40; ++k) w[size_t(rng() % w.size())] *= outlier_scale;
  return w;
}

// Q(w) on the GPU equals quant/fake_quant.cpp's on the same f32 input, value for value
// (a zero's sign may differ: fminf/fmaxf do not order -0 and +0), for asymmetric and symmetric
// grids, 4 and 3 bits, groups of 32..256, and the degenerate groups (all equal, all zero).
TEST_F(CudaQuant, FakeQuantizeBitIdenticalToCpu) {
  const int64_t rows = 48, cols = 512;
  for (const QuantParams p : {QuantParams{4, 128, true}, QuantParams{3, 128, true}, QuantParams{4, 64, false},
                              QuantParams{3, 256, false}, QuantParams{4, 32, true}}) {
    std::vector<float> w = random_weights(rows * cols, 5, 7.0f);
    std::fill(w.begin(), w.begin() + p.group, 0.0f);                  // row 0, group 0: zeros
    std::fill(w.begin() + cols, w.begin() + cols + p.group, 0.3125f);  // row 1, group 0: constant
    for (int64_t k = 0; k < cols; ++k) w[size_t(2 * cols + k)] = float(k % 16) - 7.5f;  // exact halves
    std::vector<float> cpu = w, gpu = w;
    fake_quantize(cpu.data(), rows, cols, p);
    cuda_fake_quantize(gpu.data(), rows, cols, p);
    int64_t differ = 0;
    for (size_t i = 0; i < w.size(); ++i) differ += cpu[i] != gpu[i];
    EXPECT_EQ(differ, 0) << "bits " << p.bits << " group " << p.group << " zero_point " << p.zero_point;
  }
}

// The Gram blocks against group_grams on the same fp16-rounded input (the GPU keeps its
// captures in fp16), every row and every 3rd row. fp16 x fp16 products are exact in f32, so
// only the summation order differs: |dH_ij| <= n eps sum_t |x_ti x_tj| / n <= ~1e-4 *
// sqrt(H_ii H_jj) (Cauchy-Schwarz) for n <= 1000 terms.
TEST_F(CudaQuant, GramBlocksMatchCpu) {
  const int64_t n = 1000, in = 384;
  const int G = 128;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * in));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < in; ++k)
      x[size_t(t * in + k)] = fp16_to_f32(f32_to_fp16(normal(rng) * (k % 37 == 0 ? 8.0f : 1.0f)));
  ThreadPool pool(2);
  for (const int64_t stride : {int64_t(1), int64_t(3)}) {
    std::vector<int64_t> rows;
    if (stride > 1)
      for (int64_t t = 0; t < n; t += stride) rows.push_back(t);
    const std::vector<float> cpu = group_grams(pool, x.data(), n, in, G, rows);
    const std::vector<float> gpu = cuda_group_grams(x.data(), n, in, G, stride);
    ASSERT_EQ(cpu.size(), gpu.size());
    for (int64_t g = 0; g < in / G; ++g)
      for (int i = 0; i < G; ++i)
        for (int j = 0; j < G; ++j) {
          const size_t at = size_t(g * G * G + i * G + j);
          const double bound = 1e-4 * std::sqrt(double(cpu[size_t(g * G * G + i * G + i)]) *
                                                double(cpu[size_t(g * G * G + j * G + j)])) + 1e-7;
          ASSERT_NEAR(gpu[at], cpu[at], bound) << "stride " << stride << " group " << g << " (" << i << ", " << j << ")";
        }
  }
}

// The clip search from the same Gram blocks: the candidates' dw are bit-identical (the same fake
// quantization), the losses dw H dw^T differ only in f32 summation order (SGEMM vs the CPU
// matmul), so only near-ties can go the other way: at most 1 % of the (row, group) choices may
// differ (the bound of the CPU's own Gram-vs-plain test), and the clipped weights' output error
// must agree to 1e-3 relative.
TEST_F(CudaQuant, ClipSearchMatchesCpu) {
  const int64_t n = 700, in = 256, out = 96;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * in));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < in; ++k) x[size_t(t * in + k)] = normal(rng) * (k % 37 == 0 ? 8.0f : 1.0f);
  const std::vector<float> w = random_weights(out * in, 12, 6.0f);
  AwqSearchOptions opt;
  ThreadPool pool(2);
  const std::vector<float> grams = group_grams(pool, x.data(), n, in, opt.qp.group, {});
  for (const bool zp : {true, false}) {
    opt.qp.zero_point = zp;
    std::vector<float> cpu = w, gpu = w;
    awq_clip_linear_gram(pool, cpu.data(), out, in, grams.data(), opt);
    cuda_clip_linear_gram(gpu.data(), out, in, grams.data(), opt);
    const test::ClipChoiceCount c = test::count_clip_choices(w, cpu, gpu, out, in, opt.qp.group);
    EXPECT_LE(c.differ, out * in / opt.qp.group / 100) << "zero_point " << zp;
    EXPECT_GT(c.clipped, 0) << "no group was clipped: the test would not see a wrong loss";
    auto out_err = [&](const std::vector<float>& wc) {
      return test::clipped_output_error(x, n, w, wc, out, in, opt.qp);
    };
    const double e_cpu = out_err(cpu), e_gpu = out_err(gpu);
    EXPECT_NEAR(e_gpu, e_cpu, 1e-3 * e_cpu) << "zero_point " << zp;
  }
}

// Layer 0 of the tiny model (whose input, the embeddings, is the same on both sides): the GPU's
// FP layer output against the CPU's, and its clip-only search (scales off, so both clip the same
// weights) against the CPU's. The FP output may differ by the fp16 rounding of the activations
// (relative RMS ~1e-3; bound 1e-2). Clip choices: the Gram blocks come from fp16 activations,
// ~1e-3 relative from the CPU's, so (row, group) choices whose best two candidates lie that
// close may flip; at least 90 % must agree (a wrong loss or wrong input agrees on far fewer:
// the clip of a group is one of 10 candidates).
struct Layer0 {
  ModelConfig c;
  Checkpoint ckpt;
  LlamaWeights W;
  std::vector<float> inv_freq, x;  // x: [n_seq * seqlen, d]
  int64_t n_seq = 4, seqlen = 128;
  Layer0() : c(load_model_config(tiny_model_dir())), ckpt(tiny_model_dir()), W(load_llama_weights(ckpt, c)),
             inv_freq(rope_inv_freq(c)) {
    CalibOptions co;
    co.files = {test::shared_path("data/calib.txt")};
    co.n_samples = n_seq;
    co.seqlen = seqlen;
    const CalibWindows cw = make_calibration_windows(Tokenizer::load(tiny_model_dir()), co);
    x.resize(size_t(n_seq * seqlen * c.hidden_size));
    for (int64_t t = 0; t < n_seq * seqlen; ++t) widen_row(W.embed, cw.ids[size_t(t)], x.data() + t * c.hidden_size);
  }
};

TEST_F(CudaQuant, Layer0ForwardAndClipMatchCpu) {
  Layer0 m;
  AwqSearchOptions opt;
  opt.search_scales = false;
  ThreadPool pool(2);
  LayerF32 cpu(m.W.layers[0], m.c), gpu(m.W.layers[0], m.c);
  const LayerF32 orig(m.W.layers[0], m.c);
  std::vector<float> x_cpu = m.x;
  AwqCaptures cap;
  awq_search_layer(pool, m.c, m.inv_freq.data(), cpu, x_cpu, m.n_seq, m.seqlen, opt, cap);
  AwqCudaSearch search(m.c, m.inv_freq, m.n_seq, m.seqlen, opt);
  search.set_input(m.x);
  const LayerReport rep = search.search_layer(gpu);
  EXPECT_GT(rep.out_err_rtn, 0.0);
  EXPECT_LT(rep.out_err_awq, rep.out_err_rtn);  // clipping alone lowers the layer's error
  const std::vector<float> x_gpu = search.input();
  ASSERT_EQ(x_gpu.size(), x_cpu.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < x_cpu.size(); ++i) {
    num += (double(x_gpu[i]) - x_cpu[i]) * (double(x_gpu[i]) - x_cpu[i]);
    den += double(x_cpu[i]) * x_cpu[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-2) << "FP layer output, GPU vs CPU";

  const int G = opt.qp.group;
  int64_t same = 0, total = 0, clipped = 0;
  auto compare = [&](const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& o) {
    for (size_t r0 = 0; r0 < a.size(); r0 += size_t(G)) {
      bool eq = true, any = false;
      for (size_t k = r0; k < r0 + size_t(G); ++k) eq = eq && a[k] == b[k], any = any || a[k] != o[k];
      same += eq, clipped += any, ++total;
    }
  };
  compare(cpu.wv, gpu.wv, orig.wv);
  compare(cpu.wo, gpu.wo, orig.wo);
  compare(cpu.w_gate, gpu.w_gate, orig.w_gate);
  compare(cpu.w_up, gpu.w_up, orig.w_up);
  compare(cpu.w_down, gpu.w_down, orig.w_down);
  EXPECT_GT(clipped, total / 10) << "too few clipped groups for the comparison to mean much";
  EXPECT_GE(double(same), 0.9 * double(total)) << same << " of " << total << " (row, group) clip choices agree";
  std::printf("[          ] layer 0 clip choices equal: %lld of %lld; FP output rel. RMS diff %.2e\n",
              (long long)same, (long long)total, std::sqrt(num / den));
  EXPECT_GT(search.peak_gpu_used_mib(), 0.0);
  EXPECT_GT(search.allocated_mib(), 0.0);
  EXPECT_FALSE(search.device_name().empty());
}

// The whole tiny model quantized on the CPU and on the GPU with the same options.
// Scale choices: each group's GPU choice must be one the CPU finds (nearly) as good: the CPU's
// loss at the GPU's alpha within 1 % of the CPU's best, for at least 90 % of the 24 groups
// (later layers see inputs that went through 1..7 fp16 layers, so their loss curves drift
// a little more). Perplexity (CPU inference, a val.txt prefix): within 0.5 % of the
// CPU-quantized model's (the bound; AWQ's whole gain over RTN on this model is ~1 %).
TEST_F(CudaQuant, TinyModelMatchesCpuSearch) {
  test::TempDir tmp;
  QuantizeOptions o;
  o.model_dir = tiny_model_dir();
  o.calib.files = {test::shared_path("data/calib.txt")};
  o.calib.n_samples = 8;
  o.calib.seqlen = 256;
  o.search.search_tokens = 512;
  ThreadPool pool(ThreadPool::default_threads());
  o.out_dir = tmp.file("cpu");
  const QuantizeReport rc = quantize_model(pool, o);
  o.out_dir = tmp.file("gpu");
  o.device = "cuda";
  const QuantizeReport rg = quantize_model(pool, o);
  ASSERT_EQ(rc.layers.size(), rg.layers.size());
  EXPECT_GT(rg.peak_gpu_used_mib, 0.0);
  int groups = 0, equal = 0, near = 0;
  for (size_t l = 0; l < rc.layers.size(); ++l) {
    ASSERT_EQ(rc.layers[l].scales.size(), rg.layers[l].scales.size());
    for (size_t g = 0; g < rc.layers[l].scales.size(); ++g) {
      const ScaleChoice &sc = rc.layers[l].scales[g], &sg = rg.layers[l].scales[g];
      ASSERT_EQ(sc.group, sg.group);
      ASSERT_EQ(sg.losses.size(), sc.losses.size());
      EXPECT_LE(sg.loss_best, sg.loss_rtn) << sg.group;  // alpha = 0 (RTN) is a candidate
      const size_t gi = size_t(std::lround(sg.ratio * double(sc.losses.size())));
      ASSERT_LT(gi, sc.losses.size());
      ++groups;
      equal += sg.ratio == sc.ratio;
      near += sc.losses[gi] <= 1.01 * sc.loss_best;
      std::printf("[          ] layer %zu %-8s alpha cpu %.2f gpu %.2f  cpu loss at gpu's %.4e best %.4e\n", l,
                  sc.group.c_str(), sc.ratio, sg.ratio, sc.losses[gi], sc.loss_best);
    }
    EXPECT_LT(rg.layers[l].out_err_awq, rg.layers[l].out_err_rtn) << "layer " << l;
  }
  EXPECT_GE(double(near), 0.9 * groups) << near << " of " << groups << " GPU scale choices are near the CPU's best";
  std::printf("[          ] scale choices: %d of %d equal, %d within 1 %% of the CPU's best loss\n", equal, groups, near);

  const Tokenizer tok = Tokenizer::load(tiny_model_dir());
  const auto ids = tok.encode(test::read_text(test::shared_path("data/val.txt")).substr(0, 8000), false);
  PerplexityOptions po;
  po.ctx = 256;
  po.bos_id = 1;
  LlamaModel mc(tmp.file("cpu")), mg(tmp.file("gpu"));
  const double ppl_cpu = perplexity(mc, pool, ids, po).ppl(), ppl_gpu = perplexity(mg, pool, ids, po).ppl();
  EXPECT_LT(std::abs(ppl_gpu - ppl_cpu) / ppl_cpu, 0.005) << "ppl GPU-quantized " << ppl_gpu << " vs CPU " << ppl_cpu;
  std::printf("[          ] perplexity (val.txt prefix): CPU-quantized %.4f, GPU-quantized %.4f\n", ppl_cpu, ppl_gpu);
}

// The options keep their meaning on the GPU: duo scaling, v -> o under GQA, all tokens for the
// search (search_tokens = 0), a clip token subset, symmetric 3-bit: each runs, every group's
// choice is no worse than RTN on its own loss, and AWQ beats RTN on every layer's output.
TEST_F(CudaQuant, OptionsRun) {
  Layer0 m;
  AwqSearchOptions opt;
  opt.duo_scaling = true;
  opt.gqa_o_scale = true;
  opt.search_tokens = 0;
  opt.clip_tokens = 100;
  opt.qp = QuantParams{3, 128, false};
  LayerF32 l(m.W.layers[0], m.c);
  AwqCudaSearch search(m.c, m.inv_freq, m.n_seq, m.seqlen, opt);
  search.set_input(m.x);
  const LayerReport rep = search.search_layer(l);
  ASSERT_EQ(rep.scales.size(), 4u);  // qkv, o, gate_up, down
  EXPECT_EQ(rep.scales[1].group, "o");
  for (const ScaleChoice& s : rep.scales) EXPECT_LE(s.loss_best, s.loss_rtn) << s.group;
  EXPECT_LT(rep.out_err_awq, rep.out_err_rtn);
}

}  // namespace
}  // namespace awq
#endif
