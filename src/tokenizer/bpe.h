// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocab, ranked merges,
// byte fallback (<0xXX> tokens), unk token, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix. Turns one pre-tokenized word into token ids.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_node.h"
#include "tokenizer/pair_map.h"

namespace awq::tok {

// Hash for heterogeneous (string_view) lookup in string-keyed maps.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// One symbol of a word being merged: a node of a doubly linked list over a vector.
struct BpeSymbol {
  int32_t id;
  int32_t prev, next;  // -1 at the ends
  bool alive;          // false once merged into its left neighbour
};

class BpeModel {
 public:
  // node: the "model" object (its "type" already checked to be "BPE").
  explicit BpeModel(const JsonNode& node);
  ~BpeModel();

  // Appends the ids of one word. Thread-safe (the word cache is locked).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  // The merge loop's candidate queue: a binary heap, or rank buckets for long words.
  enum class Queue { Auto, Heap, Buckets };
  // Plain BPE of one word: no cache, no ignore_merges, no splitting of long words.
  // (tokenize() is this plus shortcuts that give the same ids; tests compare the two.)
  void merge_word(std::string_view word, std::vector<int32_t>& out, Queue queue = Queue::Auto) const;

  std::optional<int32_t> token_to_id(std::string_view tok) const;
  // The vocab string of id, or nullptr when no token has that id.
  const std::string* id_to_token(int32_t id) const;
  // Highest id + 1.
  int32_t size() const { return int32_t(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  const Merge* find_merge(int32_t a, int32_t b) const { return merges_.find(a, b); }
  // Id of a word's character (with prefix / suffix applied), or -1.
  int32_t char_id(std::string_view ch, bool first, bool last, std::string& buf) const;
  void load_merges(const JsonNode& merges);
  template <class Q>
  void apply_merges(std::vector<BpeSymbol>& syms, Q& q) const;
  // tokenize() minus the shortcuts: the word cache, then merge_word.
  void tokenize_cached(std::string_view word, std::vector<int32_t>& out) const;
  // A long word (a whole paragraph when there is no pre-tokenizer) cut into pieces at
  // the points no merge can cross, each piece tokenized (and cached) separately.
  void tokenize_long(std::string_view word, std::vector<int32_t>& out) const;

  StringIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  PairMap<Merge> merges_;
  int32_t merges_rank_end_ = 0;  // highest rank + 1
  std::unordered_map<char32_t, int32_t> char_ids_;  // single-character tokens (no prefix/suffix)
  std::array<int32_t, 256> byte_ids_{};  // <0xXX> token per byte, -1 when absent
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix

  // Whether tokenize_long may cut words: not with ignore_merges (it looks at the whole
  // word) nor with a subword prefix / suffix (they depend on the position in the word).
  bool can_cut_long_words_ = false;
  // Pairs of code points that occur next to each other inside some token; built on the
  // first long word. A cut between two characters is exact when both are single-char
  // tokens and the pair is not in here: no merge could ever join them.
  mutable std::once_flag inner_pairs_once_;
  mutable PairMap<bool> inner_pairs_;

  // Per-word result cache (words in real text repeat a lot).
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace awq::tok
