// A parsed Jinja-subset template and its renderer, with the environment transformers gives
// chat templates (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) plus
// loop controls, the tojson filter as json.dumps(ensure_ascii=False), raise_exception and
// strftime_now).
//
// Supported: see jinja_parser.h for the syntax; at run time Python's semantics for the
// operators (int / float arithmetic, str and list +, ~ concatenation, `in`), for-loop
// scoping (a `set` inside a loop does not leak out; namespace() objects carry values out),
// `loop.index / index0 / revindex / revindex0 / first / last / length / previtem /
// nextitem / cycle()`, macros with default arguments, and:
//   filters: trim, length / count, tojson(indent, sort_keys), string, default / d, first,
//            last, join, upper, lower, capitalize, title, replace, int, float, list, items,
//            abs, reverse, unique, sort, map(attribute=), selectattr / rejectattr, indent,
//            safe, e / escape (no autoescape: identity), wordcount, round
//   tests:   defined, undefined, none, string, number, integer, float, boolean, mapping,
//            iterable, sequence, callable, true, false, odd, even, divisibleby, eq /
//            equalto / ==, ne / !=, lt / gt / le / ge, in, sameas, lower, upper
//   methods: str: strip lstrip rstrip split rsplit splitlines startswith endswith upper
//            lower title capitalize replace find count join format? (no); dict: items
//            keys values get; list: index count
//   globals: namespace(), range(), dict(), raise_exception(msg), strftime_now(fmt)
// Anything else fails with awq::Error "line N: unknown filter 'x'" (or test / method).
#pragma once
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace awq::jinja {

// raise_exception(msg) from a template: what() is the template's message.
class TemplateException : public std::runtime_error {
 public:
  explicit TemplateException(const std::string& msg) : std::runtime_error(msg) {}
};

class Template {
 public:
  // Throws awq::Error("line N: ...") for a syntax error or an unsupported tag.
  explicit Template(const std::string& source);

  // Renders with the variables of `vars` (a dict). Throws TemplateException for
  // raise_exception() and awq::Error("line N: ...") for a run-time error (unknown filter,
  // type error, undefined variable used as an object, ...).
  std::string render(const Dict& vars) const;

  // The time strftime_now() formats: the local time now unless set (tests fix it).
  void set_now(std::function<std::tm()> now) { now_ = std::move(now); }

 private:
  std::shared_ptr<Body> body_;
  std::function<std::tm()> now_;
};

}  // namespace awq::jinja
