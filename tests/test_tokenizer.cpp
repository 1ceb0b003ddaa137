// Tokenizer against Hugging Face tokenizers: every case of shared/testdata/tokenizers/
// cases.json for both tokenizers (a SentencePiece-style BPE with byte fallback, and
// Llama-3's byte-level BPE), encode and decode; streaming decode; BOS/EOS; speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/temp_dir.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/json_node.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace awq {
namespace {

using json = nlohmann::json;
const std::string kShared = AWQ_SHARED_DIR;

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

// Loads both reference tokenizers once (Llama-3's is gunzipped into a temp folder).
class TokenizerRef : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cases_ = new json(read_json(kShared + "/testdata/tokenizers/cases.json"));
    tiny_ = new Tokenizer(Tokenizer::load(kShared + "/models/tiny-llama-gqa"));
    tmp_ = new test::TempDir();
    const std::string src = kShared + "/testdata/tokenizers/llama3";
    const std::string cmd = "gzip -dc '" + src + "/tokenizer.json.gz' > '" + tmp_->file("tokenizer.json") + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::copy_file(src + "/tokenizer_config.json", tmp_->file("tokenizer_config.json"));
    llama3_ = new Tokenizer(Tokenizer::load(tmp_->path()));
  }
  static void TearDownTestSuite() {
    delete llama3_;
    delete tiny_;
    delete tmp_;
    delete cases_;
    llama3_ = tiny_ = nullptr;
    tmp_ = nullptr;
    cases_ = nullptr;
  }
  // A view, not a std::string: GCC 13 flagged the reference returned for a temporary string
  // argument as possibly dangling (-Wdangling-reference).
  static const json& cases(std::string_view name) { return (*cases_)["tokenizers"][name]["cases"]; }

  // Runs every case of one tokenizer; returns how many passed every check.
  static int check_all_cases(const Tokenizer& tok, const std::string& name) {
    const json& cs = cases(name);
    int passed = 0;
    for (const json& c : cs) {
      const std::string text = c["text"];
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      const auto ids_sp = c["ids_with_special"].get<std::vector<int32_t>>();
      const auto tokens = c["tokens"].get<std::vector<std::string>>();
      SCOPED_TRACE(name + " case " + json(text).dump());
      bool ok = true;
      // EXPECT_EQ and count: the summary line says how many cases passed every check.
      auto same = [&ok](const auto& got, const auto& want) {
        EXPECT_EQ(got, want);
        ok = ok && got == want;
      };
      same(tok.encode(text, false), ids);
      same(tok.encode(text, true), ids_sp);
      std::vector<std::string> got_tokens;
      for (int32_t id : ids) got_tokens.push_back(tok.id_to_token(id));
      same(got_tokens, tokens);
      same(tok.decode(ids, false), c["decode"].get<std::string>());
      same(tok.decode(ids_sp, false), c["decode_with_special_keep"].get<std::string>());
      same(tok.decode(ids_sp, true), c["decode_with_special_skip"].get<std::string>());
      passed += ok;
    }
    return passed;
  }

  // Streams ids through a StreamDecoder: every chunk valid UTF-8, concatenation == decode.
  static void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip, const std::string& what) {
    StreamDecoder sd(tok, skip);
    std::string all;
    for (int32_t id : ids) {
      std::string chunk = sd.push(id);
      EXPECT_TRUE(utf8::is_valid(chunk)) << what << " id " << id;
      all += chunk;
    }
    std::string rest = sd.flush();
    EXPECT_TRUE(utf8::is_valid(rest)) << what;
    all += rest;
    EXPECT_EQ(all, tok.decode(ids, skip)) << what;
  }

  static json* cases_;
  static test::TempDir* tmp_;
  static Tokenizer* tiny_;
  static Tokenizer* llama3_;
};
json* TokenizerRef::cases_ = nullptr;
test::TempDir* TokenizerRef::tmp_ = nullptr;
Tokenizer* TokenizerRef::tiny_ = nullptr;
Tokenizer* TokenizerRef::llama3_ = nullptr;

TEST_F(TokenizerRef, CaseFileHasBothTokenizers) {
  EXPECT_EQ(cases("tiny-llama-gqa").size(), 49u);
  EXPECT_EQ(cases("llama3").size(), 49u);
  EXPECT_EQ(tiny_->vocab_size(), (*cases_)["tokenizers"]["tiny-llama-gqa"]["vocab_size"].get<int32_t>());
  EXPECT_EQ(llama3_->vocab_size(), (*cases_)["tokenizers"]["llama3"]["vocab_size"].get<int32_t>());
}

TEST_F(TokenizerRef, TinyLlamaAllCasesMatchHuggingFace) {
  const int passed = check_all_cases(*tiny_, "tiny-llama-gqa");
  EXPECT_EQ(passed, int(cases("tiny-llama-gqa").size()));
  std::printf("tiny-llama-gqa: %d/%zu cases pass\n", passed, cases("tiny-llama-gqa").size());
}

