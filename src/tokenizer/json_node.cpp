#include "tokenizer/json_node.h"

#include "core/error.h"
#include "core/mapped_file.h"

namespace awq::tok {

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

const char* kind_name(const json& j) { return j.type_name(); }
}  // namespace

void fail_at(const std::string& file, const std::string& path, const std::string& msg) {
  throw Error(one_line(path.empty() ? file + ": " + msg : file + ": " + path + ": " + msg));
}

void JsonNode::fail(const std::string& msg) const { fail_at(*file_, path_, msg); }

JsonNode JsonNode::at(const char* key) const {
  if (!j_->is_object()) fail(std::string("expected an object, got ") + kind_name(*j_));
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) fail_at(*file_, child_path(key), "missing field");
  return JsonNode(*it, file_, child_path(key));
}

std::optional<JsonNode> JsonNode::find(const char* key) const {
  if (!j_->is_object()) fail(std::string("expected an object, got ") + kind_name(*j_));
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, file_, child_path(key));
}

JsonNode JsonNode::at(size_t i) const {
  if (!j_->is_array()) fail(std::string("expected an array, got ") + kind_name(*j_));
  if (i >= j_->size()) fail("index " + std::to_string(i) + " out of range");
  return JsonNode((*j_)[i], file_, index_path(i));
}

size_t JsonNode::array_size() const {
  if (!j_->is_array()) fail(std::string("expected an array, got ") + kind_name(*j_));
  return j_->size();
}

std::string JsonNode::as_string() const {
  if (!j_->is_string()) fail(std::string("expected a string, got ") + kind_name(*j_));
  return j_->get<std::string>();
}

bool JsonNode::as_bool() const {
  if (!j_->is_boolean()) fail(std::string("expected true or false, got ") + kind_name(*j_));
  return j_->get<bool>();
}

int64_t JsonNode::as_int() const {
  if (!j_->is_number_integer()) fail(std::string("expected an integer, got ") + kind_name(*j_));
  return j_->get<int64_t>();
}

std::string JsonNode::get_string(const char* key, const std::string& def) const {
  auto n = find(key);
  return n ? n->as_string() : def;
}

bool JsonNode::get_bool(const char* key, bool def) const {
  auto n = find(key);
  return n ? n->as_bool() : def;
}

int64_t JsonNode::get_int(const char* key, int64_t def) const {
  auto n = find(key);
  return n ? n->as_int() : def;
}

json parse_json_file(const std::string& path) {
  MappedFile f(path);
  const char* b = reinterpret_cast<const char*>(f.data());
  try {
    return json::parse(b, b + f.size());
  } catch (const json::parse_error& e) {
    fail_at(path, "", std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace awq::tok
