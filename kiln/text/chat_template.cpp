// The chat-template engine: a lexer and parser for the Jinja2 subset named in chat_template.h,
// and a tree-walking interpreter over Python-like values. Whitespace handling, operator
// precedence, scoping and the printed form of values follow jinja2 3.x and CPython, because
// the rendered prompt must match transformers byte for byte.
#include "kiln/text/chat_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "kiln/errors.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

constexpr const char* kTag = "[chat_template] ";

template <class... Parts>
[[noreturn]] void error_at(int line, const Parts&... parts) {
  fail<ValueError>(kTag, "line ", line, ": ", parts...);
}

// ============================================================================ values

struct Value;
struct Dict;
struct Object;
struct Function;
using List = std::vector<Value>;

struct Value {
  enum class Kind { undefined, none, boolean, integer, real, string, list, dict, object, function, generator };
  Kind kind = Kind::undefined;
  bool tuple = false;  // a list written (a, b): prints with parentheses, never equals a list
  int64_t i = 0;       // boolean and integer
  double f = 0;        // real
  std::string s;       // string; for undefined, what was missing ("'x' is undefined")
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Object> object;  // namespace() and loop: attributes that `set` may change
  std::shared_ptr<const Function> function;
  // generator: what select, map, items and friends return in jinja2. It yields `list` once:
  // iterating moves the shared cursor, it is always true, and it has no length. A non-empty
  // `s` is the error that consuming it raises (jinja2 checks its input only then).
  std::shared_ptr<size_t> cursor;

  bool is(Kind k) const { return kind == k; }
  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_string() const { return kind == Kind::string; }
  bool is_list() const { return kind == Kind::list; }
  bool is_dict() const { return kind == Kind::dict; }
  bool is_int() const { return kind == Kind::integer || kind == Kind::boolean; }  // bool is an int
  bool is_number() const { return is_int() || kind == Kind::real; }
  double as_double() const { return kind == Kind::real ? f : static_cast<double>(i); }
};

using Kind = Value::Kind;

Value undefined(std::string why) {
  Value v;
  v.s = std::move(why);
  return v;
}
Value none() {
  Value v;
  v.kind = Kind::none;
  return v;
}
Value boolean(bool b) {
  Value v;
  v.kind = Kind::boolean;
  v.i = b;
  return v;
}
Value integer(int64_t i) {
  Value v;
  v.kind = Kind::integer;
  v.i = i;
  return v;
}
Value real(double f) {
  Value v;
  v.kind = Kind::real;
  v.f = f;
  return v;
}
Value str(std::string s) {
  Value v;
  v.kind = Kind::string;
  v.s = std::move(s);
  return v;
}
Value make_list(List items, bool tuple = false) {
  Value v;
  v.kind = Kind::list;
  v.tuple = tuple;
  v.list = std::make_shared<const List>(std::move(items));
  return v;
}

Value make_generator(List items) {
  Value v;
  v.kind = Kind::generator;
  v.list = std::make_shared<const List>(std::move(items));
  v.cursor = std::make_shared<size_t>(0);
  return v;
}

Value failing_generator(std::string error) {
  Value v = make_generator({});
  v.s = std::move(error);
  return v;
}

// Python dicts keep insertion order; keys compare with Python equality (1 == 1.0 == True).
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const {
    for (const auto& [k, v] : items)
      if (k.is_string() && k.s == key) return &v;
    return nullptr;
  }
  void set(Value key, Value value);
};

Value make_dict(Dict d) {
  Value v;
  v.kind = Kind::dict;
  v.dict = std::make_shared<const Dict>(std::move(d));
  return v;
}

struct Object {
  bool is_namespace = false;  // namespace(); otherwise a for loop's `loop`
  std::vector<std::pair<std::string, Value>> attrs;
  const Value* find(std::string_view name) const {
    for (const auto& [k, v] : attrs)
      if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : attrs)
      if (k == name) {
        v = std::move(value);
        return;
      }
    attrs.emplace_back(name, std::move(value));
  }
};

class Interp;

// Call arguments: positional, then keyword.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct Function {
  std::string name;
  std::function<Value(Interp&, Args&, int line)> call;
};

Value make_function(std::string name, std::function<Value(Interp&, Args&, int)> call) {
  Value v;
  v.kind = Kind::function;
  v.function = std::make_shared<const Function>(Function{std::move(name), std::move(call)});
  return v;
}

// Python's name for a value's type, for error messages.
std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::real: return "float";
    case Kind::string: return "str";
    case Kind::list: return v.tuple ? "tuple" : "list";
    case Kind::dict: return "dict";
    case Kind::object: return v.object->is_namespace ? "Namespace" : "LoopContext";
    case Kind::function: return "function";
    case Kind::generator: return "generator";
  }
  return "object";
}

// ---------------------------------------------------------------------------- UTF-8 text

// The code points of `s` as byte ranges; a byte that starts no valid sequence is one unit.
std::vector<std::string_view> code_units(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t p = 0; p < s.size();) {
    size_t n = utf8_valid_length(s, p);
    if (n == 0) n = 1;
    out.push_back(s.substr(p, n));
    p += n;
  }
  return out;
}

uint32_t decode(std::string_view unit) {
  if (utf8_valid_length(unit, 0) != unit.size()) return 0xFFFD;
  size_t p = 0;
  return next_code_point(unit, p);
}

// Python's str.isspace().
bool is_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and basic Cyrillic, the scripts chat
// text mostly uses; other code points keep their case.
uint32_t to_upper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c == 0xB5) return 0x39C;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    bool odd_lower = (c <= 0x137 && c != 0x130) || (c >= 0x14A && c <= 0x177);
    bool even_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if ((odd_lower && (c & 1)) || (even_lower && !(c & 1))) return c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 37;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 63;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}
uint32_t to_lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F) {
    bool even_upper = (c <= 0x136 && c != 0x130) || (c >= 0x14A && c <= 0x176);
    bool odd_upper = (c >= 0x139 && c <= 0x147) || (c >= 0x179 && c <= 0x17D);
    if ((even_upper && !(c & 1)) || (odd_upper && (c & 1))) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}
// Title case: upper case, except where the two differ.
uint32_t to_title(uint32_t c) { return to_upper(c); }
// Python's lower- and upper-case letters among the code points above (ª, º and ĸ are lower case;
// ß, ŉ, ΐ and ΰ have capitals of several code points, İ a lower case of two).
bool is_lowercase(uint32_t c) {
  return to_upper(c) != c || c == 0xAA || c == 0xBA || c == 0xDF || c == 0x138 || c == 0x149 || c == 0x390 ||
         c == 0x3B0;
}
bool is_uppercase(uint32_t c) { return to_lower(c) != c || c == 0x130; }
bool is_cased(uint32_t c) { return is_lowercase(c) || is_uppercase(c); }

void append_unit(std::string& out, std::string_view unit, uint32_t (*map)(uint32_t)) {
  uint32_t c = decode(unit);
  if (map != to_lower) {
    if (c == 0xDF) {
      out += map == to_title ? "Ss" : "SS";
      return;
    }
    const char* expanded = c == 0x149   ? "\u02BCN"
                           : c == 0x390 ? "\u0399\u0308\u0301"
                           : c == 0x3B0 ? "\u03A5\u0308\u0301"
                                        : nullptr;
    if (expanded) {
      out += expanded;
      return;
    }
  } else if (c == 0x130) {
    out += "i\u0307";
    return;
  }
  uint32_t m = map(c);
  if (m == c)
    out += unit;
  else
    append_utf8(out, m);
}

std::string upper(std::string_view s) {
  std::string out;
  for (auto u : code_units(s)) append_unit(out, u, to_upper);
  return out;
}
// Characters that casing looks through (Unicode Case_Ignorable, the common ones).
bool case_ignorable(uint32_t c) {
  return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xA8 || c == 0xAD || c == 0xAF ||
         c == 0xB4 || c == 0xB7 || c == 0xB8 || c == 0x2019 || (c >= 0x300 && c <= 0x36F) || c == 0x374 ||
         c == 0x375 || c == 0x37A || c == 0x384 || c == 0x385 || c == 0x387 || (c >= 0x483 && c <= 0x489);
}

// Lower-cases units[k]. A capital sigma with a cased letter before it (within units[from..k))
// and none after it ends a word and becomes final sigma, as in Python's str.lower().
void append_lower(std::string& out, const std::vector<std::string_view>& units, size_t from, size_t k) {
  if (decode(units[k]) == 0x3A3) {
    auto cased_next = [&](size_t j, int step) {
      for (; j >= from && j < units.size(); j += step) {
        uint32_t c = decode(units[j]);
        if (!case_ignorable(c)) return is_cased(c);
      }
      return false;
    };
    if (k > from && cased_next(k - 1, -1) && !cased_next(k + 1, 1)) {
      append_utf8(out, 0x3C2);
      return;
    }
  }
  append_unit(out, units[k], to_lower);
}

std::string lower(std::string_view s) {
  std::string out;
  auto units = code_units(s);
  for (size_t k = 0; k < units.size(); ++k) append_lower(out, units, 0, k);
  return out;
}
// str.capitalize(): the first code point upper-cased, the rest lower-cased.
std::string capitalize(std::string_view s) {
  std::string out;
  auto units = code_units(s);
  for (size_t k = 0; k < units.size(); ++k) {
    if (k == 0)
      append_unit(out, units[k], to_title);
    else
      append_lower(out, units, 0, k);
  }
  return out;
}
// str.title(): a cased letter after an uncased character starts a word.
std::string py_title(std::string_view s) {
  std::string out;
  auto units = code_units(s);
  bool prev_cased = false;
  for (size_t k = 0; k < units.size(); ++k) {
    bool cased = is_cased(decode(units[k]));
    if (cased && !prev_cased)
      append_unit(out, units[k], to_title);
    else
      append_lower(out, units, 0, k);
    prev_cased = cased;
  }
  return out;
}
// jinja2's title filter: words start after runs of whitespace, '-', '(', '{', '[' or '<'; the
// rest of each word is lower-cased on its own (word[1:].lower()).
std::string jinja_title(std::string_view s) {
  std::string out;
  auto units = code_units(s);
  size_t word = 0;
  bool start = true;
  for (size_t k = 0; k < units.size(); ++k) {
    uint32_t c = decode(units[k]);
    bool sep = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out += units[k];
    } else if (start) {
      append_unit(out, units[k], to_upper);
      word = k + 1;
    } else {
      append_lower(out, units, word, k);
    }
    start = sep;
  }
  return out;
}

