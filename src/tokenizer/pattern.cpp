#include "tokenizer/pattern.h"

#include <stdexcept>

namespace awq::tok {

Pattern::Pattern(const JsonNode& node) {
  if (auto s = node.find("String")) {
    literal_ = s->as_string();
  } else if (auto r = node.find("Regex")) {
    try {
      regex_ = std::make_unique<Regex>(r->as_string());
    } catch (const std::invalid_argument& e) {
      r->fail(e.what());
    }
  } else {
    node.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  }
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal_.empty()) return out;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size()))
    out.emplace_back(pos, pos + literal_.size());
  return out;
}

std::string Pattern::replace_all(std::string_view text, std::string_view with) const {
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (auto [b, e] : find_all(text)) {
    out.append(text.substr(prev, b - prev));
    out.append(with);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace awq::tok
