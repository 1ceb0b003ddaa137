// EXPECT_AWQ_ERROR(statement, {"part", "other part"}): the statement must throw awq::Error
// whose message contains every listed part (file names, tensor names, fields).
// Header-only test helper.
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "core/error.h"

namespace awq::test {

// Runs f; returns the awq::Error message, or records a failure and returns "".
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const awq::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-awq::Error exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

inline void expect_contains_all(const std::string& msg, std::initializer_list<std::string> parts) {
  for (const std::string& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\": " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
}

}  // namespace awq::test

#define EXPECT_AWQ_ERROR(statement, ...)                                              \
  ::awq::test::expect_contains_all(::awq::test::error_message([&] { statement; }), \
                                   __VA_ARGS__)
