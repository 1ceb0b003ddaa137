// The added_tokens of tokenizer.json: strings (special tokens like "<s>", chat markers)
// that are cut out of the text whole before the normalizer and the model see it.
//
// Matching follows Hugging Face tokenizers: leftmost-longest, non-overlapping; tokens with
// normalized=false (all special tokens in practice) are matched in the raw text, tokens
// with normalized=true in the normalized text of each remaining stretch, by their own
// normalized form (with a Lowercase normalizer "[SEP]" matches "[sep]"). single_word only
// accepts a match with no word character on either side; lstrip / rstrip widen a match
// over the whitespace before / after it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace awq::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A stretch of text: [begin, end) bytes, and the added token it is (-1: ordinary text).
struct Segment {
  size_t begin, end;
  int32_t id;
};

class Normalizer;

class AddedTokens {
 public:
  void add(AddedToken t);
  // Builds the matchers; call once after the last add(). Like Hugging Face, the tokens
  // with normalized=true are looked for in their normalized form (normalizer may be null).
  void build(const Normalizer* normalizer);

  // Cuts text into segments covering it; `normalized_pass` picks the tokens matched on
  // normalized text (true) or on raw text (false).
  std::vector<Segment> split(std::string_view text, bool normalized_pass) const;

  const AddedToken* by_id(int32_t id) const;
  std::optional<int32_t> find(std::string_view content) const;
  bool any_normalized() const { return any_normalized_; }
  int32_t max_id() const { return max_id_; }

 private:
  // A byte trie over token contents; one per pass.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> next;  // sorted by byte
      int32_t token = -1;                                   // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool empty() const { return nodes.size() == 1; }
    void insert(std::string_view s, int32_t token);
    // Longest token that starts at text[pos]: (token index, length), or (-1, 0).
    std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
  };
  bool accept_single_word(std::string_view text, size_t b, size_t e) const;

  std::vector<AddedToken> tokens_;
  Trie raw_trie_, norm_trie_;
  std::vector<int32_t> index_by_id_;  // id -> index into tokens_, -1 when none
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> id_by_content_;
  bool any_normalized_ = false;
  int32_t max_id_ = -1;
};

}  // namespace awq::tok