TEST_F(TokenizerRef, Llama3AllCasesMatchHuggingFace) {
  const int passed = check_all_cases(*llama3_, "llama3");
  EXPECT_EQ(passed, int(cases("llama3").size()));
  std::printf("llama3: %d/%zu cases pass\n", passed, cases("llama3").size());
}

TEST_F(TokenizerRef, StreamDecoderConcatenatesToDecode) {
  for (const auto& [name, tok] : {std::pair{"tiny-llama-gqa", tiny_}, std::pair{"llama3", llama3_}}) {
    for (const json& c : cases(name)) {
      const std::string what = std::string(name) + " " + c["text"].dump();
      for (bool skip : {false, true}) {
        check_stream(*tok, c["ids"].get<std::vector<int32_t>>(), skip, what);
        check_stream(*tok, c["ids_with_special"].get<std::vector<int32_t>>(), skip, what);
      }
    }
  }
}

TEST_F(TokenizerRef, StreamDecoderHoldsBackPartialCharacters) {
  // "𝕎" is four <0xXX> byte tokens in the tiny vocabulary: nothing comes out until the
  // fourth, then the whole character.
  const auto ids = tiny_->encode("a𝕎", false);
  ASSERT_GE(ids.size(), 5u);
  StreamDecoder sd(*tiny_);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(sd.push(id));
  EXPECT_EQ(chunks.front(), "a");
  for (size_t i = 1; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i], "") << i;
  EXPECT_EQ(chunks.back(), "𝕎");
  EXPECT_EQ(sd.flush(), "");

  // An unfinished sequence comes out as U+FFFD at flush, like decode().
  StreamDecoder sd2(*tiny_);
  EXPECT_EQ(sd2.push(ids[1]), "");
  EXPECT_EQ(sd2.flush(), tiny_->decode({ids[1]}));
}

// The three ways a word reaches the merge loop give the same ids: the binary-heap queue,
// the rank-bucket queue (long words), and tokenize(), which cuts long words where no merge
// can cross and caches the pieces. Random long words, plus a slab of real text.
TEST_F(TokenizerRef, BpeQueuesAndLongWordCuttingAgree) {
  auto load_model = [](const std::string& file) {
    static std::vector<std::unique_ptr<tok::json>> keep;  // JsonNode refers into it
    keep.push_back(std::make_unique<tok::json>(tok::parse_json_file(file)));
    tok::JsonNode root(*keep.back(), std::make_shared<const std::string>(file), "");
    return std::make_unique<tok::BpeModel>(root.at("model"));
  };
  using Q = tok::BpeModel::Queue;
  std::mt19937 rng(1234);

  const auto tiny = load_model(kShared + "/models/tiny-llama-gqa/tokenizer.json");
  const std::vector<std::string> alphabet = {"\u2581", "\u2581", "\u2581", "a", "e", "t", "h", "n", "s", "r", "o",
                                             "i", "l", "1", "9", ".", ",", "\u00e9", "\u4e2d", "\n", "\U0001D54E", "x"};
  for (int trial = 0; trial < 20; ++trial) {
    std::string word;
    const int n = trial < 10 ? 3000 : 300;
    for (int i = 0; i < n; ++i) word += alphabet[rng() % alphabet.size()];
    std::vector<int32_t> heap, buckets, cut;
    tiny->merge_word(word, heap, Q::Heap);
    tiny->merge_word(word, buckets, Q::Buckets);
    tiny->tokenize(word, cut);
    EXPECT_EQ(heap, buckets) << trial;
    EXPECT_EQ(heap, cut) << trial;
  }
  {
    // 20 KB of val.txt, normalized the way the tiny tokenizer does (one word).
    std::ifstream in(kShared + "/data/val.txt", std::ios::binary);
    std::string text(20000, '\0');
    in.read(text.data(), std::streamsize(text.size()));
    while (!utf8::is_valid(text)) text.pop_back();
    std::string word = "\u2581";
    for (char c : text) word += c == ' ' ? std::string("\u2581") : std::string(1, c);
    std::vector<int32_t> heap, cut;
    tiny->merge_word(word, heap, Q::Heap);
    tiny->tokenize(word, cut);
    EXPECT_EQ(heap, cut);
  }

  const auto llama3 = load_model(tmp_->file("tokenizer.json"));
  for (int trial = 0; trial < 10; ++trial) {
    // Arbitrary bytes (split UTF-8 sequences included): byte-level BPE takes anything.
    const std::string pool = "abcdefghij  ...,,\xC3\xA9\xE4\xB8\xAD";
    std::string bytes;
    for (int i = 0; i < 3000; ++i) bytes += pool[rng() % pool.size()];
    const std::string word = tok::ByteLevelMap::get().encode(bytes);
    std::vector<int32_t> heap, buckets, viaTokenize;
    llama3->merge_word(word, heap, Q::Heap);
    llama3->merge_word(word, buckets, Q::Buckets);
    llama3->tokenize(word, viaTokenize);
    EXPECT_EQ(heap, buckets) << trial;
    EXPECT_EQ(heap, viaTokenize) << trial;
  }
}

