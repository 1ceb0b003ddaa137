// Paths of the reference data under ../shared and small JSON helpers for the tests.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace awq::test {

// Built with += : GCC 12 warns (-Warray-bounds, a false positive) on a long literal + string.
inline std::string shared_path(const std::string& rel) {
  std::string p = AWQ_SHARED_DIR;
  p += '/';
  p += rel;
  return p;
}
inline std::string tiny_model_dir() { return shared_path("models/tiny-llama-gqa"); }

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (is ../shared beside the checkout?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

inline const nlohmann::json& tiny_reference() {
  static const nlohmann::json j = read_json(tiny_model_dir() + "/reference.json");
  return j;
}

}  // namespace awq::test
