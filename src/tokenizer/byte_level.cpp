#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace awq::tok {

ByteLevelMap::ByteLevelMap() {
  to_byte_.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const char32_t cp = printable ? char32_t(b) : char32_t(256 + extra++);
    to_char_[b] = utf8::encode(cp);
    to_byte_[cp] = int16_t(b);
  }
}

const ByteLevelMap& ByteLevelMap::get() {
  static const ByteLevelMap m;
  return m;
}

std::string ByteLevelMap::encode(std::string_view s) const {
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) out += to_char_[c];
  return out;
}

bool ByteLevelMap::decode(std::string_view token, std::string& out) const {
  const size_t start = out.size();
  size_t i = 0;
  while (i < token.size()) {
    const int b = to_byte(utf8::next(token, i));
    if (b < 0) {
      out.resize(start);
      return false;
    }
    out += char(b);
  }
  return true;
}

}  // namespace awq::tok