// str.strip/lstrip/rstrip: whitespace, or any code point of `chars` when given.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  auto units = code_units(s);
  std::vector<std::string_view> set;
  if (chars) set = code_units(*chars);
  auto drop = [&](std::string_view u) {
    if (!chars) return is_space(decode(u));
    return std::find(set.begin(), set.end(), u) != set.end();
  };
  size_t b = 0, e = units.size();
  if (left)
    while (b < e && drop(units[b])) ++b;
  if (right)
    while (e > b && drop(units[e - 1])) --e;
  std::string out;
  for (size_t k = b; k < e; ++k) out += units[k];
  return out;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` around every code point
    auto units = code_units(s);
    int64_t n = 0;
    for (size_t k = 0; k <= units.size(); ++k) {
      if (count < 0 || n < count) {
        out += to;
        ++n;
      }
      if (k < units.size()) out += units[k];
    }
    return out;
  }
  size_t p = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t q = s.find(from, p);
    if (q == std::string_view::npos) break;
    out += s.substr(p, q - p);
    out += to;
    p = q + from.size();
    ++n;
  }
  out += s.substr(p);
  return out;
}

// str.split(sep, maxsplit) and str.split() (runs of whitespace, no empty parts).
List split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit, int line) {
  List out;
  if (sep) {
    if (sep->empty()) error_at(line, "split: empty separator");
    size_t p = 0;
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
      size_t q = s.find(*sep, p);
      if (q == std::string_view::npos) break;
      out.push_back(str(std::string(s.substr(p, q - p))));
      p = q + sep->size();
      ++n;
    }
    out.push_back(str(std::string(s.substr(p))));
    return out;
  }
  auto units = code_units(s);
  size_t k = 0;
  int64_t n = 0;
  while (true) {
    while (k < units.size() && is_space(decode(units[k]))) ++k;
    if (k == units.size()) break;
    std::string word;
    if (maxsplit >= 0 && n == maxsplit) {  // the rest, as it is, is the last part
      for (; k < units.size(); ++k) word += units[k];
      out.push_back(str(std::move(word)));
      break;
    }
    while (k < units.size() && !is_space(decode(units[k]))) word += units[k++];
    out.push_back(str(std::move(word)));
    ++n;
  }
  return out;
}

// ---------------------------------------------------------------------------- printing

// float.__repr__: the shortest digits that round-trip, fixed notation for 1e-4 <= |x| < 1e16.
std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  size_t e = sci.find('e');
  std::string digits;
  for (size_t k = neg; k < e; ++k)
    if (sci[k] != '.') digits += sci[k];
  int exp = std::atoi(sci.c_str() + e + 1);
  int point = exp + 1;  // value = 0.DIGITS * 10^point
  std::string out = neg ? "-" : "";
  if (point > -4 && point <= 16) {
    if (point <= 0)
      out += "0." + std::string(-point, '0') + digits;
    else if (point >= static_cast<int>(digits.size()))
      out += digits + std::string(point - digits.size(), '0') + ".0";
    else
      out += digits.substr(0, point) + "." + digits.substr(point);
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char tail[16];
    std::snprintf(tail, sizeof tail, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += tail;
  }
  return out;
}

// Code points that repr() escapes beyond ASCII: controls, separators, format characters and
// private use (an approximation of Python's str.isprintable()).
bool printable(uint32_t c) {
  if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || c == 0x180E || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F)) return false;
  if ((c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB)) return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000) return false;
  return true;
}

std::string str_repr(std::string_view s) {
  bool single = s.find('\'') != std::string_view::npos, dbl = s.find('"') != std::string_view::npos;
  char q = single && !dbl ? '"' : '\'';
  std::string out(1, q);
  for (auto u : code_units(s)) {
    uint32_t c = decode(u);
    char buf[16];
    if (c == static_cast<uint32_t>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (printable(c)) {
      out += u;
    } else {
      if (c < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
      else if (c < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", c);
      out += buf;
    }
  }
  out += q;
  return out;
}

std::string repr(const Value& v);

// Python's str(): what {{ value }} prints. Undefined prints as nothing.
std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::undefined: return "";
    case Kind::none: return "None";
    case Kind::boolean: return v.i ? "True" : "False";
    case Kind::integer: return std::to_string(v.i);
    case Kind::real: return float_repr(v.f);
    case Kind::string: return v.s;
    case Kind::list: {
      std::string out = v.tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + repr((*v.list)[k]);
      if (v.tuple && v.list->size() == 1) out += ",";
      return out + (v.tuple ? ")" : "]");
    }
    case Kind::dict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, x] : v.dict->items) {
        out += (first ? "" : ", ") + repr(k) + ": " + repr(x);
        first = false;
      }
      return out + "}";
    }
    case Kind::object: {
      if (!v.object->is_namespace) return "<LoopContext>";
      std::string out = "<Namespace {";
      bool first = true;
      for (const auto& [k, x] : v.object->attrs) {
        out += (first ? "" : ", ") + str_repr(k) + ": " + repr(x);
        first = false;
      }
      return out + "}>";
    }
    case Kind::function: return "<function " + v.function->name + ">";
    case Kind::generator: return "<generator object>";
  }
  return "";
}

std::string repr(const Value& v) {
  if (v.is_string()) return str_repr(v.s);
  if (v.is_undefined()) return "Undefined";
  return to_str(v);
}

// json.dumps with ensure_ascii=False.
struct JsonStyle {
  std::optional<std::string> indent;  // None: one line
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false;
};

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
  return float_repr(f);
}

void to_json(std::string& out, const Value& v, const JsonStyle& st, int depth, int line) {
  auto newline = [&](int d) {
    out += '\n';
    for (int k = 0; k < d; ++k) out += *st.indent;
  };
  switch (v.kind) {
    case Kind::none: out += "null"; return;
    case Kind::boolean: out += v.i ? "true" : "false"; return;
    case Kind::integer: out += std::to_string(v.i); return;
    case Kind::real: out += json_float(v.f); return;
    case Kind::string: json_string(out, v.s); return;
    case Kind::list: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        if (st.indent) newline(depth + 1);
        to_json(out, (*v.list)[k], st, depth + 1, line);
      }
      if (st.indent) newline(depth);
      out += ']';
      return;
    }
    case Kind::dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, x] : v.dict->items) {
        std::string key;
        if (k.is_string())
          key = k.s;
        else if (k.kind == Kind::integer)
          key = std::to_string(k.i);
        else if (k.kind == Kind::boolean)
          key = k.i ? "true" : "false";
        else if (k.kind == Kind::real)
          key = json_float(k.f);
        else if (k.kind == Kind::none)
          key = "null";
        else
          error_at(line, "tojson: keys must be str, int, float, bool or None, not ", type_name(k));
        items.emplace_back(std::move(key), &x);
      }
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += st.item_sep;
        if (st.indent) newline(depth + 1);
        json_string(out, items[k].first);
        out += st.key_sep;
        to_json(out, *items[k].second, st, depth + 1, line);
      }
      if (st.indent) newline(depth);
      out += '}';
      return;
    }
    default: error_at(line, "tojson: object of type ", type_name(v), " is not JSON serializable");
  }
}

// ---------------------------------------------------------------------------- comparison

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean:
    case Kind::integer: return v.i != 0;
    case Kind::real: return v.f != 0;
    case Kind::string: return !v.s.empty();
    case Kind::list: return !v.list->empty();
    case Kind::dict: return !v.dict->items.empty();
    default: return true;
  }
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::real || b.kind == Kind::real) return a.as_double() == b.as_double();
    return a.i == b.i;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.s == b.s;
    case Kind::list: {
      if (a.tuple != b.tuple || a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equals((*a.list)[k], (*b.list)[k])) return false;
      return true;
    }
    case Kind::dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, x] : a.dict->items) {
        const Value* y = b.dict->find(k);
        if (!y || !equals(x, *y)) return false;
      }
      return true;
    }
    case Kind::object: return a.object == b.object;
    case Kind::function: return a.function == b.function;
    case Kind::generator: return a.cursor == b.cursor;
    default: return false;
  }
}

const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (equals(k, key)) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : items)
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  items.emplace_back(std::move(key), std::move(value));
}

[[noreturn]] void undefined_error(const Value& v, int line) {
  error_at(line, v.s.empty() ? "value is undefined" : v.s);
}

// Python's ordering: numbers, strings (code point order is UTF-8 byte order) and sequences.
// Returns <0, 0 or >0.
int compare(const Value& a, const Value& b, const char* op, int line) {
  if (a.is_undefined()) undefined_error(a, line);
  if (b.is_undefined()) undefined_error(b, line);
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::real || b.kind == Kind::real) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) return a.s.compare(b.s) < 0 ? -1 : (a.s == b.s ? 0 : 1);
  if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k)
      if (!equals((*a.list)[k], (*b.list)[k])) return compare((*a.list)[k], (*b.list)[k], op, line);
    return a.list->size() < b.list->size() ? -1 : (a.list->size() > b.list->size() ? 1 : 0);
  }
  error_at(line, "'", op, "' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

// The items a for loop or list() sees: list items, dict keys, string code points.
List iterate(const Value& v, int line) {
  switch (v.kind) {
    case Kind::undefined: return {};
    case Kind::list: return *v.list;
    case Kind::generator: {
      if (!v.s.empty()) error_at(line, v.s);
      List rest(v.list->begin() + static_cast<std::ptrdiff_t>(*v.cursor), v.list->end());
      *v.cursor = v.list->size();
      return rest;
    }
    case Kind::dict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::string: {
      List out;
      for (auto u : code_units(v.s)) out.push_back(str(std::string(u)));
      return out;
    }
    default: error_at(line, "'", type_name(v), "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item, int line) {
  switch (container.kind) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string()) error_at(line, "'in <string>' requires string as left operand, not ", type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Kind::list:
      for (const auto& x : *container.list)
        if (equals(x, item)) return true;
      return false;
    case Kind::dict:
      if (item.is_dict() || (item.is_list() && !item.tuple)) error_at(line, "unhashable type: '", type_name(item), "'");
      return container.dict->find(item) != nullptr;
    case Kind::generator:  // consumes up to the match, as Python's `in` does
      if (!container.s.empty()) error_at(line, container.s);
      while (*container.cursor < container.list->size())
        if (equals((*container.list)[(*container.cursor)++], item)) return true;
      return false;
    default: error_at(line, "argument of type '", type_name(container), "' is not iterable");
  }
}

// Python's len().
int64_t length(const Value& v, int line) {
  switch (v.kind) {
    case Kind::undefined: return 0;
    case Kind::string: return static_cast<int64_t>(code_units(v.s).size());
    case Kind::list: return static_cast<int64_t>(v.list->size());
    case Kind::dict: return static_cast<int64_t>(v.dict->items.size());
    default: error_at(line, "object of type '", type_name(v), "' has no len()");
  }
}

// ============================================================================ lexer

enum class Tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, real, op, eof };

struct Token {
  Tok type;
  std::string text;  // text, name, operator, or the decoded string literal
  int line;
  int64_t i = 0;
  double f = 0;
};

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Length of the (Python \s) whitespace code point ending at s[end - 1], or 0.
size_t space_before(std::string_view s, size_t end) {
  if (end == 0) return 0;
  size_t b = end - 1;
  while (b > 0 && end - b < 4 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  std::string_view u = s.substr(b, end - b);
  if (utf8_valid_length(u, 0) != u.size()) return 0;
  return is_space(decode(u)) ? u.size() : 0;
}
size_t space_after(std::string_view s, size_t pos) {
  size_t n = utf8_valid_length(s, pos);
  if (n == 0) return 0;
  return is_space(decode(s.substr(pos, n))) ? n : 0;
}
std::string_view rstrip_space(std::string_view s) {
  size_t e = s.size(), n;
  while ((n = space_before(s, e)) > 0) e -= n;
  return s.substr(0, e);
}
size_t skip_space(std::string_view s, size_t pos) {
  size_t n;
  while (pos < s.size() && (n = space_after(s, pos)) > 0) pos += n;
  return pos;
}

// Python's unicode-escape decoding of a string literal's body (what jinja2 does).
std::string unescape(std::string_view s, int line) {
  std::string out;
  auto hex = [&](size_t& p, int n) {
    if (p + n > s.size()) error_at(line, "truncated \\x/\\u/\\U escape in string literal");
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s[p++];
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                          : -1;
      if (d < 0) error_at(line, "truncated \\x/\\u/\\U escape in string literal");
      v = v * 16 + d;
    }
    return v;
  };
  for (size_t p = 0; p < s.size();) {
    char c = s[p++];
    if (c != '\\' || p == s.size()) {
      out += c;
      continue;
    }
    char e = s[p++];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': append_utf8(out, hex(p, 2)); break;
      case 'u': append_utf8(out, hex(p, 4)); break;
      case 'U': {
        uint32_t v = hex(p, 8);
        if (v > 0x10FFFF) error_at(line, "illegal Unicode character in string literal");
        append_utf8(out, v);
        break;
      }
      case 'N': error_at(line, "\\N{...} escapes are not supported");
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = e - '0';
          for (int k = 0; k < 2 && p < s.size() && s[p] >= '0' && s[p] <= '7'; ++k) v = v * 8 + (s[p++] - '0');
          append_utf8(out, v);
        } else {  // unknown escapes stay as written
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // jinja2 reads \r\n and \r as \n and drops one trailing newline (keep_trailing_newline=False).
    for (size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        src_ += '\n';
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
      } else {
        src_ += source[k];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    for (size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') newlines_.push_back(k);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // the previous match ended a line
    const size_t n = src_.size();
    while (pos < n) {
      size_t t = src_.find('{', pos);
      while (t != std::string::npos && t + 1 < n && src_[t + 1] != '{' && src_[t + 1] != '%' && src_[t + 1] != '#')
        t = src_.find('{', t + 1);
      if (t == std::string::npos || t + 1 >= n) {
        emit_text(pos, std::string_view(src_).substr(pos));
        break;
      }
      char kind = src_[t + 1];
      size_t p = t + 2;
      char sign = 0;
      if (p < n && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t raw_end = kind == '%' ? match_raw_begin(p) : 0;

      std::string_view text = std::string_view(src_).substr(pos, t - pos);
      if (sign == '-') {
        text = rstrip_space(text);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: blocks and comments only
        size_t l = text.rfind('\n');
        l = l == std::string_view::npos ? 0 : l + 1;
        if ((l > 0 || line_starting) && l < text.size() && skip_space(text, l) == text.size()) text = text.substr(0, l);
      }
      emit_text(pos, text);
      line_starting = false;

      if (raw_end) {
        pos = lex_raw(raw_end, line_starting);
      } else if (kind == '#') {
        pos = lex_comment(t, p, line_starting);
      } else {
        push(kind == '%' ? Tok::block_begin : Tok::var_begin, t, {});
        pos = lex_tag(p, kind, line_starting);
      }
    }
    // jinja2 reports an early end of the template on the line of the last token.
    tokens_.push_back(Token{Tok::eof, {}, tokens_.empty() ? 1 : tokens_.back().line});
    return std::move(tokens_);
  }

 private:
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) - newlines_.begin());
  }
  void push(Tok type, size_t pos, std::string text) { tokens_.push_back(Token{type, std::move(text), line_at(pos)}); }
  void emit_text(size_t pos, std::string_view text) {
    if (!text.empty()) push(Tok::text, pos, std::string(text));
  }
  bool at(size_t pos, std::string_view s) const { return src_.compare(pos, s.size(), s) == 0; }

  // After "{%" and its sign: `\s*raw\s*(-%}\s*|%})`; returns the end of the match or 0.
  size_t match_raw_begin(size_t p) const {
    p = skip_space(src_, p);
    if (!at(p, "raw")) return 0;
    p = skip_space(src_, p + 3);
    if (at(p, "-%}")) return skip_space(src_, p + 3);
    if (at(p, "%}")) return p + 2;
    return 0;
  }

  // Block and comment ends: "+X" keeps what follows, "-X" eats whitespace, plain "X" eats one
  // newline (trim_blocks). Returns the end of the match.
  size_t block_end(size_t end, char sign, bool& line_starting) const {
    if (sign == '-')
      end = skip_space(src_, end);
    else if (sign == 0 && end < src_.size() && src_[end] == '\n')
      ++end;
    line_starting = end > 0 && src_[end - 1] == '\n';
    return end;
  }

  size_t lex_comment(size_t start, size_t p, bool& line_starting) {
    size_t j = src_.find("#}", p);
    if (j == std::string::npos) error_at(line_at(start), "missing end of comment tag");
    char sign = 0;
    if (j > p && (src_[j - 1] == '-' || src_[j - 1] == '+')) sign = src_[j - 1];
    return block_end(j + 2, sign, line_starting);
  }

  size_t lex_raw(size_t p, bool& line_starting) {
    line_starting = src_[p - 1] == '\n';
    for (size_t j = src_.find("{%", p); j != std::string::npos; j = src_.find("{%", j + 1)) {
      size_t q = j + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_space(src_, q);
      if (!at(q, "endraw")) continue;
      q = skip_space(src_, q + 6);
      char esign = 0;
      if (at(q, "-%}") || at(q, "+%}")) esign = src_[q++];
      if (!at(q, "%}")) continue;
      std::string_view text = std::string_view(src_).substr(p, j - p);
      if (sign == '-') {
        text = rstrip_space(text);
      } else if (sign != '+') {
        size_t l = text.rfind('\n');
        l = l == std::string_view::npos ? 0 : l + 1;
        if ((l > 0 || line_starting) && l < text.size() && skip_space(text, l) == text.size()) text = text.substr(0, l);
      }
      emit_text(p, text);
      return block_end(q + 2, esign, line_starting);
    }
    error_at(line_at(p), "missing end of raw directive");
  }

  // The tokens inside {% %} or {{ }}; end markers only count outside brackets.
  size_t lex_tag(size_t p, char kind, bool& line_starting) {
    std::vector<char> open;
    const size_t n = src_.size();
    while (true) {
      if (p >= n)
        error_at(line_at(n), "unexpected end of template inside a ", kind == '%' ? "block" : "variable", " tag");
      if (open.empty()) {
        if (kind == '%') {
          char sign = 0;
          size_t q = p;
          if (src_[q] == '-' || src_[q] == '+') sign = src_[q++];
          if (at(q, "%}")) {
            push(Tok::block_end, p, {});
            return block_end(q + 2, sign, line_starting);
          }
        } else {
          if (at(p, "-}}")) {
            push(Tok::var_end, p, {});
            size_t e = skip_space(src_, p + 3);
            line_starting = src_[e - 1] == '\n';
            return e;
          }
          if (at(p, "}}")) {
            push(Tok::var_end, p, {});
            line_starting = false;
            return p + 2;
          }
        }
      }
      char c = src_[p];
      if (ascii_space(c)) {
        ++p;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        p = lex_number(p);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = p;
        while (p < n && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_')) ++p;
        push(Tok::name, b, src_.substr(b, p - b));
      } else if (c == '\'' || c == '"') {
        size_t b = p++;
        while (p < n && src_[p] != c) p += src_[p] == '\\' ? 2 : 1;
        if (p >= n) error_at(line_at(b), "unterminated string literal");
        std::string body = src_.substr(b + 1, p - b - 1);
        ++p;
        push(Tok::string, b, unescape(body, line_at(b)));
      } else {
        static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op(1, c);
        for (const char* t : two)
          if (at(p, t)) op = t;
        if (op.size() == 1 && std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
          error_at(line_at(p), "unexpected character '", std::string(1, c), "'");
        if (c == '(' || c == '[' || c == '{') {
          open.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        } else if (c == ')' || c == ']' || c == '}') {
          if (open.empty()) error_at(line_at(p), "unexpected '", op, "'");
          if (open.back() != c)
            error_at(line_at(p), "unexpected '", op, "', expected '", std::string(1, open.back()), "'");
          open.pop_back();
        }
        push(Tok::op, p, op);
        p += op.size();
      }
    }
  }

  size_t lex_number(size_t p) {
    const size_t b = p, n = src_.size();
    auto digits = [&](size_t q) {
      size_t s = q;
      while (q < n && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                       (src_[q] == '_' && q > s && q + 1 < n && std::isdigit(static_cast<unsigned char>(src_[q + 1])))))
        ++q;
      return q;
    };
    p = digits(p);
    bool is_real = false;
    if (p + 1 < n && src_[p] == '.' && std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
      p = digits(p + 1);
      is_real = true;
    }
    if (p < n && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < n && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < n && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        p = digits(q);
        is_real = true;
      }
    }
    std::string text;
    for (size_t k = b; k < p; ++k)
      if (src_[k] != '_') text += src_[k];
    if (is_real) {
      push(Tok::real, b, text);
      tokens_.back().f = std::strtod(text.c_str(), nullptr);
    } else {
      push(Tok::integer, b, text);
      auto res = std::from_chars(text.data(), text.data() + text.size(), tokens_.back().i);
      if (res.ec != std::errc()) error_at(line_at(b), "integer literal out of range: ", text);
    }
    return p;
  }

  std::string src_;
  std::vector<size_t> newlines_;
  std::vector<Token> tokens_;
};

// ============================================================================ syntax tree

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,  // value
    name,     // name
    attr,     // args[0].name
    item,     // args[0][args[1]]
    slice,    // args[0][args[1]:args[2]:args[3]], null parts absent
    call,     // args[0](args[1:], kwargs)
    filter,   // args[0] | name(args[1:], kwargs)
    test,     // args[0] is name(args[1:], kwargs)
    not_,
    neg,
    pos,
    binary,   // args[0] name args[1], name one of + - * / // % **
    concat,   // args joined with ~
    compare,  // args[0] ops[0] args[1] ops[1] args[2] ...
    and_,
    or_,
    cond,  // args[1] if args[0] else args[2] (null: undefined)
    list,
    tuple,
    dict,  // keys and values alternate in args
  };
  Kind kind;
  int line;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
};

ExprPtr make_expr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind { text, output, if_, for_, set, set_block, macro, call_block, scope, break_, continue_ };
  Kind kind;
  int line;
  std::string text;                                // text
  ExprPtr expr;                                    // output, for iterable, set value, call block call
  ExprPtr cond;                                    // for: the `if` filter
  std::vector<std::pair<ExprPtr, Body>> branches;  // if / elif
  Body body, else_body;
  std::vector<std::string> targets;                     // for / set names
  bool unpack = false;                                  // the targets were written as a tuple
  std::string attr;                                     // set ns.attr: targets[0] is the namespace
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro / caller parameters and defaults
};

}  // namespace

struct ChatTemplate::Program {
  Body body;
};

namespace {

// The filters and tests this engine has, and the other jinja2 built-ins (rejected by name).
const std::vector<std::string_view> kFilters = {
    "abs",   "attr",   "capitalize", "center",     "count",   "d",       "default", "e",     "escape",   "first",
    "float", "indent", "int",        "items",      "join",    "last",    "length",  "list",  "lower",    "map",
    "max",   "min",    "reject",     "rejectattr", "replace", "reverse", "round",   "safe",  "select",   "selectattr",
    "sort",  "string", "sum",        "title",      "tojson",  "trim",    "unique",  "upper", "wordcount"};
const std::vector<std::string_view> kOtherFilters = {
    "batch", "dictsort",  "filesizeformat", "forceescape", "format", "groupby",  "pprint", "random",
    "slice", "striptags", "truncate",       "urlencode",   "urlize", "wordwrap", "xmlattr"};
const std::vector<std::string_view> kTests = {
    "boolean",  "callable", "defined",  "divisibleby", "eq",          "equalto", "escaped", "even",
    "false",    "filter",   "float",    "ge",          "greaterthan", "gt",      "in",      "integer",
    "iterable", "le",       "lessthan", "lower",       "lt",          "mapping", "ne",      "none",
    "number",   "odd",      "sameas",   "sequence",    "string",      "test",    "true",    "undefined",
    "upper",    "==",       "!=",       ">",           ">=",          "<",       "<="};

bool listed(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse() {
    std::string end;
    Body body = subparse({}, end);
    return body;
  }

 private:
  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void next() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  bool is_op(std::string_view op) const { return cur().type == Tok::op && cur().text == op; }
  bool is_name(std::string_view name) const { return cur().type == Tok::name && cur().text == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::text: return "template data";
      case Tok::var_begin: return "begin of print statement";
      case Tok::var_end: return "end of print statement";
      case Tok::block_begin: return "begin of statement block";
      case Tok::block_end: return "end of statement block";
      case Tok::eof: return "end of template";
      case Tok::string: return "string";
      case Tok::integer: return "integer";
      case Tok::real: return "float";
      default: return "'" + t.text + "'";
    }
  }
  [[noreturn]] void unexpected(std::string_view wanted) const {
    error_at(cur().line, "expected ", wanted, ", got ", describe(cur()));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
  }
  std::string expect_name() {
    if (cur().type != Tok::name) unexpected("a name");
    std::string s = cur().text;
    next();
    return s;
  }
  void expect_block_end() {
    if (cur().type != Tok::block_end) unexpected("end of statement block");
    next();
  }

  // Statements up to a {% tag %} named in `ends`; leaves the tag's name consumed in `found`.
  Body subparse(const std::vector<std::string_view>& ends, std::string& found) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::eof) {
        if (ends.empty()) return body;
        std::string names;
        for (auto e : ends) names += (names.empty() ? "'" : " or '") + std::string(e) + "'";
        error_at(t.line, "unexpected end of template; looking for the tags ", names);
      }
      if (t.type == Tok::text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::text;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        next();
      } else if (t.type == Tok::var_begin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::output;
        n->line = t.line;
        n->expr = parse_tuple(false, true, {}, false);
        if (cur().type != Tok::var_end) unexpected("end of print statement");
        next();
        body.push_back(std::move(n));
      } else if (t.type == Tok::block_begin) {
        next();
        if (cur().type == Tok::name && listed(ends, cur().text)) {
          found = cur().text;
          next();
          return body;
        }
        body.push_back(parse_statement());
      } else {
        error_at(t.line, "unexpected ", describe(t));
      }
    }
  }

  std::unique_ptr<Node> parse_statement() {
    Nesting guard(*this);
    const Token& t = cur();
    if (t.type != Tok::name) unexpected("a statement name");
    const std::string name = t.text;
    const int line = t.line;
    auto n = std::make_unique<Node>();
    n->line = line;
    next();
    if (name == "if") return parse_if(std::move(n));
    if (name == "for") return parse_for(std::move(n));
    if (name == "set") return parse_set(std::move(n));
    if (name == "macro") return parse_macro(std::move(n));
    if (name == "call") return parse_call_block(std::move(n));
    if (name == "print") {  // {% print a, b %} prints each expression
      n->kind = Node::Kind::output;
      n->expr = make_expr(Expr::Kind::concat, line);
      do n->expr->args.push_back(parse_expression(true));
      while (skip_op(","));
      expect_block_end();
      return n;
    }
    if (name == "generation") {  // transformers' assistant-mask tag: its body renders as is
      n->kind = Node::Kind::scope;
      expect_block_end();
      std::string end;
      n->body = subparse({"endgeneration"}, end);
      expect_block_end();
      return n;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error_at(line, "'", name, "' outside of a for loop");
      n->kind = name == "break" ? Node::Kind::break_ : Node::Kind::continue_;
      expect_block_end();
      return n;
    }
    static const std::vector<std::string_view> other = {"block", "extends", "include",    "import", "from",
                                                        "with",  "filter",  "autoescape", "do",     "trans"};
    if (listed(other, name)) error_at(line, "the '", name, "' tag is not supported");
    error_at(line, "unknown tag '", name, "'");
  }

  std::unique_ptr<Node> parse_if(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::if_;
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      expect_block_end();
      std::string end;
      Body body = subparse({"elif", "else", "endif"}, end);
      n->branches.emplace_back(std::move(test), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        n->else_body = subparse({"endif"}, end);
      }
      expect_block_end();
      return n;
    }
  }

  std::unique_ptr<Node> parse_for(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::for_;
    parse_targets(*n, "in");
    if (!skip_name("in")) unexpected("'in'");
    n->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) n->cond = parse_expression(true);
    if (is_name("recursive")) error_at(cur().line, "recursive for loops are not supported");
    expect_block_end();
    std::string end;
    ++loop_depth_;
    n->body = subparse({"endfor", "else"}, end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      n->else_body = subparse({"endfor"}, end);
    }
    expect_block_end();
    return n;
  }

  // A name or a tuple of names, optionally in parentheses: the targets of for and set.
  void parse_targets(Node& n, std::string_view end_name) {
    bool paren = skip_op("(");
    while (true) {
      n.targets.push_back(expect_name());
      if (!skip_op(",")) break;
      n.unpack = true;
      if ((paren && is_op(")")) || is_name(end_name) || is_op("=") || cur().type == Tok::block_end) break;
    }
    if (paren) {
      expect_op(")");
      n.unpack = true;
    }
  }

  std::unique_ptr<Node> parse_set(std::unique_ptr<Node> n) {
    if (cur().type == Tok::name && peek().type == Tok::op && peek().text == ".") {
      n->targets.push_back(expect_name());
      next();
      n->attr = expect_name();
    } else {
      parse_targets(*n, "");
    }
    if (skip_op("=")) {
      n->kind = Node::Kind::set;
      n->expr = parse_tuple(false, true, {}, false);
      expect_block_end();
      return n;
    }
    if (is_op("|")) error_at(cur().line, "filters on block assignments are not supported");
    if (!n->attr.empty() || n->unpack) unexpected("'='");
    n->kind = Node::Kind::set_block;
    expect_block_end();
    std::string end;
    n->body = subparse({"endset"}, end);
    expect_block_end();
    return n;
  }

  // "(a, b=1)": macro and caller parameters.
  void parse_params(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string param = expect_name();
      ExprPtr def;
      if (skip_op("=")) def = parse_expression(true);
      n.params.emplace_back(std::move(param), std::move(def));
    }
    next();
  }

  std::unique_ptr<Node> parse_macro(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::macro;
    n->targets.push_back(expect_name());
    parse_params(*n);
    expect_block_end();
    std::string end;
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = subparse({"endmacro"}, end);
    loop_depth_ = saved;
    if (cur().type == Tok::name) next();  // {% endmacro name %}
    expect_block_end();
    return n;
  }

  // {% call [(params)] macro(args) %}body{% endcall %}: the macro gets `caller`, which renders body.
  std::unique_ptr<Node> parse_call_block(std::unique_ptr<Node> n) {
    n->kind = Node::Kind::call_block;
    if (is_op("(")) parse_params(*n);
    n->expr = parse_expression(true);
    if (n->expr->kind != Expr::Kind::call) error_at(n->line, "a call block needs a call expression");
    expect_block_end();
    std::string end;
    int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = subparse({"endcall"}, end);
    loop_depth_ = saved;
    expect_block_end();
    return n;
  }

  // ---- expressions, with jinja2's precedence

  bool tuple_end(const std::vector<std::string_view>& extra) const {
    if (cur().type == Tok::var_end || cur().type == Tok::block_end || is_op(")")) return true;
    return cur().type == Tok::name && listed(extra, cur().text);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string_view>& extra,
                      bool explicit_parens) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (tuple_end(extra)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) unexpected("an expression");
    }
    auto e = make_expr(Expr::Kind::tuple, line);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const int line = cur().line;
      next();
      auto e = make_expr(Expr::Kind::cond, line);
      e->args.push_back(parse_or());
      e->args.push_back(std::move(expr));
      e->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      expr = std::move(e);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      auto e = make_expr(Expr::Kind::or_, cur().line);
      next();
      e->args.push_back(std::move(left));
      e->args.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      auto e = make_expr(Expr::Kind::and_, cur().line);
      next();
      e->args.push_back(std::move(left));
      e->args.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto e = make_expr(Expr::Kind::not_, cur().line);
      next();
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    auto e = make_expr(Expr::Kind::compare, line);
    e->args.push_back(std::move(first));
    while (true) {
      static const std::vector<std::string_view> ops = {"==", "!=", "<", ">", "<=", ">="};
      if (cur().type == Tok::op && listed(ops, cur().text)) {
        e->ops.push_back(cur().text);
        next();
      } else if (is_name("in")) {
        e->ops.push_back("in");
        next();
      } else if (is_name("not") && peek().type == Tok::name && peek().text == "in") {
        e->ops.push_back("not in");
        next();
        next();
      } else {
        break;
      }
      e->args.push_back(parse_math1());
    }
    if (e->ops.empty()) return std::move(e->args[0]);
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr left, ExprPtr right, int line) {
    auto e = make_expr(Expr::Kind::binary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      const int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make_expr(Expr::Kind::concat, line);
    e->args.push_back(std::move(first));
    while (skip_op("~")) e->args.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      const int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      next();
      left = binary("**", std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      node = make_expr(is_op("-") ? Expr::Kind::neg : Expr::Kind::pos, cur().line);
      next();
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make_expr(Expr::Kind::literal, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case Tok::name: {
        std::string name = t.text;
        next();
        if (name == "true" || name == "True") return literal(boolean(true), line);
        if (name == "false" || name == "False") return literal(boolean(false), line);
        if (name == "none" || name == "None") return literal(none(), line);
        auto e = make_expr(Expr::Kind::name, line);
        e->name = std::move(name);
        return e;
      }
      case Tok::string: {
        std::string s;
        while (cur().type == Tok::string) {  // adjacent literals join, as in Python
          s += cur().text;
          next();
        }
        return literal(str(std::move(s)), line);
      }
      case Tok::integer: {
        Value v = integer(t.i);
        next();
        return literal(v, line);
      }
      case Tok::real: {
        Value v = real(t.f);
        next();
        return literal(v, line);
      }
      case Tok::op:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = make_expr(Expr::Kind::list, line);
          while (!is_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("]")) break;
            e->args.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        if (t.text == "{") {
          next();
          auto e = make_expr(Expr::Kind::dict, line);
          while (!is_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("}")) break;
            e->args.push_back(parse_expression(true));
            expect_op(":");
            e->args.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        break;
      default: break;
    }
    error_at(line, "unexpected ", describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("["))
        node = parse_subscript(std::move(node));
      else if (is_op("("))
        node = parse_call(std::move(node));
      else
        return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|"))
        node = parse_filter(std::move(node));
      else if (is_name("is"))
        node = parse_test(std::move(node));
      else if (is_op("("))
        node = parse_call(std::move(node));
      else
        return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const int line = cur().line;
    if (skip_op(".")) {
      if (cur().type == Tok::name) {
        auto e = make_expr(Expr::Kind::attr, line);
        e->name = cur().text;
        next();
        e->args.push_back(std::move(node));
        return e;
      }
      if (cur().type != Tok::integer) unexpected("a name or number");
      auto e = make_expr(Expr::Kind::item, line);
      e->args.push_back(std::move(node));
      e->args.push_back(literal(integer(cur().i), line));
      next();
      return e;
    }
    next();  // [
    std::vector<ExprPtr> keys;
    bool is_slice = false;
    ExprPtr parts[3];
    while (!is_op("]")) {
      if (!keys.empty() || is_slice) expect_op(",");
      // A slice: [start]:[stop][:[step]]
      ExprPtr start;
      if (!is_op(":")) {
        start = parse_expression(true);
        if (!is_op(":")) {
          keys.push_back(std::move(start));
          continue;
        }
      }
      if (!keys.empty() || is_slice) error_at(line, "slices inside tuples are not supported");
      next();  // :
      is_slice = true;
      parts[0] = std::move(start);
      if (!is_op("]") && !is_op(",") && !is_op(":")) parts[1] = parse_expression(true);
      if (skip_op(":") && !is_op("]") && !is_op(",")) parts[2] = parse_expression(true);
    }
    next();  // ]
    if (is_slice) {
      if (!keys.empty()) error_at(line, "slices inside tuples are not supported");
      auto e = make_expr(Expr::Kind::slice, line);
      e->args.push_back(std::move(node));
      for (auto& p : parts) e->args.push_back(std::move(p));
      return e;
    }
    if (keys.empty()) unexpected("a subscript");
    auto e = make_expr(Expr::Kind::item, line);
    e->args.push_back(std::move(node));
    if (keys.size() == 1) {
      e->args.push_back(std::move(keys[0]));
    } else {
      auto t = make_expr(Expr::Kind::tuple, line);
      t->args = std::move(keys);
      e->args.push_back(std::move(t));
    }
    return e;
  }

  // Arguments "(a, b, key=value)" into e->args (after what is already there) and e->kwargs.
  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) error_at(cur().line, "*args and **kwargs in calls are not supported");
      if (cur().type == Tok::name && peek().type == Tok::op && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) error_at(cur().line, "positional argument after a keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    next();
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make_expr(Expr::Kind::call, cur().line);
    e->args.push_back(std::move(node));
    parse_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) {
      name += '.';
      name += expect_name();
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node) {
    while (is_op("|")) {
      const int line = cur().line;
      next();
      auto e = make_expr(Expr::Kind::filter, line);
      e->name = dotted_name();
      if (!listed(kFilters, e->name)) {
        if (listed(kOtherFilters, e->name)) error_at(line, "the filter '", e->name, "' is not supported");
        error_at(line, "unknown filter '", e->name, "'");
      }
      e->args.push_back(std::move(node));
      if (is_op("(")) parse_args(*e);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = cur().line;
    next();  // is
    bool negated = skip_name("not");
    auto e = make_expr(Expr::Kind::test, line);
    e->name = dotted_name();
    if (!listed(kTests, e->name)) error_at(line, "unknown test '", e->name, "'");
    e->args.push_back(std::move(node));
    const Token& t = cur();
    if (is_op("(")) {
      parse_args(*e);
    } else if ((t.type == Tok::name || t.type == Tok::string || t.type == Tok::integer || t.type == Tok::real ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error_at(t.line, "tests cannot be chained with 'is'");
      e->args.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`
    }
    if (!negated) return e;
    auto n = make_expr(Expr::Kind::not_, line);
    n->args.push_back(std::move(e));
    return n;
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;

  // Bounds the recursion of the parser (and of rendering, which follows the tree).
  struct Nesting {
    Parser& p;
    explicit Nesting(Parser& parser) : p(parser) {
      if (++p.nesting_ > 200) error_at(p.cur().line, "the template nests too deeply");
    }
    ~Nesting() { --p.nesting_; }
  };
};

