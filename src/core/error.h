// awq::Error: the one exception type for user-facing failures. Its message is a single line
// that names the file / tensor / field and what is wrong; the CLI prints it and exits 1.
#pragma once
#include <stdexcept>
#include <string>

namespace awq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws awq::Error(msg) when cond is false. For checks on user input, never for invariants.
inline void check(bool cond, const std::string& msg) {
  if (!cond) throw Error(msg);
}

}  // namespace awq
