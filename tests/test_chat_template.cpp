// ChatTemplate: loading from a model folder (string / list / .jinja file / fallback), the
// builtins, BOS handling and stop strings; and every reference template x conversation
// rendered exactly as transformers' apply_chat_template(tokenize=False) rendered it
// (tests/data/chat_templates/expected.json, made by scripts/ref/make_chat_references.py).
#include <gtest/gtest.h>

#include <fstream>
#include <map>

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
  dir.write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  EXPECT_AWQ_ERROR(ChatTemplate::load(dir.path()), {"tokenizer_config.json", "without a \"default\" entry"});
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

namespace awq {
namespace {

// --- Every reference template x conversation, against transformers' output ---

std::string data_dir() {
  std::string d = AWQ_TEST_DATA_DIR;  // += : see shared_path
  d += "/chat_templates";
  return d;
}

const nlohmann::json& references() {
  static const nlohmann::json j = test::read_json(data_dir() + "/expected.json");
  return j;
}

std::tm fixed_now() {
  std::tm tm{};  // expected.json's fixed_now: 2024-07-26 12:00
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_hour = 12;
  tm.tm_wday = 5;
  tm.tm_yday = 207;
  return tm;
}

TEST(ChatTemplateReference, EveryTemplateAndConversationMatchesTransformers) {
  const nlohmann::json& ref = references();
  ASSERT_EQ(ref["fixed_now"].get<std::string>().substr(0, 10), "2024-07-26");
  std::map<std::string, ChatTemplate> templates;
  size_t rendered = 0, raised = 0;
  for (const auto& c : ref["cases"]) {
    const std::string name = c["template"];
    auto it = templates.find(name);
    if (it == templates.end()) {
      ChatTemplate t = ChatTemplate::from_source(test::read_text(data_dir() + "/" + name), ref["bos_token"], ref["eos_token"]);
      t.set_now(fixed_now);
      it = templates.emplace(name, std::move(t)).first;
    }
    std::vector<ChatMessage> msgs;
    for (const auto& m : ref["conversations"][c["conversation"].get<std::string>()]) msgs.push_back({m["role"], m["content"]});
    const bool agp = c["add_generation_prompt"];
    const std::string where = name + " x " + c["conversation"].get<std::string>() + (agp ? " (+generation prompt)" : "");
    if (c.contains("output")) {
      std::string got;
      try {
        got = it->second.render(msgs, agp);
      } catch (const Error& e) {
        ADD_FAILURE() << where << ": threw " << e.what();
        continue;
      }
      EXPECT_EQ(got, c["output"].get<std::string>()) << where;
      ++rendered;
    } else {
      // transformers raised: so must we, and with the template's own message.
      const std::string msg = test::error_message([&] { it->second.render(msgs, agp); });
      if (c["error_type"] == "TemplateError") {
        EXPECT_NE(msg.find(c["error"].get<std::string>()), std::string::npos) << where << ": " << msg;
      }
      ++raised;
    }
  }
  // The set covers both outcomes (guards against an empty or truncated reference file).
  EXPECT_GT(rendered, 150u);
  EXPECT_GT(raised, 20u);
}

TEST(ChatTemplateReference, BuiltinsMatchTheModelTemplatesTheyStandFor) {
  // Our builtin renderings equal the models' own templates wherever those render.
  const std::map<std::string, std::string> stands_for = {
      {"chatml", "chatml-OpenHermes-2.5-Mistral-7B.jinja"},
      {"llama2", "meta-llama-Llama-2-7b-chat-hf.jinja"},
      {"llama3", "meta-llama-Meta-Llama-3-8B-Instruct.jinja"},
      {"mistral", "mistralai-Mistral-7B-Instruct-v0.2-old.jinja"},
  };
  const nlohmann::json& ref = references();
  for (const auto& [builtin, file] : stands_for) {
    const ChatTemplate t = ChatTemplate::from_source(ChatTemplate::builtin_source(builtin), ref["bos_token"], ref["eos_token"]);
    size_t compared = 0;
    for (const auto& c : ref["cases"]) {
      if (c["template"] != file || !c.contains("output")) continue;
      std::vector<ChatMessage> msgs;
      for (const auto& m : ref["conversations"][c["conversation"].get<std::string>()]) msgs.push_back({m["role"], m["content"]});
      EXPECT_EQ(t.render(msgs, c["add_generation_prompt"]), c["output"].get<std::string>()) << builtin << " x " << c["conversation"];
      ++compared;
    }
    EXPECT_GT(compared, 4u) << builtin;
  }
}

TEST(ChatTemplateReference, StopStringsOfTheRealTemplates) {
  auto stops = [](const std::string& file) {
    return ChatTemplate::from_source(test::read_text(data_dir() + "/" + file), "<s>", "</s>").stop_strings();
  };
  EXPECT_EQ(stops("Qwen-Qwen2.5-7B-Instruct.jinja"), std::vector<std::string>{"<|im_end|>"});
  EXPECT_EQ(stops("Qwen-Qwen3-0.6B.jinja"), std::vector<std::string>{"<|im_end|>"});
  EXPECT_EQ(stops("meta-llama-Llama-3.1-8B-Instruct.jinja"), std::vector<std::string>{"<|eot_id|>"});
  EXPECT_EQ(stops("meta-llama-Llama-2-7b-chat-hf.jinja"), std::vector<std::string>{"</s>"});
  EXPECT_EQ(stops("mistralai-Mistral-Nemo-Instruct-2407.jinja"), std::vector<std::string>{"</s>"});
  EXPECT_EQ(stops("google-gemma-2-2b-it.jinja"), std::vector<std::string>{"<end_of_turn>"});
}

}  // namespace
}  // namespace awq
