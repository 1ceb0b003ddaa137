// The generation loop shared by `awq generate` (and later chat / serve): prefill the prompt,
// then sample one token at a time, streaming complete UTF-8 text to a callback.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "runtime/sampler.h"
#include "runtime/sequence_model.h"
#include "tokenizer/tokenizer.h"

namespace awq {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  bool stop_at_eos = true;
  SamplerParams sampler;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (not the prompt)
  std::string stop_reason;      // "eos", "length", "context", "callback"
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0.0, decode_seconds = 0.0;
};

// prompt: [n] ids (BOS included when wanted); the cache must be empty and hold them.
// on_text(text) receives each newly completed piece of text (it continues the prompt's text,
// so prompt text + all pieces = decode(prompt + generated)); return false to stop.
GenerateResult generate(SequenceModel& model, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<bool(const std::string&)>& on_text);
// The same on the CPU engine with a caller-owned cache.
GenerateResult generate(LlamaModel& model, ThreadPool& pool, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, KvCache& cache,
                        const GenerateOptions& opt,
                        const std::function<bool(const std::string&)>& on_text);

// The context `awq generate` sizes its KV cache for when --ctx is not given: the prompt and the
// tokens to generate (all that one run can use), at most max_positions (the model's
// max_position_embeddings). Not max_positions itself: the cache is allocated up front, and the
// 131072 positions of Llama 3.1 8B are 16 GiB of f16 keys and values.
int64_t default_generate_ctx(int64_t prompt_tokens, int64_t max_new_tokens, int64_t max_positions);

// Length of the longest suffix of `text` that is a proper prefix of some stop string (each
// non-empty): text a stream must hold back because the next token could complete a stop
// string (the server's and the chat's streams).
size_t stop_holdback(const std::string& text, const std::vector<std::string>& stops);

}  // namespace awq
