#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"

namespace awq::tok {

void AddedTokens::Trie::insert(std::string_view s, int32_t token) {
  int32_t cur = 0;
  for (unsigned char c : s) {
    auto& next = nodes[size_t(cur)].next;
    auto it = std::lower_bound(next.begin(), next.end(), c,
                               [](const auto& p, unsigned char v) { return p.first < v; });
    if (it != next.end() && it->first == c) {
      cur = it->second;
    } else {
      const auto child = int32_t(nodes.size());
      next.insert(it, {c, child});
      nodes.emplace_back();  // invalidates `next`; not used below
      cur = child;
    }
  }
  // Two added tokens with the same content: the first one listed wins.
  if (nodes[size_t(cur)].token < 0) nodes[size_t(cur)].token = token;
}

std::pair<int32_t, size_t> AddedTokens::Trie::longest_at(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t cur = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& next = nodes[size_t(cur)].next;
    const auto c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), c,
                               [](const auto& p, unsigned char v) { return p.first < v; });
    if (it == next.end() || it->first != c) break;
    cur = it->second;
    if (nodes[size_t(cur)].token >= 0) best = {nodes[size_t(cur)].token, i + 1 - pos};
  }
  return best;
}

void AddedTokens::add(AddedToken t) {
  if (t.content.empty() || t.id < 0) return;
  const auto index = int32_t(tokens_.size());
  any_normalized_ = any_normalized_ || t.normalized;
  max_id_ = std::max(max_id_, t.id);
  if (size_t(t.id) >= index_by_id_.size()) index_by_id_.resize(size_t(t.id) + 1, -1);
  if (index_by_id_[size_t(t.id)] < 0) index_by_id_[size_t(t.id)] = index;
  id_by_content_.try_emplace(t.content, t.id);
  tokens_.push_back(std::move(t));
}

void AddedTokens::build(const Normalizer* normalizer) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (!t.normalized) {
      raw_trie_.insert(t.content, int32_t(i));
      continue;
    }
    std::string key = t.content;
    if (normalizer) normalizer->normalize(key);
    if (!key.empty()) norm_trie_.insert(key, int32_t(i));
  }
}

const AddedToken* AddedTokens::by_id(int32_t id) const {
  if (id < 0 || size_t(id) >= index_by_id_.size() || index_by_id_[size_t(id)] < 0) return nullptr;
  return &tokens_[size_t(index_by_id_[size_t(id)])];
}

std::optional<int32_t> AddedTokens::find(std::string_view content) const {
  auto it = id_by_content_.find(content);
  if (it == id_by_content_.end()) return std::nullopt;
  return it->second;
}

namespace {
bool is_word_char(char32_t cp) { return cp == '_' || utf8::is_alphanumeric(cp); }

// Code point of the last character of s[0, end).
char32_t char_before(std::string_view s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return utf8::next(s, b);
}
}  // namespace

bool AddedTokens::accept_single_word(std::string_view text, size_t b, size_t e) const {
  if (b > 0 && is_word_char(char_before(text, b))) return false;
  if (e < text.size()) {
    size_t i = e;
    if (is_word_char(utf8::next(text, i))) return false;
  }
  return true;
}

std::vector<Segment> AddedTokens::split(std::string_view text, bool normalized_pass) const {
  const Trie& trie = normalized_pass ? norm_trie_ : raw_trie_;
  std::vector<Segment> out;
  if (trie.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return out;
  }
  size_t done = 0;  // text before this offset is already in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    const auto [index, len] = trie.longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[size_t(index)];
    size_t b = pos, e = pos + len;
    pos = e;  // matches never overlap, rejected ones included
    if (b < done) continue;  // swallowed by the previous token's rstrip
    if (t.single_word && !accept_single_word(text, b, e)) continue;
    if (t.lstrip) {
      while (b > done) {
        size_t cb = b - 1;
        while (cb > done && (static_cast<unsigned char>(text[cb]) & 0xC0) == 0x80) --cb;
        size_t j = cb;
        if (!utf8::is_whitespace(utf8::next(text, j))) break;
        b = cb;
      }
    }
    if (t.rstrip) {
      while (e < text.size()) {
        size_t j = e;
        if (!utf8::is_whitespace(utf8::next(text, j))) break;
        e = j;
      }
      pos = e;
    }
    if (b > done) out.push_back({done, b, -1});
    out.push_back({b, e, t.id});
    done = e;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
  return out;
}

}  // namespace awq::tok