// ============================================================================ interpreter

// Variables of one scope: the template, a for-loop iteration, a macro call.
struct Frame {
  const Frame* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const {
    for (const Frame* f = this; f; f = f->parent)
      for (const auto& [k, v] : f->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars)
      if (k == name) {
        v = std::move(value);
        return;
      }
    vars.emplace_back(name, std::move(value));
  }
};

enum class Flow { normal, brk, cont };

// Binds call arguments to parameter names as Python does; parameters not given stay empty.
std::vector<std::optional<Value>> bind(std::string_view what, const Args& a,
                                       std::initializer_list<std::string_view> params, int line) {
  std::vector<std::string_view> names(params);
  std::vector<std::optional<Value>> out(names.size());
  if (a.pos.size() > names.size())
    error_at(line, what, "() takes at most ", names.size(), " arguments (", a.pos.size(), " given)");
  for (size_t k = 0; k < a.pos.size(); ++k) out[k] = a.pos[k];
  for (const auto& [key, v] : a.kw) {
    auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) error_at(line, what, "() got an unexpected keyword argument '", key, "'");
    auto& slot = out[it - names.begin()];
    if (slot) error_at(line, what, "() got multiple values for argument '", key, "'");
    slot = v;
  }
  return out;
}

const std::string& need_string(const Value& v, std::string_view what, int line) {
  if (v.is_undefined()) undefined_error(v, line);
  if (!v.is_string()) error_at(line, what, ": expected a string, got ", type_name(v));
  return v.s;
}

