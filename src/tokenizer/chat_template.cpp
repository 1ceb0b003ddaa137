#include "tokenizer/chat_template.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/jinja_template.h"

namespace awq {

namespace fs = std::filesystem;

namespace {

// Our own renderings of the common chat formats (written for this project, output-equal
// to the models' templates on ordinary conversations; tests compare them).
const char* const kChatml =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

const char* const kLlama2 =
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set sys = '<<SYS>>\\n' + messages[0].content + '\\n<</SYS>>\\n\\n' %}{%- set turns = messages[1:] %}"
    "{%- else %}{%- set sys = '' %}{%- set turns = messages %}{%- endif %}"
    "{%- for m in turns %}"
    "{%- if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if m.role == 'user' %}"
    "{{- bos_token + '[INST] ' + (sys if loop.first else '') + m.content | trim + ' [/INST]' }}"
    "{%- else %}{{- ' ' + m.content | trim + ' ' + eos_token }}{%- endif %}"
    "{%- endfor %}";

const char* const kLlama3 =
    "{{- bos_token }}"
    "{%- for m in messages %}"
    "{{- '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

const char* const kMistral =
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set sys = messages[0].content + '\\n\\n' %}{%- set turns = messages[1:] %}"
    "{%- else %}{%- set sys = '' %}{%- set turns = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for m in turns %}"
    "{%- if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if m.role == 'user' %}{{- '[INST] ' + (sys if loop.first else '') + m.content + ' [/INST]' }}"
    "{%- else %}{{- m.content + eos_token }}{%- endif %}"
    "{%- endfor %}";

struct Builtin {
  const char* name;
  const char* source;
};
const Builtin kBuiltins[] = {{"chatml", kChatml}, {"llama2", kLlama2}, {"llama3", kLlama3}, {"mistral", kMistral}};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// bos_token / eos_token: a string or an {"content": ...} object (AddedToken).
std::string token_string(const nlohmann::json& cfg, const char* key, const std::string& file) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  throw Error(file + ": field '" + key + "' must be a string or an object with a string 'content'");
}

std::shared_ptr<jinja::Template> compile(const std::string& source, const std::string& origin) {
  try {
    return std::make_shared<jinja::Template>(source);
  } catch (const Error& e) {
    throw Error("chat template from " + origin + ": " + e.what());
  }
}

}  // namespace

std::vector<std::string> ChatTemplate::builtin_names() {
  std::vector<std::string> names;
  for (const Builtin& b : kBuiltins) names.emplace_back(b.name);
  return names;
}

std::string ChatTemplate::builtin_source(const std::string& name) {
  for (const Builtin& b : kBuiltins)
    if (name == b.name) return b.source;
  std::string known;
  for (const Builtin& b : kBuiltins) known += std::string(known.empty() ? "" : ", ") + b.name;
  throw Error("unknown builtin chat template '" + name + "' (builtins: " + known + "; or give a path to a .jinja file)");
}

ChatTemplate ChatTemplate::from_source(std::string source, std::string bos_token, std::string eos_token) {
  ChatTemplate t;
  t.origin_ = "the given template";
  t.tmpl_ = compile(source, t.origin_);
  t.source_ = std::move(source);
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  t.own_ = true;
  return t;
}

