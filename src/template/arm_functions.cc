// The ARM template functions: string, array, object, logic, number, resource
// ID and scope functions, applied to arguments already evaluated
// (arm_expression.cc evaluates them and handles the lazy if/coalesce).
#include <algorithm>
#include <charconv>
#include <ctime>

#include "base/sha256.h"
#include "base/strings.h"
#include "template/arm_internal.h"

namespace imagesmith::tmpl::arm {
namespace internal {

Status ErrorAt(size_t offset, const std::string& message) {
  return InvalidArgumentError("at character " + std::to_string(offset) + ": " + message);
}

Status CheckCount(const Node& n, size_t min, size_t max) {
  size_t c = n.args.size();
  if (c >= min && c <= max) return Status::Ok();
  std::string want = min == max        ? std::to_string(min)
                     : max == SIZE_MAX ? "at least " + std::to_string(min)
                                       : std::to_string(min) + " to " + std::to_string(max);
  return ErrorAt(n.offset,
                 n.text + "() takes " + want + " argument(s), found " + std::to_string(c));
}

}  // namespace internal

namespace {

using internal::CheckCount;
using internal::ErrorAt;
using internal::KindName;
using internal::Node;

// ---- Values -----------------------------------------------------------------------

}  // namespace

std::string internal::KindName(const Json& v) {
  switch (v.kind()) {
    case Json::Kind::kNull:
      return "null";
    case Json::Kind::kBool:
      return "a boolean";
    case Json::Kind::kNumber:
      return "an integer";
    case Json::Kind::kString:
      return "a string";
    case Json::Kind::kArray:
      return "an array";
    case Json::Kind::kObject:
      return "an object";
  }
  return "a value";
}

namespace {

std::string ToText(const Json& v);

// A member of an environment object as text, "" when absent.
std::string Field(const Json& o, const char* key) {
  const Json* v = o.is_object() ? o.Find(key) : nullptr;
  return v != nullptr ? ToText(*v) : "";
}

bool DeepEqual(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::kNull:
      return true;
    case Json::Kind::kBool:
      return a.bool_value() == b.bool_value();
    case Json::Kind::kNumber:
      return a.number_text() == b.number_text();
    case Json::Kind::kString:
      return a.string_value() == b.string_value();
    case Json::Kind::kArray: {
      const auto& x = a.array_items();
      const auto& y = b.array_items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!DeepEqual(x[i], y[i])) return false;
      }
      return true;
    }
    case Json::Kind::kObject: {
      const auto& x = a.object_items();
      const auto& y = b.object_items();
      if (x.size() != y.size()) return false;
      for (const JsonMember& m : x) {
        const Json* other = nullptr;
        for (const JsonMember& n : y) {
          if (EqualsIgnoreCase(m.key, n.key)) other = &n.value;
        }
        if (other == nullptr || !DeepEqual(m.value, *other)) return false;
      }
      return true;
    }
  }
  return false;
}

// string() of a value, as ARM writes it.
std::string ToText(const Json& v) {
  switch (v.kind()) {
    case Json::Kind::kNull:
      return "";
    case Json::Kind::kBool:
      return v.bool_value() ? "True" : "False";
    case Json::Kind::kNumber:
      return v.number_text();
    case Json::Kind::kString:
      return v.string_value();
    default:
      return v.Dump(-1);
  }
}

size_t FindIgnoreCase(std::string_view hay, std::string_view needle, bool last) {
  std::string h = AsciiToLower(hay);
  std::string n = AsciiToLower(needle);
  return last ? h.rfind(n) : h.find(n);
}

std::string Base64Encode(std::string_view in) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kChars[(v >> (6 * k)) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < in.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string HashText(const std::vector<Json>& args) {
  std::string joined;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) joined += '-';
    joined += ToText(args[i]);
  }
  return joined;
}

