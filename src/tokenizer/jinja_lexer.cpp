#include "tokenizer/jinja_lexer.h"

#include <cctype>
#include <cstring>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace awq::jinja {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string normalize_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;  // the text about to be read starts a line (Jinja2's rule)
    while (pos_ < s_.size()) {
      const size_t tag = find_tag(pos_);
      std::string text = s_.substr(pos_, (tag == std::string::npos ? s_.size() : tag) - pos_);
      if (tag == std::string::npos) {
        emit_text(std::move(text), line_at(pos_));
        pos_ = s_.size();
        break;
      }
      const char kind = s_[tag + 1];  // '{', '%' or '#'
      const char mod = tag + 2 < s_.size() ? s_[tag + 2] : '\0';
      const bool has_mod = mod == '-' || mod == '+';
      if (mod == '-') {
        size_t e = text.size();
        while (e > 0 && is_ws(text[e - 1])) --e;
        text.resize(e);
      } else if (mod != '+' && kind != '{') {
        // lstrip_blocks: drop spaces/tabs between the start of the line and the tag.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && text.find_first_not_of(" \t", l_pos) == std::string::npos)
          text.resize(l_pos);
      }
      emit_text(std::move(text), line_at(pos_));
      pos_ = tag + 2 + (has_mod ? 1 : 0);
      const int tag_line = line_at(tag);
      size_t end_start;
      if (kind == '#') {
        const size_t e = s_.find("#}", pos_);
        if (e == std::string::npos) throw Error("line " + std::to_string(tag_line) + ": unclosed comment '{#'");
        end_start = e > pos_ && (s_[e - 1] == '-' || s_[e - 1] == '+') ? e - 1 : e;
        pos_ = e + 2;
      } else {
        out_.push_back({kind == '{' ? Token::Type::VarBegin : Token::Type::BlockBegin, kind == '{' ? "{{" : "{%", tag_line});
        end_start = lex_tag(kind == '{', tag_line);
        out_.push_back({kind == '{' ? Token::Type::VarEnd : Token::Type::BlockEnd, kind == '{' ? "}}" : "%}", line_at(end_start)});
      }
      // end_start: where the closing delimiter (with its modifier) begins; pos_: after it.
      const char end_mod = s_[end_start];
      const size_t after = pos_;
      if (end_mod == '-') {
        while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
      } else if (end_mod != '+' && kind != '{' && pos_ < s_.size() && s_[pos_] == '\n') {
        ++pos_;  // trim_blocks
      }
      line_starting = pos_ > after ? s_[pos_ - 1] == '\n' : false;
    }
    out_.push_back({Token::Type::End, "", line_at(s_.size())});
    return std::move(out_);
  }

  // Normalized source (for line numbers).
  const std::string& source() const { return s_; }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1))
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  int line_at(size_t p) {
    // Lines counted incrementally (positions only move forward, except for tag starts
    // just behind the cursor).
    if (p < line_pos_) {
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < p && line_pos_ < s_.size(); ++line_pos_)
      if (s_[line_pos_] == '\n') ++line_;
    return line_;
  }

  void emit_text(std::string text, int line) {
    if (!text.empty()) out_.push_back({Token::Type::Text, std::move(text), line});
  }

  [[noreturn]] void fail(const std::string& what) { throw Error("line " + std::to_string(line_at(pos_)) + ": " + what); }

  // Reads the tokens of a tag up to its closing delimiter; returns where the delimiter
  // (including a '-' / '+' modifier) starts and leaves pos_ after it.
  size_t lex_tag(bool var, int tag_line) {
    int depth = 0;  // open ( [ {
    for (;;) {
      while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
      if (pos_ >= s_.size())
        throw Error("line " + std::to_string(tag_line) + ": unclosed tag '" + (var ? "{{" : "{%") +
                    "' (missing '" + (var ? "}}" : "%}") + "')");
      const char* close = var ? "}}" : "%}";
      for (const char* m : {"-", "+", ""}) {
        if (var && *m == '+') continue;
        const size_t ml = std::strlen(m);
        if (s_.compare(pos_, ml, m) == 0 && s_.compare(pos_ + ml, 2, close) == 0 && (depth == 0 || !var)) {
          const size_t start = pos_;
          pos_ += ml + 2;
          return start;
        }
      }
      const int line = line_at(pos_);
      const char c = s_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos_;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        out_.push_back({Token::Type::Name, s_.substr(pos_, e - pos_), line});
        pos_ = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = pos_;
        while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
        bool is_float = false;
        if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
        }
        out_.push_back({is_float ? Token::Type::Float : Token::Type::Int, s_.substr(pos_, e - pos_), line});
        pos_ = e;
      } else if (c == '\'' || c == '"') {
        out_.push_back({Token::Type::String, lex_string(c), line});
      } else {
        static const char* const kOps[] = {"==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/",
                                           "%",  "~",  "|",  ".",  ",",  ":",  "(", ")", "[", "]", "{", "}", "="};
        const char* found = nullptr;
        for (const char* op : kOps)
          if (s_.compare(pos_, std::strlen(op), op) == 0) {
            found = op;
            break;
          }
        if (!found) fail(std::string("unexpected character '") + c + "' in a tag");
        if (std::strchr("([{", found[0]) && found[1] == '\0') ++depth;
        if (std::strchr(")]}", found[0]) && found[1] == '\0' && depth > 0) --depth;
        out_.push_back({Token::Type::Op, found, line});
        pos_ += std::strlen(found);
      }
    }
  }

  // Python's "unicode-escape" decoding of a quoted literal, as Jinja2 does it.
  std::string lex_string(char quote) {
    const size_t start = pos_++;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      char c = s_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      auto hex = [&](int n) {
        if (pos_ + size_t(n) > s_.size()) fail("bad escape in a string literal");
        const std::string h = s_.substr(pos_, size_t(n));
        for (char x : h)
          if (!std::isxdigit(static_cast<unsigned char>(x))) fail("bad escape \\" + std::string(1, e) + h + " in a string literal");
        pos_ += size_t(n);
        return char32_t(std::stoul(h, nullptr, 16));
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': utf8::append(out, hex(2)); break;
        case 'u': utf8::append(out, hex(4)); break;
        case 'U': utf8::append(out, hex(8)); break;
        default:
          if (e >= '0' && e <= '7') {
            unsigned v = unsigned(e - '0');
            for (int k = 0; k < 2 && pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '7'; ++k)
              v = v * 8 + unsigned(s_[pos_++] - '0');
            utf8::append(out, char32_t(v));
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    if (pos_ >= s_.size()) {
      pos_ = start;
      fail("unterminated string literal");
    }
    ++pos_;
    return out;
  }

  std::string s_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex(const std::string& source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace awq::jinja
