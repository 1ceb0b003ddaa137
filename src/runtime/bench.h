// End-to-end speed of one model on the CPU engine (`awq bench`): prefill and decode tokens/s
// over repeats, the bytes of weights and of KV cache a decode step reads, and that traffic
// against the machine's memory bandwidth measured in the same run (runtime/bandwidth.h).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"

namespace awq {

struct BenchOptions {
  int64_t prompt = 512;  // prefill length (one forward call)
  int64_t gen = 128;     // decode steps after it (one token each, greedy)
  int repeat = 3;
  KvType kv_type = KvType::F16;  // element type of the KV cache
};

struct BenchResult {
  std::vector<double> prefill_tps, decode_tps;  // one per repeat
  double weight_bytes_per_token = 0;            // bytes of weights one decode step reads
  double kv_bytes_per_token = 0;                // bytes of KV cache one decode step reads (mean)
  double bandwidth_gbs = 0;                     // measured read bandwidth, same threads
};

// Bytes of weights one decode token reads: every decoder matrix (W4: codes + zeros + fp16
// scales; dense: rows * cols * element size), norms and biases, lm_head, one embedding row.
double weight_bytes_per_token(const LlamaWeights& w, const ModelConfig& c);

// Bytes of keys and values the attention of one decode step reads, averaged over the steps
// at positions prompt .. prompt + gen - 1: each step reads, in every layer, the key and value
// rows of the positions it attends to (all before it and itself, or the sliding window),
// kv_dim elements of kv_type_size(type) each.
double kv_bytes_per_token(const ModelConfig& c, KvType type, int64_t prompt, int64_t gen);

// Runs a warm-up (prompt of 8 + 2 decode steps, which also faults in mmapped weights), then
// `repeat` times: clear the cache, prefill `prompt` tokens, decode `gen` tokens.
BenchResult run_bench(LlamaModel& model, ThreadPool& pool, const BenchOptions& opt);

// min and median of v (not empty).
double min_of(std::vector<double> v);
double median_of(std::vector<double> v);

}  // namespace awq
