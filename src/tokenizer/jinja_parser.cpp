#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"

namespace awq::jinja {

namespace {

using T = Token::Type;

ExprPtr make(Expr::Kind k, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->line = line;
  return e;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& toks) : t_(toks) {}

  Body parse_template() {
    std::string stop;
    Body b = parse_body({}, stop, "", 0);
    return b;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  bool is_op(const char* op) const { return cur().type == T::Op && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == T::Name && cur().value == n; }

  [[noreturn]] void fail(const std::string& what, int line = -1) const {
    throw Error("line " + std::to_string(line < 0 ? cur().line : line) + ": " + what);
  }
  static std::string describe(const Token& tk) {
    switch (tk.type) {
      case T::Text: return "text";
      case T::VarBegin: return "'{{'";
      case T::VarEnd: return "'}}'";
      case T::BlockBegin: return "'{%'";
      case T::BlockEnd: return "'%}'";
      case T::String: return "a string";
      case T::Int:
      case T::Float: return "'" + tk.value + "'";
      case T::End: return "the end of the template";
      default: return "'" + tk.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    ++i_;
  }
  void expect_block_end() {
    if (cur().type != T::BlockEnd) fail("expected '%}', got " + describe(cur()));
    ++i_;
  }
  std::string expect_name() {
    if (cur().type != T::Name) fail("expected a name, got " + describe(cur()));
    return t_[i_++].value;
  }

  // Parses nodes until a block tag whose name is in `stops` (left unconsumed, its name in
  // `stop`) or the end of the template (an error when stops is non-empty).
  Body parse_body(std::initializer_list<const char*> stops, std::string& stop, const char* opener, int open_line) {
    Body body;
    for (;;) {
      const Token& tk = cur();
      if (tk.type == T::End) {
        if (stops.size() == 0) return body;
        fail(std::string("unclosed '{% ") + opener + " %}' block opened on line " + std::to_string(open_line) +
             ": missing '{% " + *stops.begin() + " %}'");
      }
      if (tk.type == T::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Text;
        n->line = tk.line;
        n->text = tk.value;
        body.push_back(std::move(n));
        ++i_;
      } else if (tk.type == T::VarBegin) {
        ++i_;
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Output;
        n->line = tk.line;
        n->expr = parse_tuple(true);
        if (cur().type != T::VarEnd) fail("expected '}}', got " + describe(cur()));
        ++i_;
        body.push_back(std::move(n));
      } else if (tk.type == T::BlockBegin) {
        const Token& name = peek();
        if (name.type != T::Name) fail("expected a tag name after '{%', got " + describe(name));
        for (const char* s : stops)
          if (name.value == s) {
            stop = s;
            return body;
          }
        ++i_;
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(tk));
      }
    }
  }

  NodePtr parse_statement() {
    const Token& tk = cur();
    const std::string tag = tk.value;
    const int line = tk.line;
    ++i_;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (tag == "if") {
      n->kind = Node::Kind::If;
      ExprPtr cond = parse_tuple(true);
      expect_block_end();
      for (;;) {
        std::string stop;
        Body b = parse_body({"endif", "elif", "else"}, stop, "if", line);
        n->branches.emplace_back(std::move(cond), std::move(b));
        i_ += 2;  // {% NAME
        if (stop == "endif") {
          expect_block_end();
          break;
        }
        if (stop == "elif") {
          cond = parse_tuple(true);
          expect_block_end();
          continue;
        }
        expect_block_end();  // else
        Body eb = parse_body({"endif"}, stop, "if", line);
        n->branches.emplace_back(nullptr, std::move(eb));
        i_ += 2;
        expect_block_end();
        break;
      }
    } else if (tag == "for") {
      n->kind = Node::Kind::For;
      n->targets.push_back(expect_name());
      while (is_op(",")) {
        ++i_;
        n->targets.push_back(expect_name());
      }
      if (!is_name("in")) fail("expected 'in' in the for loop, got " + describe(cur()));
      ++i_;
      n->expr = parse_tuple(false);
      if (is_name("if")) {
        ++i_;
        n->filter = parse_expr(true);
      }
      if (is_name("recursive")) fail("unsupported construct: recursive for loops");
      expect_block_end();
      std::string stop;
      n->body = parse_body({"endfor", "else"}, stop, "for", line);
      i_ += 2;
      expect_block_end();
      if (stop == "else") {
        n->else_body = parse_body({"endfor"}, stop, "for", line);
        i_ += 2;
        expect_block_end();
      }
    } else if (tag == "set") {
      const std::string first = expect_name();
      if (is_op(".")) {
        ++i_;
        n->kind = Node::Kind::Set;
        n->targets.push_back(first);
        n->attr = expect_name();
        expect_op("=");
        n->expr = parse_tuple(true);
        expect_block_end();
      } else {
        n->targets.push_back(first);
        while (is_op(",")) {
          ++i_;
          n->targets.push_back(expect_name());
        }
        if (cur().type == T::BlockEnd && n->targets.size() == 1) {
          ++i_;
          n->kind = Node::Kind::SetBlock;
          std::string stop;
          n->body = parse_body({"endset"}, stop, "set", line);
          i_ += 2;
          expect_block_end();
        } else {
          n->kind = Node::Kind::Set;
          expect_op("=");
          n->expr = parse_tuple(true);
          expect_block_end();
        }
      }
    } else if (tag == "macro") {
      n->kind = Node::Kind::Macro;
      n->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        std::string p = expect_name();
        ExprPtr def;
        if (is_op("=")) {
          ++i_;
          def = parse_expr(true);
        }
        n->params.emplace_back(std::move(p), std::move(def));
        if (!is_op(")")) expect_op(",");
      }
      ++i_;
      expect_block_end();
      std::string stop;
      n->body = parse_body({"endmacro"}, stop, "macro", line);
      i_ += 2;
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      n->kind = tag == "break" ? Node::Kind::Break : Node::Kind::Continue;
      expect_block_end();
    } else if (tag == "generation") {
      n->kind = Node::Kind::Generation;
      expect_block_end();
      std::string stop;
      n->body = parse_body({"endgeneration"}, stop, "generation", line);
      i_ += 2;
      expect_block_end();
    } else if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") {
      fail("unexpected '{% " + tag + " %}' with no open block it could close", line);
    } else {
      fail("unsupported tag '" + tag + "' (this Jinja subset has if, for, set, macro, break, continue)", line);
    }
    return n;
  }

