// Chat templates: a model's own Jinja chat_template rendered the way transformers'
// apply_chat_template(tokenize=False) renders it (see jinja_template.h for the subset), with
// builtin fallbacks.
//
// Rendering passes the variables transformers passes: messages (a list of {role, content}),
// add_generation_prompt, bos_token, eos_token, tools = none, documents = none; also the
// globals raise_exception and strftime_now. enable_thinking and the like stay undefined.
//
// Tokenizing the result: transformers' apply_chat_template(tokenize=True) encodes the
// rendered text with add_special_tokens=False, because templates write bos_token themselves
// where the model wants one (Llama-2/3, Mistral) and ChatML models want none. Special-token
// strings in the text ("<|im_start|>", "<s>") become their ids in Tokenizer::encode (added
// tokens are matched in raw text even with add_special = false). So:
//     ids = tok.encode(text, tmpl.add_special_tokens(text));
// add_special_tokens() is false for the model's own template (no double BOS), and true for
// the ChatML fallback / a builtin override when the text does not start with bos_token, so a
// base model (the tiny test model) still gets the BOS its tokenizer normally adds.
#pragma once
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace awq {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  // The model's template: chat_template of DIR/tokenizer_config.json (a string, or a list of
  // {name, template} where "default" is used), else DIR/chat_template.jinja; bos_token /
  // eos_token strings from tokenizer_config.json. `override_` (may be empty): a builtin name
  // (chatml, llama2, llama3, mistral, ...) or a path to a .jinja file, used instead.
  // A model without any template gets ChatML, and fallback() says so (print a notice).
  // Throws awq::Error naming the file and the construct for a template it cannot parse.
  static ChatTemplate load(const std::string& model_dir, const std::string& override_ = "");
  static ChatTemplate from_source(std::string source, std::string bos_token, std::string eos_token);
  // Renders messages; throws awq::Error carrying the template's raise_exception message.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  bool fallback() const;
  // Strings that end an assistant turn besides the tokenizer's EOS id (e.g. "<|im_end|>",
  // "<|eot_id|>"), derived from the template/tokenizer so generation can stop on them.
  // A stop string that is one special token of the tokenizer never shows up in decoded text
  // (it is skipped): callers turn those into stop ids (Tokenizer::token_to_id) and match the
  // others in the generated text.
  std::vector<std::string> stop_strings() const;

  // --- additions ---
  // See the header comment: whether to encode render()'s text with the tokenizer's special
  // tokens (its BOS).
  bool add_special_tokens(const std::string& rendered) const;
  // Whether `rendered` starts with bos_token (the template wrote the BOS itself).
  bool starts_with_bos(const std::string& rendered) const;
  // Where the template came from: "DIR/tokenizer_config.json", a .jinja path, "builtin:chatml".
  const std::string& origin() const { return origin_; }
  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }
  // The builtin templates' names, and their sources (awq::Error for an unknown name).
  static std::vector<std::string> builtin_names();
  static std::string builtin_source(const std::string& name);
  // Fixes the time strftime_now() sees (tests); default: the local time now.
  void set_now(std::function<std::tm()> now);

 private:
  ChatTemplate() = default;
  std::shared_ptr<jinja::Template> tmpl_;
  std::string source_, bos_, eos_, origin_;
  bool fallback_ = false;
  bool own_ = false;  // the model's own template (not a fallback or an override)
};

}  // namespace awq