ChatTemplate ChatTemplate::load(const std::string& model_dir, const std::string& override_) {
  ChatTemplate t;
  const std::string cfg_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  std::string model_source, model_origin;
  if (fs::exists(cfg_path)) {
    nlohmann::json cfg;
    try {
      cfg = nlohmann::json::parse(read_text_file(cfg_path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(cfg_path + ": not valid JSON (" + e.what() + ")");
    }
    if (!cfg.is_object()) throw Error(cfg_path + ": expected a JSON object");
    t.bos_ = token_string(cfg, "bos_token", cfg_path);
    t.eos_ = token_string(cfg, "eos_token", cfg_path);
    auto ct = cfg.find("chat_template");
    if (ct != cfg.end() && !ct->is_null()) {
      model_origin = cfg_path;
      if (ct->is_string()) {
        model_source = ct->get<std::string>();
      } else if (ct->is_array()) {
        for (const auto& item : *ct) {
          if (!item.is_object() || !item.contains("name") || !item.contains("template") || !item["name"].is_string() ||
              !item["template"].is_string())
            throw Error(cfg_path + ": chat_template list entries must be {\"name\": ..., \"template\": ...} strings");
          if (item["name"] == "default") model_source = item["template"].get<std::string>();
        }
        if (model_source.empty())
          throw Error(cfg_path + ": chat_template is a list without a \"default\" entry; pick one with --chat-template FILE");
      } else {
        throw Error(cfg_path + ": chat_template must be a string or a list of {name, template}");
      }
    }
  }
  if (model_source.empty()) {
    const std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
    if (fs::exists(jinja_path)) {
      model_source = read_text_file(jinja_path);
      model_origin = jinja_path;
    }
  }
  if (!override_.empty()) {
    bool is_builtin = false;
    for (const Builtin& b : kBuiltins) is_builtin |= override_ == b.name;
    if (is_builtin) {
      t.source_ = builtin_source(override_);
      t.origin_ = "builtin:" + override_;
    } else if (fs::is_regular_file(override_)) {
      t.source_ = read_text_file(override_);
      t.origin_ = override_;
    } else {
      builtin_source(override_);  // throws, listing the builtins
    }
  } else if (!model_source.empty()) {
    t.source_ = model_source;
    t.origin_ = model_origin;
    t.own_ = true;
  } else {
    t.source_ = kChatml;
    t.origin_ = "builtin:chatml";
    t.fallback_ = true;
  }
  t.tmpl_ = compile(t.source_, t.origin_);
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  jinja::List msgs;
  for (const ChatMessage& m : messages) msgs.push_back(jinja::make_dict({{"role", m.role}, {"content", m.content}}));
  jinja::Dict vars;
  vars.set("messages", jinja::Value(std::move(msgs)));
  vars.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  vars.set("bos_token", jinja::Value(bos_));
  vars.set("eos_token", jinja::Value(eos_));
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  try {
    return tmpl_->render(vars);
  } catch (const jinja::TemplateException& e) {
    throw Error(std::string("chat template: ") + e.what());
  } catch (const Error& e) {
    throw Error("chat template from " + origin_ + ": " + e.what());
  }
}

bool ChatTemplate::fallback() const { return fallback_; }

bool ChatTemplate::starts_with_bos(const std::string& rendered) const {
  return !bos_.empty() && rendered.compare(0, bos_.size(), bos_) == 0;
}

bool ChatTemplate::add_special_tokens(const std::string& rendered) const {
  if (own_) return false;
  return !starts_with_bos(rendered);
}

void ChatTemplate::set_now(std::function<std::tm()> now) { tmpl_->set_now(std::move(now)); }

std::vector<std::string> ChatTemplate::stop_strings() const {
  // Render a conversation ending in an assistant turn and read what follows its content:
  // the end-of-turn marker ("<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>").
  const std::string probe = "AWQ-PROBE-7f3a";
  const std::vector<std::vector<ChatMessage>> convs = {
      {{"user", "Hi"}, {"assistant", probe}},
      {{"system", "S"}, {"user", "Hi"}, {"assistant", probe}},
  };
  std::vector<std::string> out;
  for (const auto& conv : convs) {
    std::string text;
    try {
      text = render(conv, false);
    } catch (const Error&) {
      continue;
    }
    const size_t p = text.rfind(probe);
    if (p == std::string::npos) continue;
    std::string rest = text.substr(p + probe.size());
    const size_t b = rest.find_first_not_of(" \t\n\r");
    if (b == std::string::npos) continue;
    const size_t e = rest.find_first_of(" \t\n\r", b);
    out.push_back(rest.substr(b, e == std::string::npos ? std::string::npos : e - b));
    break;
  }
  // Markers that appear literally in the template (some templates only show them there).
  for (const char* marker : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"})
    if (source_.find(marker) != std::string::npos && std::find(out.begin(), out.end(), marker) == out.end() &&
        out.empty())
      out.emplace_back(marker);
  return out;
}

}  // namespace awq
