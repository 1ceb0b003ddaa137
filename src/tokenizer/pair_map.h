// PairMap: an open-addressing hash table from a pair of token ids to a value, for the BPE
// merge table. It is probed for every adjacent symbol pair of every word, so it is a flat
// array (one cache miss per lookup) rather than a node-based std::unordered_map.
#pragma once
#include <cstdint>
#include <vector>

namespace awq::tok {

template <class V>
class PairMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;  // load factor <= 0.5
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
  }
  // Inserts unless the pair is present; returns whether it inserted.
  bool try_emplace(int32_t a, int32_t b, const V& v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key == kEmpty) {
        s.key = k;
        s.value = v;
        ++size_;
        return true;
      }
      if (s.key == k) return false;
    }
  }
  const V* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are non-negative: never a real key
  struct Slot {
    uint64_t key = kEmpty;
    V value{};
  };
  static uint64_t key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
  static size_t hash(uint64_t k) { return size_t((k * 0x9E3779B97F4A7C15ull) >> 20); }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    reserve(old.empty() ? 8 : old.size());
    for (const Slot& s : old)
      if (s.key != kEmpty) try_emplace(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace awq::tok
