// UTF-8 helpers for the tokenizer: decoding one code point, encoding, repairing invalid
// input, and the few Unicode character classes the HF pipeline needs. The classes come
// from utf8proc's tables (never hand-written ones).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace awq::utf8 {

// Length in bytes of the UTF-8 sequence that starts with lead byte `b` (1 for a stray
// continuation or invalid byte, so that callers always make progress).
inline size_t seq_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
inline char32_t next(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  size_t n = seq_len(p[0]);
  if (i + n > s.size()) n = 1;
  char32_t cp;
  switch (n) {
    case 1: cp = p[0]; break;
    case 2: cp = char32_t(p[0] & 0x1F) << 6 | (p[1] & 0x3F); break;
    case 3: cp = char32_t(p[0] & 0x0F) << 12 | char32_t(p[1] & 0x3F) << 6 | (p[2] & 0x3F); break;
    default:
      cp = char32_t(p[0] & 0x07) << 18 | char32_t(p[1] & 0x3F) << 12 | char32_t(p[2] & 0x3F) << 6 |
           (p[3] & 0x3F);
  }
  i += n;
  return cp;
}

// Appends the UTF-8 encoding of cp to out.
void append(std::string& out, char32_t cp);
inline std::string encode(char32_t cp) {
  std::string s;
  append(s, cp);
  return s;
}

// Number of bytes at the start of s that form one well-formed sequence, or 0 when the
// bytes there are ill-formed (or truncated).
size_t valid_prefix_len(std::string_view s);

bool is_valid(std::string_view s);

// s with every ill-formed subsequence replaced by U+FFFD, one per "maximal subpart"
// (the Unicode / WHATWG convention that Rust's String::from_utf8_lossy follows too, so
// byte-level decoding matches Hugging Face tokenizers byte for byte).
std::string repair(std::string_view s);

// Rust's char::is_whitespace (the Unicode White_Space property): categories Zs/Zl/Zp
// plus the C0 controls TAB..CR and NEL.
bool is_whitespace(char32_t cp);
// Rust's char::is_alphanumeric: categories L* and N*.
bool is_alphanumeric(char32_t cp);
// Rust's char::is_numeric: categories Nd, Nl, No.
bool is_numeric(char32_t cp);

}  // namespace awq::utf8
