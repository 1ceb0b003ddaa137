// A compiled PCRE2 pattern (UTF + UCP, JIT when available) that lists all non-overlapping
// matches in a string, the way Hugging Face tokenizers' Split / Replace use Oniguruma.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace awq::tok {

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message when the pattern does not compile
  // (callers turn it into an awq::Error naming the field).
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // [begin, end) byte ranges of every match, left to right. Empty matches are reported
  // and skipped over by one character. `text` must be valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace awq::tok
