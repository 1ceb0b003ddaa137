#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace awq::server {

std::string error_type(int status) {
  if (status == 401) return "authentication_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

std::string error_body(int status, const std::string& message, const std::string& param,
                       const std::string& code) {
  nlohmann::json e = {{"message", message}, {"type", error_type(status)}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  e["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace awq::server
