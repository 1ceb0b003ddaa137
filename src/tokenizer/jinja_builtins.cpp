#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace awq::jinja {

bool py_isspace(char32_t cp) { return utf8::is_whitespace(cp) || (cp >= 0x1c && cp <= 0x1f); }

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) out += utf8::next(s, i);
  return out;
}

std::string from_u32(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) utf8::append(out, c);
  return out;
}

std::string py_strip(const std::string& s, const std::string* chars, bool left, bool right) {
  const std::u32string u = to_u32(s);
  const std::u32string set = chars ? to_u32(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_isspace(c); };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_it(u[b])) ++b;
  if (right)
    while (e > b && strip_it(u[e - 1])) --e;
  return from_u32(u.substr(b, e - b));
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::String: return int64_t(to_u32(v.as_string()).size());
    case Value::Kind::List: return int64_t(v.as_list().size());
    case Value::Kind::Dict: return int64_t(v.as_dict().items.size());
    case Value::Kind::Undefined: return 0;
    default: throw BuiltinError("object of type '" + v.type_name() + "' has no len()");
  }
}

List py_iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::List: return v.as_list();
    case Value::Kind::Dict: {
      List keys;
      for (const auto& kv : v.as_dict().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::String: {
      List chars;
      for (char32_t c : to_u32(v.as_string())) chars.emplace_back(utf8::encode(c));
      return chars;
    }
    case Value::Kind::Undefined: return {};
    default: throw BuiltinError("'" + v.type_name() + "' object is not iterable");
  }
}

