#include "tokenizer/pre_tokenizer.h"

#include <utf8proc.h>

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/regex.h"
#include "tokenizer/split_behavior.h"
#include "tokenizer/utf8.h"

namespace awq::tok {

void PreTokenizer::run(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces) split(p, out);
  pieces = std::move(out);
}

namespace {

// GPT-2's word pattern, used by the ByteLevel pre-tokenizer when use_regex is set.
const Regex& gpt2_regex() {
  static const Regex re(
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return re;
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    std::vector<Piece> cur{in};
    for (const auto& p : parts_) p->run(cur);
    for (Piece& p : cur) out.push_back(std::move(p));
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// ByteLevel: optional leading space, optional GPT-2 split, then every byte becomes its
// printable stand-in character.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    Piece p{std::string(), in.at_start};
    p.text.reserve(in.text.size() + 1);
    if (add_prefix_space_ && (in.text.empty() || in.text[0] != ' ')) p.text += ' ';
    p.text += in.text;
    const size_t first = out.size();
    if (use_regex_)
      split_by_matches(p, gpt2_regex().find_all(p.text), SplitBehavior::Isolated, false, out);
    else if (!p.text.empty())
      out.push_back(std::move(p));
    const ByteLevelMap& m = ByteLevelMap::get();
    for (size_t i = first; i < out.size(); ++i) out[i].text = m.encode(out[i].text);
  }

 private:
  bool add_prefix_space_, use_regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    split_by_matches(in, pattern_.find_all(in.text), behavior_, invert_, out);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Metaspace: spaces become the replacement character ("▁"), which is prepended per the
// scheme and then starts each word.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  MetaspacePreTokenizer(std::string replacement, Prepend scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    Piece p{std::string(), in.at_start};
    p.text.reserve(in.text.size() + rep_.size());
    for (char c : in.text) {
      if (c == ' ')
        p.text += rep_;
      else
        p.text += c;
    }
    const bool starts_with_rep = p.text.compare(0, rep_.size(), rep_) == 0;
    if (!starts_with_rep && (scheme_ == Prepend::Always || (scheme_ == Prepend::First && in.at_start)))
      p.text.insert(0, rep_);
    if (!split_) {
      if (!p.text.empty()) out.push_back(std::move(p));
      return;
    }
    std::vector<std::pair<size_t, size_t>> matches;
    for (size_t pos = p.text.find(rep_); pos != std::string::npos; pos = p.text.find(rep_, pos + rep_.size()))
      matches.emplace_back(pos, pos + rep_.size());
    split_by_matches(p, matches, SplitBehavior::MergedWithNext, false, out);
  }

 private:
  std::string rep_;
  Prepend scheme_;
  bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    split_by_matches(in, char_matches(in.text, utf8::is_numeric),
                     individual_ ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false, out);
  }

 private:
  bool individual_;
};

// Whitespace: words are runs of \w or runs of [^\w\s]; whitespace between them is dropped.
// (PCRE2's Unicode \w is letters, digits and '_'; Rust's also takes combining marks, so
// a decomposed accent can split differently. NFC-normalized text is unaffected.)
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void split(const Piece& in, std::vector<Piece>& out) const override {
    static const Regex re(R"(\w+|[^\w\s]+)");
    split_by_matches(in, re.find_all(in.text), SplitBehavior::Removed, /*invert=*/true, out);
  }
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void split(const Piece& in, std::vector<Piece>& out) const override {
    split_by_matches(in, char_matches(in.text, utf8::is_whitespace), SplitBehavior::Removed, false, out);
  }
};

// Rust's char::is_ascii_punctuation || Unicode category P*.
bool is_punctuation(char32_t cp) {
  if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  switch (utf8proc_category(utf8proc_int32_t(cp))) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

class PunctuationPreTokenizer final : public PreTokenizer {
 public:
  explicit PunctuationPreTokenizer(SplitBehavior b) : behavior_(b) {}
  void split(const Piece& in, std::vector<Piece>& out) const override {
    split_by_matches(in, char_matches(in.text, is_punctuation), behavior_, false, out);
  }

 private:
  SplitBehavior behavior_;
};

// BertPreTokenizer: split on whitespace (dropped), then isolate each punctuation mark.
class BertPreTokenizer final : public PreTokenizer {
 public:
  void split(const Piece& in, std::vector<Piece>& out) const override {
    std::vector<Piece> words;
    split_by_matches(in, char_matches(in.text, utf8::is_whitespace), SplitBehavior::Removed, false, words);
    for (const Piece& w : words)
      split_by_matches(w, char_matches(w.text, is_punctuation), SplitBehavior::Isolated, false, out);
  }
};

SplitBehavior behavior_field(const JsonNode& node, const char* key, SplitBehavior def) {
  auto b = node.find(key);
  if (!b) return def;
  auto parsed = parse_split_behavior(b->as_string());
  if (!parsed) b->fail("unknown behavior '" + b->as_string() + "'");
  return *parsed;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node) {
  if (node.is_null()) return nullptr;
  const std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.array_size(); ++i)
      if (auto p = make_pre_tokenizer(list.at(i))) parts.push_back(std::move(p));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(node.get_bool("add_prefix_space", true),
                                                   node.get_bool("use_regex", true));
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(Pattern(node.at("pattern")),
                                               behavior_field(node, "behavior", SplitBehavior::Isolated),
                                               node.get_bool("invert", false));
  if (type == "Metaspace") {
    std::string rep = node.get_string("replacement", "\xE2\x96\x81");  // U+2581 "▁"
    if (rep.empty() || utf8::valid_prefix_len(rep) != rep.size())
      node.at("replacement").fail("expected one character");
    using P = MetaspacePreTokenizer::Prepend;
    P scheme = P::Always;
    if (auto s = node.find("prepend_scheme")) {
      const std::string v = s->as_string();
      if (v == "always") scheme = P::Always;
      else if (v == "first") scheme = P::First;
      else if (v == "never") scheme = P::Never;
      else s->fail("unknown prepend_scheme '" + v + "'");
    } else if (node.find("add_prefix_space")) {
      // Files written before prepend_scheme existed.
      scheme = node.at("add_prefix_space").as_bool() ? P::Always : P::Never;
    }
    return std::make_unique<MetaspacePreTokenizer>(rep, scheme, node.get_bool("split", true));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(node.get_bool("individual_digits", false));
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  if (type == "Punctuation")
    return std::make_unique<PunctuationPreTokenizer>(behavior_field(node, "behavior", SplitBehavior::Isolated));
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  node.fail("unknown type '" + type + "'");
}

}  // namespace awq::tok
