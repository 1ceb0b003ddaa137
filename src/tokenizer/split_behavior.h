// How a pre-tokenizer turns the matches of a pattern into pieces: Hugging Face's
// SplitDelimiterBehavior (Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous), shared by Split, Metaspace, Digits, Whitespace, Punctuation.
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/pre_tokenizer.h"

namespace awq::tok {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Parses a behavior name ("Isolated", ...); nullopt when unknown.
std::optional<SplitBehavior> parse_split_behavior(std::string_view name);

// Cuts in.text at the matches ([begin, end) byte ranges, sorted, non-overlapping) by the
// behavior; with invert the matches and the text between them swap roles. Appends the
// non-empty pieces to out.
void split_by_matches(const Piece& in, const std::vector<std::pair<size_t, size_t>>& matches,
                      SplitBehavior behavior, bool invert, std::vector<Piece>& out);

// The [begin, end) range of every character of s for which pred(code point) holds.
template <class Pred>
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view s, Pred pred);

}  // namespace awq::tok

#include "tokenizer/utf8.h"

namespace awq::tok {
template <class Pred>
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t b = i;
    if (pred(utf8::next(s, i))) out.emplace_back(b, i);
  }
  return out;
}
}  // namespace awq::tok
