#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "tokenizer/utf8.h"

namespace awq::tok {

namespace {
// Words longer than this are not cached (SentencePiece-style tokenizers without a
// pre-tokenizer hand the model whole paragraphs), nor more than this many words.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 200000;
// Words of at least this many symbols use the bucket queue.
constexpr size_t kBucketQueueMinSymbols = 2048;

// Queue of candidate merges (rank, position) for words of a few symbols: a binary heap.
class HeapQueue {
 public:
  void push(int32_t rank, int32_t pos) {
    heap_.push_back(key(rank, pos));
    std::push_heap(heap_.begin(), heap_.end(), std::greater<uint64_t>());
  }
  bool pop(int32_t& rank, int32_t& pos) {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<uint64_t>());
    rank = int32_t(heap_.back() >> 32);
    pos = int32_t(uint32_t(heap_.back()));
    heap_.pop_back();
    return true;
  }
  static uint64_t key(int32_t rank, int32_t pos) { return uint64_t(uint32_t(rank)) << 32 | uint32_t(pos); }

 private:
  std::vector<uint64_t> heap_;
};

// The same queue for long words (a paragraph handed over whole by SentencePiece-style
// tokenizers without a pre-tokenizer): one bucket per merge rank, emptied in rank order,
// each bucket's positions sorted. A heap over ~n entries would cost O(log n) cache misses
// per step; buckets cost O(1) and visit the symbols nearly in order. Candidates whose rank
// is not above the bucket being emptied (merge tables are not always monotone) go to a
// small heap that is merged into the order.
class BucketQueue {
 public:
  explicit BucketQueue(int32_t n_ranks) : head_(size_t(n_ranks), -1) {}
  void push(int32_t rank, int32_t pos) {
    if (rank > cur_) {
      pool_.push_back({pos, head_[size_t(rank)]});
      head_[size_t(rank)] = int32_t(pool_.size() - 1);
      max_rank_ = std::max(max_rank_, rank);
    } else {
      low_.push(rank, pos);
      ++n_low_;
    }
  }
  bool pop(int32_t& rank, int32_t& pos) {
    for (;;) {
      const bool have_bucket = idx_ < bucket_.size();
      if (n_low_ > 0) {
        int32_t lr = 0, lp = 0;
        low_.pop(lr, lp);
        if (!have_bucket || HeapQueue::key(lr, lp) < HeapQueue::key(cur_, bucket_[idx_])) {
          --n_low_;
          rank = lr;
          pos = lp;
          return true;
        }
        low_.push(lr, lp);  // not yet: put it back
      }
      if (have_bucket) {
        rank = cur_;
        pos = bucket_[idx_++];
        return true;
      }
      // Next non-empty bucket (the low heap is empty here).
      do ++cur_;
      while (cur_ <= max_rank_ && head_[size_t(cur_)] < 0);
      if (cur_ > max_rank_) return false;
      bucket_.clear();
      idx_ = 0;
      for (int32_t k = head_[size_t(cur_)]; k >= 0; k = pool_[size_t(k)].second) bucket_.push_back(pool_[size_t(k)].first);
      head_[size_t(cur_)] = -1;
      std::sort(bucket_.begin(), bucket_.end());
    }
  }

 private:
  std::vector<int32_t> head_;                      // rank -> first pool_ entry, -1 if empty
  std::vector<std::pair<int32_t, int32_t>> pool_;  // (position, next entry of the same rank)
  std::vector<int32_t> bucket_;                    // positions of rank cur_, sorted
  size_t idx_ = 0;
  int32_t cur_ = -1, max_rank_ = -1;
  HeapQueue low_;  // candidates of rank <= cur_
  size_t n_low_ = 0;
};

}  // namespace

// Runs the merge loop over syms (a doubly linked list over a vector): pop the best
// candidate, skip it if stale (the pair there changed since it was queued: its rank no
// longer matches), merge, queue the two new neighbouring pairs.
template <class Q>
void BpeModel::apply_merges(std::vector<BpeSymbol>& syms, Q& q) const {
  for (size_t k = 0; k + 1 < syms.size(); ++k)
    if (const Merge* m = find_merge(syms[k].id, syms[k + 1].id)) q.push(m->rank, int32_t(k));
  int32_t rank, pos;
  while (q.pop(rank, pos)) {
    BpeSymbol& left = syms[size_t(pos)];
    if (!left.alive || left.next < 0) continue;
    BpeSymbol& right = syms[size_t(left.next)];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->rank != rank) continue;
    left.id = m->new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) syms[size_t(left.next)].prev = pos;
    if (left.prev >= 0)
      if (const Merge* pm = find_merge(syms[size_t(left.prev)].id, left.id)) q.push(pm->rank, left.prev);
    if (left.next >= 0)
      if (const Merge* nm = find_merge(left.id, syms[size_t(left.next)].id)) q.push(nm->rank, pos);
  }
}

