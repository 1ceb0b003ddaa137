// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with an HTTP
// status. Request handlers throw ApiError; the server turns it into the response.
#pragma once
#include <stdexcept>
#include <string>

namespace awq::server {

struct ApiError : std::runtime_error {
  int status;         // 400, 401, 404, 413, 503 ...
  std::string param;  // the offending request field, or "" (sent as null)
  std::string code;   // machine-readable code, or "" (sent as null)
  ApiError(int status_, const std::string& message, std::string param_ = "", std::string code_ = "")
      : std::runtime_error(message), status(status_), param(std::move(param_)), code(std::move(code_)) {}
};

// OpenAI's error type for a status: "invalid_request_error" (4xx), "authentication_error"
// (401), "server_error" (5xx).
std::string error_type(int status);
// The JSON body for an error.
std::string error_body(int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "");
inline std::string error_body(const ApiError& e) { return error_body(e.status, e.what(), e.param, e.code); }

}  // namespace awq::server
