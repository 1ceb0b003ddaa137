#include "tokenizer/special_config.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "tokenizer/json_node.h"

namespace awq::tok {

namespace {

// The file parsed, or nullopt when it does not exist.
std::optional<json> load_optional(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  return parse_json_file(path);
}

// bos_token / eos_token: a string, an {"content": ...} object (AddedToken), or null.
std::optional<std::string> token_string(const JsonNode& root, const char* key) {
  if (!root.raw().is_object()) return std::nullopt;
  auto n = root.find(key);
  if (!n) return std::nullopt;
  if (n->raw().is_object()) return n->at("content").as_string();
  return n->as_string();
}

// bos_token_id / eos_token_id: an int, a list of ints, or null.
std::vector<int32_t> token_ids(const JsonNode& root, const char* key) {
  std::vector<int32_t> out;
  if (!root.raw().is_object()) return out;
  auto n = root.find(key);
  if (!n) return out;
  auto one = [&](const JsonNode& v) {
    const int64_t id = v.as_int();
    if (id < 0 || id > INT32_MAX) v.fail("expected a token id");
    out.push_back(int32_t(id));
  };
  if (n->raw().is_array()) {
    for (size_t i = 0; i < n->array_size(); ++i) one(n->at(i));
  } else {
    one(*n);
  }
  return out;
}

}  // namespace

SpecialConfig read_special_config(const std::string& dir,
                                  const std::function<std::optional<int32_t>(std::string_view)>& token_to_id) {
  SpecialConfig sc;
  auto add_eos = [&](int32_t id) {
    if (std::find(sc.eos_ids.begin(), sc.eos_ids.end(), id) == sc.eos_ids.end()) sc.eos_ids.push_back(id);
  };

  const std::string tc_path = dir + "/tokenizer_config.json";
  if (auto tc = load_optional(tc_path)) {
    JsonNode root(*tc, std::make_shared<const std::string>(tc_path), "");
    if (!tc->is_object()) root.fail("expected a JSON object");
    if (auto s = token_string(root, "bos_token"))
      if (auto id = token_to_id(*s)) sc.bos_id = *id;
    if (auto s = token_string(root, "eos_token"))
      if (auto id = token_to_id(*s)) add_eos(*id);
    if (auto b = root.find("add_bos_token")) sc.add_bos_token = b->as_bool();
    if (auto b = root.find("add_eos_token")) sc.add_eos_token = b->as_bool();
  }
  // generation_config.json is what generate() uses, so it goes before config.json.
  for (const char* name : {"generation_config.json", "config.json"}) {
    const std::string path = dir + "/" + name;
    auto cfg = load_optional(path);
    if (!cfg) continue;
    JsonNode root(*cfg, std::make_shared<const std::string>(path), "");
    if (!cfg->is_object()) root.fail("expected a JSON object");
    if (sc.bos_id < 0) {
      auto b = token_ids(root, "bos_token_id");
      if (!b.empty()) sc.bos_id = b.front();
    }
    for (int32_t id : token_ids(root, "eos_token_id")) add_eos(id);
  }
  return sc;
}

}  // namespace awq::tok
