#include "tokenizer/jinja_template.h"

#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"

namespace awq::jinja {

namespace {

[[noreturn]] void fail_at(int line, const std::string& what) { throw Error("line " + std::to_string(line) + ": " + what); }

// Python's slice index arithmetic (PySlice_AdjustIndices): the positions a[start:stop:step] picks.
std::vector<size_t> slice_positions(int64_t len, const Value& start, const Value& stop, const Value& step, int line) {
  auto is_set = [](const Value& v) { return !v.is_undefined() && !v.is_none(); };
  int64_t st = 1;
  if (is_set(step)) {
    if (!step.is_int()) fail_at(line, "slice step must be an integer");
    st = step.as_int();
    if (st == 0) fail_at(line, "slice step cannot be zero");
  }
  auto adjust = [&](const Value& v, int64_t def) {
    if (!is_set(v)) return def;
    if (!v.is_int()) fail_at(line, "slice indices must be integers or none");
    int64_t x = v.as_int();
    if (x < 0) {
      x += len;
      if (x < 0) x = st < 0 ? -1 : 0;
    } else if (x >= len) {
      x = st < 0 ? len - 1 : len;
    }
    return x;
  };
  const int64_t b = adjust(start, st < 0 ? len - 1 : 0);
  const int64_t e = adjust(stop, st < 0 ? -1 : len);
  std::vector<size_t> out;
  if (st > 0)
    for (int64_t i = b; i < e; i += st) out.push_back(size_t(i));
  else
    for (int64_t i = b; i > e; i += st) out.push_back(size_t(i));
  return out;
}

enum class Flow { Normal, Break, Continue };

class Interp {
 public:
  Interp(const Dict& vars, const std::function<std::tm()>& now) : now_(now) {
    scopes_.emplace_back();  // template top level
    for (const auto& [k, v] : vars.items) scopes_[0].vars[k] = v;
    install_globals();
  }

  void run(const Body& body, std::string& out) {
    if (exec(body, out) != Flow::Normal) fail_at(0, "'break' / 'continue' outside a for loop");
  }

 private:
  struct Scope {
    std::unordered_map<std::string, Value> vars;
    bool barrier = false;  // a macro call: lookups skip to the top level from here
  };

  void install_globals() {
    globals_["namespace"] = Value(Function([](const CallArgs& a) {
      auto d = std::make_shared<Dict>();
      d->is_namespace = true;
      for (const Value& x : a.args) {
        if (!x.is_dict()) throw BuiltinError("namespace() takes keyword arguments or a dict");
        for (const auto& [k, v] : x.as_dict().items) d->set(k, v);
      }
      for (const auto& [k, v] : a.kwargs) d->set(k, v);
      return Value(d);
    }));
    globals_["dict"] = Value(Function([](const CallArgs& a) {
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : a.kwargs) d->set(k, v);
      return Value(d);
    }));
    globals_["range"] = Value(Function([](const CallArgs& a) {
      if (a.args.empty() || a.args.size() > 3) throw BuiltinError("range() takes 1 to 3 integers");
      for (const Value& x : a.args)
        if (!x.is_int()) throw BuiltinError("range() takes integers");
      int64_t b = 0, e, s = 1;
      if (a.args.size() == 1) {
        e = a.args[0].as_int();
      } else {
        b = a.args[0].as_int();
        e = a.args[1].as_int();
        if (a.args.size() == 3) s = a.args[2].as_int();
      }
      if (s == 0) throw BuiltinError("range() step must not be zero");
      if ((e - b) / s > 1000000) throw BuiltinError("range() too large");
      List out;
      for (int64_t i = b; s > 0 ? i < e : i > e; i += s) out.emplace_back(i);
      return Value(out);
    }));
    globals_["raise_exception"] = Value(Function([](const CallArgs& a) -> Value {
      throw TemplateException(a.args.empty() ? std::string() : a.args[0].str());
    }));
    globals_["strftime_now"] = Value(Function([this](const CallArgs& a) {
      if (a.args.empty() || !a.args[0].is_string()) throw BuiltinError("strftime_now() needs a format string");
      std::tm tm{};
      if (now_) {
        tm = now_();
      } else {
        const std::time_t t = std::time(nullptr);
        localtime_r(&t, &tm);
      }
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, a.args[0].as_string().c_str(), &tm);
      return Value(std::string(buf, n));
    }));
  }