int64_t need_int(const Value& v, std::string_view what, int line) {
  if (v.is_undefined()) undefined_error(v, line);
  if (!v.is_int()) error_at(line, what, ": expected an integer, got ", type_name(v));
  return v.i;
}

// Python's floor division and modulo on integers.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// Templates are untrusted input: results of repetition are capped so that one expression
// cannot exhaust memory.
constexpr size_t kMaxRepeatBytes = size_t{1} << 24;

Value repeat(const Value& seq, int64_t n) {
  const size_t unit = seq.is_string() ? seq.s.size() : seq.list->size() * sizeof(Value);
  if (n > 0 && unit > 0 && static_cast<uint64_t>(n) > kMaxRepeatBytes / unit) {
    fail<ValueError>(kTag, "repetition too large (the sandbox allows at most 16 MiB)");
  }
  if (seq.is_string()) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return str(std::move(out));
  }
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return make_list(std::move(out), seq.tuple);
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
  if (a.is_undefined()) undefined_error(a, line);
  if (b.is_undefined()) undefined_error(b, line);
  auto bad = [&]() -> Value {
    error_at(line, "unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
  };
  const bool ints = a.is_int() && b.is_int(), nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return integer(static_cast<int64_t>(static_cast<uint64_t>(a.i) + static_cast<uint64_t>(b.i)));
    if (nums) return real(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return str(a.s + b.s);
    if (a.is_list() && b.is_list() && a.tuple == b.tuple) {
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return make_list(std::move(out), a.tuple);
    }
    if (a.is_string() || b.is_string())
      error_at(line, "can only concatenate str (not \"", type_name(a.is_string() ? b : a), "\") to str");
    return bad();
  }
  if (op == "-") {
    if (ints) return integer(static_cast<int64_t>(static_cast<uint64_t>(a.i) - static_cast<uint64_t>(b.i)));
    if (nums) return real(a.as_double() - b.as_double());
    return bad();
  }
  if (op == "*") {
    if (ints) return integer(static_cast<int64_t>(static_cast<uint64_t>(a.i) * static_cast<uint64_t>(b.i)));
    if (nums) return real(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && b.is_int()) return repeat(a, b.i);
    if (a.is_int() && (b.is_string() || b.is_list())) return repeat(b, a.i);
    return bad();
  }
  if (!nums) {
    if (op == "%" && a.is_string()) error_at(line, "printf-style string formatting ('%') is not supported");
    return bad();
  }
  if (op == "**") {
    if (ints && b.i >= 0) {
      int64_t r = 1, base = a.i;
      for (int64_t e = b.i; e > 0; e >>= 1) {
        if (e & 1) r = static_cast<int64_t>(static_cast<uint64_t>(r) * static_cast<uint64_t>(base));
        base = static_cast<int64_t>(static_cast<uint64_t>(base) * static_cast<uint64_t>(base));
      }
      return integer(r);
    }
    if (a.as_double() == 0 && b.as_double() < 0) error_at(line, "0.0 cannot be raised to a negative power");
    double r = std::pow(a.as_double(), b.as_double());
    if (std::isinf(r) && std::isfinite(a.as_double()) && std::isfinite(b.as_double()))
      error_at(line, "numerical result out of range");
    return real(r);
  }
  if (b.as_double() == 0) error_at(line, op == "/" ? "division by zero" : "integer division or modulo by zero");
  if (op == "/") return real(a.as_double() / b.as_double());
  if (op == "//") {
    if (ints) return integer(floor_div(a.i, b.i));
    // CPython's float floor division, which goes through fmod.
    double x = a.as_double(), y = b.as_double(), mod = std::fmod(x, y), div = (x - mod) / y;
    if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1.0;
    if (div == 0) return real(std::copysign(0.0, x / y));
    double q = std::floor(div);
    if (div - q > 0.5) q += 1.0;
    return real(q);
  }
  // %
  if (ints) return integer(floor_mod(a.i, b.i));
  double x = a.as_double(), y = b.as_double(), r = std::fmod(x, y);
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return real(r);
}

