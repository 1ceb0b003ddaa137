// Tokenizer components not used by the two reference tokenizers, on small hand-written
// tokenizer.json files in tests/data/tokenizer/ whose expected ids are derived by hand in
// the comments: Metaspace (prepend_scheme "first"), Digits, NFKC / NFC, Lowercase,
// Replace (Regex), unk fusing, normalized / lstrip / single_word added tokens,
// TemplateProcessing with a suffix, GPT-2's ByteLevel regex, a Qwen2-style Split regex,
// end_of_word_suffix + BPEDecoder, Whitespace, Strip, and the split behaviors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/split_behavior.h"
#include "tokenizer/tokenizer.h"

namespace awq {
namespace {

using Ids = std::vector<int32_t>;
const std::string kData = std::string(AWQ_TEST_DATA_DIR) + "/tokenizer";

std::string stream_all(const Tokenizer& t, const Ids& ids, bool skip) {
  StreamDecoder sd(t, skip);
  std::string s;
  for (int32_t id : ids) s += sd.push(id);
  return s + sd.flush();
}

// Vocab: <unk>0 <s>1 </s>2 ▁3 a4 b5 c6 1:7 2:8 3:9 ▁a10 ▁ab11 ab12 é13 ▁é14;
// merges (by rank) "▁ a", "a b", "▁a b", "▁ é". Added: [SEP]15 (normalized, not
// special), <mask>16 (lstrip), ab17 (single_word, not special).
// Normalizer NFKC -> Lowercase -> tabs to a space; pre-tokenizer Digits(individual) ->
// Metaspace(prepend "first"); post-processor "<s> $A </s>"; decoder Metaspace.
class TokenizerSentencePieceStyle : public ::testing::Test {
 protected:
  Tokenizer tok = Tokenizer::load(kData + "/sentencepiece_style");
};

TEST_F(TokenizerSentencePieceStyle, MetaspacePrependsOnlyAtTheStartOfTheInput) {
  // "abc": raw "ab" is rejected (single_word: 'c' follows); "▁abc" -> ▁a, ▁ab | c.
  EXPECT_EQ(tok.encode("abc", false), (Ids{11, 6}));
  // After "<s>" the text no longer starts the input: no "▁" (scheme "first"); "ab" merges.
  EXPECT_EQ(tok.encode("<s>abc", false), (Ids{1, 12, 6}));
  EXPECT_EQ(tok.encode("<s>abc", true), (Ids{1, 1, 12, 6, 2}));
  EXPECT_EQ(tok.decode({1, 12, 6}), "<s>abc");
  EXPECT_EQ(tok.decode({1, 12, 6}, true), "abc");
}

TEST_F(TokenizerSentencePieceStyle, SingleWordAddedToken) {
  // "AB ab": the raw "ab" stands alone -> 17; "AB " -> "ab " -> "▁ab▁" -> ▁ab | ▁.
  EXPECT_EQ(tok.encode("AB ab", false), (Ids{11, 3, 17}));
  EXPECT_EQ(tok.decode({11, 3, 17}), "ab ab");
  // "xab": 'x' precedes "ab" -> no match; ▁, x (unk), a b -> ab.
  EXPECT_EQ(tok.encode("xab", false), (Ids{3, 0, 12}));
}

TEST_F(TokenizerSentencePieceStyle, DigitsAreIsolated) {
  // Digits splits "a123" into a|1|2|3; only "a" starts the input, so only it gets "▁".
  EXPECT_EQ(tok.encode("a123", false), (Ids{10, 7, 8, 9}));
  EXPECT_EQ(tok.decode({10, 7, 8, 9}), "a123");
  EXPECT_EQ(stream_all(tok, {10, 7, 8, 9}, true), "a123");
}

TEST_F(TokenizerSentencePieceStyle, NormalizersRun) {
  EXPECT_EQ(tok.encode("\uFF41\uFF42", false), (Ids{11}));  // NFKC: fullwidth "ａｂ" -> "ab"
  EXPECT_EQ(tok.encode("e\u0301", false), (Ids{14}));       // NFKC composes é; "▁ é" merges
  EXPECT_EQ(tok.encode("\u00C9", false), (Ids{14}));        // Lowercase: É -> é
  EXPECT_EQ(tok.encode("a\t\tb", false), (Ids{10, 3, 5}));  // Replace: tabs -> " " -> ▁a | ▁ b
  EXPECT_EQ(tok.decode({10, 3, 5}), "a b");
}

TEST_F(TokenizerSentencePieceStyle, UnknownCharactersFuseIntoOneUnk) {
  EXPECT_EQ(tok.encode("xyz", false), (Ids{3, 0}));  // ▁ then one <unk> for "xyz"
}

TEST_F(TokenizerSentencePieceStyle, NormalizedAddedTokenMatchesAfterNormalization) {
  // The added token "[SEP]" (normalized=true) is looked for as its normalized form
  // "[sep]" in the normalized text, so "[Sep]" matches too; "b" after it is not at the
  // start of the input, so it gets no "▁". Decoding gives the token's own content.
  EXPECT_EQ(tok.encode("A[Sep]b", false), (Ids{10, 15, 5}));
  EXPECT_EQ(tok.encode("A[SEP]b", false), (Ids{10, 15, 5}));
  EXPECT_EQ(tok.decode({10, 15, 5}), "a[SEP]b");
  EXPECT_FALSE(tok.is_special(15));
}

TEST_F(TokenizerSentencePieceStyle, LstripAddedTokenTakesTheSpaceBeforeIt) {
  // "c <mask>": lstrip widens <mask> over " ", leaving "c" -> ▁ c (no "▁c" token).
  EXPECT_EQ(tok.encode("c <mask>", false), (Ids{3, 6, 16}));
  EXPECT_TRUE(tok.is_special(16));
}

TEST_F(TokenizerSentencePieceStyle, TemplateAddsBosAndEos) {
  EXPECT_EQ(tok.bos_id(), -1);  // no tokenizer_config.json / config.json here
  EXPECT_EQ(tok.encode("", true), (Ids{1, 2}));
  EXPECT_EQ(tok.decode({1, 11, 3, 17, 2}), "<s> ab ab</s>");
  EXPECT_EQ(tok.decode({1, 11, 3, 17, 2}, true), "ab ab");
  EXPECT_EQ(stream_all(tok, {1, 11, 3, 17, 2}, false), "<s> ab ab</s>");
  EXPECT_EQ(stream_all(tok, {1, 11, 3, 17, 2}, true), "ab ab");
}

// Byte-level vocab: ids 0..255 are the 256 byte characters (id = byte value), then
// merges "Ġ t"->Ġt 256, "h e"->he 257, "Ġt he"->Ġthe 258, "1 2"->12 259, "l o"->lo 260,
// "lo w"->low 261; added <|endoftext|>263 <|im_start|>264 <|im_end|>265.
TEST(TokenizerGpt2Style, ByteLevelRegexAndMerges) {
  Tokenizer tok = Tokenizer::load(kData + "/gpt2_style");
  // GPT-2 regex: "the" | " 123" | " low" -> t he | Ġ 12 3 | Ġ low.
  EXPECT_EQ(tok.encode("the 123 low", false), (Ids{116, 257, 32, 259, 51, 32, 261}));
  // " the" -> Ġ t h e -> Ġt, he -> Ġthe.
  EXPECT_EQ(tok.encode("the the", false), (Ids{116, 257, 258}));
  EXPECT_EQ(tok.decode({116, 257, 32, 259, 51, 32, 261}), "the 123 low");
  // Bytes of a multi-byte character: "é" = C3 A9 -> ids 195, 169.
  EXPECT_EQ(tok.encode("é", false), (Ids{195, 169}));
  EXPECT_EQ(stream_all(tok, {195, 169}, true), "é");
  EXPECT_EQ(tok.encode("x<|endoftext|>", false), (Ids{120, 263}));
  EXPECT_EQ(tok.decode({120, 263}, true), "x");
}

TEST(TokenizerGpt2Style, NullPostProcessorFallsBackToTokenizerConfig) {
  Tokenizer tok = Tokenizer::load(kData + "/gpt2_style/tokenizer.json");
  // tokenizer_config.json: add_bos_token true, bos_token {"content": "<|endoftext|>"};
  // config.json: eos_token_id [263, 265].
  EXPECT_EQ(tok.bos_id(), 263);
  EXPECT_EQ(tok.eos_ids(), (Ids{263, 265}));
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("the", true), (Ids{263, 116, 257}));
  EXPECT_EQ(tok.vocab_size(), 266);
}

TEST(TokenizerQwenStyle, SplitRegexNfcAndChatTokens) {
  Tokenizer tok = Tokenizer::load(kData + "/qwen_style");
  // The Qwen2 regex takes digits one at a time: "the" | " " | 1 | 2 | 3 | " low".
  EXPECT_EQ(tok.encode("the 123 low", false), (Ids{116, 257, 32, 49, 50, 51, 32, 261}));
  // NFC: "e" + U+0301 -> "é" = C3 A9.
  EXPECT_EQ(tok.encode("cafe\u0301", false), (Ids{99, 97, 102, 195, 169}));
  // Chat markers are added tokens; "\n" is its own piece (Ċ = byte 10).
  const Ids chat{264, 117, 115, 101, 114, 10, 104, 105, 265};
  EXPECT_EQ(tok.encode("<|im_start|>user\nhi<|im_end|>", false), chat);
  EXPECT_EQ(tok.encode("<|im_start|>user\nhi<|im_end|>", true), chat);  // ByteLevel adds nothing
  EXPECT_EQ(tok.decode(chat), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tok.decode(chat, true), "user\nhi");
  EXPECT_EQ(stream_all(tok, chat, true), "user\nhi");
  EXPECT_EQ(tok.bos_id(), -1);                // bos_token null, no bos_token_id
  EXPECT_EQ(tok.eos_ids(), (Ids{265}));       // eos_token and generation_config agree
  EXPECT_FALSE(tok.add_bos());
}

// Vocab a0 b1 a</w>2 b</w>3 ab</w>4 !</w>5; merge "a b</w>"; Strip normalizer,
// Whitespace pre-tokenizer, BPEDecoder.
TEST(TokenizerSuffixBpe, EndOfWordSuffix) {
  Tokenizer tok = Tokenizer::load(kData + "/suffix_bpe");
  // "  ab ba!  " -> strip -> "ab" | "ba" | "!" -> ab</w> | b a</w> | !</w>.
  EXPECT_EQ(tok.encode("  ab ba!  ", false), (Ids{4, 1, 2, 5}));
  EXPECT_EQ(tok.decode({4, 1, 2, 5}), "ab ba !");
}

// Hugging Face's documented example for SplitDelimiterBehavior.
TEST(TokenizerSplitBehavior, AllBehaviors) {
  const tok::Piece in{"the-final--countdown", true};
  std::vector<std::pair<size_t, size_t>> dashes;
  for (size_t i = 0; i < in.text.size(); ++i)
    if (in.text[i] == '-') dashes.emplace_back(i, i + 1);
  auto run = [&](tok::SplitBehavior b, bool invert = false) {
    std::vector<tok::Piece> out;
    tok::split_by_matches(in, dashes, b, invert, out);
    std::vector<std::string> s;
    for (const auto& p : out) s.push_back(p.text);
    return s;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(run(tok::SplitBehavior::Removed), (V{"the", "final", "countdown"}));
  EXPECT_EQ(run(tok::SplitBehavior::Isolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(run(tok::SplitBehavior::MergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(run(tok::SplitBehavior::MergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(run(tok::SplitBehavior::Contiguous), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(run(tok::SplitBehavior::Removed, /*invert=*/true), (V{"-", "-", "-"}));
}

}  // namespace
}  // namespace awq