// encode() is const and thread-safe (the word cache is shared): four threads encoding the
// same texts get the single-threaded ids.
TEST_F(TokenizerRef, EncodeIsThreadSafe) {
  for (const Tokenizer* tok : {tiny_, llama3_}) {
    std::vector<std::string> texts;
    for (const json& c : cases("llama3")) texts.push_back(c["text"]);
    std::vector<std::vector<int32_t>> want;
    for (const auto& t : texts) want.push_back(tok->encode(t, true));
    std::vector<std::thread> threads;
    std::vector<int> mismatches(4, 0);
    for (int k = 0; k < 4; ++k)
      threads.emplace_back([&, k] {
        for (int rep = 0; rep < 20; ++rep)
          for (size_t i = 0; i < texts.size(); ++i)
            mismatches[size_t(k)] += tok->encode(texts[(i + size_t(k) * 7) % texts.size()], true) !=
                                     want[(i + size_t(k) * 7) % texts.size()];
      });
    for (auto& t : threads) t.join();
    EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  }
}

TEST_F(TokenizerRef, TinyLlamaBosEos) {
  EXPECT_EQ(tiny_->bos_id(), 1);
  ASSERT_FALSE(tiny_->eos_ids().empty());
  EXPECT_EQ(tiny_->eos_ids().front(), 2);
  EXPECT_TRUE(tiny_->add_bos());
  EXPECT_FALSE(tiny_->add_eos());
  EXPECT_TRUE(tiny_->is_special(1));
  EXPECT_TRUE(tiny_->is_special(2));
  EXPECT_FALSE(tiny_->is_special(22557));
  EXPECT_EQ(tiny_->token_to_id("<s>"), 1);
  EXPECT_EQ(tiny_->token_to_id("▁Hello"), 22557);
  EXPECT_EQ(tiny_->token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(tiny_->id_to_token(1), "<s>");
}

TEST_F(TokenizerRef, Llama3BosEos) {
  EXPECT_EQ(llama3_->bos_id(), 128000);
  ASSERT_FALSE(llama3_->eos_ids().empty());
  EXPECT_EQ(llama3_->eos_ids().front(), 128001);
  // Its post-processor is ByteLevel only: encode(..., true) adds nothing.
  EXPECT_FALSE(llama3_->add_bos());
  EXPECT_TRUE(llama3_->is_special(128000));
}

TEST_F(TokenizerRef, LoadAcceptsTheJsonFilePath) {
  Tokenizer t = Tokenizer::load(kShared + "/models/tiny-llama-gqa/tokenizer.json");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.encode("Hello world", true), tiny_->encode("Hello world", true));
  Tokenizer moved = std::move(t);
  EXPECT_EQ(moved.vocab_size(), 32000);
}

TEST_F(TokenizerRef, DecodeRejectsUnknownIds) {
  EXPECT_THROW(tiny_->decode({1, 32000}), Error);
  EXPECT_THROW(tiny_->decode({-1}), Error);
  EXPECT_THROW(llama3_->decode({128256}), Error);
  EXPECT_THROW(tiny_->id_to_token(40000), Error);
  try {
    tiny_->decode({99999});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("99999"), std::string::npos) << e.what();
  }
}

TEST_F(TokenizerRef, InvalidUtf8InputIsEncodedAsReplacementCharacter) {
  EXPECT_EQ(tiny_->encode("a\xFF" "b", false), tiny_->encode("a\xEF\xBF\xBD" "b", false));
  EXPECT_EQ(llama3_->encode("a\xC3", false), llama3_->encode("a\xEF\xBF\xBD", false));
}

// The perplexity text: the exact id count of the PyTorch reference, and fast.
TEST_F(TokenizerRef, TinyLlamaEncodesValTxtFast) {
  std::ifstream in(kShared + "/data/val.txt", std::ios::binary);
  ASSERT_TRUE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json ref = read_json(kShared + "/models/tiny-llama-gqa/reference.json");
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tiny_->encode(text, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ids.size(), ref["texts"]["val"]["tokens"].get<size_t>());
  EXPECT_EQ(ids.size(), 114236u);
  std::printf("val.txt: %zu bytes -> %zu ids in %.3f s (tiny-llama-gqa)\n", text.size(), ids.size(), s);
  EXPECT_LT(s, 5.0);  // ~0.1 s in Release; generous for sanitizer builds
  EXPECT_EQ(tiny_->decode(ids), text);

  const auto t1 = std::chrono::steady_clock::now();
  const auto ids3 = llama3_->encode(text, false);
  const double s3 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("val.txt: %zu bytes -> %zu ids in %.3f s (llama3)\n", text.size(), ids3.size(), s3);
  EXPECT_LT(s3, 5.0);
  EXPECT_EQ(llama3_->decode(ids3), text);
}

}  // namespace
}  // namespace awq
