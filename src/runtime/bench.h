// End-to-end speed of one model (`awq bench`): prefill and decode tokens/s over repeats, the
// bytes of weights and of KV cache a decode step reads, and that traffic against the memory
// bandwidth measured in the same run (the CPU's: runtime/bandwidth.h; the GPU's: cmd_bench).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "ops/cpu/q8_rows.h"
#include "runtime/sequence_model.h"

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
// scales; dense: rows * cols * element size), norms and biases, lm_head (its int8 codes and f32
// scales instead where lm_head_q8 is given: AWQ_LM_HEAD=q8), one embedding row.
double weight_bytes_per_token(const LlamaWeights& w, const ModelConfig& c, const Q8Rows* lm_head_q8 = nullptr);

// Bytes of keys and values the attention of one decode step reads, averaged over the steps
// at positions prompt .. prompt + gen - 1: each step reads, in every layer, the key and value
// rows of the positions it attends to (all before it and itself, or the sliding window),
// kv_dim elements of kv_type_size(type) each.
double kv_bytes_per_token(const ModelConfig& c, KvType type, int64_t prompt, int64_t gen);

// Throws awq::Error for options the model cannot run (lengths < 1, past its positions).
void check_bench_options(const ModelConfig& c, const BenchOptions& opt);

// Runs a warm-up (the prompt + 2 decode steps, which also faults in mmapped weights), then
// `repeat` times: clear the cache, prefill `prompt` tokens, decode `gen` tokens; fills
// r.prefill_tps and r.decode_tps. seq (any engine) must hold prompt + gen positions.
void time_prefill_decode(SequenceModel& seq, const BenchOptions& opt, BenchResult& r);

// The whole CPU bench: time_prefill_decode on the CPU engine, the bytes per token, and the
// read bandwidth of pool's threads.
BenchResult run_bench(LlamaModel& model, ThreadPool& pool, const BenchOptions& opt);

// min and median of v (not empty).
double min_of(std::vector<double> v);
double median_of(std::vector<double> v);

}  // namespace awq
