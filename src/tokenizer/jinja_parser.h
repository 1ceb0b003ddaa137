// Parser of the Jinja subset: tokens -> statement tree.
//
// Statements: if / elif / else, for (with tuple targets, an inline `if` filter and `else`),
// set (names, tuples, `ns.attr`, and the block form), macro, break / continue, and
// transformers' generation block. Expressions follow Jinja2's grammar and precedence:
// conditional `a if c else b`, or, and, not, comparisons (== != < > <= >= in, not in),
// + -, ~, * / // %, **, unary - +, then postfix `.attr`, `[index]`, `[a:b:c]`, calls with
// keyword arguments, `| filter(args)` and `is [not] test(args)`; literals: strings,
// numbers, true/false/none (any case), lists, tuples and dicts.
//
// Anything else (call blocks, filter blocks, include, import, extends, raw, recursive
// loops, ...) is an awq::Error "line N: unsupported tag 'NAME'".
#pragma once
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"

namespace awq::jinja {

// Throws awq::Error("line N: ...") for a syntax error or an unsupported construct.
Body parse(const std::vector<Token>& tokens);

}  // namespace awq::jinja
