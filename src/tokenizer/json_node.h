// JsonNode: a view of one value inside tokenizer.json (or a companion config file) that
// remembers its file and its path ("pre_tokenizer.pretokenizers[0]"), so every loading
// error becomes one line naming both: "<file>: <path>: <problem>".
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace awq::tok {

using json = nlohmann::json;

class JsonNode {
 public:
  JsonNode(const json& j, std::shared_ptr<const std::string> file, std::string path)
      : j_(&j), file_(std::move(file)), path_(std::move(path)) {}

  const json& raw() const { return *j_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  bool is_null() const { return j_->is_null(); }

  // Child `key`; fails with "missing field" when absent or null.
  JsonNode at(const char* key) const;
  // Child `key`, or nullopt when absent or null.
  std::optional<JsonNode> find(const char* key) const;
  // Element i of an array.
  JsonNode at(size_t i) const;
  // Size of an array (fails when this is not an array).
  size_t array_size() const;

  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  // Same, with a default for an absent or null field.
  std::string get_string(const char* key, const std::string& def) const;
  bool get_bool(const char* key, bool def) const;
  int64_t get_int(const char* key, int64_t def) const;
  // The "type" field of a component object.
  std::string type() const { return at("type").as_string(); }

  std::string child_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  std::string index_path(size_t i) const { return path_ + "[" + std::to_string(i) + "]"; }

  // Throws awq::Error("<file>: <path>: <msg>").
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const json* j_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
};

// Throws awq::Error("<file>: <path>: <msg>") (or "<file>: <msg>" when path is empty),
// with any newline in msg flattened so the message stays one line.
[[noreturn]] void fail_at(const std::string& file, const std::string& path, const std::string& msg);

// Reads and parses a JSON file; a missing file or a syntax error is an awq::Error naming it.
json parse_json_file(const std::string& path);

}  // namespace awq::tok