// Python's slice of a list or string (code points).
Value slice_of(const Value& v, const Value& start, const Value& stop, const Value& step, int line) {
  if (v.is_undefined()) undefined_error(v, line);
  auto units = v.is_string() ? code_units(v.s) : std::vector<std::string_view>{};
  int64_t n;
  if (v.is_string())
    n = static_cast<int64_t>(units.size());
  else if (v.is_list())
    n = static_cast<int64_t>(v.list->size());
  else
    error_at(line, "'", type_name(v), "' object is not subscriptable");
  auto get = [&](const Value& x, const char* what) -> std::optional<int64_t> {
    if (x.is_undefined() || x.kind == Kind::none) return std::nullopt;
    return need_int(x, what, line);
  };
  int64_t st = get(step, "slice step").value_or(1);
  if (st == 0) error_at(line, "slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> x, int64_t dflt) {
    if (!x) return dflt;
    int64_t k = *x < 0 ? *x + n : *x;
    if (st > 0) return std::clamp<int64_t>(k, 0, n);
    return std::clamp<int64_t>(k, -1, n - 1);
  };
  int64_t b = clamp(get(start, "slice start"), st > 0 ? 0 : n - 1);
  int64_t e = clamp(get(stop, "slice stop"), st > 0 ? n : -1);
  std::vector<int64_t> idx;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) idx.push_back(k);
  if (v.is_string()) {
    std::string out;
    for (int64_t k : idx) out += units[k];
    return str(std::move(out));
  }
  List out;
  for (int64_t k : idx) out.push_back((*v.list)[k]);
  return make_list(std::move(out), v.tuple);
}

// Python's str.splitlines().
std::vector<std::string> splitlines(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  auto units = code_units(s);
  for (size_t k = 0; k < units.size(); ++k) {
    uint32_t c = decode(units[k]);
    if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
        c == 0x2029) {
      if (c == '\r' && k + 1 < units.size() && units[k + 1] == "\n") ++k;
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += units[k];
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string html_escape(std::string_view s) {
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

// Python's int(str) and float(str) as the int/float filters use them.
std::optional<int64_t> parse_int(std::string_view s, int base) {
  std::string t, stripped = strip(s, std::nullopt, true, true);
  for (char c : stripped)
    if (c != '_') t += c;
  if (t.empty()) return std::nullopt;
  size_t p = 0;
  bool neg = false;
  if (t[0] == '+' || t[0] == '-') neg = t[p++] == '-';
  if (base == 16 && t.compare(p, 2, "0x") == 0) p += 2;
  if (base == 8 && t.compare(p, 2, "0o") == 0) p += 2;
  if (base == 2 && t.compare(p, 2, "0b") == 0) p += 2;
  int64_t v = 0;
  auto res = std::from_chars(t.data() + p, t.data() + t.size(), v, base);
  if (res.ec != std::errc() || res.ptr != t.data() + t.size() || p == t.size()) return std::nullopt;
  return neg ? -v : v;
}
std::optional<double> parse_float(std::string_view s) {
  std::string t = lower(strip(s, std::nullopt, true, true));
  if (t.empty()) return std::nullopt;
  size_t p = (t[0] == '+' || t[0] == '-') ? 1 : 0;
  std::string body = t.substr(p);
  if (body == "inf" || body == "infinity" || body == "nan") {
    double v = body == "nan" ? NAN : INFINITY;
    return t[0] == '-' ? -v : v;
  }
  for (char c : body)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != '+' && c != '-')
      return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return v;
}

// Python's round(x, ndigits): correctly rounded, ties to even.
double round_digits(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits < 0) {
    double p = std::pow(10.0, static_cast<double>(-digits));
    return std::nearbyint(x / p) * p;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(digits, 300)), x);
  return std::strtod(buf, nullptr);
}

class Interp {
 public:
  explicit Interp(const Frame& root) : root_(root) {}

  Flow render(const Body& body, Frame& f, std::string& out) {
    for (const auto& n : body) {
      Flow flow = render_node(*n, f, out);
      if (flow != Flow::normal) return flow;
    }
    return Flow::normal;
  }

  Value eval(const Expr& e, Frame& f);
  Value call(const Value& callee, Args& args, int line);
  Value filter(const std::string& name, const Value& v, Args& a, int line);
  bool test(const std::string& name, const Value& v, Args& a, int line);
  Value get_attr(const Value& obj, const std::string& name, int line, bool keys = true);
  Value get_item(const Value& obj, const Value& key, int line);

 private:
  Flow render_node(const Node& n, Frame& f, std::string& out);
  Flow render_for(const Node& n, Frame& f, std::string& out);
  void assign(const Node& n, Frame& f, const Value& value);
  Value global(const std::string& name) const;
  Value macro(const Node& n);
  Flow call_block(const Node& n, Frame& f, std::string& out);
  // Binds a macro's or caller's parameters into `frame`; `caller` passes through by keyword.
  void bind_params(const Node& n, const std::string& what, Args& a, Frame& frame, int line);
  Value string_method(const Value& s, const std::string& name, int line);
  Value dict_method(const Value& d, const std::string& name);
  // Looks up `attribute` ("a.b", "0") on an item as selectattr and map do.
  Value attribute_of(const Value& item, const std::string& attribute, int line);
  List filter_items(const Value& seq, Args& a, size_t first_arg, bool by_attr, bool select, const char* what, int line);

  const Frame& root_;
  int depth_ = 0;  // macro recursion guard
};

Flow Interp::render_node(const Node& n, Frame& f, std::string& out) {
  switch (n.kind) {
    case Node::Kind::text: out += n.text; return Flow::normal;
    case Node::Kind::output: out += to_str(eval(*n.expr, f)); return Flow::normal;
    case Node::Kind::if_:
      for (const auto& [cond, body] : n.branches)
        if (truthy(eval(*cond, f))) return render(body, f, out);
      return render(n.else_body, f, out);
    case Node::Kind::for_: return render_for(n, f, out);
    case Node::Kind::set: assign(n, f, eval(*n.expr, f)); return Flow::normal;
    case Node::Kind::set_block: {
      std::string captured;
      Frame inner{&f, {}};
      render(n.body, inner, captured);
      f.set(n.targets[0], str(std::move(captured)));
      return Flow::normal;
    }
    case Node::Kind::macro: f.set(n.targets[0], macro(n)); return Flow::normal;
    case Node::Kind::call_block: return call_block(n, f, out);
    case Node::Kind::scope: {
      Frame inner{&f, {}};
      return render(n.body, inner, out);
    }
    case Node::Kind::break_: return Flow::brk;
    case Node::Kind::continue_: return Flow::cont;
  }
  return Flow::normal;
}

void Interp::assign(const Node& n, Frame& f, const Value& value) {
  if (!n.attr.empty()) {
    const Value* ns = f.find(n.targets[0]);
    if (!ns) error_at(n.line, "'", n.targets[0], "' is undefined");
    if (!ns->is(Kind::object) || !ns->object->is_namespace)
      error_at(n.line, "cannot assign attribute on non-namespace object");
    ns->object->set(n.attr, value);
    return;
  }
  if (!n.unpack) {
    f.set(n.targets[0], value);
    return;
  }
  List items = iterate(value, n.line);
  if (items.size() != n.targets.size())
    error_at(n.line, items.size() > n.targets.size() ? "too many" : "not enough", " values to unpack (expected ",
             n.targets.size(), ", got ", items.size(), ")");
  for (size_t k = 0; k < items.size(); ++k) f.set(n.targets[k], items[k]);
}

