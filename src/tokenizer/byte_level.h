// GPT-2's reversible byte <-> printable character mapping ("bytes_to_unicode"): the 188
// printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
// Byte-level BPE vocabularies are written in these characters (a space is "Ġ").
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace awq::tok {

class ByteLevelMap {
 public:
  static const ByteLevelMap& get();

  // UTF-8 of the character standing for byte b.
  const std::string& to_char(uint8_t b) const { return to_char_[b]; }
  // The byte a character stands for, or -1 when cp is not one of the 256.
  int to_byte(char32_t cp) const { return cp < to_byte_.size() ? to_byte_[cp] : -1; }

  // Every byte of s replaced by its character.
  std::string encode(std::string_view s) const;
  // Inverse of encode when every character of token is mapped; otherwise false (the
  // caller then keeps the token's own bytes, as Hugging Face does).
  bool decode(std::string_view token, std::string& out) const;

 private:
  ByteLevelMap();
  std::array<std::string, 256> to_char_;
  std::array<int16_t, 324> to_byte_;  // the highest mapped code point is U+0143
};

}  // namespace awq::tok
