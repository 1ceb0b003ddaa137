// The syntax tree of the Jinja subset: expressions and statements, as the parser builds them
// and the evaluator walks them.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace awq::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    ListLit,   // kids: items (also tuples)
    DictLit,   // kids: key0, value0, key1, value1, ...
    GetAttr,   // kids[0].name
    GetItem,   // kids[0][kids[1]]
    Slice,     // kids[0][kids[1]:kids[2]:kids[3]] (null kids: omitted)
    Call,      // kids[0](kids[1..]; kwargs)
    Filter,    // kids[0] | name(kids[1..]; kwargs)
    Test,      // kids[0] is [not] name(kids[1..]); negate
    Not,       // not kids[0]
    Neg,       // -kids[0]
    Pos,       // +kids[0]
    Binary,    // kids[0] op kids[1]: + - * / // % ** ~ == != < > <= >= in "not in"
    And,       // kids[0] and kids[1]
    Or,        // kids[0] or kids[1]
    Cond,      // kids[0] if kids[1] else kids[2] (kids[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;  // Name, GetAttr, Filter, Test; Binary: the operator
  bool negate = false;
  std::vector<ExprPtr> kids;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // branches: (condition or null for else, body)
    For,       // for targets in expr [if filter] body [else else_body]
    Set,       // set targets = expr; or set name.attr = expr (attr non-empty)
    SetBlock,  // set targets[0] %}body{% endset
    Macro,     // macro name(params) body
    Break,
    Continue,
    Generation,  // transformers' {% generation %}body{% endgeneration %}: renders body
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr, filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  std::string attr;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters, default may be null
  Body body, else_body;
};

}  // namespace awq::jinja
