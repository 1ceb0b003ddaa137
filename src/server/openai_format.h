// The JSON objects of OpenAI's completions and chat completions API: whole responses, the
// chunks of a Server-Sent Events stream, and the SSE framing ("data: {...}\n\n").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/token_logprobs.h"

namespace awq::server {

// What every response and chunk of one request shares.
struct ResponseIds {
  bool chat = false;
  std::string id;     // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

// A fresh id for a request ("chatcmpl-" or "cmpl-" + 24 random alphanumerics) and the time.
ResponseIds new_response_ids(bool chat, const std::string& model);

// A response's token counts (each prompt once, as OpenAI counts: its first choice's).
struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int64_t cached_tokens = 0;  // of prompt_tokens, found in the server's prompt cache
};
// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"}}
nlohmann::json usage_json(const Usage& u);

// A choice's "logprobs" for these tokens. Chat: {"content": [{"token", "logprob", "bytes",
// "top_logprobs": [{"token", "logprob", "bytes"}]}]}; completions: {"tokens", "token_logprobs",
// "top_logprobs": [{token: logprob}], "text_offset"}, text_offset in bytes of the completion
// from `offset` (its length before these tokens); a NaN logprob (an echoed prompt's first
// token) is null there, with null top_logprobs.
nlohmann::json logprobs_json(bool chat, const std::vector<TokenLogprob>& tokens, int64_t offset);

// One choice of a non-streaming response; logprobs: logprobs_json's, or null.
struct ChoiceResult {
  std::string text, finish_reason;
  nlohmann::json logprobs = nullptr;
};
// The whole non-streaming response: the choices with index 0, 1, ... in order.
nlohmann::json full_response(const ResponseIds& ids, const std::vector<ChoiceResult>& choices, const Usage& usage);

// One stream chunk of choice `index`. Chat: the first one carries the role (role_chunk), then
// content deltas, then an empty delta with the finish_reason. Completions: text pieces, then
// "" with the finish_reason. with_usage_null adds "usage": null (when
// stream_options.include_usage).
nlohmann::json role_chunk(const ResponseIds& ids, int index, bool with_usage_null);
nlohmann::json text_chunk(const ResponseIds& ids, int index, const std::string& text, bool with_usage_null,
                          const nlohmann::json& logprobs = nullptr);
nlohmann::json finish_chunk(const ResponseIds& ids, int index, const std::string& finish_reason, bool with_usage_null);
// The last chunk when include_usage: empty choices and the usage.
nlohmann::json usage_chunk(const ResponseIds& ids, const Usage& usage);

// "data: <json>\n\n" (invalid UTF-8 replaced), and the stream's end "data: [DONE]\n\n".
std::string sse_event(const nlohmann::json& j);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

}  // namespace awq::server