BpeModel::BpeModel(const JsonNode& node) {
  JsonNode vocab = node.at("vocab");
  if (!vocab.raw().is_object()) vocab.fail("expected an object of token -> id");
  vocab_.reserve(vocab.raw().size());
  for (const auto& [tok, idj] : vocab.raw().items()) {
    if (!idj.is_number_integer() || idj.get<int64_t>() < 0 || idj.get<int64_t>() > INT32_MAX)
      fail_at(node.file(), vocab.path() + "['" + tok + "']", "expected a non-negative integer id");
    const auto id = int32_t(idj.get<int64_t>());
    vocab_[tok] = id;
    if (size_t(id) >= id_to_token_.size()) {
      id_to_token_.resize(size_t(id) + 1);
      has_id_.resize(size_t(id) + 1, false);
    }
    id_to_token_[size_t(id)] = tok;
    has_id_[size_t(id)] = true;
  }

  byte_fallback_ = node.get_bool("byte_fallback", false);
  ignore_merges_ = node.get_bool("ignore_merges", false);
  fuse_unk_ = node.get_bool("fuse_unk", false);
  prefix_ = node.get_string("continuing_subword_prefix", "");
  suffix_ = node.get_string("end_of_word_suffix", "");
  if (auto unk = node.find("unk_token")) {
    auto id = token_to_id(unk->as_string());
    if (!id) unk->fail("unk_token '" + unk->as_string() + "' is not in the vocab");
    unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = token_to_id(name);
    byte_ids_[size_t(b)] = id ? *id : -1;
  }
  if (auto merges = node.find("merges")) load_merges(*merges);
  can_cut_long_words_ = !ignore_merges_ && prefix_.empty() && suffix_.empty();
  for (const auto& [tok, id] : vocab_) {
    if (tok.empty() || utf8::valid_prefix_len(tok) != tok.size()) continue;
    size_t k = 0;
    char_ids_.emplace(utf8::next(tok, k), id);
  }
}

int32_t BpeModel::char_id(std::string_view ch, bool first, bool last, std::string& buf) const {
  if ((first || prefix_.empty()) && (!last || suffix_.empty())) {
    size_t k = 0;
    auto it = char_ids_.find(utf8::next(ch, k));
    return it == char_ids_.end() ? -1 : it->second;
  }
  buf.assign(first ? std::string() : prefix_);
  buf.append(ch);
  if (last) buf.append(suffix_);
  auto it = vocab_.find(buf);
  return it == vocab_.end() ? -1 : it->second;
}

BpeModel::~BpeModel() = default;

void BpeModel::load_merges(const JsonNode& merges) {
  const size_t n = merges.array_size();
  merges_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const json& m = merges.raw()[i];
    std::string a, b;
    auto bad = [&](const std::string& msg) { fail_at(merges.file(), merges.index_path(i), msg); };
    if (m.is_string()) {
      // "a b". Tokens may themselves contain spaces in odd vocabularies: take the first
      // split point whose halves are both tokens.
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) bad("expected \"left right\", got '" + s + "'");
      size_t cut = sp;
      for (size_t p = sp; p != std::string::npos; p = s.find(' ', p + 1)) {
        if (vocab_.count(std::string_view(s).substr(0, p)) && vocab_.count(std::string_view(s).substr(p + 1))) {
          cut = p;
          break;
        }
      }
      a = s.substr(0, cut);
      b = s.substr(cut + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      bad("expected \"left right\" or [\"left\", \"right\"]");
    }
    auto ia = token_to_id(a), ib = token_to_id(b);
    if (!ia) bad("token '" + a + "' is not in the vocab");
    if (!ib) bad("token '" + b + "' is not in the vocab");
    // With a continuing-subword prefix the right half carries it, the merged token not.
    std::string merged = a;
    if (!prefix_.empty() && b.compare(0, prefix_.size(), prefix_) == 0)
      merged += b.substr(prefix_.size());
    else
      merged += b;
    auto inew = token_to_id(merged);
    if (!inew) bad("merged token '" + merged + "' is not in the vocab");
    // The first (best-ranked) occurrence of a pair wins.
    merges_.try_emplace(*ia, *ib, Merge{int32_t(i), *inew});
    merges_rank_end_ = int32_t(i) + 1;
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view tok) const {
  auto it = vocab_.find(tok);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= id_to_token_.size() || !has_id_[size_t(id)]) return nullptr;
  return &id_to_token_[size_t(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // ignore_merges (Llama-3): a word that is itself a token is taken whole.
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes && can_cut_long_words_)
    tokenize_long(word, out);
  else
    tokenize_cached(word, out);
}

