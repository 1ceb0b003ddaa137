// Lexer of the Jinja subset: cuts a template into text and the tokens inside {{ }} / {% %},
// dropping {# comments #}, and applies Jinja2's whitespace rules as transformers configures
// them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//  * "{%-" / "{{-" / "{#-" strip all whitespace before the tag, "-%}" / "-}}" / "-#}" all
//    whitespace after it;
//  * trim_blocks: the first newline after a block tag or comment is removed ("+%}" keeps it);
//  * lstrip_blocks: spaces and tabs between the start of a line and a block tag or comment
//    are removed ("{%+" keeps them);
//  * one trailing newline of the template is dropped, and \r\n / \r become \n.
#pragma once
#include <string>
#include <vector>

namespace awq::jinja {

struct Token {
  enum class Type {
    Text,        // literal template text (value)
    VarBegin,    // {{
    VarEnd,      // }}
    BlockBegin,  // {%
    BlockEnd,    // %}
    Name,        // identifier or keyword (value)
    String,      // string literal, escapes resolved (value)
    Int,         // integer literal (value: digits)
    Float,       // float literal (value)
    Op,          // operator or punctuation (value: "==", "(", "|", ...)
    End,         // end of the template
  };
  Type type;
  std::string value;
  int line;  // 1-based line of the template where the token starts
};

// Throws awq::Error("line N: ...") for an unterminated tag, comment or string, or a character
// that starts no token.
std::vector<Token> lex(const std::string& source);

}  // namespace awq::jinja
