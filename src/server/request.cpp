#include "server/request.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "runtime/token_logprobs.h"
#include "server/api_error.h"

namespace awq::server {

namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw ApiError(400, msg, param, "invalid_value");
}
[[noreturn]] void wrong_type(const std::string& param, const char* want, const json& got) {
  throw ApiError(400, std::string("'") + param + "' must be " + want + ", got " + type_name(got), param,
                 "invalid_type");
}

// The field or nullptr when absent or null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number_in(const json& body, const char* name, double def, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return def;
  if (!v->is_number()) wrong_type(name, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(name, std::string("'") + std::string(name) + "' must be between " + json(lo).dump() + " and " +
                  json(hi).dump() + ", got " + v->dump());
  return x;
}

bool boolean(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return false;
  if (!v->is_boolean()) wrong_type(name, "a boolean", *v);
  return v->get<bool>();
}

std::string message_text(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array()) wrong_type(param, "a string or an array of content parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) wrong_type(p, "an object", part);
    const json* type = field(part, "type");
    if (!type || !type->is_string()) bad(p + ".type", std::string("'") + p + ".type' must be a string");
    if (type->get<std::string>() != "text")
      bad(p + ".type", std::string("content parts of type '") + type->get<std::string>() +
                           "' are not supported (this server takes text only)");
    const json* t = field(part, "text");
    if (!t || !t->is_string()) bad(p + ".text", std::string("'") + p + ".text' must be a string");
    text += t->get<std::string>();
  }
  return text;
}

// One prompt: a string or an array of token ids.
bool parse_one_prompt(const json& p, CompletionRequest::Prompt& out) {
  if (p.is_string()) {
    out.text = p.get<std::string>();
    if (out.text.empty()) bad("prompt", "'prompt' must not be empty");
    return true;
  }
  if (!p.is_array() || p.empty() || !p[0].is_number_integer()) return false;
  out.is_ids = true;
  for (const json& id : p) {
    if (!id.is_number_integer()) wrong_type("prompt", "an array of token ids (integers)", id);
    const int64_t v = id.get<int64_t>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max())
      bad("prompt", std::string("token id ") + std::to_string(v) + " in 'prompt' is out of range");
    out.ids.push_back(int32_t(v));
  }
  return true;
}

// "prompt": a string, an array of token ids, or an array of several of either.
void parse_prompt(const json& body, CompletionRequest& r) {
  const json* p = field(body, "prompt");
  if (!p) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  CompletionRequest::Prompt one;
  if (parse_one_prompt(*p, one)) {
    r.prompts.push_back(std::move(one));
    return;
  }
  if (!p->is_array() || p->empty())
    wrong_type("prompt", "a string, an array of token ids, or an array of several of either", *p);
  for (const json& item : *p) {
    CompletionRequest::Prompt each;
    if (!parse_one_prompt(item, each))
      wrong_type("prompt", "a string, an array of token ids, or an array of several of either", item);
    r.prompts.push_back(std::move(each));
  }
}

void parse_messages(const json& body, CompletionRequest& r) {
  const json* m = field(body, "messages");
  if (!m) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!m->is_array()) wrong_type("messages", "an array", *m);
  if (m->empty()) bad("messages", "'messages' must hold at least one message");
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) wrong_type(p, "an object", msg);
    const json* role = field(msg, "role");
    if (!role) throw ApiError(400, std::string("'") + p + ".role' is required", p + ".role", "missing_required_parameter");
    if (!role->is_string()) wrong_type(p + ".role", "a string", *role);
    const std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "developer" && rs != "tool")
      bad(p + ".role", std::string("'") + p + ".role' must be one of system, developer, user, assistant, tool; got '" + rs + "'");
    auto c = msg.find("content");
    if (c == msg.end() && rs != "assistant")
      throw ApiError(400, std::string("'") + p + ".content' is required", p + ".content", "missing_required_parameter");
    r.messages.push_back({rs, c == msg.end() ? std::string() : message_text(*c, p + ".content")});
  }
}

void parse_stop(const json& body, CompletionRequest& r) {
  const json* s = field(body, "stop");
  if (!s) return;
  if (s->is_string()) {
    r.stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    if (s->size() > 4) bad("stop", "'stop' holds at most 4 strings");
    for (const json& x : *s) {
      if (!x.is_string()) wrong_type("stop", "a string or an array of strings", x);
      r.stop.push_back(x.get<std::string>());
    }
  } else {
    wrong_type("stop", "a string or an array of strings", *s);
  }
  for (const std::string& x : r.stop)
    if (x.empty()) bad("stop", "stop strings must not be empty");
}

int64_t integer_in(const json& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) wrong_type(name, "an integer", v);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                  ", got " + v.dump());
  return x;
}

