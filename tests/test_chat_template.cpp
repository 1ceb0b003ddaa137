// ChatTemplate: loading from a model folder (string / list / .jinja file / fallback), the
// builtins, BOS handling and stop strings; and every reference template x conversation
// rendered exactly as transformers' apply_chat_template(tokenize=False) rendered it
// (tests/data/chat_templates/expected.json, made by scripts/ref/make_chat_references.py).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "support/expect_error.h"
#include "support/shared_data.h"
#include "support/temp_dir.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

const std::vector<ChatMessage> kSysUser = {{"system", "You are terse."}, {"user", "Hello?"}};

TEST(ChatTemplate, TinyModelFallsBackToChatml) {
  const ChatTemplate t = ChatTemplate::load(test::tiny_model_dir());
  EXPECT_TRUE(t.fallback());
  EXPECT_EQ(t.origin(), "builtin:chatml");
  EXPECT_EQ(t.bos_token(), "<s>");
  EXPECT_EQ(t.eos_token(), "</s>");
  const std::string text = t.render(kSysUser, true);
  EXPECT_EQ(text, "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.stop_strings(), std::vector<std::string>{"<|im_end|>"});
  // A fallback template does not write BOS: the tokenizer adds it (once).
  EXPECT_TRUE(t.add_special_tokens(text));
  const Tokenizer tok = Tokenizer::load(test::tiny_model_dir());
  const auto ids = tok.encode(text, t.add_special_tokens(text));
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], tok.bos_id());
  EXPECT_NE(ids[1], tok.bos_id());
}

TEST(ChatTemplate, ModelTemplateFromConfigStringListOrJinjaFile) {
  test::TempDir dir;
  // A string.
  dir.write("tokenizer_config.json",
            R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"})");
  ChatTemplate t = ChatTemplate::load(dir.path());
  EXPECT_FALSE(t.fallback());
  const std::string text = t.render(kSysUser, false);
  EXPECT_EQ(text, "<s>[system]You are terse.[user]Hello?");
  EXPECT_TRUE(t.starts_with_bos(text));
  EXPECT_FALSE(t.add_special_tokens(text));  // the template wrote BOS: do not add a second
  // A list of named templates: "default" is used.
  dir.write("tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages | length }}"}]})");
  EXPECT_EQ(ChatTemplate::load(dir.path()).render(kSysUser, false), "D2");
  // chat_template.jinja when the config has none.
  dir.write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  dir.write("chat_template.jinja", "J{{ messages[0].content }}\n");
  EXPECT_EQ(ChatTemplate::load(dir.path()).render(kSysUser, false), "JYou are terse.");
  // An override wins over the model's template.
  EXPECT_EQ(ChatTemplate::load(dir.path(), "llama3").origin(), "builtin:llama3");
  const std::string file = dir.write("mine.jinja", "M{{ add_generation_prompt }}");
  EXPECT_EQ(ChatTemplate::load(dir.path(), file).render(kSysUser, true), "MTrue");
}

TEST(ChatTemplate, Errors) {
  test::TempDir dir;
  dir.write("tokenizer_config.json", R"({"chat_template": "{% for m in messages %}{{ m.content }}"})");
  EXPECT_AWQ_ERROR(ChatTemplate::load(dir.path()), {"tokenizer_config.json", "unclosed '{% for %}'", "line 1"});
  dir.write("tokenizer_config.json", R"({"chat_template": "{% include 'other' %}"})");
  EXPECT_AWQ_ERROR(ChatTemplate::load(dir.path()), {"tokenizer_config.json", "unsupported tag 'include'"});
  dir.write("tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_AWQ_ERROR(ChatTemplate::load(dir.path()), {"tokenizer_config.json", "chat_template must be a string"});
  dir.write("tokenizer_config.json", "{not json");
  EXPECT_AWQ_ERROR(ChatTemplate::load(dir.path()), {"tokenizer_config.json", "not valid JSON"});
  EXPECT_AWQ_ERROR(ChatTemplate::load(test::tiny_model_dir(), "nosuchtemplate"), {"unknown builtin chat template 'nosuchtemplate'", "chatml"});
  const ChatTemplate t = ChatTemplate::from_source("{{ raise_exception('Only user and assistant roles are supported!') }}", "", "");
  EXPECT_AWQ_ERROR(t.render(kSysUser, false), {"Only user and assistant roles are supported!"});
}

TEST(ChatTemplate, BuiltinsRenderAndStop) {
  for (const std::string& name : ChatTemplate::builtin_names()) {
    const ChatTemplate t = ChatTemplate::load(test::tiny_model_dir(), name);
    const std::vector<ChatMessage> conv = {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "More"}};
    EXPECT_FALSE(t.render(conv, true).empty()) << name;
    EXPECT_FALSE(t.stop_strings().empty()) << name;
  }
  EXPECT_EQ(ChatTemplate::load(test::tiny_model_dir(), "llama3").stop_strings(), std::vector<std::string>{"<|eot_id|>"});
  EXPECT_EQ(ChatTemplate::load(test::tiny_model_dir(), "mistral").stop_strings(), std::vector<std::string>{"</s>"});
}

}  // namespace
}  // namespace awq
