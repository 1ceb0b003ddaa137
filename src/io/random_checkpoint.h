// Random-weight Llama checkpoints of real shapes (TinyLlama-1.1B, Llama-2-7B), so speed can
// be measured without downloading a model. The folder is an ordinary Hugging Face FP16/BF16
// checkpoint: config.json with the real model's hyper-parameters, sharded safetensors and
// the tokenizer files copied from a folder with the same 32000-token vocabulary.
//
// Weights: every linear and the embeddings ~ N(0, 0.02^2) (approximated by the sum of four
// uniforms: bounded at +-3.5 sigma, so nothing overflows fp16), every RMSNorm weight = 1,
// so activations stay finite through all layers. Element i of tensor T is a pure function of
// (seed, T's name, i): the output does not depend on threads or chunking.
//
// Written streamed (never more than a few chunks of 64 MiB in memory: a 7B model is 13.5 GB)
// into a staging folder renamed into place at the end (io/staging_dir.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace awq {

// The shapes `awq random-model --shape` knows.
std::vector<std::string> random_model_shapes();
// config.json of a known shape (the real model's values; torch_dtype from dtype). Throws
// awq::Error naming the shape and the known ones otherwise.
nlohmann::ordered_json random_model_config(const std::string& shape, DType dtype);

struct RandomModelOptions {
  nlohmann::ordered_json config;  // a llama config.json (random_model_config or a test's own)
  std::string out_dir;
  std::string tokenizer_dir;      // copied: tokenizer.json (+ tokenizer_config.json, ...)
  uint64_t seed = 0;
  DType dtype = DType::F16;       // F16 or BF16
  bool force = false;             // replace an existing out_dir
  uint64_t max_shard_bytes = uint64_t(2) << 30;
  float weight_std = 0.02f;
};

struct RandomModelReport {
  int64_t parameters = 0;
  uint64_t bytes = 0;  // tensor data written
  int shards = 0;
};

// Writes the checkpoint. progress(bytes done, bytes total) after each chunk.
RandomModelReport write_random_model(ThreadPool& pool, const RandomModelOptions& opt,
                                     const std::function<void(uint64_t, uint64_t)>& progress = nullptr);

// Element i of a tensor: a deterministic approximately-normal value with standard deviation
// `std` (sum of four 16-bit uniforms, |value| <= 2*sqrt(3)*std). key = random_tensor_key(...).
uint64_t random_tensor_key(uint64_t seed, const std::string& tensor_name);
float random_normalish(uint64_t key, uint64_t i, float std);

}  // namespace awq