  // expr (',' expr)* -> a tuple when there is a comma.
  ExprPtr parse_tuple(bool with_cond) {
    const int line = cur().line;
    ExprPtr first = parse_expr(with_cond);
    if (!is_op(",")) return first;
    auto tup = make(Expr::Kind::ListLit, line);
    tup->name = "tuple";
    tup->kids.push_back(std::move(first));
    while (is_op(",")) {
      ++i_;
      if (cur().type == T::BlockEnd || cur().type == T::VarEnd || is_op(")")) break;
      tup->kids.push_back(parse_expr(with_cond));
    }
    return tup;
  }

  ExprPtr parse_expr(bool with_cond) {
    ExprPtr e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      const int line = cur().line;
      ++i_;
      auto c = make(Expr::Kind::Cond, line);
      c->kids.push_back(std::move(e));
      c->kids.push_back(parse_or());
      if (is_name("else")) {
        ++i_;
        c->kids.push_back(parse_expr(true));
      } else {
        c->kids.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(Expr::Kind k, const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(k, line);
    e->name = op;
    e->kids.push_back(std::move(a));
    e->kids.push_back(std::move(b));
    return e;
  }

  // One left-associative level of binary operators: operand (op operand)*, where level_op() says
  // whether the current token is one of the level's operators (its text names the node).
  template <class LevelOp, class Operand>
  ExprPtr left_assoc(Expr::Kind kind, LevelOp level_op, Operand operand) {
    ExprPtr e = operand();
    while (level_op()) {
      const std::string op = cur().value;
      const int line = cur().line;
      ++i_;
      e = binary(kind, op, std::move(e), operand(), line);
    }
    return e;
  }

  ExprPtr parse_or() {
    return left_assoc(Expr::Kind::Or, [&] { return is_name("or"); }, [&] { return parse_and(); });
  }
  ExprPtr parse_and() {
    return left_assoc(Expr::Kind::And, [&] { return is_name("and"); }, [&] { return parse_not(); });
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      const int line = cur().line;
      ++i_;
      auto e = make(Expr::Kind::Not, line);
      e->kids.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    for (;;) {
      const int line = cur().line;
      std::string op;
      if (cur().type == T::Op &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
           cur().value == "<=" || cur().value == ">=")) {
        op = cur().value;
        ++i_;
      } else if (is_name("in")) {
        op = "in";
        ++i_;
      } else if (is_name("not") && peek().type == T::Name && peek().value == "in") {
        op = "not in";
        i_ += 2;
      } else {
        return e;
      }
      e = binary(Expr::Kind::Binary, op, std::move(e), parse_math1(), line);
    }
  }
  ExprPtr parse_math1() {
    return left_assoc(Expr::Kind::Binary, [&] { return is_op("+") || is_op("-"); }, [&] { return parse_concat(); });
  }
  ExprPtr parse_concat() {
    return left_assoc(Expr::Kind::Binary, [&] { return is_op("~"); }, [&] { return parse_math2(); });
  }
  ExprPtr parse_math2() {
    return left_assoc(Expr::Kind::Binary, [&] { return is_op("*") || is_op("/") || is_op("//") || is_op("%"); },
                      [&] { return parse_pow(); });
  }
  // Left-associative, as in Jinja (2 ** 3 ** 2 is 64), not Python.
  ExprPtr parse_pow() {
    return left_assoc(Expr::Kind::Binary, [&] { return is_op("**"); }, [&] { return parse_unary(true); });
  }
  ExprPtr parse_unary(bool with_filter) {
    const int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const bool neg = is_op("-");
      ++i_;
      e = make(neg ? Expr::Kind::Neg : Expr::Kind::Pos, line);
      e->kids.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tk = cur();
    const int line = tk.line;
    switch (tk.type) {
      case T::Name: {
        ++i_;
        const std::string& v = tk.value;
        auto e = make(Expr::Kind::Literal, line);
        if (v == "true" || v == "True") e->value = Value(true);
        else if (v == "false" || v == "False") e->value = Value(false);
        else if (v == "none" || v == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::Name;
          e->name = v;
        }
        return e;
      }
      case T::String: {
        auto e = make(Expr::Kind::Literal, line);
        std::string s;
        while (cur().type == T::String) s += t_[i_++].value;  // adjacent literals join
        e->value = Value(std::move(s));
        return e;
      }
      case T::Int: {
        ++i_;
        auto e = make(Expr::Kind::Literal, line);
        try {
          e->value = Value(int64_t(std::stoll(tk.value)));
        } catch (const std::exception&) {
          fail("integer literal " + tk.value + " out of range");
        }
        return e;
      }
      case T::Float: {
        ++i_;
        auto e = make(Expr::Kind::Literal, line);
        e->value = Value(std::stod(tk.value));
        return e;
      }
      case T::Op: {
        if (tk.value == "(") {
          ++i_;
          if (is_op(")")) {
            ++i_;
            auto empty = make(Expr::Kind::ListLit, line);
            empty->name = "tuple";
            return empty;
          }
          ExprPtr e = parse_tuple(true);
          expect_op(")");
          return e;
        }
        if (tk.value == "[") {
          ++i_;
          auto e = make(Expr::Kind::ListLit, line);
          while (!is_op("]")) {
            e->kids.push_back(parse_expr(true));
            if (!is_op("]")) expect_op(",");
          }
          ++i_;
          return e;
        }
        if (tk.value == "{") {
          ++i_;
          auto e = make(Expr::Kind::DictLit, line);
          while (!is_op("}")) {
            e->kids.push_back(parse_expr(true));
            expect_op(":");
            e->kids.push_back(parse_expr(true));
            if (!is_op("}")) expect_op(",");
          }
          ++i_;
          return e;
        }
        break;
      }
      default: break;
    }
    fail("unexpected " + describe(tk) + " in an expression");
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (cur().type == T::Name && peek().type == T::Op && peek().value == "=") {
        std::string k = t_[i_].value;
        i_ += 2;
        e.kwargs.emplace_back(std::move(k), parse_expr(true));
      } else {
        if (is_op("*") || is_op("**")) fail("unsupported construct: *args / **kwargs in a call");
        e.kids.push_back(parse_expr(true));
      }
      if (!is_op(")")) expect_op(",");
    }
    ++i_;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      const int line = cur().line;
      if (is_op(".")) {
        ++i_;
        auto g = make(Expr::Kind::GetAttr, line);
        if (cur().type == T::Int) {
          g->kind = Expr::Kind::GetItem;
          g->kids.push_back(std::move(e));
          auto idx = make(Expr::Kind::Literal, line);
          idx->value = Value(int64_t(std::stoll(t_[i_++].value)));
          g->kids.push_back(std::move(idx));
        } else {
          g->name = expect_name();
          g->kids.push_back(std::move(e));
        }
        e = std::move(g);
      } else if (is_op("[")) {
        ++i_;
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) parts[k] = parse_expr(true);
          if (is_op(":") && k < 2) {
            slice = true;
            ++i_;
          } else {
            break;
          }
        }
        expect_op("]");
        auto g = make(slice ? Expr::Kind::Slice : Expr::Kind::GetItem, line);
        g->kids.push_back(std::move(e));
        if (slice) {
          for (auto& p : parts) g->kids.push_back(std::move(p));
        } else {
          if (!parts[0]) fail("empty subscript '[]'");
          g->kids.push_back(std::move(parts[0]));
        }
        e = std::move(g);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, line);
        c->kids.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    for (;;) {
      const int line = cur().line;
      if (is_op("|")) {
        ++i_;
        auto f = make(Expr::Kind::Filter, line);
        f->name = expect_name();
        f->kids.push_back(std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++i_;
        auto t = make(Expr::Kind::Test, line);
        if (is_name("not")) {
          t->negate = true;
          ++i_;
        }
        t->name = expect_name();
        t->kids.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().type == T::Name || cur().type == T::String || cur().type == T::Int ||
                    cur().type == T::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") &&
                   !is_name("in") && !is_name("not")) {
          if (is_name("is")) fail("cannot chain tests with 'is'");
          t->kids.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, line);
        c->kids.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_template(); }

}  // namespace awq::jinja