Flow Interp::render_for(const Node& n, Frame& f, std::string& out) {
  Value seq = eval(*n.expr, f);
  if (!(seq.is_undefined() || seq.is_list() || seq.is_dict() || seq.is_string() || seq.is(Kind::generator)))
    error_at(n.line, "'", type_name(seq), "' object is not iterable");
  List items = iterate(seq, n.line);
  if (n.cond) {  // `for x in xs if cond`: the loop only sees the items that pass
    List kept;
    for (const auto& item : items) {
      Frame probe{&f, {}};
      assign(n, probe, item);
      if (truthy(eval(*n.cond, probe))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Frame inner{&f, {}};
    render(n.else_body, inner, out);
    return Flow::normal;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < len; ++k) {
    Frame inner{&f, {}};
    assign(n, inner, items[k]);
    auto loop = std::make_shared<Object>();
    loop->attrs = {{"index", integer(k + 1)},
                   {"index0", integer(k)},
                   {"revindex", integer(len - k)},
                   {"revindex0", integer(len - k - 1)},
                   {"first", boolean(k == 0)},
                   {"last", boolean(k == len - 1)},
                   {"length", integer(len)},
                   {"depth", integer(1)},
                   {"depth0", integer(0)},
                   {"previtem", k > 0 ? items[k - 1] : undefined("there is no previous item")},
                   {"nextitem", k + 1 < len ? items[k + 1] : undefined("there is no next item")},
                   {"cycle", make_function("cycle", [k](Interp&, Args& a, int line) {
                      if (a.pos.empty()) error_at(line, "no items for cycling given");
                      return a.pos[k % a.pos.size()];
                    })}};
    Value lv;
    lv.kind = Kind::object;
    lv.object = loop;
    inner.set("loop", lv);
    Flow flow = render(n.body, inner, out);
    if (flow == Flow::brk) break;
  }
  return Flow::normal;
}

void Interp::bind_params(const Node& n, const std::string& what, Args& a, Frame& frame, int line) {
  if (a.pos.size() > n.params.size()) error_at(line, what, " takes not more than ", n.params.size(), " argument(s)");
  std::vector<bool> given(n.params.size(), false);
  for (size_t k = 0; k < a.pos.size(); ++k) {
    frame.set(n.params[k].first, a.pos[k]);
    given[k] = true;
  }
  for (const auto& [key, v] : a.kw) {
    size_t k = 0;
    while (k < n.params.size() && n.params[k].first != key) ++k;
    if (k == n.params.size()) {
      if (key != "caller") error_at(line, what, " takes no keyword argument '", key, "'");
    } else {
      given[k] = true;
    }
    frame.set(key, v);
  }
  for (size_t k = 0; k < n.params.size(); ++k) {
    if (given[k]) continue;
    const auto& [pname, def] = n.params[k];
    frame.set(pname, def ? eval(*def, frame) : undefined("parameter '" + pname + "' was not provided"));
  }
}

// A macro sees the template's variables and its own parameters; it returns what it renders.
Value Interp::macro(const Node& n) {
  const Node* node = &n;
  return make_function(n.targets[0], [node](Interp& in, Args& a, int line) {
    Frame frame{&in.root_, {}};
    in.bind_params(*node, "macro '" + node->targets[0] + "'", a, frame, line);
    if (++in.depth_ > 200) error_at(line, "macro recursion too deep");
    std::string out;
    in.render(node->body, frame, out);
    --in.depth_;
    return str(std::move(out));
  });
}

Flow Interp::call_block(const Node& n, Frame& f, std::string& out) {
  const Expr& call_expr = *n.expr;
  Value callee = eval(*call_expr.args[0], f);
  Args a;
  for (size_t k = 1; k < call_expr.args.size(); ++k) a.pos.push_back(eval(*call_expr.args[k], f));
  for (const auto& [key, x] : call_expr.kwargs) a.kw.emplace_back(key, eval(*x, f));
  // `caller` renders the body in this block's scope, which only lives until the call returns.
  auto live = std::make_shared<bool>(true);
  const Node* node = &n;
  Frame* scope = &f;
  a.kw.emplace_back("caller", make_function("caller", [node, scope, live](Interp& in, Args& ca, int line) {
                      if (!*live) error_at(line, "caller() used after its call block ended");
                      Frame frame{scope, {}};
                      in.bind_params(*node, "caller", ca, frame, line);
                      std::string body;
                      in.render(node->body, frame, body);
                      return str(std::move(body));
                    }));
  Value result = call(callee, a, call_expr.line);
  *live = false;
  out += to_str(result);
  return Flow::normal;
}

Value Interp::global(const std::string& name) const {
  if (name == "range")
    return make_function(name, [](Interp&, Args& a, int line) {
      if (!a.kw.empty() || a.pos.empty() || a.pos.size() > 3) error_at(line, "range() takes 1 to 3 integer arguments");
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) {
        stop = need_int(a.pos[0], "range", line);
      } else {
        start = need_int(a.pos[0], "range", line);
        stop = need_int(a.pos[1], "range", line);
        if (a.pos.size() == 3) step = need_int(a.pos[2], "range", line);
      }
      if (step == 0) error_at(line, "range() arg 3 must not be zero");
      List out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        if (out.size() >= 100000) error_at(line, "range too big (the sandbox allows at most 100000 items)");
        out.push_back(integer(k));
      }
      return make_list(std::move(out));
    });
  if (name == "namespace" || name == "dict")
    return make_function(name, [name](Interp&, Args& a, int line) {
      std::vector<std::pair<Value, Value>> items;
      if (a.pos.size() > 1) error_at(line, name, "() takes at most one positional argument");
      if (!a.pos.empty()) {
        const Value& init = a.pos[0];
        if (init.is_dict()) {
          items = init.dict->items;
        } else {
          for (const auto& pair : iterate(init, line)) {
            if (!pair.is_list() || pair.list->size() != 2) error_at(line, name, "(): expected key/value pairs");
            items.emplace_back((*pair.list)[0], (*pair.list)[1]);
          }
        }
      }
      for (const auto& [k, v] : a.kw) items.emplace_back(str(k), v);
      if (name == "dict") {
        Dict d;
        for (auto& [k, v] : items) d.set(k, v);
        return make_dict(std::move(d));
      }
      auto ns = std::make_shared<Object>();
      ns->is_namespace = true;
      for (auto& [k, v] : items) {
        if (!k.is_string()) error_at(line, "namespace(): attribute names must be strings");
        if (!k.s.empty() && k.s[0] == '_') error_at(line, "namespace(): attribute names cannot start with '_'");
        ns->set(k.s, v);
      }
      Value out;
      out.kind = Kind::object;
      out.object = ns;
      return out;
    });
  if (name == "raise_exception")
    return make_function(name, [](Interp&, Args& a, int line) -> Value {
      auto p = bind("raise_exception", a, {"message"}, line);
      fail<ValueError>(kTag, p[0] ? to_str(*p[0]) : std::string());
    });
  if (name == "strftime_now")
    return make_function(name, [](Interp&, Args& a, int line) {
      auto p = bind("strftime_now", a, {"format"}, line);
      if (!p[0]) error_at(line, "strftime_now() needs a format");
      const std::string& fmt = need_string(*p[0], "strftime_now", line);
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      std::string buf(256 + 4 * fmt.size(), '\0');
      size_t len = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
      buf.resize(len);
      return str(buf);
    });
  return undefined("'" + name + "' is undefined");
}

Value Interp::call(const Value& callee, Args& args, int line) {
  if (callee.is_undefined()) undefined_error(callee, line);
  if (!callee.is(Kind::function)) error_at(line, "'", type_name(callee), "' object is not callable");
  return callee.function->call(*this, args, line);
}

Value Interp::string_method(const Value& s, const std::string& name, int line) {
  static const std::vector<std::string_view> methods = {"strip",    "lstrip", "rstrip", "split", "startswith",
                                                        "endswith", "upper",  "lower",  "title", "capitalize",
                                                        "replace",  "find",   "join",   "count", "splitlines"};
  if (!listed(methods, name)) {
    if (name == "format") error_at(line, "str.format is not supported");
    return undefined("'str object' has no attribute '" + name + "'");
  }
  return make_function(name, [s, name](Interp&, Args& a, int line) -> Value {
    const std::string& t = s.s;
    auto opt_str = [&](const std::optional<Value>& v) -> std::optional<std::string> {
      if (!v || v->kind == Kind::none) return std::nullopt;
      return need_string(*v, name, line);
    };
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      auto p = bind(name, a, {"chars"}, line);
      return str(strip(t, opt_str(p[0]), name != "rstrip", name != "lstrip"));
    }
    if (name == "split") {
      auto p = bind(name, a, {"sep", "maxsplit"}, line);
      return make_list(split(t, opt_str(p[0]), p[1] ? need_int(*p[1], name, line) : -1, line));
    }
    if (name == "startswith" || name == "endswith") {
      auto p = bind(name, a, {"prefix"}, line);
      if (!p[0]) error_at(line, name, "() takes at least 1 argument (0 given)");
      List options = p[0]->is_list() && p[0]->tuple ? *p[0]->list : List{*p[0]};
      for (const auto& o : options) {
        const std::string& x = need_string(o, name, line);
        bool hit = name == "startswith" ? t.compare(0, x.size(), x) == 0
                                        : t.size() >= x.size() && t.compare(t.size() - x.size(), x.size(), x) == 0;
        if (hit) return boolean(true);
      }
      return boolean(false);
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "splitlines") {
      bind(name, a, {}, line);
      if (name == "upper") return str(upper(t));
      if (name == "lower") return str(lower(t));
      if (name == "title") return str(py_title(t));
      if (name == "capitalize") return str(capitalize(t));
      List out;
      for (auto& l : splitlines(t)) out.push_back(str(std::move(l)));
      return make_list(std::move(out));
    }
    if (name == "replace") {
      auto p = bind(name, a, {"old", "new", "count"}, line);
      if (!p[0] || !p[1]) error_at(line, "replace() takes at least 2 arguments");
      return str(replace_all(t, need_string(*p[0], name, line), need_string(*p[1], name, line),
                             p[2] ? need_int(*p[2], name, line) : -1));
    }
    if (name == "find" || name == "count") {
      auto p = bind(name, a, {"sub"}, line);
      if (!p[0]) error_at(line, name, "() takes at least 1 argument (0 given)");
      const std::string& sub = need_string(*p[0], name, line);
      if (name == "find") {
        size_t at = t.find(sub);
        if (at == std::string::npos) return integer(-1);
        return integer(static_cast<int64_t>(code_units(std::string_view(t).substr(0, at)).size()));
      }
      if (sub.empty()) return integer(static_cast<int64_t>(code_units(t).size()) + 1);
      int64_t n = 0;
      for (size_t at = t.find(sub); at != std::string::npos; at = t.find(sub, at + sub.size())) ++n;
      return integer(n);
    }
    // join
    auto p = bind(name, a, {"iterable"}, line);
    if (!p[0]) error_at(line, "join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const auto& item : iterate(*p[0], line)) {
      if (!item.is_string()) error_at(line, "sequence item: expected str instance, ", type_name(item), " found");
      if (!first) out += t;
      out += item.s;
      first = false;
    }
    return str(std::move(out));
  });
}

Value Interp::dict_method(const Value& d, const std::string& name) {
  return make_function(name, [d, name](Interp&, Args& a, int line) -> Value {
    if (name == "get") {
      auto p = bind(name, a, {"key", "default"}, line);
      if (!p[0]) error_at(line, "get() takes at least 1 argument (0 given)");
      const Value* v = d.dict->find(*p[0]);
      return v ? *v : (p[1] ? *p[1] : none());
    }
    bind(name, a, {}, line);
    if (name == "copy") return d;
    List out;
    for (const auto& [k, v] : d.dict->items) {
      if (name == "items")
        out.push_back(make_list({k, v}, true));
      else
        out.push_back(name == "keys" ? k : v);
    }
    return make_list(std::move(out));
  });
}

