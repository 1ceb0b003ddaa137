// Reading a whole JSON file (config.json, tokenizer_config.json, ...) with errors that name it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace awq {

// Throws awq::Error "PATH: cannot read" or "PATH: invalid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

}  // namespace awq