// The ARM resource ID functions share one shape: [scope...], type, names...
StatusOr<std::string> TypedNames(const std::vector<Json>& args, size_t type_index,
                                 const std::string& fn, size_t offset) {
  const std::string& type = args[type_index].string_value();
  std::vector<std::string> parts = Split(type, '/');
  if (parts.size() < 2 || parts[0].empty()) {
    return ErrorAt(offset, fn + ": " + QuoteForMessage(type) +
                               " is not a resource type such as Microsoft.Compute/images");
  }
  size_t names = args.size() - type_index - 1;
  if (names != parts.size() - 1) {
    return ErrorAt(offset, fn + ": resource type " + type + " takes " +
                               std::to_string(parts.size() - 1) + " name(s), found " +
                               std::to_string(names));
  }
  std::string out = "/providers/" + parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& name = args[type_index + i].string_value();
    if (name.empty())
      return ErrorAt(offset, fn + ": resource name " + std::to_string(i) + " is empty");
    out += "/" + parts[i] + "/" + name;
  }
  return out;
}

std::string FormatUtc(int64_t t, std::string_view format) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  auto two = [](int v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  std::string out;
  for (size_t i = 0; i < format.size();) {
    auto take = [&](std::string_view tok) {
      if (format.substr(i, tok.size()) != tok) return false;
      i += tok.size();
      return true;
    };
    if (take("yyyy")) {
      out += std::to_string(tm.tm_year + 1900);
    } else if (take("MM")) {
      out += two(tm.tm_mon + 1);
    } else if (take("dd")) {
      out += two(tm.tm_mday);
    } else if (take("HH")) {
      out += two(tm.tm_hour);
    } else if (take("mm")) {
      out += two(tm.tm_min);
    } else if (take("ss")) {
      out += two(tm.tm_sec);
    } else {
      out += format[i++];
    }
  }
  return out;
}

const std::vector<std::string>& KnownFunctions() {
  static const std::vector<std::string> kNames = {"add",
                                                  "and",
                                                  "array",
                                                  "base64",
                                                  "base64ToString",
                                                  "bool",
                                                  "coalesce",
                                                  "concat",
                                                  "contains",
                                                  "createArray",
                                                  "createObject",
                                                  "deployment",
                                                  "div",
                                                  "empty",
                                                  "endsWith",
                                                  "environment",
                                                  "equals",
                                                  "extensionResourceId",
                                                  "false",
                                                  "first",
                                                  "format",
                                                  "greater",
                                                  "greaterOrEquals",
                                                  "guid",
                                                  "if",
                                                  "indexOf",
                                                  "int",
                                                  "join",
                                                  "json",
                                                  "last",
                                                  "lastIndexOf",
                                                  "length",
                                                  "less",
                                                  "lessOrEquals",
                                                  "max",
                                                  "min",
                                                  "mod",
                                                  "mul",
                                                  "newGuid",
                                                  "not",
                                                  "null",
                                                  "or",
                                                  "padLeft",
                                                  "parameters",
                                                  "range",
                                                  "replace",
                                                  "resourceGroup",
                                                  "resourceId",
                                                  "skip",
                                                  "split",
                                                  "startsWith",
                                                  "string",
                                                  "sub",
                                                  "subscription",
                                                  "subscriptionResourceId",
                                                  "substring",
                                                  "take",
                                                  "tenant",
                                                  "tenantResourceId",
                                                  "toLower",
                                                  "toUpper",
                                                  "trim",
                                                  "true",
                                                  "union",
                                                  "uniqueString",
                                                  "uri",
                                                  "uriComponent",
                                                  "uriComponentToString",
                                                  "utcNow",
                                                  "variables"};
  return kNames;
}

// ---- Evaluator ------------------------------------------------------------------------

// The function library over one environment.
class Functions {
 public:
  explicit Functions(ExpressionEnv& env) : env_(env) {}