// jinja2's getattr: dict methods win over keys of the same name, then the key; `keys` off
// gives Python's plain getattr (the attr filter).
Value Interp::get_attr(const Value& obj, const std::string& name, int line, bool keys) {
  switch (obj.kind) {
    case Kind::undefined: undefined_error(obj, line);
    case Kind::string: return string_method(obj, name, line);
    case Kind::dict: {
      static const std::vector<std::string_view> methods = {"items", "keys", "values", "get", "copy"};
      static const std::vector<std::string_view> mutating = {"pop", "popitem", "setdefault", "update", "clear"};
      if (listed(methods, name)) return dict_method(obj, name);
      if (listed(mutating, name)) error_at(line, "access to attribute '", name, "' of 'dict' object is unsafe");
      if (keys)
        if (const Value* v = obj.dict->find(std::string_view(name))) return *v;
      return undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::object:
      if (const Value* v = obj.object->find(name)) return *v;
      return undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
    default: return undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
  }
}

// jinja2's getitem: the item, else (for a string key) the attribute.
Value Interp::get_item(const Value& obj, const Value& key, int line) {
  switch (obj.kind) {
    case Kind::undefined: undefined_error(obj, line);
    case Kind::dict:
      if (const Value* v = obj.dict->find(key)) return *v;
      if (key.is_string()) return get_attr(obj, key.s, line, false);
      return undefined("'dict object' has no attribute " + repr(key));
    case Kind::list:
    case Kind::string:
      if (key.is_int()) {
        int64_t n = length(obj, line), k = key.i < 0 ? key.i + n : key.i;
        if (k < 0 || k >= n)
          return undefined("'" + type_name(obj) + " object' has no element " + std::to_string(key.i));
        if (obj.is_list()) return (*obj.list)[k];
        return str(std::string(code_units(obj.s)[k]));
      }
      if (key.is_string()) return get_attr(obj, key.s, line);
      return undefined("'" + type_name(obj) + " object' has no element " + repr(key));
    case Kind::object:
      if (key.is_string()) return get_attr(obj, key.s, line);
      return undefined("'" + type_name(obj) + " object' has no element " + repr(key));
    default: return undefined("'" + type_name(obj) + " object' has no element " + repr(key));
  }
}

Value Interp::eval(const Expr& e, Frame& f) {
  using K = Expr::Kind;
  switch (e.kind) {
    case K::literal: return e.value;
    case K::name: {
      if (const Value* v = f.find(e.name)) return *v;
      return global(e.name);
    }
    case K::attr: return get_attr(eval(*e.args[0], f), e.name, e.line);
    case K::item: {
      Value obj = eval(*e.args[0], f);
      return get_item(obj, eval(*e.args[1], f), e.line);
    }
    case K::slice: {
      Value obj = eval(*e.args[0], f);
      Value parts[3];
      for (int k = 0; k < 3; ++k)
        if (e.args[k + 1]) parts[k] = eval(*e.args[k + 1], f);
      if (obj.is_dict() || obj.is(Kind::object)) error_at(e.line, "slicing a mapping is not supported");
      return slice_of(obj, parts[0], parts[1], parts[2], e.line);
    }
    case K::call:
    case K::filter:
    case K::test: {
      Value subject = eval(*e.args[0], f);
      Args a;
      for (size_t k = 1; k < e.args.size(); ++k) a.pos.push_back(eval(*e.args[k], f));
      for (const auto& [key, x] : e.kwargs) a.kw.emplace_back(key, eval(*x, f));
      if (e.kind == K::call) return call(subject, a, e.line);
      if (e.kind == K::filter) return filter(e.name, subject, a, e.line);
      return boolean(test(e.name, subject, a, e.line));
    }
    case K::not_: return boolean(!truthy(eval(*e.args[0], f)));
    case K::neg:
    case K::pos: {
      Value v = eval(*e.args[0], f);
      if (v.is_undefined()) undefined_error(v, e.line);
      if (!v.is_number())
        error_at(e.line, "bad operand type for unary ", e.kind == K::neg ? "-" : "+", ": '", type_name(v), "'");
      if (v.kind == Kind::real) return real(e.kind == K::neg ? -v.f : v.f);
      return integer(e.kind == K::neg ? -v.i : v.i);
    }
    case K::binary: {
      Value a = eval(*e.args[0], f);
      return arithmetic(e.name, a, eval(*e.args[1], f), e.line);
    }
    case K::concat: {
      std::string out;
      for (const auto& x : e.args) out += to_str(eval(*x, f));
      return str(std::move(out));
    }
    case K::compare: {
      Value left = eval(*e.args[0], f);
      for (size_t k = 0; k < e.ops.size(); ++k) {
        Value right = eval(*e.args[k + 1], f);
        const std::string& op = e.ops[k];
        bool ok;
        if (op == "==")
          ok = equals(left, right);
        else if (op == "!=")
          ok = !equals(left, right);
        else if (op == "in")
          ok = contains(right, left, e.line);
        else if (op == "not in")
          ok = !contains(right, left, e.line);
        else {
          int c = compare(left, right, op.c_str(), e.line);
          ok = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
        }
        if (!ok) return boolean(false);
        left = std::move(right);
      }
      return boolean(true);
    }
    case K::and_: {
      Value a = eval(*e.args[0], f);
      return truthy(a) ? eval(*e.args[1], f) : a;
    }
    case K::or_: {
      Value a = eval(*e.args[0], f);
      return truthy(a) ? a : eval(*e.args[1], f);
    }
    case K::cond:
      if (truthy(eval(*e.args[0], f))) return eval(*e.args[1], f);
      if (e.args[2]) return eval(*e.args[2], f);
      return undefined("the inline if-expression evaluated to false and has no else section");
    case K::list:
    case K::tuple: {
      List items;
      for (const auto& x : e.args) items.push_back(eval(*x, f));
      return make_list(std::move(items), e.kind == K::tuple);
    }
    case K::dict: {
      Dict d;
      for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
        Value key = eval(*e.args[k], f);
        if (key.is_list() && !key.tuple) error_at(e.line, "unhashable type: 'list'");
        if (key.is_dict()) error_at(e.line, "unhashable type: 'dict'");
        d.set(std::move(key), eval(*e.args[k + 1], f));
      }
      return make_dict(std::move(d));
    }
  }
  return Value();
}

Value Interp::attribute_of(const Value& item, const std::string& attribute, int line) {
  Value v = item;
  size_t p = 0;
  while (true) {
    size_t q = attribute.find('.', p);
    std::string part = attribute.substr(p, q == std::string::npos ? std::string::npos : q - p);
    auto k = parse_int(part, 10);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(c); });
    v = get_item(v, digits && k ? integer(*k) : str(part), line);
    if (q == std::string::npos) return v;
    p = q + 1;
  }
}

// select/reject (by the item) and selectattr/rejectattr (by an attribute of it); the test and
// its arguments follow the attribute.
List Interp::filter_items(const Value& seq, Args& a, size_t first_arg, bool by_attr, bool select, const char* what,
                          int line) {
  std::string attribute;
  if (by_attr) {
    if (a.pos.empty()) error_at(line, what, ": missing the attribute");
    attribute = need_string(a.pos[0], what, line);
  }
  std::string test_name;
  Args targs;
  if (a.pos.size() > first_arg) {
    test_name = need_string(a.pos[first_arg], what, line);
    if (!listed(kTests, test_name)) error_at(line, what, ": unknown test '", test_name, "'");
    targs.pos.assign(a.pos.begin() + first_arg + 1, a.pos.end());
  }
  targs.kw = a.kw;
  List out;
  for (const auto& item : iterate(seq, line)) {
    Value v = by_attr ? attribute_of(item, attribute, line) : item;
    Args call_args = targs;
    bool ok = test_name.empty() ? truthy(v) : test(test_name, v, call_args, line);
    if (ok == select) out.push_back(item);
  }
  return out;
}

