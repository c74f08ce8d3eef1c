#include "base/json.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace imagesmith {

Json Json::Bool(bool b) {
  Json j;
  j.data_ = b;
  return j;
}
Json Json::Int(int64_t n) {
  Json j;
  j.data_ = NumberRep{std::to_string(n)};
  return j;
}
Json Json::NumberText(std::string text) {
  Json j;
  j.data_ = NumberRep{std::move(text)};
  return j;
}
Json Json::String(std::string s) {
  Json j;
  j.data_ = std::move(s);
  return j;
}
Json Json::MakeArray() {
  Json j;
  j.data_ = Array{};
  return j;
}
Json Json::MakeObject() {
  Json j;
  j.data_ = ObjectBox{};
  return j;
}

Json::ObjectBox::ObjectBox() : items(std::make_unique<Object>()) {}
Json::ObjectBox::ObjectBox(const ObjectBox& other)
    : items(std::make_unique<Object>(*other.items)) {}
Json::ObjectBox::ObjectBox(ObjectBox&& other) noexcept = default;
Json::ObjectBox& Json::ObjectBox::operator=(const ObjectBox& other) {
  if (this != &other) items = std::make_unique<Object>(*other.items);
  return *this;
}
Json::ObjectBox& Json::ObjectBox::operator=(ObjectBox&& other) noexcept = default;
Json::ObjectBox::~ObjectBox() = default;

const Json::Object& Json::object_items() const { return *std::get<ObjectBox>(data_).items; }
Json::Object& Json::object_items() { return *std::get<ObjectBox>(data_).items; }

std::optional<int64_t> Json::AsInt64() const {
  if (!is_number()) return std::nullopt;
  const std::string& t = number_text();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
  return v;
}