void BpeModel::tokenize_cached(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() < kMaxCacheEntries) cache_.try_emplace(std::string(word), out.begin() + ptrdiff_t(start), out.end());
  }
}

void BpeModel::tokenize_long(std::string_view word, std::vector<int32_t>& out) const {
  std::call_once(inner_pairs_once_, [this] {
    for (const auto& [tok, id] : vocab_) {
      if (!utf8::is_valid(tok)) continue;
      size_t i = 0;
      char32_t prev = utf8::next(tok, i);
      while (i < tok.size()) {
        const char32_t cp = utf8::next(tok, i);
        inner_pairs_.try_emplace(int32_t(prev), int32_t(cp), true);
        prev = cp;
      }
    }
  });
  // Why a cut between characters a and b is exact: a merge joining the symbol that ends
  // with a and the one that starts with b would make a token containing "ab"; there is
  // none, so no symbol ever spans the cut and each side merges on its own, in the same
  // relative order. Both must be known characters so that no unk run spans the cut.
  size_t start = 0, i = 0;
  char32_t prev = 0;
  bool prev_known = false;
  while (i < word.size()) {
    const size_t b = i;
    const char32_t cp = utf8::next(word, i);
    const bool known = char_ids_.count(cp) > 0;
    if (b > start && prev_known && known && !inner_pairs_.find(int32_t(prev), int32_t(cp))) {
      tokenize_cached(word.substr(start, b - start), out);
      start = b;
    }
    prev = cp;
    prev_known = known;
  }
  tokenize_cached(word.substr(start), out);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out, Queue queue) const {
  std::vector<BpeSymbol> syms;
  syms.reserve(word.size());
  auto push = [&](int32_t id) {
    const auto n = int32_t(syms.size());
    syms.push_back({id, n - 1, n + 1, true});
  };

  // 1. One symbol per character (with byte fallback / unk for characters not in vocab).
  bool pending_unk = false;  // a fused run of unknown characters not yet pushed
  auto flush_unk = [&] {
    if (pending_unk) push(unk_id_);
    pending_unk = false;
  };
  std::string buf;
  size_t i = 0;
  while (i < word.size()) {
    const size_t b = i;
    i += utf8::seq_len(static_cast<unsigned char>(word[i]));
    if (i > word.size()) i = word.size();
    const std::string_view ch = word.substr(b, i - b);
    if (const int32_t id = char_id(ch, b == 0, i == word.size(), buf); id >= 0) {
      flush_unk();
      push(id);
      continue;
    }
    // The string byte fallback spells: the character with its prefix / suffix.
    std::string_view key = ch;
    if ((b > 0 && !prefix_.empty()) || (i == word.size() && !suffix_.empty())) key = buf;
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : key) all = all && byte_ids_[c] >= 0;
      if (all) {
        flush_unk();
        for (unsigned char c : key) push(byte_ids_[c]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk && !fuse_unk_) push(unk_id_);
      pending_unk = true;
    }
    // Without an unk token the character is dropped (as Hugging Face does).
  }
  flush_unk();
  if (syms.empty()) return;
  syms.back().next = -1;

  // 2. Apply merges, lowest rank first (ties: leftmost first).
  if (queue == Queue::Heap || (queue == Queue::Auto && syms.size() < kBucketQueueMinSymbols)) {
    HeapQueue q;
    apply_merges(syms, q);
  } else {
    BucketQueue q(merges_rank_end_);
    apply_merges(syms, q);
  }
  for (int32_t k = 0; k >= 0; k = syms[size_t(k)].next) out.push_back(syms[size_t(k)].id);
}

}  // namespace awq::tok
