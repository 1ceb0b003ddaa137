// Parsing and validating the JSON bodies of POST /v1/completions and /v1/chat/completions.
// Every defect becomes an ApiError (400) naming the field; fields the server does not use
// (frequency_penalty, logit_bias, user, ...) are accepted and ignored, as clients send them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace awq::server {

struct ChatTurn {
  std::string role;     // "system", "user", "assistant", "developer", "tool"
  std::string content;  // text (content parts of type "text" joined)
};

struct CompletionRequest {
  bool chat = false;
  std::string model;  // empty: the request named none (the served model)
  // /v1/completions: one or more prompts, each as text or as token ids (is_ids).
  struct Prompt {
    std::string text;
    std::vector<int32_t> ids;
    bool is_ids = false;
  };
  std::vector<Prompt> prompts;
  // /v1/chat/completions
  std::vector<ChatTurn> messages;

  // Not given: 16 (completions) or the rest of the context (chat). 0 only with echo: the
  // prompt alone, scored where logprobs are asked (log-likelihood evaluations).
  std::optional<int64_t> max_tokens;
  double temperature = 1.0;           // 0: greedy
  double top_p = 1.0;
  double presence_penalty = 0.0;   // -2..2, over the completion's tokens (runtime/sampler.h)
  double frequency_penalty = 0.0;  // -2..2
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, -100..100)
  std::optional<uint64_t> seed;
  int n = 1;  // choices per prompt (1..kMaxChoices prompts x n), streamed or not
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // extension (as llama.cpp and vLLM): generate past end-of-sequence
  bool cache_prompt = true;    // extension (as llama.cpp): false prefills the prompt whole
  // -1: no logprobs; else each token's log-probability and this many alternatives (0..20).
  // Completions: "logprobs": N; chat: "logprobs": true with "top_logprobs": N (default 0).
  int top_logprobs = -1;
  bool echo = false;  // completions: the prompt comes first in the text (and in the logprobs, scored)
};

// The most choices (prompts x n) one request may ask for.
inline constexpr int64_t kMaxChoices = 64;

// body: the raw request body. Throws ApiError(400) for malformed JSON, wrong types, missing
// fields and values out of range.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

}  // namespace awq::server