Value Interp::filter(const std::string& name, const Value& v, Args& a, int line) {
  auto text = [&](const Value& x) { return to_str(x); };
  if (name == "safe") return v;
  if (name == "abs") {
    bind(name, a, {}, line);
    if (v.kind == Kind::real) return real(std::fabs(v.f));
    return integer(std::llabs(need_int(v, name, line)));
  }
  if (name == "attr") {
    auto p = bind(name, a, {"name"}, line);
    if (!p[0]) error_at(line, "attr: missing the attribute name");
    return v.is_undefined() ? v : get_attr(v, need_string(*p[0], name, line), line, false);
  }
  if (name == "capitalize" || name == "lower" || name == "upper" || name == "title" || name == "string" ||
      name == "e" || name == "escape") {
    bind(name, a, {}, line);
    std::string s = text(v);
    if (name == "capitalize") return str(capitalize(s));
    if (name == "lower") return str(lower(s));
    if (name == "upper") return str(upper(s));
    if (name == "title") return str(jinja_title(s));
    if (name == "string") return str(s);
    return str(html_escape(s));
  }
  if (name == "center") {
    auto p = bind(name, a, {"width"}, line);
    std::string s = text(v);
    int64_t width = p[0] ? need_int(*p[0], name, line) : 80, marg = width - length(str(s), line);
    if (marg <= 0) return str(s);
    int64_t left = marg / 2 + (marg & width & 1);
    return str(std::string(left, ' ') + s + std::string(marg - left, ' '));
  }
  if (name == "count" || name == "length") {
    bind(name, a, {}, line);
    return integer(length(v, line));
  }
  if (name == "d" || name == "default") {
    auto p = bind(name, a, {"default_value", "boolean"}, line);
    bool use = v.is_undefined() || (p[1] && truthy(*p[1]) && !truthy(v));
    return use ? (p[0] ? *p[0] : str("")) : v;
  }
  if (name == "first" || name == "last") {
    bind(name, a, {}, line);
    if (v.is(Kind::generator)) {
      if (name == "last") error_at(line, "'generator' object is not reversible");
      if (!v.s.empty()) error_at(line, v.s);
      if (*v.cursor == v.list->size()) return undefined("no first item, the sequence was empty");
      return (*v.list)[(*v.cursor)++];
    }
    List items = iterate(v, line);
    if (items.empty()) return undefined("no " + name + " item, the sequence was empty");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "float") {
    auto p = bind(name, a, {"default"}, line);
    Value dflt = p[0] ? *p[0] : real(0);
    if (v.is_undefined()) undefined_error(v, line);
    if (v.is_number()) return real(v.as_double());
    if (v.is_string())
      if (auto x = parse_float(v.s)) return real(*x);
    return dflt;
  }
  if (name == "int") {
    auto p = bind(name, a, {"default", "base"}, line);
    Value dflt = p[0] ? *p[0] : integer(0);
    int base = p[1] ? static_cast<int>(need_int(*p[1], name, line)) : 10;
    if (v.is_undefined()) undefined_error(v, line);
    if (v.is_int()) return integer(v.i);
    if (v.kind == Kind::real) return std::isfinite(v.f) ? integer(static_cast<int64_t>(v.f)) : dflt;
    if (v.is_string()) {
      if (auto x = parse_int(v.s, base)) return integer(*x);
      if (auto x = parse_float(v.s); x && std::isfinite(*x)) return integer(static_cast<int64_t>(*x));
    }
    return dflt;
  }
  if (name == "indent") {
    auto p = bind(name, a, {"width", "first", "blank"}, line);
    if (!v.is_string()) error_at(line, "unsupported operand type(s) for +=: '", type_name(v), "' and 'str'");
    std::string ind = p[0] && p[0]->is_string() ? p[0]->s : std::string(p[0] ? need_int(*p[0], name, line) : 4, ' ');
    auto lines = splitlines(text(v) + "\n");
    std::string out;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) out += "\n";
      if (k && (!lines[k].empty() || (p[2] && truthy(*p[2])))) out += ind;
      out += lines[k];
    }
    if (p[1] && truthy(*p[1])) out = ind + out;
    return str(std::move(out));
  }
  if (name == "items") {
    bind(name, a, {}, line);
    if (v.is_undefined()) return make_generator({});
    if (!v.is_dict()) return failing_generator("items: can only get item pairs from a mapping");
    List out;
    for (const auto& [k, x] : v.dict->items) out.push_back(make_list({k, x}, true));
    return make_generator(std::move(out));
  }
  if (name == "join") {
    auto p = bind(name, a, {"d", "attribute"}, line);
    std::string sep = p[0] ? text(*p[0]) : "", out;
    bool first = true;
    for (const auto& item : iterate(v, line)) {
      if (!first) out += sep;
      out += text(p[1] ? attribute_of(item, text(*p[1]), line) : item);
      first = false;
    }
    return str(std::move(out));
  }
  if (name == "list") {
    bind(name, a, {}, line);
    return make_list(iterate(v, line));
  }
  const bool iterable = v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() || v.is(Kind::generator);
  const std::string not_iterable = "'" + type_name(v) + "' object is not iterable";
  const bool lazy = name == "map" || name == "select" || name == "reject" || name == "selectattr" ||
                    name == "rejectattr" || name == "unique";
  if (lazy && v.is(Kind::generator) && !v.s.empty()) return v;  // the same error, still deferred
  if (name == "map" || name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    if (!truthy(v)) return make_generator({});  // jinja2 skips a false input without iterating it
    if (!iterable) return failing_generator(not_iterable);
  }
  if (name == "unique" && !iterable) return failing_generator(not_iterable);
  if (name == "map") {
    List out;
    if (a.pos.empty()) {
      auto p = bind(name, a, {"attribute", "default"}, line);
      if (!p[0]) error_at(line, "map: give a filter name or attribute=");
      for (const auto& item : iterate(v, line)) {
        Value x = attribute_of(item, text(*p[0]), line);
        out.push_back(x.is_undefined() && p[1] ? *p[1] : x);
      }
      return make_generator(std::move(out));
    }
    std::string fname = need_string(a.pos[0], name, line);
    if (!listed(kFilters, fname)) error_at(line, "map: unknown filter '", fname, "'");
    Args fargs;
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
    fargs.kw = a.kw;
    for (const auto& item : iterate(v, line)) {
      Args copy = fargs;
      out.push_back(filter(fname, item, copy, line));
    }
    return make_generator(std::move(out));
  }
  if (name == "max" || name == "min" || name == "sort" || name == "unique") {
    auto p = name == "sort" ? bind(name, a, {"reverse", "case_sensitive", "attribute"}, line)
                            : bind(name, a, {"case_sensitive", "attribute"}, line);
    const size_t off = name == "sort" ? 1 : 0;
    bool case_sensitive = p[off] && truthy(*p[off]);
    std::optional<std::string> attribute;
    if (p[off + 1]) attribute = text(*p[off + 1]);
    List items = iterate(v, line);
    auto key = [&](const Value& item) {
      Value k = attribute ? attribute_of(item, *attribute, line) : item;
      if (k.is_string() && !case_sensitive) k.s = lower(k.s);
      return k;
    };
    if (name == "unique") {
      List out, seen;
      // jinja2 keeps the seen keys in a set: lists and dicts (and tuples holding them) are
      // unhashable there.
      std::function<bool(const Value&)> hashable = [&](const Value& x) {
        if (x.is_dict() || x.is(Kind::generator) || x.is(Kind::object)) return false;
        if (x.is_list()) {
          if (!x.tuple) return false;
          for (const auto& e : *x.list)
            if (!hashable(e)) return false;
        }
        return true;
      };
      for (const auto& item : items) {
        Value k = key(item);
        if (!hashable(k)) error_at(line, "unique: unhashable type: '", type_name(k), "'");
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) {
          seen.push_back(k);
          out.push_back(item);
        }
      }
      return make_generator(std::move(out));
    }
    if (name == "sort") {
      std::stable_sort(items.begin(), items.end(),
                       [&](const Value& x, const Value& y) { return compare(key(x), key(y), "<", line) < 0; });
      if (p[0] && truthy(*p[0])) std::reverse(items.begin(), items.end());
      return make_list(std::move(items));
    }
    if (items.empty()) return undefined("no " + name + " item, the sequence was empty");
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
      int c = compare(key(items[k]), key(items[best]), "<", line);
      if (name == "max" ? c > 0 : c < 0) best = k;
    }
    return items[best];
  }
  if (name == "reject" || name == "select")
    return make_generator(filter_items(v, a, 0, false, name == "select", name.c_str(), line));
  if (name == "rejectattr" || name == "selectattr")
    return make_generator(filter_items(v, a, 1, true, name == "selectattr", name.c_str(), line));
  if (name == "replace") {
    auto p = bind(name, a, {"old", "new", "count"}, line);
    if (!p[0] || !p[1]) error_at(line, "replace: needs the old and new strings");
    int64_t count = p[2] && p[2]->kind != Kind::none ? need_int(*p[2], name, line) : -1;
    return str(replace_all(text(v), text(*p[0]), text(*p[1]), count));
  }
  if (name == "reverse") {
    bind(name, a, {}, line);
    if (v.is_string()) {
      auto units = code_units(v.s);
      std::string out;
      for (auto it = units.rbegin(); it != units.rend(); ++it) out += *it;
      return str(std::move(out));
    }
    // Python's reversed() of a list or dict is a one-pass iterator; a generator becomes a list.
    const bool once = !v.is(Kind::generator);
    List items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return once ? make_generator(std::move(items)) : make_list(std::move(items));
  }
  if (name == "round") {
    auto p = bind(name, a, {"precision", "method"}, line);
    int64_t digits = p[0] ? need_int(*p[0], name, line) : 0;
    std::string method = p[1] ? need_string(*p[1], name, line) : "common";
    if (!v.is_number()) error_at(line, "round: expected a number, got ", type_name(v));
    double x = v.as_double(), scale = std::pow(10.0, static_cast<double>(digits));
    if (method == "common") {
      if (!v.is_int()) return real(round_digits(x, digits));
      if (digits >= 0) return integer(v.i);
      int64_t unit = 1;  // Python rounds an int to an int, halves to even
      for (int64_t k = 0; k < -digits && unit <= INT64_MAX / 10; ++k) unit *= 10;
      int64_t q = floor_div(v.i, unit), r = v.i - q * unit;
      if (2 * r > unit || (2 * r == unit && (q & 1))) ++q;
      return integer(q * unit);
    }
    if (method == "ceil") return real(std::ceil(x * scale) / scale);
    if (method == "floor") return real(std::floor(x * scale) / scale);
    error_at(line, "round: method must be 'common', 'ceil' or 'floor'");
  }
  if (name == "sum") {
    auto p = bind(name, a, {"attribute", "start"}, line);
    Value total = p[1] ? *p[1] : integer(0);
    for (const auto& item : iterate(v, line))
      total = arithmetic("+", total, p[0] ? attribute_of(item, text(*p[0]), line) : item, line);
    return total;
  }
  if (name == "tojson") {
    // transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    auto p = bind(name, a, {"ensure_ascii", "indent", "separators", "sort_keys"}, line);
    JsonStyle st;
    if (p[1] && p[1]->kind != Kind::none) {
      if (p[1]->is_string())
        st.indent = p[1]->s;
      else
        st.indent = std::string(std::max<int64_t>(0, need_int(*p[1], name, line)), ' ');
      st.item_sep = ",";
    }
    if (p[2] && p[2]->kind != Kind::none) {
      if (!p[2]->is_list() || p[2]->list->size() != 2) error_at(line, "tojson: separators must be a pair");
      st.item_sep = need_string((*p[2]->list)[0], name, line);
      st.key_sep = need_string((*p[2]->list)[1], name, line);
    }
    st.sort_keys = p[3] && truthy(*p[3]);
    std::string out;
    to_json(out, v, st, 0, line);
    if (p[0] && truthy(*p[0])) {  // ensure_ascii: \uXXXX escapes (surrogate pairs above the BMP)
      std::string ascii;
      for (auto u : code_units(out)) {
        uint32_t c = decode(u);
        char buf[16];
        if (c < 0x80) {
          ascii += u;
        } else if (c < 0x10000) {
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          ascii += buf;
        } else {
          c -= 0x10000;
          std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
          ascii += buf;
        }
      }
      out = std::move(ascii);
    }
    return str(std::move(out));
  }
  if (name == "trim") {
    auto p = bind(name, a, {"chars"}, line);
    std::optional<std::string> chars;
    if (p[0] && p[0]->kind != Kind::none) chars = text(*p[0]);
    return str(strip(text(v), chars, true, true));
  }
  if (name == "wordcount") {
    bind(name, a, {}, line);
    int64_t n = 0;
    bool in_word = false;
    const std::string s = text(v);
    for (auto u : code_units(s)) {
      uint32_t c = decode(u);
      bool w = c >= 0x80 ? !is_space(c) : (std::isalnum(static_cast<int>(c)) || c == '_');
      if (w && !in_word) ++n;
      in_word = w;
    }
    return integer(n);
  }
  error_at(line, "unknown filter '", name, "'");
}

bool Interp::test(const std::string& name, const Value& v, Args& a, int line) {
  auto other = [&]() -> const Value& {
    if (a.pos.size() != 1 || !a.kw.empty()) error_at(line, "the test '", name, "' takes one argument");
    return a.pos[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == Kind::none;
  if (name == "boolean") return v.kind == Kind::boolean;
  if (name == "true") return v.kind == Kind::boolean && v.i;
  if (name == "false") return v.kind == Kind::boolean && !v.i;
  if (name == "integer") return v.kind == Kind::integer;
  if (name == "float") return v.kind == Kind::real;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable" || name == "sequence")
    return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() ||
           (name == "iterable" && v.is(Kind::generator));
  if (name == "callable") return v.is(Kind::function);
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {  // str(value).islower() / isupper()
    bool cased = false;
    const std::string s = to_str(v);
    for (auto u : code_units(s)) {
      uint32_t c = decode(u);
      if (!is_cased(c)) continue;
      cased = true;
      if (name == "lower" ? is_uppercase(c) : is_lowercase(c)) return false;
    }
    return cased;
  }
  if (name == "odd" || name == "even") {
    Value r = arithmetic("%", v, integer(2), line);
    return r.as_double() == (name == "odd" ? 1 : 0);
  }
  if (name == "divisibleby") {
    const Value& n = other();
    Value r = arithmetic("%", v, n, line);
    return r.as_double() == 0;
  }
  if (name == "filter") return v.is_string() && listed(kFilters, v.s);
  if (name == "test") return v.is_string() && listed(kTests, v.s);
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, other());
  if (name == "ne" || name == "!=") return !equals(v, other());
  if (name == "in") return contains(other(), v, line);
  if (name == "sameas") {
    const Value& o = other();
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::none:
      case Kind::undefined: return true;
      case Kind::boolean:
      case Kind::integer: return v.i == o.i;
      case Kind::list: return v.list == o.list;
      case Kind::dict: return v.dict == o.dict;
      case Kind::object: return v.object == o.object;
      case Kind::function: return v.function == o.function;
      case Kind::generator: return v.cursor == o.cursor;
      default: return false;
    }
  }
  const Value& o = other();
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, o, "<", line) < 0;
  if (name == "le" || name == "<=") return compare(v, o, "<=", line) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, o, ">", line) > 0;
  if (name == "ge" || name == ">=") return compare(v, o, ">=", line) >= 0;
  error_at(line, "unknown test '", name, "'");
}

// ============================================================================ JSON context

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return real(static_cast<double>(u));
      return integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return real(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return str(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const auto& x : j) items.push_back(from_json(x));
      return make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, x] : j.items()) d.set(str(k), from_json(x));
      return make_dict(std::move(d));
    }
    default: return none();
  }
}

std::string render(const ChatTemplate::Program& program, std::vector<std::pair<std::string, Value>> vars) {
  Frame root{nullptr, std::move(vars)};
  Interp interp(root);
  std::string out;
  interp.render(program.body, root, out);
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source) : source_(std::move(source)) {
  auto program = std::make_shared<Program>();
  program->body = Parser(Lexer(source_).run()).parse();
  program_ = std::move(program);
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const {
  List msgs;
  for (const auto& m : messages) {
    Dict d;
    d.set(str("role"), str(m.role));
    d.set(str("content"), str(m.content));
    msgs.push_back(make_dict(std::move(d)));
  }
  return render(*program_, {{"messages", make_list(std::move(msgs))},
                            {"tools", none()},
                            {"documents", none()},
                            {"add_generation_prompt", boolean(opts.add_generation_prompt)},
                            {"bos_token", str(opts.bos_token)},
                            {"eos_token", str(opts.eos_token)}});
}

std::string ChatTemplate::render_json(const std::string& context_json) const {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(context_json);
  } catch (const nlohmann::ordered_json::exception& e) {
    fail<ValueError>(kTag, "render_json: invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail<ValueError>(kTag, "render_json: the context must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  for (const auto& [k, x] : j.items()) vars.emplace_back(k, from_json(x));
  return render(*program_, std::move(vars));
}

}  // namespace kiln::text
