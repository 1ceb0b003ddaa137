// The value type of the Jinja-subset interpreter that renders chat templates: what Python
// objects are to Jinja2 (undefined, None, bool, int, float, str, list/tuple, dict, callable),
// with Python's semantics for truthiness, equality, str() and repr().
//
// Lists and dicts are shared (copying a Value copies a pointer), as Python objects are; the
// templates run in transformers' ImmutableSandboxedEnvironment, which forbids mutating them,
// so only namespace() objects are ever written to (`{% set ns.x = ... %}`).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace awq::jinja {

class Value;
using List = std::vector<Value>;

// A dict with string keys in insertion order (Python 3.7+ dicts keep it; tojson shows it).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // made by namespace(): attribute assignment allowed
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

// Arguments of a call: positional and keyword.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // The keyword `name`, else positional `index`, else nullptr.
  const Value* get(size_t index, const std::string& name) const;
};
using Function = std::function<Value(const CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // undefined
  static Value undefined(std::string name = {}) {
    Value v;
    v.str_ = std::move(name);
    return v;
  }
  static Value none() { return Value(Kind::None); }
  Value(bool b) : kind_(Kind::Bool), int_(b) {}
  Value(int v) : kind_(Kind::Int), int_(v) {}
  Value(int64_t v) : kind_(Kind::Int), int_(v) {}
  Value(double v) : kind_(Kind::Float), float_(v) {}
  Value(std::string s) : kind_(Kind::String), str_(std::move(s)) {}
  Value(const char* s) : kind_(Kind::String), str_(s) {}
  Value(List l) : kind_(Kind::List), list_(std::make_shared<List>(std::move(l))) {}
  Value(std::shared_ptr<Dict> d) : kind_(Kind::Dict), dict_(std::move(d)) {}
  Value(Function f) : kind_(Kind::Function), fn_(std::make_shared<Function>(std::move(f))) {}

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return kind_ == Kind::Float ? int64_t(float_) : int_; }
  double as_float() const { return kind_ == Kind::Float ? float_ : double(int_); }
  const std::string& as_string() const { return str_; }
  const List& as_list() const { return *list_; }
  Dict& as_dict() const { return *dict_; }
  const Function& as_function() const { return *fn_; }
  // For an undefined value: the name it was looked up by (for error messages).
  const std::string& undefined_name() const { return str_; }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python ==.
  bool equals(const Value& o) const;
  // Jinja's output of {{ value }}: str(value), undefined as "".
  std::string str() const;
  // Python repr(), used for str() of lists and dicts.
  std::string repr() const;
  // "str", "int", "list", ... as Python names the type (for error messages).
  std::string type_name() const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::Undefined;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::string str_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> fn_;
};

// Python's repr of a float ("1.0", "0.1", "1e+20", "inf").
std::string float_repr(double v);

// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys), as
// transformers' tojson filter calls it. indent < 0: no indent (separators ", " and ": ").
std::string to_json(const Value& v, int indent, bool sort_keys);

// A Value from a JSON-like C++ structure: helpers for tests and callers.
inline Value make_dict(std::vector<std::pair<std::string, Value>> items) {
  auto d = std::make_shared<Dict>();
  for (auto& [k, v] : items) d->set(k, std::move(v));
  return Value(std::move(d));
}

}  // namespace awq::jinja
