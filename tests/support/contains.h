// Whether `text` contains `part` (the tests' checks of messages). Header-only test helper.
#pragma once
#include <string>

namespace awq::test {

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace awq::test