bool py_less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order = code point order
  if (a.is_list() && b.is_list()) {
    const List &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (py_less(x[i], y[i])) return true;
      if (py_less(y[i], x[i])) return false;
    }
    return x.size() < y.size();
  }
  throw BuiltinError("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

namespace {

std::string map_case(const std::string& s, utf8proc_int32_t (*f)(utf8proc_int32_t)) {
  std::string out;
  for (char32_t c : to_u32(s)) utf8::append(out, char32_t(f(utf8proc_int32_t(c))));
  return out;
}

bool is_cased_letter(char32_t c) {
  return utf8proc_isupper(utf8proc_int32_t(c)) || utf8proc_islower(utf8proc_int32_t(c)) ||
         utf8proc_totitle(utf8proc_int32_t(c)) != utf8proc_int32_t(c);
}

std::string py_capitalize(const std::string& s) {
  std::u32string u = to_u32(s);
  for (size_t i = 0; i < u.size(); ++i)
    u[i] = char32_t(i == 0 ? utf8proc_toupper(utf8proc_int32_t(u[i])) : utf8proc_tolower(utf8proc_int32_t(u[i])));
  return from_u32(u);
}

std::string py_title(const std::string& s) {
  std::u32string u = to_u32(s);
  bool prev_cased = false;
  for (char32_t& c : u) {
    const bool cased = is_cased_letter(c);
    c = char32_t(prev_cased ? utf8proc_tolower(utf8proc_int32_t(c)) : utf8proc_totitle(utf8proc_int32_t(c)));
    prev_cased = cased;
  }
  return from_u32(u);
}

std::string need_string(const Value* v, const char* what) {
  if (!v || !v->is_string()) throw BuiltinError(std::string(what) + " needs a string argument");
  return v->as_string();
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` between characters (and at both ends).
    const std::u32string u = to_u32(s);
    int64_t n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (i < u.size()) utf8::append(out, u[i]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  for (;;) {
    const size_t f = s.find(from, pos);
    if (f == std::string::npos || (count >= 0 && n >= count)) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

List py_split(const std::string& s, const Value* sep, int64_t maxsplit, bool from_right) {
  List parts;
  if (!sep || sep->is_none()) {
    // Runs of whitespace; no empty strings.
    const std::u32string u = to_u32(s);
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && py_isspace(u[i])) ++i;
      if (i >= u.size()) break;
      size_t j = i;
      while (j < u.size() && !py_isspace(u[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit >= 0 && int64_t(words.size()) > maxsplit + 1) {
      // The unsplit rest keeps its inner whitespace (leading side stripped).
      if (!from_right) {
        for (int64_t k = 0; k < maxsplit; ++k) parts.emplace_back(from_u32(u.substr(words[size_t(k)].first, words[size_t(k)].second - words[size_t(k)].first)));
        const size_t b = words[size_t(maxsplit)].first;
        size_t e = u.size();
        while (e > b && py_isspace(u[e - 1])) --e;
        parts.emplace_back(from_u32(u.substr(b, e - b)));
      } else {
        const size_t nw = words.size();
        const size_t e = words[nw - size_t(maxsplit) - 1].second;
        size_t b = 0;
        while (b < e && py_isspace(u[b])) ++b;
        parts.emplace_back(from_u32(u.substr(b, e - b)));
        for (size_t k = nw - size_t(maxsplit); k < nw; ++k) parts.emplace_back(from_u32(u.substr(words[k].first, words[k].second - words[k].first)));
      }
      return parts;
    }
    for (auto [b, e] : words) parts.emplace_back(from_u32(u.substr(b, e - b)));
    return parts;
  }
  const std::string d = need_string(sep, "split");
  if (d.empty()) throw BuiltinError("split: empty separator");
  std::vector<std::string> pieces;
  size_t pos = 0;
  for (;;) {
    const size_t f = s.find(d, pos);
    if (f == std::string::npos) break;
    pieces.push_back(s.substr(pos, f - pos));
    pos = f + d.size();
  }
  pieces.push_back(s.substr(pos));
  if (maxsplit >= 0 && int64_t(pieces.size()) > maxsplit + 1) {
    std::vector<std::string> merged;
    if (!from_right) {
      merged.assign(pieces.begin(), pieces.begin() + maxsplit);
      std::string rest = pieces[size_t(maxsplit)];
      for (size_t k = size_t(maxsplit) + 1; k < pieces.size(); ++k) rest += d + pieces[k];
      merged.push_back(rest);
    } else {
      const size_t keep = pieces.size() - size_t(maxsplit);
      std::string rest = pieces[0];
      for (size_t k = 1; k < keep; ++k) rest += d + pieces[k];
      merged.push_back(rest);
      merged.insert(merged.end(), pieces.begin() + long(keep), pieces.end());
    }
    pieces = std::move(merged);
  }
  for (auto& p : pieces) parts.emplace_back(std::move(p));
  return parts;
}

bool affix_match(const std::string& s, const Value* arg, bool prefix) {
  if (!arg) throw BuiltinError(prefix ? "startswith needs an argument" : "endswith needs an argument");
  auto one = [&](const Value& a) {
    if (!a.is_string()) throw BuiltinError("startswith / endswith needs a string or a tuple of strings");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (arg->is_list()) {
    for (const Value& a : arg->as_list())
      if (one(a)) return true;
    return false;
  }
  return one(*arg);
}

int64_t int_arg(const Value* v, int64_t def) {
  if (!v || v->is_none()) return def;
  if (!v->is_int() && !v->is_bool()) throw BuiltinError("expected an integer argument, got " + v->type_name());
  return v->as_int();
}

Value to_int(const Value& v, const Value& def) {
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) return Value(int64_t(v.as_float()));
  if (v.is_string()) {
    const std::string s = py_strip(v.as_string(), nullptr, true, true);
    try {
      size_t n = 0;
      const long long x = std::stoll(s, &n, 10);
      if (n == s.size()) return Value(int64_t(x));
      const double d = std::stod(s, &n);
      if (n == s.size()) return Value(int64_t(d));
    } catch (const std::exception&) {
    }
  }
  return def;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Jinja's attribute lookup for filters (map, selectattr, sort): "a.b" walks dicts.
Value attribute_of(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_dict()) {
      const Value* f = cur.as_dict().find(part);
      cur = f ? *f : Value::undefined(part);
    } else if (cur.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      const size_t i = std::stoul(part);
      cur = i < cur.as_list().size() ? cur.as_list()[i] : Value::undefined(part);
    } else {
      return Value::undefined(part);
    }
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

CallArgs rest_args(const CallArgs& a, size_t from) {
  CallArgs r;
  for (size_t i = from; i < a.args.size(); ++i) r.args.push_back(a.args[i]);
  r.kwargs = a.kwargs;
  return r;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& v, const CallArgs& a, const BuiltinContext& ctx) {
  if (name == "trim") {
    const Value* chars = a.get(0, "chars");
    std::string c = chars && chars->is_string() ? chars->as_string() : std::string();
    return Value(py_strip(v.str(), chars && chars->is_string() ? &c : nullptr, true, true));
  }
  if (name == "length" || name == "count") return Value(py_len(v));
  if (name == "string") return Value(v.str());
  if (name == "safe") return v;
  if (name == "e" || name == "escape") return Value(html_escape(v.str()));
  if (name == "tojson") {
    const Value* indent = a.get(0, "indent");
    const Value* sort = a.get(3, "sort_keys");
    if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none())
      throw BuiltinError("tojson: the separators argument is not supported");
    if (const Value* ea = a.get(1, "ensure_ascii"); ea && ea->truthy())
      throw BuiltinError("tojson: ensure_ascii=True is not supported");
    return Value(to_json(v, indent && !indent->is_none() ? int(int_arg(indent, 0)) : -1, sort && sort->truthy()));
  }
  if (name == "default" || name == "d") {
    const Value* def = a.get(0, "default_value");
    const Value* boolean = a.get(1, "boolean");
    const bool use_def = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
    return use_def ? (def ? *def : Value(std::string())) : v;
  }
  if (name == "first" || name == "last") {
    if (v.is_undefined()) return Value::undefined();
    const List items = py_iterate(v);
    if (items.empty()) return Value::undefined();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const Value* sep = a.get(0, "d");
    const Value* attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& x : py_iterate(v)) {
      if (!first && sep) out += sep->str();
      first = false;
      out += (attr ? attribute_of(x, attr->str()) : x).str();
    }
    return Value(out);
  }
  if (name == "upper") return Value(map_case(v.str(), utf8proc_toupper));
  if (name == "lower") return Value(map_case(v.str(), utf8proc_tolower));
  if (name == "capitalize") return Value(py_capitalize(v.str()));
  if (name == "title") return Value(py_title(v.str()));
  if (name == "replace") {
    const Value* count = a.get(2, "count");
    return Value(py_replace(v.str(), need_string(a.get(0, "old"), "replace"), need_string(a.get(1, "new"), "replace"),
                            count ? int_arg(count, -1) : -1));
  }
  if (name == "int") {
    const Value* def = a.get(0, "default");
    return to_int(v, def ? *def : Value(int64_t(0)));
  }
  if (name == "float") {
    if (v.is_number()) return Value(v.as_float());
    if (v.is_string()) {
      try {
        size_t n = 0;
        const std::string s = py_strip(v.as_string(), nullptr, true, true);
        const double d = std::stod(s, &n);
        if (n == s.size()) return Value(d);
      } catch (const std::exception&) {
      }
    }
    const Value* def = a.get(0, "default");
    return def ? *def : Value(0.0);
  }
  if (name == "list") return Value(py_iterate(v));
  if (name == "items") {
    if (v.is_undefined()) return Value(List{});
    if (!v.is_dict()) throw BuiltinError("items filter: expected a mapping, got " + v.type_name());
    List out;
    for (const auto& [k, x] : v.as_dict().items) out.emplace_back(List{Value(k), x});
    return Value(out);
  }
  if (name == "abs") {
    if (v.is_float()) return Value(std::fabs(v.as_float()));
    if (v.is_number()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    throw BuiltinError("bad operand type for abs(): '" + v.type_name() + "'");
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string u = to_u32(v.as_string());
      std::reverse(u.begin(), u.end());
      return Value(from_u32(u));
    }
    List l = py_iterate(v);
    std::reverse(l.begin(), l.end());
    return Value(l);
  }
  if (name == "unique") {
    List out;
    for (const Value& x : py_iterate(v))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return y.equals(x); })) out.push_back(x);
    return Value(out);
  }
  if (name == "sort") {
    List l = py_iterate(v);
    const Value* rev = a.get(0, "reverse");
    const Value* cs = a.get(1, "case_sensitive");
    const Value* attr = a.get(2, "attribute");
    auto key = [&](const Value& x) {
      Value k = attr ? attribute_of(x, attr->str()) : x;
      if (k.is_string() && !(cs && cs->truthy())) k = Value(map_case(k.as_string(), utf8proc_tolower));
      return k;
    };
    std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) { return py_less(key(x), key(y)); });
    if (rev && rev->truthy()) std::reverse(l.begin(), l.end());
    return Value(l);
  }
  if (name == "map") {
    List out;
    const Value* attr = nullptr;
    for (const auto& [k, x] : a.kwargs)
      if (k == "attribute") attr = &x;
    if (attr) {
      const Value* def = nullptr;
      for (const auto& [k, x] : a.kwargs)
        if (k == "default") def = &x;
      for (const Value& x : py_iterate(v)) {
        Value r = attribute_of(x, attr->str());
        out.push_back(r.is_undefined() && def ? *def : r);
      }
      return Value(out);
    }
    if (a.args.empty() || !a.args[0].is_string()) throw BuiltinError("map needs a filter name or attribute=");
    const CallArgs fa = rest_args(a, 1);
    for (const Value& x : py_iterate(v)) out.push_back(ctx.filter(a.args[0].as_string(), x, fa));
    return Value(out);
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool want = name == "selectattr" || name == "select";
    const size_t test_at = by_attr ? 1 : 0;
    if (by_attr && (a.args.empty() || !a.args[0].is_string())) throw BuiltinError(name + " needs an attribute name");
    List out;
    for (const Value& x : py_iterate(v)) {
      const Value subject = by_attr ? attribute_of(x, a.args[0].as_string()) : x;
      bool ok;
      if (a.args.size() > test_at) {
        if (!a.args[test_at].is_string()) throw BuiltinError(name + ": the test name must be a string");
        ok = ctx.test(a.args[test_at].as_string(), subject, rest_args(a, test_at + 1));
      } else {
        ok = subject.truthy();
      }
      if (ok == want) out.push_back(x);
    }
    return Value(out);
  }
  if (name == "indent") {
    const Value* width = a.get(0, "width");
    const Value* first = a.get(1, "first");
    const Value* blank = a.get(2, "blank");
    const std::string pad = width && width->is_string() ? width->as_string() : std::string(size_t(int_arg(width, 4)), ' ');
    const std::string s = v.str();
    std::string out;
    size_t pos = 0;
    bool first_line = true;
    while (pos <= s.size()) {
      size_t nl = s.find('\n', pos);
      const std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      // Jinja2: the first line only with first=True; empty lines only with blank=True.
      if (first_line ? (first && first->truthy()) : (!line.empty() || (blank && blank->truthy()))) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      pos = nl + 1;
      first_line = false;
    }
    return Value(out);
  }
  if (name == "wordcount") return Value(int64_t(py_split(v.str(), nullptr, -1, false).size()));
  if (name == "round") {
    const int64_t prec = int_arg(a.get(0, "precision"), 0);
    const Value* method = a.get(1, "method");
    const std::string m = method ? method->str() : "common";
    const double p = std::pow(10.0, double(prec));
    const double x = v.as_float() * p;
    double r = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::round(x);
    return Value(r / p);
  }
  throw BuiltinError("unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& a) {
  auto arg = [&](const char* what) -> const Value& {
    if (a.args.empty()) throw BuiltinError(std::string("test '") + what + "' needs an argument");
    return a.args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_function();
  if (name == "odd" || name == "even") {
    if (!v.is_int()) throw BuiltinError("test '" + name + "' needs an integer");
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value& d = arg("divisibleby");
    if (!v.is_int() || !d.is_int() || d.as_int() == 0) throw BuiltinError("divisibleby needs integers (and a non-zero divisor)");
    return v.as_int() % d.as_int() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return v.equals(arg("eq"));
  if (name == "ne" || name == "!=") return !v.equals(arg("ne"));
  if (name == "lt" || name == "lessthan" || name == "<") return py_less(v, arg("lt"));
  if (name == "gt" || name == "greaterthan" || name == ">") return py_less(arg("gt"), v);
  if (name == "le" || name == "<=") return !py_less(arg("le"), v);
  if (name == "ge" || name == ">=") return !py_less(v, arg("ge"));
  if (name == "sameas") {
    const Value& o = arg("sameas");
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.kind() == o.kind() && v.equals(o);
    return v.equals(o) && v.kind() == o.kind();
  }
  if (name == "in") {
    const Value& c = arg("in");
    if (c.is_string()) return v.is_string() && c.as_string().find(v.as_string()) != std::string::npos;
    if (c.is_dict()) return v.is_string() && c.as_dict().find(v.as_string()) != nullptr;
    for (const Value& x : py_iterate(c))
      if (x.equals(v)) return true;
    return false;
  }
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    const std::string s = v.as_string();
    return s == map_case(s, name == "lower" ? utf8proc_tolower : utf8proc_toupper) && s != map_case(s, name == "lower" ? utf8proc_toupper : utf8proc_tolower);
  }
  throw BuiltinError("unknown test '" + name + "'");
}

Value call_method(const Value& obj, const std::string& name, const CallArgs& a, bool& found) {
  found = true;
  if (obj.is_string()) {
    const std::string& s = obj.as_string();
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const Value* chars = a.get(0, "chars");
      std::string c = chars && chars->is_string() ? chars->as_string() : std::string();
      return Value(py_strip(s, chars && chars->is_string() ? &c : nullptr, name != "rstrip", name != "lstrip"));
    }
    if (name == "split" || name == "rsplit") return Value(py_split(s, a.get(0, "sep"), int_arg(a.get(1, "maxsplit"), -1), name == "rsplit"));
    if (name == "splitlines") {
      List out;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find_first_of("\n\r", pos);
        if (nl == std::string::npos) {
          out.emplace_back(s.substr(pos));
          break;
        }
        out.emplace_back(s.substr(pos, nl - pos));
        pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
      }
      return Value(out);
    }
    if (name == "startswith") return Value(affix_match(s, a.get(0, "prefix"), true));
    if (name == "endswith") return Value(affix_match(s, a.get(0, "suffix"), false));
    if (name == "upper") return Value(map_case(s, utf8proc_toupper));
    if (name == "lower") return Value(map_case(s, utf8proc_tolower));
    if (name == "title") return Value(py_title(s));
    if (name == "capitalize") return Value(py_capitalize(s));
    if (name == "replace")
      return Value(py_replace(s, need_string(a.get(0, "old"), "replace"), need_string(a.get(1, "new"), "replace"), int_arg(a.get(2, "count"), -1)));
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
      const std::string sub = need_string(a.get(0, "sub"), name.c_str());
      const size_t f = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
      if (f == std::string::npos) {
        if (name.find("index") != std::string::npos) throw BuiltinError("substring not found");
        return Value(int64_t(-1));
      }
      return Value(int64_t(to_u32(s.substr(0, f)).size()));
    }
    if (name == "count") {
      const std::string sub = need_string(a.get(0, "sub"), "count");
      if (sub.empty()) return Value(int64_t(to_u32(s).size() + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    if (name == "join") {
      const Value* it = a.get(0, "iterable");
      if (!it) throw BuiltinError("join needs an argument");
      std::string out;
      bool first = true;
      for (const Value& x : py_iterate(*it)) {
        if (!x.is_string()) throw BuiltinError("join: expected str items, got " + x.type_name());
        if (!first) out += s;
        first = false;
        out += x.as_string();
      }
      return Value(out);
    }
    if (name == "isspace" || name == "isdigit" || name == "isalpha" || name == "isalnum") {
      const std::u32string u = to_u32(s);
      if (u.empty()) return Value(false);
      for (char32_t c : u) {
        bool ok = name == "isspace" ? py_isspace(c)
                  : name == "isdigit" ? (c >= '0' && c <= '9')
                  : name == "isalpha" ? utf8::is_alphanumeric(c) && !utf8::is_numeric(c)
                                      : utf8::is_alphanumeric(c);
        if (!ok) return Value(false);
      }
      return Value(true);
    }
  } else if (obj.is_dict()) {
    const Dict& d = obj.as_dict();
    if (name == "items") {
      List out;
      for (const auto& [k, x] : d.items) out.emplace_back(List{Value(k), x});
      return Value(out);
    }
    if (name == "keys" || name == "values") {
      List out;
      for (const auto& [k, x] : d.items) out.push_back(name == "keys" ? Value(k) : x);
      return Value(out);
    }
    if (name == "get") {
      const Value* key = a.get(0, "key");
      if (!key) throw BuiltinError("get needs a key");
      const Value* def = a.get(1, "default");
      const Value* f = key->is_string() ? d.find(key->as_string()) : nullptr;
      return f ? *f : def ? *def : Value::none();
    }
  } else if (obj.is_list()) {
    const List& l = obj.as_list();
    if (name == "index" || name == "count") {
      const Value* x = a.get(0, "value");
      if (!x) throw BuiltinError(name + " needs an argument");
      int64_t n = 0;
      for (size_t i = 0; i < l.size(); ++i)
        if (l[i].equals(*x)) {
          if (name == "index") return Value(int64_t(i));
          ++n;
        }
      if (name == "index") throw BuiltinError("value is not in list");
      return Value(n);
    }
    if (name == "append" || name == "extend" || name == "pop" || name == "insert" || name == "remove" || name == "clear")
      throw BuiltinError("cannot modify a list in a sandboxed template (list." + name + ")");
  }
  found = false;
  return Value();
}

}  // namespace awq::jinja
