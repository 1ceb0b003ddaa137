#include "tokenizer/split_behavior.h"

#include <algorithm>

namespace awq::tok {

std::optional<SplitBehavior> parse_split_behavior(std::string_view name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  return std::nullopt;
}

namespace {
struct Span {
  size_t b, e;
  bool match;
};
}  // namespace

void split_by_matches(const Piece& in, const std::vector<std::pair<size_t, size_t>>& matches,
                      SplitBehavior behavior, bool invert, std::vector<Piece>& out) {
  const size_t n = in.text.size();
  if (n == 0) return;
  // The whole text as alternating spans, each flagged match / not match.
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b != prev) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != n) spans.push_back({prev, n, invert});

  // The resulting [b, e) ranges (the flag is only used while folding).
  std::vector<Span> res;
  switch (behavior) {
    case SplitBehavior::Isolated:
      res.swap(spans);
      break;
    case SplitBehavior::Removed:
      for (const Span& s : spans)
        if (!s.match) res.push_back(s);
      break;
    case SplitBehavior::MergedWithPrevious: {
      // A delimiter joins the piece before it.
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.match && !prev_match && !res.empty())
          res.back().e = s.e;
        else
          res.push_back(s);
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      // A delimiter joins the piece after it: the mirror image, folded from the right.
      bool prev_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.match && !prev_match && !res.empty())
          res.back().b = s.b;
        else
          res.push_back(s);
        prev_match = s.match;
      }
      std::reverse(res.begin(), res.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      // Runs of adjacent delimiters become one piece.
      bool prev_match = false;
      for (const Span& s : spans) {
        if (s.match == prev_match && !res.empty())
          res.back().e = s.e;
        else
          res.push_back(s);
        prev_match = s.match;
      }
      break;
    }
  }
  for (const Span& s : res)
    if (s.e > s.b) out.push_back({in.text.substr(s.b, s.e - s.b), in.at_start && s.b == 0});
}

}  // namespace awq::tok
