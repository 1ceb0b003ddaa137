#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/utf8.h"

namespace awq::tok {

namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// ByteFallback: runs of <0xXX> tokens become the text their bytes spell; a run that is not
// valid UTF-8 becomes one U+FFFD per byte (Hugging Face's rule).
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (utf8::is_valid(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < bytes.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (std::string& t : tokens) {
      if (int b = parse_byte_token(t); b >= 0) {
        bytes += char(b);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  // "<0xAB>" -> 0xAB, anything else -> -1.
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    const int h = hex(t[3]), l = hex(t[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Strip: removes up to `start` leading and `stop` trailing `content` characters from each
// token (SentencePiece decoders use it to drop the space the normalizer prepended).
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t c = content_.size();
    for (std::string& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && e - b >= c && t.compare(b, c, content_) == 0; ++k) b += c;
      for (size_t k = 0; k < stop_ && e - b >= c && t.compare(e - c, c, content_) == 0; ++k) e -= c;
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// ByteLevel: characters back to bytes over the whole list, then one lossy UTF-8 string.
// A token with a character outside the byte map (an added token) keeps its own bytes.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const ByteLevelMap& m = ByteLevelMap::get();
    std::string bytes;
    for (const std::string& t : tokens)
      if (!m.decode(t, bytes)) bytes += t;
    tokens.assign(1, utf8::repair(bytes));
  }
};

// Metaspace: the replacement character becomes a space, except in the first token where
// (unless the prepend scheme is "never") it is dropped altogether: Hugging Face's rule.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool strip_first) : rep_(std::move(rep)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      out.reserve(t.size());
      size_t prev = 0;
      for (size_t pos = t.find(rep_); pos != std::string::npos; pos = t.find(rep_, prev)) {
        out.append(t, prev, pos - prev);
        if (!(i == 0 && strip_first_)) out += ' ';
        prev = pos + rep_.size();
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string rep_;
  bool strip_first_;
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing after the last token).
class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (suffix_.empty()) return;
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      const std::string with = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      size_t prev = 0;
      for (size_t pos = t.find(suffix_); pos != std::string::npos; pos = t.find(suffix_, prev)) {
        out.append(t, prev, pos - prev);
        out += with;
        prev = pos + suffix_.size();
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

size_t count_field(const JsonNode& node, const char* key) {
  const int64_t v = node.get_int(key, 0);
  if (v < 0) node.at(key).fail("expected a non-negative count");
  return size_t(v);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const JsonNode& node) {
  if (node.is_null()) return nullptr;
  const std::string type = node.type();
  if (type == "Sequence") {
    JsonNode list = node.at("decoders");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.array_size(); ++i)
      if (auto p = make_decoder(list.at(i))) parts.push_back(std::move(p));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    std::string content = node.at("content").as_string();
    if (content.empty() || utf8::valid_prefix_len(content) != content.size())
      node.at("content").fail("expected one character");
    return std::make_unique<StripDecoder>(content, count_field(node, "start"), count_field(node, "stop"));
  }
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(Pattern(node.at("pattern")), node.at("content").as_string());
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    std::string rep = node.get_string("replacement", "\xE2\x96\x81");
    if (rep.empty() || utf8::valid_prefix_len(rep) != rep.size())
      node.at("replacement").fail("expected one character");
    bool strip_first = true;
    if (auto s = node.find("prepend_scheme")) {
      const std::string v = s->as_string();
      if (v != "always" && v != "first" && v != "never") s->fail("unknown prepend_scheme '" + v + "'");
      strip_first = v != "never";
    } else if (node.find("add_prefix_space")) {
      strip_first = node.at("add_prefix_space").as_bool();
    }
    return std::make_unique<MetaspaceDecoder>(rep, strip_first);
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(node.get_string("suffix", "</w>"));
  node.fail("unknown type '" + type + "'");
}

}  // namespace awq::tok
