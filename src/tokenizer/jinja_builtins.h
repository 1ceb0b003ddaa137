// The filters, tests and str / dict / list methods of the Jinja subset (the list is in
// jinja_template.h), with Jinja2's and Python's semantics. Failures throw BuiltinError; the
// evaluator adds the template line.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

#include "tokenizer/jinja_value.h"

namespace awq::jinja {

class BuiltinError : public std::runtime_error {
 public:
  explicit BuiltinError(const std::string& msg) : std::runtime_error(msg) {}
};

// Calls back into the evaluator for filters that apply other filters / tests (map, select).
struct BuiltinContext {
  std::function<Value(const std::string& filter, const Value& v, const CallArgs& a)> filter;
  std::function<bool(const std::string& test, const Value& v, const CallArgs& a)> test;
};

// value | name(args). Throws BuiltinError("unknown filter 'name'") when not supported.
Value apply_filter(const std::string& name, const Value& v, const CallArgs& a, const BuiltinContext& ctx);
// value is name(args). Throws BuiltinError("unknown test 'name'").
bool apply_test(const std::string& name, const Value& v, const CallArgs& a);
// obj.name(args) for str / dict / list methods; sets found = false when obj has no such
// method (the caller then tries a dict entry holding a function).
Value call_method(const Value& obj, const std::string& name, const CallArgs& a, bool& found);

// Python str helpers on UTF-8 text (code point semantics).
bool py_isspace(char32_t cp);
std::u32string to_u32(std::string_view s);
std::string from_u32(const std::u32string& s);
// str.strip / lstrip / rstrip; chars == nullptr: whitespace.
std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right);
// Python's len() of a str (code points).
int64_t py_len(const Value& v);
// Python's iteration: list items, dict keys, str characters; undefined: nothing.
List py_iterate(const Value& v);
// Python <, with TypeError as BuiltinError.
bool py_less(const Value& a, const Value& b);

}  // namespace awq::jinja
