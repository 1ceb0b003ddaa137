#include "server/openai_format.h"

#include <chrono>
#include <cmath>
#include <random>

namespace awq::server {

using nlohmann::json;

ResponseIds new_response_ids(bool chat, const std::string& model) {
  static const char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlnum) - 2);
  ResponseIds r;
  r.chat = chat;
  r.id = chat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) r.id += kAlnum[pick(rng)];
  r.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  r.model = model;
  return r;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

namespace {

json envelope(const ResponseIds& ids, bool chunk) {
  const char* object = ids.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model},
          {"system_fingerprint", nullptr}};
}

json chunk_with(const ResponseIds& ids, int index, json choice, bool with_usage_null) {
  json j = envelope(ids, true);
  choice["index"] = index;
  if (!choice.contains("logprobs")) choice["logprobs"] = nullptr;
  if (!choice.contains("finish_reason")) choice["finish_reason"] = nullptr;
  j["choices"] = json::array({choice});
  if (with_usage_null) j["usage"] = nullptr;
  return j;
}

json utf8_bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

}  // namespace

json logprobs_json(bool chat, const std::vector<TokenLogprob>& tokens, int64_t offset) {
  if (chat) {
    json content = json::array();
    for (const TokenLogprob& t : tokens) {
      json top = json::array();
      for (const auto& [tok, lp] : t.top) top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", utf8_bytes(tok)}});
      content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", utf8_bytes(t.token)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& t : tokens) {
    toks.push_back(t.token);
    if (std::isnan(t.logprob)) {  // an echoed prompt's first token: nothing precedes it
      lps.push_back(nullptr);
      tops.push_back(nullptr);
    } else {
      lps.push_back(t.logprob);
      json top = json::object();
      for (const auto& [tok, lp] : t.top)
        if (!top.contains(tok)) top[tok] = lp;  // two ids of the same text: the likelier one
      tops.push_back(top);
    }
    offsets.push_back(offset);
    offset += int64_t(t.token.size());
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json full_response(const ResponseIds& ids, const std::vector<ChoiceResult>& choices, const Usage& usage) {
  json j = envelope(ids, false);
  j["choices"] = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", i}, {"logprobs", c.logprobs}, {"finish_reason", c.finish_reason}};
    if (ids.chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    j["choices"].push_back(choice);
  }
  j["usage"] = usage_json(usage);
  return j;
}

json role_chunk(const ResponseIds& ids, int index, bool with_usage_null) {
  return chunk_with(ids, index, {{"delta", {{"role", "assistant"}, {"content", ""}}}}, with_usage_null);
}

json text_chunk(const ResponseIds& ids, int index, const std::string& text, bool with_usage_null, const json& logprobs) {
  if (ids.chat) return chunk_with(ids, index, {{"delta", {{"content", text}}}, {"logprobs", logprobs}}, with_usage_null);
  return chunk_with(ids, index, {{"text", text}, {"logprobs", logprobs}}, with_usage_null);
}

json finish_chunk(const ResponseIds& ids, int index, const std::string& finish_reason, bool with_usage_null) {
  if (ids.chat)
    return chunk_with(ids, index, {{"delta", json::object()}, {"finish_reason", finish_reason}}, with_usage_null);
  return chunk_with(ids, index, {{"text", ""}, {"finish_reason", finish_reason}}, with_usage_null);
}

json usage_chunk(const ResponseIds& ids, const Usage& usage) {
  json j = envelope(ids, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return j;
}

std::string sse_event(const json& j) {
  std::string s = "data: ";
  s += j.dump(-1, ' ', false, json::error_handler_t::replace);
  s += "\n\n";
  return s;
}

}  // namespace awq::server