  Value lookup(const std::string& name) const {
    for (size_t i = scopes_.size(); i-- > 0;) {
      auto it = scopes_[i].vars.find(name);
      if (it != scopes_[i].vars.end()) return it->second;
      if (scopes_[i].barrier) {
        auto top = scopes_[0].vars.find(name);
        if (top != scopes_[0].vars.end()) return top->second;
        break;
      }
    }
    auto g = globals_.find(name);
    if (g != globals_.end()) return g->second;
    return Value::undefined(name);
  }

  void assign(const std::vector<std::string>& targets, const Value& v, int line) {
    auto& vars = scopes_.back().vars;
    if (targets.size() == 1) {
      vars[targets[0]] = v;
      return;
    }
    List items = v.is_list() ? v.as_list() : List();
    if (!v.is_list() || items.size() != targets.size())
      fail_at(line, "cannot unpack " + v.type_name() + " into " + std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) vars[targets[i]] = items[i];
  }

  Flow exec(const Body& body, std::string& out) {
    for (const NodePtr& n : body) {
      const Flow f = exec_node(*n, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec_node(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Kind::Text: out += n.text; return Flow::Normal;
      case Node::Kind::Output: out += eval(*n.expr).str(); return Flow::Normal;
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches)
          if (!cond || eval(*cond).truthy()) return exec(body, out);
        return Flow::Normal;
      case Node::Kind::For: return exec_for(n, out);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        if (!n.attr.empty()) {
          Value target = lookup(n.targets[0]);
          if (!target.is_dict() || !target.as_dict().is_namespace)
            fail_at(n.line, "cannot assign attribute '" + n.attr + "' on '" + n.targets[0] + "': not a namespace() object");
          target.as_dict().set(n.attr, std::move(v));
        } else {
          assign(n.targets, v, n.line);
        }
        return Flow::Normal;
      }
      case Node::Kind::SetBlock: {
        std::string captured;
        exec(n.body, captured);
        assign(n.targets, Value(std::move(captured)), n.line);
        return Flow::Normal;
      }
      case Node::Kind::Macro: {
        const Node* macro = &n;
        scopes_.back().vars[n.name] = Value(Function([this, macro](const CallArgs& a) { return call_macro(*macro, a); }));
        return Flow::Normal;
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
      case Node::Kind::Generation: return exec(n.body, out);
    }
    return Flow::Normal;
  }

  Value call_macro(const Node& m, const CallArgs& a) {
    if (a.args.size() > m.params.size())
      throw BuiltinError("macro '" + m.name + "' takes " + std::to_string(m.params.size()) + " arguments, got " + std::to_string(a.args.size()));
    Scope s;
    s.barrier = true;
    for (const auto& [k, v] : a.kwargs) {
      bool known = false;
      for (const auto& p : m.params) known |= p.first == k;
      if (!known) throw BuiltinError("macro '" + m.name + "' has no parameter '" + k + "'");
    }
    scopes_.push_back(std::move(s));
    struct Pop {
      std::vector<Scope>& s;
      ~Pop() { s.pop_back(); }
    } pop{scopes_};
    for (size_t i = 0; i < m.params.size(); ++i) {
      const auto& [pname, def] = m.params[i];
      const Value* given = a.get(i, pname);
      if (i >= a.args.size()) {
        given = nullptr;
        for (const auto& [k, v] : a.kwargs)
          if (k == pname) given = &v;
      }
      scopes_.back().vars[pname] = given ? *given : def ? eval(*def) : Value::undefined(pname);
    }
    std::string out;
    if (exec(m.body, out) != Flow::Normal) fail_at(m.line, "'break' / 'continue' outside a for loop");
    return Value(std::move(out));
  }

  Flow exec_for(const Node& n, std::string& out) {
    const Value seq = eval(*n.expr);
    if (!seq.is_list() && !seq.is_dict() && !seq.is_string() && !seq.is_undefined())
      fail_at(n.line, "cannot loop over a value of type " + seq.type_name());
    List items = py_iterate(seq);
    if (n.filter) {
      List kept;
      for (const Value& x : items) {
        Scope s;
        scopes_.push_back(std::move(s));
        assign(n.targets, x, n.line);
        const bool keep = eval(*n.filter).truthy();
        scopes_.pop_back();
        if (keep) kept.push_back(x);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body, out);
    const int64_t len = int64_t(items.size());
    for (int64_t i = 0; i < len; ++i) {
      auto loop = std::make_shared<Dict>();
      loop->set("index0", Value(i));
      loop->set("index", Value(i + 1));
      loop->set("revindex0", Value(len - i - 1));
      loop->set("revindex", Value(len - i));
      loop->set("first", Value(i == 0));
      loop->set("last", Value(i == len - 1));
      loop->set("length", Value(len));
      loop->set("previtem", i > 0 ? items[size_t(i - 1)] : Value::undefined("previtem"));
      loop->set("nextitem", i + 1 < len ? items[size_t(i + 1)] : Value::undefined("nextitem"));
      loop->set("cycle", Value(Function([i](const CallArgs& a) {
        if (a.args.empty()) throw BuiltinError("loop.cycle() needs at least one value");
        return a.args[size_t(i) % a.args.size()];
      })));
      scopes_.emplace_back();
      scopes_.back().vars["loop"] = Value(loop);
      assign(n.targets, items[size_t(i)], n.line);
      Flow f;
      try {
        f = exec(n.body, out);
      } catch (...) {
        scopes_.pop_back();
        throw;
      }
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  CallArgs eval_args(const Expr& e, size_t first_kid) {
    CallArgs a;
    for (size_t i = first_kid; i < e.kids.size(); ++i) a.args.push_back(eval(*e.kids[i]));
    for (const auto& [k, x] : e.kwargs) a.kwargs.emplace_back(k, eval(*x));
    return a;
  }

  BuiltinContext builtin_context() {
    BuiltinContext c;
    c.filter = [this](const std::string& f, const Value& v, const CallArgs& a) { return apply_filter(f, v, a, builtin_context()); };
    c.test = [](const std::string& t, const Value& v, const CallArgs& a) { return apply_test(t, v, a); };
    return c;
  }

  Value get_attr(const Value& obj, const std::string& name, int line) {
    if (obj.is_undefined())
      fail_at(line, "'" + (obj.undefined_name().empty() ? std::string("value") : obj.undefined_name()) + "' is undefined (reading '." + name + "')");
    if (obj.is_dict()) {
      const Value* f = obj.as_dict().find(name);
      return f ? *f : Value::undefined(name);
    }
    return Value::undefined(name);
  }

  Value get_item(const Value& obj, const Value& key, int line) {
    if (obj.is_undefined())
      fail_at(line, "'" + (obj.undefined_name().empty() ? std::string("value") : obj.undefined_name()) + "' is undefined (reading [" + key.repr() + "])");
    if (obj.is_dict()) {
      if (!key.is_string()) return Value::undefined(key.str());
      const Value* f = obj.as_dict().find(key.as_string());
      return f ? *f : Value::undefined(key.as_string());
    }
    if (obj.is_list() || obj.is_string()) {
      if (!key.is_int()) {
        if (key.is_string()) return Value::undefined(key.as_string());
        fail_at(line, "indices must be integers, not " + key.type_name());
      }
      if (obj.is_list()) {
        const List& l = obj.as_list();
        int64_t i = key.as_int();
        if (i < 0) i += int64_t(l.size());
        return i >= 0 && i < int64_t(l.size()) ? l[size_t(i)] : Value::undefined("[" + key.str() + "]");
      }
      const std::u32string u = to_u32(obj.as_string());
      int64_t i = key.as_int();
      if (i < 0) i += int64_t(u.size());
      return i >= 0 && i < int64_t(u.size()) ? Value(from_u32(u.substr(size_t(i), 1))) : Value::undefined("[" + key.str() + "]");
    }
    return Value::undefined(key.str());
  }

  Value binary(const std::string& op, const Value& a, const Value& b, int line) {
    auto type_error = [&]() -> Value {
      fail_at(line, "unsupported operand types for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
    };
    if (op == "~") return Value(a.str() + b.str());
    if (op == "==") return Value(a.equals(b));
    if (op == "!=") return Value(!a.equals(b));
    try {
      if (op == "<") return Value(py_less(a, b));
      if (op == ">") return Value(py_less(b, a));
      if (op == "<=") return Value(!py_less(b, a));
      if (op == ">=") return Value(!py_less(a, b));
      if (op == "in" || op == "not in") {
        bool r;
        if (b.is_string()) {
          if (!a.is_string()) fail_at(line, "'in <string>' requires a string on the left, got " + a.type_name());
          r = b.as_string().find(a.as_string()) != std::string::npos;
        } else if (b.is_dict()) {
          r = a.is_string() && b.as_dict().find(a.as_string()) != nullptr;
        } else if (b.is_list() || b.is_undefined()) {
          r = false;
          for (const Value& x : py_iterate(b)) r = r || x.equals(a);
        } else {
          fail_at(line, "argument of type '" + b.type_name() + "' is not iterable");
        }
        return Value(op == "in" ? r : !r);
      }
    } catch (const BuiltinError& e) {
      fail_at(line, e.what());
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
      if (a.is_list() && b.is_list()) {
        List l = a.as_list();
        l.insert(l.end(), b.as_list().begin(), b.as_list().end());
        return Value(l);
      }
    }
    if (op == "*" && ((a.is_string() || a.is_list()) && b.is_int())) {
      if (a.is_string()) {
        std::string s;
        for (int64_t i = 0; i < b.as_int(); ++i) s += a.as_string();
        return Value(s);
      }
      List l;
      for (int64_t i = 0; i < b.as_int(); ++i) l.insert(l.end(), a.as_list().begin(), a.as_list().end());
      return Value(l);
    }
    if (!a.is_number() || !b.is_number()) return type_error();
    const bool fl = a.is_float() || b.is_float();
    const double x = a.as_float(), y = b.as_float();
    const int64_t i = a.as_int(), j = b.as_int();
    if (op == "+") return fl ? Value(x + y) : Value(i + j);
    if (op == "-") return fl ? Value(x - y) : Value(i - j);
    if (op == "*") return fl ? Value(x * y) : Value(i * j);
    if (op == "/") {
      if (y == 0) fail_at(line, "division by zero");
      return Value(x / y);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail_at(line, "integer division or modulo by zero");
      if (fl) {
        const double q = std::floor(x / y);
        return op == "//" ? Value(q) : Value(x - q * y);
      }
      int64_t q = i / j;
      if ((i % j != 0) && ((i < 0) != (j < 0))) --q;
      return op == "//" ? Value(q) : Value(i - q * j);
    }
    if (op == "**") {
      if (!fl && j >= 0) {
        int64_t r = 1;
        for (int64_t k = 0; k < j; ++k) r *= i;
        return Value(r);
      }
      return Value(std::pow(x, y));
    }
    return type_error();
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::ListLit: {
        List l;
        for (const auto& k : e.kids) l.push_back(eval(*k));
        return Value(l);
      }
      case Expr::Kind::DictLit: {
        auto d = std::make_shared<Dict>();
        for (size_t i = 0; i + 1 < e.kids.size(); i += 2) {
          const Value k = eval(*e.kids[i]);
          if (!k.is_string()) fail_at(e.line, "dict keys must be strings in this Jinja subset, got " + k.type_name());
          d->set(k.as_string(), eval(*e.kids[i + 1]));
        }
        return Value(d);
      }
      case Expr::Kind::GetAttr: return get_attr(eval(*e.kids[0]), e.name, e.line);
      case Expr::Kind::GetItem: return get_item(eval(*e.kids[0]), eval(*e.kids[1]), e.line);
      case Expr::Kind::Slice: {
        const Value obj = eval(*e.kids[0]);
        const Value b = e.kids[1] ? eval(*e.kids[1]) : Value(), en = e.kids[2] ? eval(*e.kids[2]) : Value(),
                    st = e.kids[3] ? eval(*e.kids[3]) : Value();
        if (obj.is_list()) {
          List out;
          for (size_t p : slice_positions(int64_t(obj.as_list().size()), b, en, st, e.line)) out.push_back(obj.as_list()[p]);
          return Value(out);
        }
        if (obj.is_string()) {
          const std::u32string u = to_u32(obj.as_string());
          std::u32string out;
          for (size_t p : slice_positions(int64_t(u.size()), b, en, st, e.line)) out += u[p];
          return Value(from_u32(out));
        }
        if (obj.is_undefined()) fail_at(e.line, "'" + obj.undefined_name() + "' is undefined (slicing it)");
        fail_at(e.line, "cannot slice a value of type " + obj.type_name());
      }
      case Expr::Kind::Call: {
        const Expr& callee = *e.kids[0];
        try {
          if (callee.kind == Expr::Kind::GetAttr) {
            const Value obj = eval(*callee.kids[0]);
            if (obj.is_undefined())
              fail_at(e.line, "'" + obj.undefined_name() + "' is undefined (calling ." + callee.name + "())");
            const CallArgs a = eval_args(e, 1);
            bool found = false;
            Value r = call_method(obj, callee.name, a, found);
            if (found) return r;
            const Value fn = get_attr(obj, callee.name, e.line);
            if (fn.is_function()) return fn.as_function()(a);
            fail_at(e.line, "'" + obj.type_name() + "' object has no method '" + callee.name + "'");
          }
          const Value fn = eval(callee);
          if (!fn.is_function()) {
            if (fn.is_undefined()) fail_at(e.line, "'" + fn.undefined_name() + "' is undefined (called as a function)");
            fail_at(e.line, "'" + fn.type_name() + "' object is not callable");
          }
          return fn.as_function()(eval_args(e, 1));
        } catch (const BuiltinError& err) {
          fail_at(e.line, err.what());
        }
      }
      case Expr::Kind::Filter: {
        const Value v = eval(*e.kids[0]);
        const CallArgs a = eval_args(e, 1);
        try {
          return apply_filter(e.name, v, a, builtin_context());
        } catch (const BuiltinError& err) {
          fail_at(e.line, err.what());
        }
      }
      case Expr::Kind::Test: {
        const Value v = eval(*e.kids[0]);
        const CallArgs a = eval_args(e, 1);
        try {
          return Value(apply_test(e.name, v, a) != e.negate);
        } catch (const BuiltinError& err) {
          fail_at(e.line, err.what());
        }
      }
      case Expr::Kind::Not: return Value(!eval(*e.kids[0]).truthy());
      case Expr::Kind::Neg:
      case Expr::Kind::Pos: {
        const Value v = eval(*e.kids[0]);
        if (!v.is_number()) fail_at(e.line, "bad operand type for unary " + std::string(e.kind == Expr::Kind::Neg ? "-" : "+") + ": '" + v.type_name() + "'");
        if (e.kind == Expr::Kind::Pos) return v.is_bool() ? Value(v.as_int()) : v;
        return v.is_float() ? Value(-v.as_float()) : Value(-v.as_int());
      }
      case Expr::Kind::Binary: return binary(e.name, eval(*e.kids[0]), eval(*e.kids[1]), e.line);
      case Expr::Kind::And: {
        Value a = eval(*e.kids[0]);
        return a.truthy() ? eval(*e.kids[1]) : a;
      }
      case Expr::Kind::Or: {
        Value a = eval(*e.kids[0]);
        return a.truthy() ? a : eval(*e.kids[1]);
      }
      case Expr::Kind::Cond:
        if (eval(*e.kids[1]).truthy()) return eval(*e.kids[0]);
        return e.kids[2] ? eval(*e.kids[2]) : Value::undefined();
    }
    fail_at(e.line, "internal: unknown expression");
  }

  std::vector<Scope> scopes_;
  std::unordered_map<std::string, Value> globals_;
  const std::function<std::tm()>& now_;
};

}  // namespace

Template::Template(const std::string& source) : body_(std::make_shared<Body>(parse(lex(source)))) {}

std::string Template::render(const Dict& vars) const {
  std::string out;
  Interp(vars, now_).run(*body_, out);
  return out;
}

}  // namespace awq::jinja