std::optional<double> Json::AsDouble() const {
  if (!is_number()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(number_text().c_str(), &end);
  if (errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

const Json* Json::Find(std::string_view key) const {
  for (const JsonMember& m : object_items()) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

Json* Json::Find(std::string_view key) {
  return const_cast<Json*>(static_cast<const Json&>(*this).Find(key));
}

Json& Json::Set(std::string key, Json value) {
  for (JsonMember& m : object_items()) {
    if (m.key == key) {
      m.value = std::move(value);
      return m.value;
    }
  }
  object_items().push_back(JsonMember{std::move(key), {}, std::move(value)});
  return object_items().back().value;
}

void Json::Append(Json value) { array_items().push_back(std::move(value)); }

std::string_view Json::KindDescription() const {
  switch (kind()) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "a boolean";
    case Kind::kNumber:
      return "a number";
    case Kind::kString:
      return "a string";
    case Kind::kArray:
      return "an array";
    case Kind::kObject:
      return "an object";
  }
  return "a value";
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Runs of characters that need no escape are appended at once (the REST
  // server dumps every response through here).
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    char ch = s[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

namespace {

void DumpTo(const Json& j, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out.push_back('\n');
    out.append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (j.kind()) {
    case Json::Kind::kNull:
      out += "null";
      return;
    case Json::Kind::kBool:
      out += j.bool_value() ? "true" : "false";
      return;
    case Json::Kind::kNumber:
      out += j.number_text();
      return;
    case Json::Kind::kString:
      AppendJsonString(out, j.string_value());
      return;
    case Json::Kind::kArray: {
      const auto& items = j.array_items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out.push_back(',');
        newline(level + 1);
        DumpTo(items[i], indent, level + 1, out);
      }
      newline(level);
      out.push_back(']');
      return;
    }
    case Json::Kind::kObject: {
      const auto& members = j.object_items();
      if (members.empty()) {
        out += "{}";
        return;
      }
      out.push_back('{');
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out.push_back(',');
        newline(level + 1);
        AppendJsonString(out, members[i].key);
        out += indent < 0 ? ":" : ": ";
        DumpTo(members[i].value, indent, level + 1, out);
      }
      newline(level);
      out.push_back('}');
      return;
    }
  }
}

// Recursive-descent parser over a byte buffer, tracking line and column.
class Parser {
 public:
  Parser(std::string_view text, const JsonParseOptions& options) : text_(text), options_(options) {}

  bool Parse(Json& out) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    if (!SkipSpace()) return false;
    if (AtEnd()) return Fail("the file is empty; expected a JSON value");
    if (!ParseValue(out, 0)) return false;
    if (!SkipSpace()) return false;
    if (!AtEnd()) return Fail("unexpected text after the end of the JSON document");
    return true;
  }

  const JsonSyntaxError& error() const { return error_; }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  SourcePos Here() const { return SourcePos{line_, column_}; }

  void Advance() {
    auto c = static_cast<unsigned char>(text_[pos_]);
    ++pos_;
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column_;
    }
  }

  bool Fail(std::string message) { return FailAt(Here(), std::move(message)); }
  bool FailAt(SourcePos where, std::string message) {
    error_.pos = where;
    error_.message = std::move(message);
    return false;
  }

  std::string DescribeHere() const {
    if (AtEnd()) return "the end of the file";
    auto c = static_cast<unsigned char>(Peek());
    if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 0xf];
    }
    return std::string("'") + Peek() + "'";
  }

  bool SkipSpace() {
    while (!AtEnd()) {
      char c = Peek();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        Advance();
      } else if (c == '/' && options_.allow_comments && pos_ + 1 < text_.size() &&
                 (text_[pos_ + 1] == '/' || text_[pos_ + 1] == '*')) {
        SourcePos start = Here();
        bool block = text_[pos_ + 1] == '*';
        Advance();
        Advance();
        if (!block) {
          while (!AtEnd() && Peek() != '\n') Advance();
        } else {
          bool closed = false;
          while (!AtEnd()) {
            if (Peek() == '*' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
              Advance();
              Advance();
              closed = true;
              break;
            }
            Advance();
          }
          if (!closed) return FailAt(start, "unterminated /* comment; expected */");
        }
      } else {
        break;
      }
    }
    return true;
  }

  // A placeholder such as <minutes> written where a value belongs.
  bool FailUnexpected(std::string_view expected) {
    if (!AtEnd() && Peek() == '<') {
      size_t close = text_.find('>', pos_);
      size_t nl = text_.find('\n', pos_);
      if (close != std::string_view::npos && (nl == std::string_view::npos || close < nl) &&
          close - pos_ < 80) {
        std::string placeholder(text_.substr(pos_, close - pos_ + 1));
        return Fail("placeholder " + placeholder +
                    " left in the file; replace it with a real value");
      }
    }
    return Fail("expected " + std::string(expected) + ", found " + DescribeHere());
  }

  bool ParseValue(Json& out, int depth) {
    if (depth > options_.max_depth) {
      return Fail("nesting deeper than " + std::to_string(options_.max_depth) + " levels");
    }
    if (AtEnd()) return Fail("unexpected end of file; expected a value");
    SourcePos start = Here();
    char c = Peek();
    bool ok = false;
    if (c == '{') {
      ok = ParseObject(out, depth);
    } else if (c == '[') {
      ok = ParseArray(out, depth);
    } else if (c == '"') {
      std::string s;
      ok = ParseString(s);
      if (ok) out = Json::String(std::move(s));
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ok = ParseNumber(out);
    } else if (MatchWord("true")) {
      out = Json::Bool(true);
      ok = true;
    } else if (MatchWord("false")) {
      out = Json::Bool(false);
      ok = true;
    } else if (MatchWord("null")) {
      out = Json::Null();
      ok = true;
    } else if (c == '\'') {
      return Fail("strings must use double quotes (\"), not single quotes");
    } else {
      return FailUnexpected("a value (object, array, string, number, true, false or null)");
    }
    out.pos = start;
    return ok;
  }

  bool MatchWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    size_t after = pos_ + word.size();
    if (after < text_.size()) {
      char n = text_[after];
      if ((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9')) {
        return false;
      }
    }
    for (size_t i = 0; i < word.size(); ++i) Advance();
    return true;
  }

  bool ParseObject(Json& out, int depth) {
    SourcePos open = Here();
    Advance();  // {
    out = Json::MakeObject();
    if (!SkipSpace()) return false;
    if (!AtEnd() && Peek() == '}') {
      Advance();
      return true;
    }
    while (true) {
      if (!SkipSpace()) return false;
      if (AtEnd()) {
        return FailAt(open, "this object is never closed; expected '}' before the end of file");
      }
      if (Peek() == '}') return Fail("trailing comma before '}'; remove the last ','");
      if (Peek() != '"') return FailUnexpected("a property name in double quotes");
      JsonMember member;
      member.key_pos = Here();
      if (!ParseString(member.key)) return false;
      if (!SkipSpace()) return false;
      if (AtEnd() || Peek() != ':') return FailUnexpected("':' after the property name");
      Advance();
      if (!SkipSpace()) return false;
      if (!ParseValue(member.value, depth + 1)) return false;
      out.object_items().push_back(std::move(member));
      if (!SkipSpace()) return false;
      if (AtEnd()) {
        return FailAt(open, "this object is never closed; expected '}' before the end of file");
      }
      if (Peek() == ',') {
        Advance();
        continue;
      }
      if (Peek() == '}') {
        Advance();
        return true;
      }
      if (Peek() == '"') return Fail("missing ',' between properties");
      return FailUnexpected("',' or '}'");
    }
  }

  bool ParseArray(Json& out, int depth) {
    SourcePos open = Here();
    Advance();  // [
    out = Json::MakeArray();
    if (!SkipSpace()) return false;
    if (!AtEnd() && Peek() == ']') {
      Advance();
      return true;
    }
    while (true) {
      if (!SkipSpace()) return false;
      if (AtEnd()) {
        return FailAt(open, "this array is never closed; expected ']' before the end of file");
      }
      if (Peek() == ']') return Fail("trailing comma before ']'; remove the last ','");
      Json item;
      if (!ParseValue(item, depth + 1)) return false;
      out.array_items().push_back(std::move(item));
      if (!SkipSpace()) return false;
      if (AtEnd()) {
        return FailAt(open, "this array is never closed; expected ']' before the end of file");
      }
      if (Peek() == ',') {
        Advance();
        continue;
      }
      if (Peek() == ']') {
        Advance();
        return true;
      }
      return FailUnexpected("',' or ']'");
    }
  }

  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool ParseHex4(uint32_t& out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      if (AtEnd()) return Fail("unexpected end of file in a \\u escape");
      int v = HexValue(Peek());
      if (v < 0) return Fail("expected 4 hexadecimal digits after \\u");
      out = out * 16 + static_cast<uint32_t>(v);
      Advance();
    }
    return true;
  }

  static void AppendUtf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Validates one UTF-8 sequence starting at pos_ and copies it to `s`.
  bool CopyUtf8(std::string& s) {
    auto c = static_cast<unsigned char>(Peek());
    int extra = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return Fail("invalid UTF-8 byte in string (" + DescribeHere() + ")");
    }
    if (pos_ + static_cast<size_t>(extra) >= text_.size()) {
      return Fail("truncated UTF-8 sequence in string");
    }
    for (int i = 1; i <= extra; ++i) {
      auto cc = static_cast<unsigned char>(text_[pos_ + static_cast<size_t>(i)]);
      if ((cc & 0xC0) != 0x80) return Fail("invalid UTF-8 sequence in string");
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return Fail("invalid UTF-8 sequence in string");
    }
    for (int i = 0; i <= extra; ++i) {
      s.push_back(Peek());
      Advance();
    }
    return true;
  }

  bool ParseString(std::string& s) {
    SourcePos open = Here();
    Advance();  // opening quote
    while (true) {
      if (AtEnd()) return FailAt(open, "this string is never closed; expected '\"'");
      auto c = static_cast<unsigned char>(Peek());
      if (c == '"') {
        Advance();
        return true;
      }
      if (c == '\n') {
        return FailAt(open,
                      "this string is never closed on its line; expected '\"' "
                      "(a line break inside a string must be written as \\n)");
      }
      if (c < 0x20) return Fail("control character in string; escape it (e.g. \\t)");
      if (c == '\\') {
        Advance();
        if (AtEnd()) return Fail("unexpected end of file after '\\'");
        char e = Peek();
        Advance();
        switch (e) {
          case '"':
            s.push_back('"');
            break;
          case '\\':
            s.push_back('\\');
            break;
          case '/':
            s.push_back('/');
            break;
          case 'b':
            s.push_back('\b');
            break;
          case 'f':
            s.push_back('\f');
            break;
          case 'n':
            s.push_back('\n');
            break;
          case 'r':
            s.push_back('\r');
            break;
          case 't':
            s.push_back('\t');
            break;
          case 'u': {
            uint32_t cp = 0;
            if (!ParseHex4(cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (text_.substr(pos_, 2) != "\\u") {
                return Fail("unpaired UTF-16 surrogate in \\u escape");
              }
              Advance();
              Advance();
              uint32_t lo = 0;
              if (!ParseHex4(lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) {
                return Fail("unpaired UTF-16 surrogate in \\u escape");
              }
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return Fail("unpaired UTF-16 surrogate in \\u escape");
            }
            AppendUtf8(s, cp);
            break;
          }
          default:
            return Fail(std::string("invalid escape '\\") + e +
                        "' in string; valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
        }
      } else if (c < 0x80) {
        s.push_back(static_cast<char>(c));
        Advance();
      } else if (!CopyUtf8(s)) {
        return false;
      }
    }
  }

  bool ParseNumber(Json& out) {
    size_t start = pos_;
    auto digit = [&] { return !AtEnd() && Peek() >= '0' && Peek() <= '9'; };
    if (Peek() == '-') Advance();
    if (!digit()) return Fail("expected a digit after '-'");
    if (Peek() == '0') {
      Advance();
      if (digit()) return Fail("numbers must not have leading zeros");
    } else {
      while (digit()) Advance();
    }
    if (!AtEnd() && Peek() == '.') {
      Advance();
      if (!digit()) return Fail("expected a digit after the decimal point");
      while (digit()) Advance();
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      Advance();
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) Advance();
      if (!digit()) return Fail("expected a digit in the exponent");
      while (digit()) Advance();
    }
    if (pos_ - start > 512) return Fail("number literal longer than 512 characters");
    out = Json::NumberText(std::string(text_.substr(start, pos_ - start)));
    return true;
  }

  std::string_view text_;
  const JsonParseOptions& options_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
  JsonSyntaxError error_;
};

}  // namespace

std::string Json::Dump(int indent) const {
  std::string out;
  DumpTo(*this, indent, 0, out);
  return out;
}

StatusOr<Json> ParseJson(std::string_view text, const JsonParseOptions& options,
                         JsonSyntaxError* error) {
  Parser parser(text, options);
  Json out;
  if (!parser.Parse(out)) {
    const JsonSyntaxError& e = parser.error();
    if (error != nullptr) *error = e;
    return InvalidArgumentError(std::to_string(e.pos.line) + ":" + std::to_string(e.pos.column) +
                                ": " + e.message);
  }
  return out;
}

}  // namespace imagesmith