// "logit_bias": {"<token id>": bias in -100..100, ...} (ids checked against the vocabulary later).
void parse_logit_bias(const json& body, CompletionRequest& r) {
  const json* lb = field(body, "logit_bias");
  if (!lb) return;
  if (!lb->is_object()) wrong_type("logit_bias", "an object of token id -> bias", *lb);
  for (const auto& [key, value] : lb->items()) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(key, &used);
      if (used != key.size()) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id < 0 || id > std::numeric_limits<int32_t>::max())
      bad("logit_bias", "'logit_bias' keys must be token ids (non-negative integers as strings), got \"" + key + "\"");
    if (!value.is_number()) wrong_type("logit_bias", "an object of token id -> number", value);
    const double b = value.get<double>();
    if (!std::isfinite(b) || b < -100.0 || b > 100.0)
      bad("logit_bias", "'logit_bias' values must be between -100 and 100, got " + value.dump() + " for token " + key);
    r.logit_bias.emplace_back(int32_t(id), float(b));
  }
}

// Completions: "logprobs": N (null: off) and "echo"; chat: "logprobs": true/false,
// "top_logprobs": N only with logprobs true (as OpenAI).
void parse_logprobs(const json& body, CompletionRequest& r) {
  const json* lp = field(body, "logprobs");
  if (!r.chat) {
    if (lp && !lp->is_null()) r.top_logprobs = int(integer_in(*lp, "logprobs", 0, kMaxTopLogprobs));
    r.echo = boolean(body, "echo");
    return;
  }
  bool on = false;
  if (lp && !lp->is_null()) {
    if (!lp->is_boolean()) wrong_type("logprobs", "a boolean", *lp);
    on = lp->get<bool>();
  }
  const json* top = field(body, "top_logprobs");
  if (top && !top->is_null()) {
    const int n = int(integer_in(*top, "top_logprobs", 0, kMaxTopLogprobs));
    if (!on) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r.top_logprobs = n;
  } else if (on) {
    r.top_logprobs = 0;
  }
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body_text, bool chat) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::parse_error& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what(), "", "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, std::string("the request body must be a JSON object, got ") + type_name(body), "", "invalid_json");

  CompletionRequest r;
  r.chat = chat;
  // Optional, as in llama.cpp's and vLLM's servers (curl users leave it out): absent means the
  // served model; a different name is a 404 (http_server.cpp).
  if (const json* model = field(body, "model")) {
    if (!model->is_string()) wrong_type("model", "a string", *model);
    r.model = model->get<std::string>();
  }

  if (chat) parse_messages(body, r);
  else parse_prompt(body, r);

  const char* max_tokens_name = nullptr;  // which of the two names set r.max_tokens
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    const json* v = field(body, name);
    if (!v) continue;
    if (!v->is_number_integer()) wrong_type(name, "an integer", *v);
    const int64_t n = v->get<int64_t>();
    if (n < 0) bad(name, std::string("'") + std::string(name) + "' must be at least 1, got " + std::to_string(n));
    r.max_tokens = n;
    max_tokens_name = name;
  }
  r.temperature = number_in(body, "temperature", 1.0, 0.0, 2.0);
  r.top_p = number_in(body, "top_p", 1.0, 0.0, 1.0);
  if (r.top_p <= 0.0) bad("top_p", "'top_p' must be greater than 0");
  r.presence_penalty = number_in(body, "presence_penalty", 0.0, -2.0, 2.0);
  r.frequency_penalty = number_in(body, "frequency_penalty", 0.0, -2.0, 2.0);
  parse_logit_bias(body, r);
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer()) wrong_type("seed", "an integer", *s);
    r.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (const json* n = field(body, "n")) r.n = int(integer_in(*n, "n", 1, kMaxChoices));
  parse_stop(body, r);
  parse_logprobs(body, r);
  // 0 only with echo (completions): the prompt comes back, scored with logprobs, and nothing is
  // generated; lm-evaluation-harness asks log-likelihoods this way.
  if (r.max_tokens == 0 && !r.echo)
    bad(max_tokens_name, std::string("'") + max_tokens_name + "' must be at least 1, got 0 (0 only with 'echo': true" +
                             (chat ? ", which chat completions do not have)" : ")"));
  const int64_t choices = int64_t(chat ? 1 : r.prompts.size()) * r.n;
  if (choices > kMaxChoices)
    bad(r.n > 1 ? "n" : "prompt", "at most " + std::to_string(kMaxChoices) + " choices (prompts x n) per request, got " +
                                     std::to_string(choices));
  r.stream = boolean(body, "stream");
  r.ignore_eos = boolean(body, "ignore_eos");
  r.cache_prompt = !field(body, "cache_prompt") || boolean(body, "cache_prompt");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = boolean(*so, "include_usage");
  }
  return r;
}

}  // namespace awq::server
