// The CUDA engine behind `awq serve`, `awq chat` and `awq bench` with --device cuda
// (ops/cuda/cuda_sequence.h):
// the batch engine decodes chosen, reordered slots like the reference; the HTTP API on the GPU
// answers greedy requests with the reference's tokens, one at a time and concurrently; a
// two-turn chat on the GPU (the second turn reuses the cache through SequenceModel::truncate)
// replies as the CPU chat does; a prompt prefilled in chunks gives the whole prompt's text;
// a request whose prompt starts with what a slot holds reuses it (the prompt cache); `awq bench
// --device cuda` reports the GPU's figures. Every test skips with a message when no GPU is present.
#ifdef AWQ_HAVE_CUDA
#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "ops/cuda/cuda_llama.h"
#include "ops/cuda/cuda_sequence.h"
#include "runtime/chat_session.h"
#include "runtime/generate.h"
#include "support/batch_engine_check.h"
#include "support/cuda_device_test.h"
#include "support/live_server.h"
#include "support/run_cli.h"
#include "support/shared_data.h"
#include "tokenizer/chat_template.h"

namespace awq {
namespace {

using CudaServe = test::CudaDeviceTest;

// --device cuda:N picks GPU N: cuda:0 and, on a machine with several, the last GPU generate the
// reference's greedy text; a GPU the machine does not have is a one-line error naming the ones
// it has.
TEST_F(CudaServe, DeviceIndexSelectsTheGpu) {
  const auto& g = test::tiny_reference()["greedy"][0];
  const std::string prompt = g["prompt"];
  int n = 0;
  ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
  std::vector<int> gpus = {0};
  if (n > 1) gpus.push_back(n - 1);
  for (const int gpu : gpus) {
    const std::string dev = "cuda:" + std::to_string(gpu);
    auto r = test::run_awq({"generate", test::tiny_model_dir(), "-p", prompt, "-n", "32", "--temp", "0", "--device", dev});
    ASSERT_EQ(r.exit_code, 0) << dev << ": " << r.err;
    ASSERT_FALSE(r.out.empty());
    EXPECT_EQ(prompt + r.out.substr(0, r.out.size() - 1), g["full_text"].get<std::string>()) << dev;
    std::printf("[ note     ] %s: the reference's greedy text\n", dev.c_str());
  }
  const std::string missing = "cuda:" + std::to_string(n);
  auto r = test::run_awq({"generate", test::tiny_model_dir(), "-p", "Hi", "--device", missing});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  std::printf("[ note     ] %s", r.err.c_str());
  EXPECT_NE(r.err.find("error: --device " + missing + ": GPU " + std::to_string(n) + " does not exist: this machine has " +
                       std::to_string(n)),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cuda:0 "), std::string::npos) << r.err;  // the GPUs there are, named
}

TEST_F(CudaServe, ChosenSlotsFollowReference) {
  cuda::CudaBatchEngine e(test::tiny_llama(), 5, 64);
  test::expect_chosen_slots_follow_reference(e);
}

// The reference prompts as token ids, 32 greedy tokens each: alone, then 8 clients at once on
// 4 slots (batches of 1 to 4 rows, requests queueing for a slot).
TEST_F(CudaServe, GreedyCompletionsMatchReferenceAloneAndTogether) {
  cuda::CudaBatchEngine engine(test::tiny_llama(), 4, 128);
  test::LiveServer s(engine);
  const nlohmann::json& greedy = test::tiny_reference()["greedy"];
  const auto request = [&](size_t i) {
    const auto prompt = greedy[i]["prompt_ids"].get<std::vector<int32_t>>();
    const size_t n = greedy[i]["greedy_ids"].size();
    const nlohmann::json body = {{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", n}, {"temperature", 0},
                                 {"ignore_eos", true}};
    auto r = s.post_json("/v1/completions", body);
    if (!r) return "<failed: " + httplib::to_string(r.error()) + ">";
    if (r->status != 200) return "<status " + std::to_string(r->status) + ": " + r->body + ">";
    return nlohmann::json::parse(r->body)["choices"][0]["text"].get<std::string>();
  };
  const auto want = [&](size_t i) {
    return test::continuation(greedy[i]["prompt_ids"].get<std::vector<int32_t>>(),
                      greedy[i]["greedy_ids"].get<std::vector<int32_t>>());
  };
  for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(request(i), want(i)) << "alone: " << greedy[i]["prompt"];
  std::vector<std::future<std::string>> clients;
  for (size_t c = 0; c < 2 * greedy.size(); ++c)
    clients.push_back(std::async(std::launch::async, [&, c] { return request(c % greedy.size()); }));
  for (size_t c = 0; c < clients.size(); ++c)
    EXPECT_EQ(clients[c].get(), want(c % greedy.size())) << "together, client " << c;
}

// fp16 activations on the GPU against f32 on the CPU: the greedy replies of this model agree
// (its reference tokens do on both engines); the second turn reuses the first's cache.
// A prompt of 54 tokens prefilled in chunks of 16 (the CUDA engine continuing its cache, the
// decode kernels' row counts) and whole (the tiled GEMM's): the same greedy text. The kernels
// differ in the last bits, so the test relies on this model's continuation having no near-tie.
TEST_F(CudaServe, ChunkedPrefillGivesTheWholePromptsText) {
  const nlohmann::json body = {
      {"model", "tiny"},
      {"prompt",
       "The old lighthouse keeper climbed the narrow stairs every evening to light the lamp. For forty years he "
       "had watched the ships pass through the strait, and he knew each captain by the way their vessel turned "
       "into the wind. One winter night a storm came"},
      {"max_tokens", 24},
      {"temperature", 0},
      {"ignore_eos", true}};
  std::vector<std::string> texts;
  for (int64_t chunk : {0, 16}) {
    cuda::CudaBatchEngine engine(test::tiny_llama(), 2, 256);
    SchedulerOptions so;
    so.prefill_chunk = chunk;
    test::LiveServer s(engine, so);
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const nlohmann::json j = nlohmann::json::parse(r->body);
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 3 * 16);  // 54 tokens: four chunks of 16
    texts.push_back(j["choices"][0]["text"].get<std::string>());
  }
  EXPECT_EQ(texts[1], texts[0]);
  EXPECT_FALSE(texts[0].empty());
}

// The prompt cache on the GPU: after a request for the first half of each reference prompt,
// the whole prompt reuses that half from the slot (usage's cached_tokens) and still gives the
// reference's greedy tokens; with cache_prompt false it reuses nothing and gives them too. (The
// reused keys and values came from a prefill of other row counts, so this relies, as the chunked
// test above, on the reference continuations having no near-tie.)
TEST_F(CudaServe, PromptCacheReusesTheSlotAndFollowsReference) {
  cuda::CudaBatchEngine engine(test::tiny_llama(), 2, 256);
  test::LiveServer s(engine);
  const nlohmann::json& greedy = test::tiny_reference()["greedy"];
  for (size_t i = 0; i < greedy.size(); ++i) {
    const auto prompt = greedy[i]["prompt_ids"].get<std::vector<int32_t>>();
    const auto ids = greedy[i]["greedy_ids"].get<std::vector<int32_t>>();
    if (prompt.size() < 4) continue;
    const std::vector<int32_t> half(prompt.begin(), prompt.begin() + int64_t(prompt.size() / 2));
    for (const bool cache : {true, false}) {
      SCOPED_TRACE(std::string(greedy[i]["prompt"]) + (cache ? ", cache on" : ", cache_prompt false"));
      auto first = s.post_json("/v1/completions", {{"model", "tiny"}, {"prompt", half}, {"max_tokens", 1}, {"temperature", 0}});
      ASSERT_TRUE(first);
      ASSERT_EQ(first->status, 200) << first->body;
      const nlohmann::json body = {{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", ids.size()}, {"temperature", 0},
                                   {"ignore_eos", true}, {"cache_prompt", cache}};
      auto r = s.post_json("/v1/completions", body);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      const nlohmann::json j = nlohmann::json::parse(r->body);
      EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), test::continuation(prompt, ids));
      const int cached = j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
      if (cache) {
        EXPECT_GE(cached, int(half.size()));
        EXPECT_LT(cached, int(prompt.size()));
      } else {
        EXPECT_EQ(cached, 0);
      }
    }
  }
}

// Prompt sharing on the GPU: the 3 choices of one request prefill their ~50-token prompt once
// (the second and third wait for the first's slot and copy all of it but the last token,
// CudaLlama::copy_prefix), and each gives the greedy text of the prompt alone on another
// engine. (The copies' last token runs as one row, the other kernels' row count, so this relies
// on the continuation having no near-tie, as the chunked-prefill test above does.)
TEST_F(CudaServe, ChoicesShareTheirPromptAndGiveItsText) {
  const std::string prompt =
      "The old lighthouse keeper climbed the narrow stairs every evening to light the lamp. For forty years he "
      "had watched the ships pass through the strait, and he knew each captain by the way";
  nlohmann::json body = {{"model", "tiny"}, {"prompt", prompt}, {"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}};
  std::string alone;
  {
    cuda::CudaBatchEngine engine(test::tiny_llama(), 1, 256);
    test::LiveServer s(engine);
    auto r = s.post_json("/v1/completions", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    alone = nlohmann::json::parse(r->body)["choices"][0]["text"].get<std::string>();
  }
  cuda::CudaBatchEngine engine(test::tiny_llama(), 3, 256);
  test::LiveServer s(engine);
  body["n"] = 3;
  auto r = s.post_json("/v1/completions", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const nlohmann::json j = nlohmann::json::parse(r->body);
  ASSERT_EQ(j["choices"].size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(j["choices"][c]["text"].get<std::string>(), alone) << "choice " << c;
  const int64_t n = j["usage"]["prompt_tokens"].get<int64_t>();
  EXPECT_GT(n, 32);
  EXPECT_EQ(s.scheduler().stats().prompt_tokens_cached_total, uint64_t(2 * (n - 1)))
      << "the second and third choices did not copy the first's prompt";
}

TEST_F(CudaServe, ChatRepliesAsOnTheCpu) {
  const ChatTemplate tmpl = ChatTemplate::load(test::tiny_model_dir());
  ChatSessionOptions o;
  o.max_new_tokens = 16;
  o.sampler.temperature = 0.0f;
  o.system_prompt = "You tell short stories.";
  ThreadPool pool(2);
  ChatSession cpu(test::tiny_llama(), pool, test::tiny_tokenizer(), tmpl, 256, o);
  cuda::CudaSequence seq(test::tiny_llama(), 256);
  ChatSession gpu(seq, test::tiny_tokenizer(), tmpl, o);
  int64_t reused = 0;
  for (const char* msg : {"Tell me a story about a dog.", "What happened next?"}) {
    const ChatSession::Reply a = cpu.send(msg, {}), b = gpu.send(msg, {});
    EXPECT_EQ(b.text, a.text) << msg;
    EXPECT_EQ(b.stop_reason, a.stop_reason) << msg;
    EXPECT_EQ(b.reused_tokens, a.reused_tokens) << msg;
    reused = b.reused_tokens;
  }
  EXPECT_GT(reused, 0) << "the second turn ran the whole conversation again";
}

// generate() at temperature 0 takes the argmax on the GPU (CudaSequence::forward_argmax): the
// reference's greedy ids; with a repetition penalty of 1.5 it samples on the host, like the CPU.
TEST_F(CudaServe, GenerateGreedyOnTheDevice) {
  cuda::CudaSequence seq(test::tiny_llama(), 128);
  int32_t probe = 0;
  EXPECT_TRUE(seq.forward_argmax(1, &probe));
  for (const auto& g : test::tiny_reference()["greedy"]) {
    const auto prompt = g["prompt_ids"].get<std::vector<int32_t>>();
    GenerateOptions o;
    o.max_new_tokens = int64_t(g["greedy_ids"].size());
    o.stop_at_eos = false;
    o.sampler.temperature = 0.0f;
    seq.clear();
    EXPECT_EQ(generate(seq, test::tiny_tokenizer(), prompt, o, {}).tokens, g["greedy_ids"].get<std::vector<int32_t>>())
        << g["prompt"];
    o.sampler.repeat_penalty = 1.5f;
    seq.clear();
    const auto gpu = generate(seq, test::tiny_tokenizer(), prompt, o, {}).tokens;
    ThreadPool pool(2);
    CpuSequence cpu_seq(test::tiny_llama(), pool, 128);
    EXPECT_EQ(gpu, generate(cpu_seq, test::tiny_tokenizer(), prompt, o, {}).tokens) << "penalty, " << g["prompt"];
  }
}

// The JSON line of `awq bench --device cuda`: the device named, timings, the device layout's
// bytes (fp16 matrices as on the CPU, within the norms' and layout's few KB), the copy bandwidth.
TEST_F(CudaServe, BenchOnTheGpu) {
  const auto cpu = test::run_awq({"bench", test::tiny_model_dir(), "--prompt", "8", "--gen", "4", "--repeat", "1", "--json"});
  const auto gpu = test::run_awq(
      {"bench", test::tiny_model_dir(), "--prompt", "8", "--gen", "4", "--repeat", "2", "--json", "--device", "cuda"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  const nlohmann::json c = nlohmann::json::parse(cpu.out), g = nlohmann::json::parse(gpu.out);
  EXPECT_EQ(g["engine"].get<std::string>().rfind("cuda: ", 0), 0u) << g["engine"];
  EXPECT_GT(g["decode_tps"]["min"].get<double>(), 0.0);
  EXPECT_GT(g["prefill_tps"]["min"].get<double>(), 0.0);
  EXPECT_NEAR(g["weight_bytes_per_token"].get<double>(), c["weight_bytes_per_token"].get<double>(),
              0.01 * c["weight_bytes_per_token"].get<double>());
  EXPECT_EQ(g["kv_bytes_per_token"], c["kv_bytes_per_token"]);
  EXPECT_GT(g["bandwidth_gbs"].get<double>(), 100.0);  // any sm_80+ GPU's memory
}

}  // namespace
}  // namespace awq
#endif  // AWQ_HAVE_CUDA
