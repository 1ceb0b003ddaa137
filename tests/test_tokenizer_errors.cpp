// Malformed tokenizer files: each variant must give one awq::Error line naming the file
// and the field at fault (never a crash, never a std:: exception).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/expect_error.h"
#include "support/temp_dir.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

using json = nlohmann::json;

// A small valid tokenizer.json to break in one place at a time.
json base_tokenizer() {
  return json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteLevel"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}
  })");
}

class TokenizerErrors : public ::testing::Test {
 protected:
  // Writes j as tokenizer.json in the temp folder and returns the folder.
  std::string write(const json& j) {
    dir.write("tokenizer.json", j.dump());
    return dir.path();
  }
  test::TempDir dir;
};

TEST_F(TokenizerErrors, BaseIsValid) {
  Tokenizer t = Tokenizer::load(write(base_tokenizer()));
  EXPECT_EQ(t.encode("ab", true), (std::vector<int32_t>{0, 3}));
}

TEST_F(TokenizerErrors, MissingFileOrFolder) {
  EXPECT_AWQ_ERROR(Tokenizer::load(dir.file("nope")), {dir.file("nope")});
  EXPECT_AWQ_ERROR(Tokenizer::load(dir.path()), {dir.path(), "no tokenizer.json"});
}

TEST_F(TokenizerErrors, InvalidJson) {
  dir.write("tokenizer.json", "{\"model\": {\n\"type\": ");
  EXPECT_AWQ_ERROR(Tokenizer::load(dir.path()), {"tokenizer.json", "invalid JSON"});
  dir.write("tokenizer.json", "");
  EXPECT_AWQ_ERROR(Tokenizer::load(dir.path()), {"tokenizer.json", "invalid JSON"});
  dir.write("tokenizer.json", "[1, 2]");
  EXPECT_AWQ_ERROR(Tokenizer::load(dir.path()), {"tokenizer.json", "expected a JSON object"});
}

TEST_F(TokenizerErrors, MissingModel) {
  json j = base_tokenizer();
  j.erase("model");
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model: missing field"});
}

TEST_F(TokenizerErrors, UnknownModelType) {
  json j = base_tokenizer();
  j["model"]["type"] = "Unigram";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model: unknown type 'Unigram'"});
}

TEST_F(TokenizerErrors, MissingVocab) {
  json j = base_tokenizer();
  j["model"].erase("vocab");
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.vocab: missing field"});
}

TEST_F(TokenizerErrors, UnknownComponentTypes) {
  json j = base_tokenizer();
  j["normalizer"]["normalizers"][0]["type"] = "Precompiled";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)),
                   {"tokenizer.json: normalizer.normalizers[0]: unknown type 'Precompiled'"});
  j = base_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Foo"}};
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)),
                   {"tokenizer.json: pre_tokenizer.pretokenizers[0]: unknown type 'Foo'"});
  j = base_tokenizer();
  j["decoder"]["decoders"][1]["type"] = "Bar";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: decoder.decoders[1]: unknown type 'Bar'"});
  j = base_tokenizer();
  j["post_processor"]["type"] = "Baz";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: post_processor: unknown type 'Baz'"});
  j = base_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0].erase("type");
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: pre_tokenizer.pretokenizers[0].type: missing field"});
}

TEST_F(TokenizerErrors, BadSplitFields) {
  json j = base_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)),
                   {"tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex", "bad regex", "(unclosed"});
  j = base_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)),
                   {"tokenizer.json: pre_tokenizer.pretokenizers[0].behavior: unknown behavior 'Sideways'"});
  j = base_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Glob", "*"}};
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: pre_tokenizer.pretokenizers[0].pattern"});
}

TEST_F(TokenizerErrors, BadMerges) {
  json j = base_tokenizer();
  j["model"]["merges"] = {"a b", "a zz"};
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.merges[1]", "'zz' is not in the vocab"});
  j["model"]["merges"] = json::array({json::array({"b", "a"})});
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.merges[0]", "merged token 'ba'"});
  j["model"]["merges"] = {"ab"};
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.merges[0]"});
  j["model"]["merges"] = {42};
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.merges[0]"});
}

TEST_F(TokenizerErrors, BadVocabAndUnk) {
  json j = base_tokenizer();
  j["model"]["vocab"]["c"] = "three";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.vocab['c']"});
  j = base_tokenizer();
  j["model"]["unk_token"] = "<unk>";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: model.unk_token", "'<unk>'"});
}

TEST_F(TokenizerErrors, BadAddedTokensAndTemplate) {
  json j = base_tokenizer();
  j["added_tokens"][0].erase("content");
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: added_tokens[0].content: missing field"});
  j = base_tokenizer();
  j["added_tokens"][0]["id"] = -3;
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)), {"tokenizer.json: added_tokens[0].id"});
  j = base_tokenizer();
  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<bos>";
  EXPECT_AWQ_ERROR(Tokenizer::load(write(j)),
                   {"tokenizer.json: post_processor.single[0].SpecialToken", "'<bos>' is not in special_tokens"});
}

TEST_F(TokenizerErrors, BadCompanionConfigs) {
  const std::string d = write(base_tokenizer());
  dir.write("tokenizer_config.json", "{\"bos_token\": ");
  EXPECT_AWQ_ERROR(Tokenizer::load(d), {"tokenizer_config.json", "invalid JSON"});
  dir.write("tokenizer_config.json", R"({"add_bos_token": "yes"})");
  EXPECT_AWQ_ERROR(Tokenizer::load(d), {"tokenizer_config.json: add_bos_token", "expected true or false"});
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": {"content": "a"}})");
  dir.write("config.json", R"({"eos_token_id": "two"})");
  EXPECT_AWQ_ERROR(Tokenizer::load(d), {"config.json: eos_token_id", "expected an integer"});
  dir.write("config.json", R"({"eos_token_id": [1, 2], "bos_token_id": null})");
  Tokenizer t = Tokenizer::load(d);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_ids(), (std::vector<int32_t>{1, 2}));
}

TEST_F(TokenizerErrors, DecodeUnknownIdNamesTheId) {
  Tokenizer t = Tokenizer::load(write(base_tokenizer()));
  EXPECT_AWQ_ERROR(t.decode({1, 77}), {"tokenizer.json", "77"});
  EXPECT_AWQ_ERROR(t.id_to_token(-5), {"tokenizer.json", "-5"});
  StreamDecoder sd(t);
  EXPECT_AWQ_ERROR(sd.push(1000), {"1000"});
}

}  // namespace
}  // namespace awq