  StatusOr<Json> Apply(const Node& n, const std::string& fn, std::vector<Json>& a) {
    if (fn == "parameters" || fn == "variables") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a string"));
      auto& lookup = fn == "parameters" ? env_.parameter : env_.variable;
      if (!lookup) return ErrorAt(n.offset, n.text + "() cannot be used here");
      auto v = lookup(a[0].string_value());
      if (!v.ok()) {
        // Problems inside another variable or parameter name it themselves.
        std::string m = v.status().message();
        if (StartsWith(m, "in ") || StartsWith(m, "circular")) return v.status();
        return Status(v.status().code(), "at character " + std::to_string(n.offset) + ": " + m);
      }
      return std::move(*v);
    }
    if (fn == "concat") {
      if (a.empty()) return Json::String("");
      if (a[0].is_array()) {
        Json out = Json::MakeArray();
        for (size_t i = 0; i < a.size(); ++i) {
          RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kArray, "an array (like the first)"));
          for (Json& item : a[i].array_items()) out.Append(std::move(item));
        }
        return out;
      }
      std::string out;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].is_array() || a[i].is_object()) {
          return ErrorAt(n.args[i]->offset, "concat(): argument " + std::to_string(i + 1) + " is " +
                                                KindName(a[i]) +
                                                "; concat joins strings, or arrays with arrays");
        }
        out += ToText(a[i]);
      }
      return Json::String(std::move(out));
    }
    if (fn == "format") {
      RETURN_IF_ERROR(Count(n, 1, SIZE_MAX));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a format string"));
      const std::string& f = a[0].string_value();
      std::string out;
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
          out += '{';
          ++i;
        } else if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
          out += '}';
          ++i;
        } else if (f[i] == '{') {
          size_t close = f.find('}', i);
          if (close == std::string::npos) {
            return ErrorAt(n.args[0]->offset, "format(): '{' at " + std::to_string(i) +
                                                  " is not closed; write {{ for a brace");
          }
          std::string spec = f.substr(i + 1, close - i - 1);
          std::string index_text = spec.substr(0, spec.find_first_of(",:"));
          if (!IsAsciiDigits(index_text) || index_text.size() > 4) {
            return ErrorAt(n.args[0]->offset,
                           "format(): " + QuoteForMessage("{" + spec + "}") +
                               " is not a placeholder like {0}; write {{ for a brace");
          }
          size_t index = std::stoul(index_text) + 1;
          if (index >= a.size()) {
            return ErrorAt(n.args[0]->offset, "format(): {" + index_text + "} has no argument (" +
                                                  std::to_string(a.size() - 1) + " given)");
          }
          out += ToText(a[index]);
          i = close;
        } else {
          out += f[i];
        }
      }
      return Json::String(std::move(out));
    }
    if (fn == "string") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      return Json::String(ToText(a[0]));
    }
    if (fn == "int") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      if (a[0].is_number() && a[0].AsInt64()) return Json::Int(*a[0].AsInt64());
      if (a[0].is_string()) {
        std::string_view t = TrimWhitespace(a[0].string_value());
        int64_t v = 0;
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec == std::errc() && p == t.data() + t.size() && !t.empty()) return Json::Int(v);
      }
      return ErrorAt(n.offset,
                     "int(): cannot convert " + QuoteForMessage(ToText(a[0])) + " to an integer");
    }
    if (fn == "bool") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      if (a[0].is_bool()) return a[0];
      if (a[0].is_number()) return Json::Bool(a[0].number_text() != "0");
      if (a[0].is_string() && (EqualsIgnoreCase(a[0].string_value(), "true") ||
                               EqualsIgnoreCase(a[0].string_value(), "false"))) {
        return Json::Bool(EqualsIgnoreCase(a[0].string_value(), "true"));
      }
      return ErrorAt(n.offset,
                     "bool(): cannot convert " + QuoteForMessage(ToText(a[0])) + " to a boolean");
    }
    if (fn == "tolower" || fn == "toupper" || fn == "trim" || fn == "base64" ||
        fn == "base64tostring" || fn == "uricomponent" || fn == "uricomponenttostring") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a string"));
      const std::string& s = a[0].string_value();
      if (fn == "tolower") return Json::String(AsciiToLower(s));
      if (fn == "toupper") {
        std::string u = s;
        for (char& c : u) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
        return Json::String(u);
      }
      if (fn == "trim") return Json::String(std::string(TrimWhitespace(s)));
      if (fn == "base64") return Json::String(Base64Encode(s));
      if (fn == "base64tostring") {
        auto d = Base64Decode(s);
        if (!d) return ErrorAt(n.offset, "base64ToString(): the argument is not base64");
        return Json::String(*d);
      }
      if (fn == "uricomponent") {
        std::string out;
        static const char kHex[] = "0123456789ABCDEF";
        for (char c : s) {
          auto u = static_cast<unsigned char>(c);
          if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '~') {
            out += c;
          } else {
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
          }
        }
        return Json::String(out);
      }
      std::string out;
      for (size_t i = 0; i < s.size(); ++i) {
        auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
          out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
          i += 2;
        } else {
          out += s[i];
        }
      }
      return Json::String(out);
    }
    if (fn == "replace") {
      RETURN_IF_ERROR(Count(n, 3, 3));
      RETURN_IF_ERROR(WantStrings(n, a, 0));
      const std::string& from = a[1].string_value();
      if (from.empty()) return ErrorAt(n.args[1]->offset, "replace(): the old string is empty");
      std::string s = a[0].string_value();
      std::string out;
      size_t start = 0;
      for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, start)) {
        out += s.substr(start, p - start) + a[2].string_value();
        start = p + from.size();
        if (static_cast<int64_t>(out.size()) > env_.budget) {
          return ResourceExhaustedError("at character " + std::to_string(n.offset) +
                                        ": replace() result too large");
        }
      }
      out += s.substr(start);
      return Json::String(out);
    }
    if (fn == "substring") {
      RETURN_IF_ERROR(Count(n, 2, 3));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a string"));
      ASSIGN_OR_RETURN(int64_t start, WantInt(n, a, 1));
      const std::string& s = a[0].string_value();
      int64_t size = static_cast<int64_t>(s.size());
      int64_t len = size - start;
      if (a.size() == 3) {
        ASSIGN_OR_RETURN(len, WantInt(n, a, 2));
      }
      if (start < 0 || len < 0 || start > size || len > size - start) {
        return ErrorAt(n.offset, "substring(): start " + std::to_string(start) + " and length " +
                                     std::to_string(len) + " do not fit the string of " +
                                     std::to_string(size) + " characters");
      }
      return Json::String(s.substr(static_cast<size_t>(start), static_cast<size_t>(len)));
    }
    if (fn == "length" || fn == "empty") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      int64_t len;
      if (a[0].is_string()) {
        len = static_cast<int64_t>(a[0].string_value().size());
      } else if (a[0].is_array()) {
        len = static_cast<int64_t>(a[0].array_items().size());
      } else if (a[0].is_object()) {
        len = static_cast<int64_t>(a[0].object_items().size());
      } else if (a[0].is_null() && fn == "empty") {
        len = 0;
      } else {
        return ErrorAt(n.offset, n.text + "(): expected a string, an array or an object, found " +
                                     KindName(a[0]));
      }
      return fn == "length" ? Json::Int(len) : Json::Bool(len == 0);
    }
    if (fn == "contains") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      if (a[0].is_string()) {
        return Json::Bool(a[0].string_value().find(ToText(a[1])) != std::string::npos);
      }
      if (a[0].is_array()) {
        for (const Json& item : a[0].array_items()) {
          if (DeepEqual(item, a[1])) return Json::Bool(true);
        }
        return Json::Bool(false);
      }
      if (a[0].is_object()) {
        for (const JsonMember& m : a[0].object_items()) {
          if (EqualsIgnoreCase(m.key, ToText(a[1]))) return Json::Bool(true);
        }
        return Json::Bool(false);
      }
      return ErrorAt(n.offset, "contains(): expected a string, an array or an object, found " +
                                   KindName(a[0]));
    }
    if (fn == "indexof" || fn == "lastindexof" || fn == "startswith" || fn == "endswith") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      RETURN_IF_ERROR(WantStrings(n, a, 0));
      const std::string& s = a[0].string_value();
      const std::string& t = a[1].string_value();
      if (fn == "startswith") return Json::Bool(StartsWithIgnoreCase(s, t));
      if (fn == "endswith") {
        return Json::Bool(s.size() >= t.size() &&
                          EqualsIgnoreCase(std::string_view(s).substr(s.size() - t.size()), t));
      }
      size_t p = FindIgnoreCase(s, t, fn == "lastindexof");
      return Json::Int(p == std::string::npos ? -1 : static_cast<int64_t>(p));
    }
    if (fn == "padleft") {
      RETURN_IF_ERROR(Count(n, 2, 3));
      ASSIGN_OR_RETURN(int64_t width, WantInt(n, a, 1));
      if (width > 16384) return ErrorAt(n.offset, "padLeft(): total length above 16384");
      std::string s = ToText(a[0]);
      char pad = ' ';
      if (a.size() == 3) {
        RETURN_IF_ERROR(Want(n, a, 2, Json::Kind::kString, "a one-character string"));
        if (a[2].string_value().size() != 1) {
          return ErrorAt(n.args[2]->offset, "padLeft(): the padding must be one character");
        }
        pad = a[2].string_value()[0];
      }
      if (static_cast<int64_t>(s.size()) < width) {
        s.insert(0, static_cast<size_t>(width) - s.size(), pad);
      }
      return Json::String(s);
    }
    if (fn == "split") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a string"));
      std::vector<std::string> delims;
      if (a[1].is_string()) {
        delims.push_back(a[1].string_value());
      } else if (a[1].is_array()) {
        for (const Json& d : a[1].array_items()) {
          if (!d.is_string()) return ErrorAt(n.args[1]->offset, "split(): delimiters are strings");
          delims.push_back(d.string_value());
        }
      } else {
        return ErrorAt(n.args[1]->offset, "split(): the delimiter must be a string or an array");
      }
      Json out = Json::MakeArray();
      const std::string& s = a[0].string_value();
      std::string cur;
      for (size_t i = 0; i < s.size();) {
        bool hit = false;
        for (const std::string& d : delims) {
          if (!d.empty() && s.compare(i, d.size(), d) == 0) {
            out.Append(Json::String(cur));
            cur.clear();
            i += d.size();
            hit = true;
            break;
          }
        }
        if (!hit) cur += s[i++];
      }
      out.Append(Json::String(cur));
      return out;
    }
    if (fn == "join") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kArray, "an array"));
      RETURN_IF_ERROR(Want(n, a, 1, Json::Kind::kString, "a string"));
      std::string out;
      for (size_t i = 0; i < a[0].array_items().size(); ++i) {
        if (i > 0) out += a[1].string_value();
        out += ToText(a[0].array_items()[i]);
      }
      return Json::String(out);
    }
    if (fn == "first" || fn == "last") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      if (a[0].is_string()) {
        const std::string& s = a[0].string_value();
        if (s.empty()) return Json::String("");
        return Json::String(std::string(1, fn == "first" ? s.front() : s.back()));
      }
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kArray, "an array or a string"));
      auto& items = a[0].array_items();
      if (items.empty()) return Json::Null();
      return std::move(fn == "first" ? items.front() : items.back());
    }
    if (fn == "take" || fn == "skip") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      ASSIGN_OR_RETURN(int64_t count, WantInt(n, a, 1));
      count = std::max<int64_t>(count, 0);
      if (a[0].is_string()) {
        const std::string& s = a[0].string_value();
        size_t c = static_cast<size_t>(std::min<int64_t>(count, static_cast<int64_t>(s.size())));
        return Json::String(fn == "take" ? s.substr(0, c) : s.substr(c));
      }
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kArray, "an array or a string"));
      auto& items = a[0].array_items();
      size_t c = static_cast<size_t>(std::min<int64_t>(count, static_cast<int64_t>(items.size())));
      Json out = Json::MakeArray();
      for (size_t i = fn == "take" ? 0 : c; i < (fn == "take" ? c : items.size()); ++i) {
        out.Append(std::move(items[i]));
      }
      return out;
    }
    if (fn == "createarray") {
      Json out = Json::MakeArray();
      for (Json& v : a) out.Append(std::move(v));
      return out;
    }
    if (fn == "array") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      if (a[0].is_array()) return std::move(a[0]);
      Json out = Json::MakeArray();
      out.Append(std::move(a[0]));
      return out;
    }
    if (fn == "createobject") {
      if (a.size() % 2 != 0) {
        return ErrorAt(n.offset, "createObject() takes name, value pairs; found an odd count");
      }
      Json out = Json::MakeObject();
      for (size_t i = 0; i < a.size(); i += 2) {
        RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kString, "a property name"));
        out.Set(a[i].string_value(), std::move(a[i + 1]));
      }
      return out;
    }
    if (fn == "json") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a string"));
      JsonParseOptions opts;
      opts.max_depth = 64;
      auto v = ParseJson(a[0].string_value(), opts);
      if (!v.ok()) return ErrorAt(n.args[0]->offset, "json(): " + v.status().message());
      return std::move(*v);
    }
    if (fn == "union") {
      RETURN_IF_ERROR(Count(n, 1, SIZE_MAX));
      if (a[0].is_object()) {
        Json out = Json::MakeObject();
        for (size_t i = 0; i < a.size(); ++i) {
          RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kObject, "an object (like the first)"));
          for (JsonMember& m : a[i].object_items()) out.Set(m.key, std::move(m.value));
        }
        return out;
      }
      Json out = Json::MakeArray();
      for (size_t i = 0; i < a.size(); ++i) {
        RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kArray, "an array (like the first)"));
        for (Json& item : a[i].array_items()) {
          bool seen = false;
          for (const Json& o : out.array_items()) seen = seen || DeepEqual(o, item);
          if (!seen) out.Append(std::move(item));
        }
      }
      return out;
    }
    if (fn == "equals") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      return Json::Bool(DeepEqual(a[0], a[1]));
    }
    if (fn == "not") {
      RETURN_IF_ERROR(Count(n, 1, 1));
      RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kBool, "a boolean"));
      return Json::Bool(!a[0].bool_value());
    }
    if (fn == "and" || fn == "or") {
      RETURN_IF_ERROR(Count(n, 1, SIZE_MAX));
      bool acc = fn == "and";
      for (size_t i = 0; i < a.size(); ++i) {
        RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kBool, "a boolean"));
        acc = fn == "and" ? (acc && a[i].bool_value()) : (acc || a[i].bool_value());
      }
      return Json::Bool(acc);
    }
    if (fn == "less" || fn == "lessorequals" || fn == "greater" || fn == "greaterorequals") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      int cmp;
      if (a[0].is_string() && a[1].is_string()) {
        cmp = a[0].string_value().compare(a[1].string_value());
      } else {
        ASSIGN_OR_RETURN(int64_t x, WantInt(n, a, 0));
        ASSIGN_OR_RETURN(int64_t y, WantInt(n, a, 1));
        cmp = x < y ? -1 : (x > y ? 1 : 0);
      }
      if (fn == "less") return Json::Bool(cmp < 0);
      if (fn == "lessorequals") return Json::Bool(cmp <= 0);
      if (fn == "greater") return Json::Bool(cmp > 0);
      return Json::Bool(cmp >= 0);
    }
    if (fn == "add" || fn == "sub" || fn == "mul" || fn == "div" || fn == "mod") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      ASSIGN_OR_RETURN(int64_t x, WantInt(n, a, 0));
      ASSIGN_OR_RETURN(int64_t y, WantInt(n, a, 1));
      int64_t r = 0;
      bool overflow = false;
      if (fn == "add") {
        overflow = __builtin_add_overflow(x, y, &r);
      } else if (fn == "sub") {
        overflow = __builtin_sub_overflow(x, y, &r);
      } else if (fn == "mul") {
        overflow = __builtin_mul_overflow(x, y, &r);
      } else {
        if (y == 0) return ErrorAt(n.offset, n.text + "(): division by zero");
        if (x == INT64_MIN && y == -1) {
          overflow = true;
        } else {
          r = fn == "div" ? x / y : x % y;
        }
      }
      if (overflow) return ErrorAt(n.offset, n.text + "(): the result does not fit in 64 bits");
      return Json::Int(r);
    }
    if (fn == "min" || fn == "max") {
      RETURN_IF_ERROR(Count(n, 1, SIZE_MAX));
      std::vector<Json> items = a;
      if (a.size() == 1 && a[0].is_array()) items = a[0].array_items();
      if (items.empty()) return ErrorAt(n.offset, n.text + "(): no values");
      std::optional<int64_t> best;
      for (const Json& v : items) {
        auto x = v.AsInt64();
        if (!v.is_number() || !x) return ErrorAt(n.offset, n.text + "(): values must be integers");
        if (!best || (fn == "min" ? *x < *best : *x > *best)) best = *x;
      }
      return Json::Int(*best);
    }
    if (fn == "range") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      ASSIGN_OR_RETURN(int64_t start, WantInt(n, a, 0));
      ASSIGN_OR_RETURN(int64_t count, WantInt(n, a, 1));
      if (count < 0 || count > 10000 || start > INT64_MAX - count) {
        return ErrorAt(n.offset, "range(): the count must be 0 to 10000");
      }
      Json out = Json::MakeArray();
      for (int64_t i = 0; i < count; ++i) out.Append(Json::Int(start + i));
      return out;
    }
    if (fn == "guid" || fn == "uniquestring") {
      RETURN_IF_ERROR(Count(n, 1, SIZE_MAX));
      RETURN_IF_ERROR(WantStrings(n, a, 0));
      std::string hex = Sha256Of(HashText(a)).ToHex();
      if (fn == "uniquestring") {
        // 13 characters of base32, as ARM's; the values differ from Azure's.
        static const char kB32[] = "abcdefghijklmnopqrstuvwxyz234567";
        std::string out;
        for (size_t i = 0; i < 13; ++i) {
          out += kB32[std::stoi(hex.substr(i * 2, 2), nullptr, 16) & 31];
        }
        return Json::String(out);
      }
      hex[12] = '5';  // a name-based UUID, version 5
      hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
      return Json::String(hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
                          "-" + hex.substr(16, 4) + "-" + hex.substr(20, 12));
    }
    if (fn == "uri") {
      RETURN_IF_ERROR(Count(n, 2, 2));
      RETURN_IF_ERROR(WantStrings(n, a, 0));
      const std::string& base = a[0].string_value();
      const std::string& rel = a[1].string_value();
      size_t scheme = base.find("://");
      if (scheme == std::string::npos) {
        return ErrorAt(n.args[0]->offset,
                       "uri(): the base " + QuoteForMessage(base) + " is not an absolute URI");
      }
      if (rel.find("://") != std::string::npos) return Json::String(rel);
      if (!rel.empty() && rel[0] == '/') {
        size_t path = base.find('/', scheme + 3);
        return Json::String((path == std::string::npos ? base : base.substr(0, path)) + rel);
      }
      size_t slash = base.rfind('/');
      if (slash < scheme + 3) return Json::String(base + "/" + rel);
      return Json::String(base.substr(0, slash + 1) + rel);
    }
    if (fn == "resourceid" || fn == "subscriptionresourceid" || fn == "tenantresourceid" ||
        fn == "extensionresourceid") {
      RETURN_IF_ERROR(Count(n, 2, SIZE_MAX));
      RETURN_IF_ERROR(WantStrings(n, a, 0));
      // The type is the first argument with a '/' (scopes never have one),
      // except for extensionResourceId, whose first argument is an ID.
      size_t type_index = fn == "extensionresourceid" ? 1 : a.size();
      if (fn != "extensionresourceid") {
        for (size_t i = 0; i < a.size(); ++i) {
          if (a[i].string_value().find('/') != std::string::npos) {
            type_index = i;
            break;
          }
        }
      }
      if (type_index >= a.size()) {
        return ErrorAt(n.offset, n.text +
                                     "(): no resource type such as Microsoft.Compute/images "
                                     "among the arguments");
      }
      ASSIGN_OR_RETURN(std::string tail, TypedNames(a, type_index, n.text, n.offset));
      std::string sub = Field(env_.subscription, "subscriptionId");
      if (fn == "extensionresourceid") return Json::String(a[0].string_value() + tail);
      if (fn == "tenantresourceid") {
        if (type_index != 0) return ErrorAt(n.offset, "tenantResourceId() takes no scope");
        return Json::String(tail);
      }
      if (fn == "subscriptionresourceid") {
        if (type_index > 1)
          return ErrorAt(
              n.offset, "subscriptionResourceId() takes at most a subscription ID before the type");
        if (type_index == 1) sub = a[0].string_value();
        return Json::String("/subscriptions/" + sub + tail);
      }
      std::string group = Field(env_.resource_group, "name");
      if (type_index == 1) {
        group = a[0].string_value();
      } else if (type_index == 2) {
        sub = a[0].string_value();
        group = a[1].string_value();
      } else if (type_index > 2) {
        return ErrorAt(n.offset,
                       "resourceId() takes at most a subscription ID and a resource "
                       "group before the type");
      }
      return Json::String("/subscriptions/" + sub + "/resourceGroups/" + group + tail);
    }
    if (fn == "resourcegroup" || fn == "subscription" || fn == "deployment" || fn == "tenant" ||
        fn == "environment") {
      RETURN_IF_ERROR(Count(n, 0, 0));
      if (fn == "resourcegroup") return env_.resource_group;
      if (fn == "subscription") return env_.subscription;
      if (fn == "deployment") return env_.deployment;
      Json o = Json::MakeObject();
      if (fn == "tenant") {
        o.Set("tenantId", Json::String(env_.tenant_id));
      } else {
        o.Set("name", Json::String("AzureCloud"));
      }
      return o;
    }
    if (fn == "utcnow" || fn == "newguid") {
      RETURN_IF_ERROR(Count(n, 0, fn == "utcnow" ? 1 : 0));
      if (!env_.allow_utc_now) {
        return ErrorAt(n.offset, n.text + "() may only be used in a parameter's defaultValue");
      }
      if (fn == "newguid") {
        std::vector<Json> seed = {Json::String(std::to_string(env_.now_unix_seconds)),
                                  Json::String(std::to_string(env_.budget))};
        std::string hex = Sha256Of(HashText(seed)).ToHex();
        hex[12] = '4';
        return Json::String(hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
                            "-" + hex.substr(16, 4) + "-" + hex.substr(20, 12));
      }
      std::string format = "yyyyMMddTHHmmssZ";
      if (a.size() == 1) {
        RETURN_IF_ERROR(Want(n, a, 0, Json::Kind::kString, "a format string"));
        format = a[0].string_value();
      }
      return Json::String(FormatUtc(env_.now_unix_seconds, format));
    }
    std::string message = "unknown function " + QuoteForMessage(n.text);
    std::string guess = ClosestMatch(n.text, KnownFunctions());
    if (!guess.empty()) message += "; did you mean " + guess + "()?";
    return ErrorAt(n.offset, message);
  }

 private:
  // Argument checks; `fn` names the function in messages.
  Status Count(const Node& n, size_t min, size_t max) { return CheckCount(n, min, max); }
  Status Want(const Node& n, const std::vector<Json>& a, size_t i, Json::Kind kind,
              const char* what) {
    if (a[i].kind() == kind) return Status::Ok();
    return ErrorAt(n.args[i]->offset, n.text + "(): argument " + std::to_string(i + 1) +
                                          " must be " + what + ", found " + KindName(a[i]));
  }
  StatusOr<int64_t> WantInt(const Node& n, const std::vector<Json>& a, size_t i) {
    RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kNumber, "an integer"));
    auto v = a[i].AsInt64();
    if (!v)
      return ErrorAt(n.args[i]->offset,
                     n.text + "(): " + a[i].number_text() + " is not a 64-bit integer");
    return *v;
  }
  Status WantStrings(const Node& n, const std::vector<Json>& a, size_t from) {
    for (size_t i = from; i < a.size(); ++i) {
      RETURN_IF_ERROR(Want(n, a, i, Json::Kind::kString, "a string"));
    }
    return Status::Ok();
  }

  ExpressionEnv& env_;
};

}  // namespace

StatusOr<Json> internal::ApplyFunction(const Node& n, const std::string& fn, std::vector<Json>& a,
                                       ExpressionEnv& env) {
  Functions f(env);
  return f.Apply(n, fn, a);
}

}  // namespace imagesmith::tmpl::arm
