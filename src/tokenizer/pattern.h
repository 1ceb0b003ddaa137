// The {"String": "..."} / {"Regex": "..."} pattern objects used by the Replace normalizer,
// the Split pre-tokenizer and the Replace decoder.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/json_node.h"
#include "tokenizer/regex.h"

namespace awq::tok {

class Pattern {
 public:
  // Parses node = {"String": s} or {"Regex": r}; a bad regex is an awq::Error naming node.
  explicit Pattern(const JsonNode& node);
  Pattern(Pattern&&) = default;

  // Non-overlapping [begin, end) byte ranges of the matches in text, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // text with every match replaced by `with`.
  std::string replace_all(std::string_view text, std::string_view with) const;

 private:
  std::string literal_;           // String form
  std::unique_ptr<Regex> regex_;  // Regex form
};

}  // namespace awq::tok
