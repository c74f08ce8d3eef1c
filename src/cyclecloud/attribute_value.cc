#include "cyclecloud/attribute_value.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "base/strings.h"

namespace imagesmith::cyclecloud {

Value TypeLiteral(const std::string& text) {
  if (EqualsIgnoreCase(text, "true")) return Value::Bool(true);
  if (EqualsIgnoreCase(text, "false")) return Value::Bool(false);
  if (EqualsIgnoreCase(text, "undefined")) return Value::Undefined();
  if (!text.empty()) {
    size_t i = (text[0] == '-' || text[0] == '+') ? 1 : 0;
    bool digits = i < text.size(), dot = false;
    for (size_t j = i; j < text.size(); ++j) {
      if (text[j] == '.' && !dot && j > i && j + 1 < text.size()) {
        dot = true;
      } else if (!std::isdigit(static_cast<unsigned char>(text[j]))) {
        digits = false;
        break;
      }
    }
    // Leading zeros ("007", version-like "01") stay strings.
    bool leading_zero = text.size() > i + 1 && text[i] == '0' && text[i + 1] != '.';
    if (digits && !leading_zero) {
      errno = 0;
      if (!dot) {
        long long v = std::strtoll(text.c_str(), nullptr, 10);
        if (errno == 0) return Value::Int(v);
      } else {
        return Value::Double(std::strtod(text.c_str(), nullptr));
      }
    }
  }
  return Value::String(text);
}

namespace {

Location Advance(Location at, std::string_view text, size_t n) {
  for (size_t i = 0; i < n && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else {
      ++at.column;
    }
  }
  return at;
}

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char e = s[++i];
      out += e == 'n' ? '\n' : (e == 't' ? '\t' : e);
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

StatusOr<AttributeValue> AttributeValue::Compile(const Attribute& attribute) {
  if (attribute.expression) {
    AttributeValue v;
    v.raw_ = attribute.raw;
    if (TrimWhitespace(attribute.raw).empty()) {
      return ErrorAt(attribute.value_at, "'" + attribute.key + " :=' needs an expression");
    }
    ASSIGN_OR_RETURN(Expression parsed, Expression::Parse(attribute.raw, attribute.value_at));
    v.whole_ = std::make_shared<Expression>(std::move(parsed));
    return v;
  }
  if (attribute.triple_quoted) {
    AttributeValue v;
    v.raw_ = attribute.raw;
    Item item;
    item.quoted = true;
    item.pieces.push_back(Piece{attribute.raw, nullptr});
    v.items_.push_back(std::move(item));
    return v;
  }
  return CompileText(attribute.raw, attribute.value_at);
}

StatusOr<AttributeValue> AttributeValue::CompileText(const std::string& raw, const Location& at) {
  // Where text[offset] is; offsets come in increasing order, so continue
  // from the last answer (linear in the value's length).
  size_t loc_offset = 0;
  Location loc = at;
  auto where = [&](size_t offset) {
    if (offset < loc_offset) {
      loc_offset = 0;
      loc = at;
    }
    loc = Advance(loc, std::string_view(raw).substr(loc_offset), offset - loc_offset);
    loc_offset = offset;
    return loc;
  };
  AttributeValue v;
  v.raw_ = raw;
  std::string_view text = raw;
  // Split at commas outside quotes, ${...} and brackets.
  std::vector<std::pair<size_t, size_t>> spans;
  {
    size_t begin = 0;
    int depth = 0;
    bool quoted = false;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (quoted) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          quoted = false;
        }
        continue;
      }
      if (c == '"' && (i == begin || TrimWhitespace(text.substr(begin, i - begin)).empty())) {
        quoted = true;
      } else if (c == '(' || c == '{' || c == '[') {
        ++depth;
      } else if ((c == ')' || c == '}' || c == ']') && depth > 0) {
        --depth;
      } else if (c == ',' && depth == 0) {
        spans.emplace_back(begin, i);
        begin = i + 1;
      }
    }
    spans.emplace_back(begin, text.size());
  }
  for (auto [b, end_pos] : spans) {
    size_t e = end_pos;
    while (b < e && (text[b] == ' ' || text[b] == '\t' || text[b] == '\n' || text[b] == '\r')) ++b;
    while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\n' ||
                     text[e - 1] == '\r')) {
      --e;
    }
    std::string_view s = text.substr(b, e - b);
    Item item;
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
      item.quoted = true;
      item.pieces.push_back(Piece{Unescape(s.substr(1, s.size() - 2)), nullptr});
      v.items_.push_back(std::move(item));
      continue;
    }
    std::string literal;
    size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
        // Find the matching '}', skipping strings.
        size_t j = i + 2;
        int depth = 1;
        char quote = 0;
        for (; j < s.size(); ++j) {
          char c = s[j];
          if (quote) {
            if (c == '\\') {
              ++j;
            } else if (c == quote) {
              quote = 0;
            }
          } else if (c == '"' || c == '\'') {
            quote = c;
          } else if (c == '{') {
            ++depth;
          } else if (c == '}' && --depth == 0) {
            break;
          }
        }
        Location expr_at = where(b + i + 2);
        if (j >= s.size()) return ErrorAt(where(b + i), "'${' is never closed");
        std::string inner(s.substr(i + 2, j - i - 2));
        if (TrimWhitespace(inner).empty()) return ErrorAt(expr_at, "empty '${}'");
        ASSIGN_OR_RETURN(Expression parsed, Expression::Parse(inner, expr_at));
        if (!literal.empty()) item.pieces.push_back(Piece{std::move(literal), nullptr});
        literal.clear();
        item.pieces.push_back(Piece{"", std::make_shared<Expression>(std::move(parsed))});
        i = j + 1;
        continue;
      }
      if (s[i] == '$' && i + 1 < s.size() &&
          (std::isalpha(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '_')) {
        size_t j = i + 1;
        while (j < s.size() && IsNameChar(s[j])) ++j;
        Location name_at = where(b + i);
        ASSIGN_OR_RETURN(Expression parsed, Expression::Parse(s.substr(i, j - i), name_at));
        if (!literal.empty()) item.pieces.push_back(Piece{std::move(literal), nullptr});
        literal.clear();
        item.pieces.push_back(Piece{"", std::make_shared<Expression>(std::move(parsed))});
        i = j;
        continue;
      }
      literal += s[i++];
    }
    if (!literal.empty() || item.pieces.empty()) item.pieces.push_back(Piece{literal, nullptr});
    v.items_.push_back(std::move(item));
  }
  return v;
}

std::vector<Expression::NameUse> AttributeValue::Names() const {
  std::vector<Expression::NameUse> out;
  if (whole_) return whole_->Names();
  for (const Item& item : items_) {
    for (const Piece& p : item.pieces) {
      if (!p.expr) continue;
      for (auto& use : p.expr->Names()) out.push_back(std::move(use));
    }
  }
  return out;
}

Status AttributeValue::CheckReferences(const Scope& scope) const {
  if (whole_) return whole_->CheckReferences(scope);
  for (const Item& item : items_) {
    for (const Piece& p : item.pieces) {
      if (p.expr) RETURN_IF_ERROR(p.expr->CheckReferences(scope));
    }
  }
  return Status::Ok();
}

StatusOr<Value> AttributeValue::EvaluateItem(const Item& item, const Scope& scope) const {
  if (item.pieces.size() == 1 && item.pieces[0].expr) {
    return item.pieces[0].expr->Evaluate(scope);  // whole-value: type kept
  }
  if (item.pieces.size() == 1) {
    if (item.quoted) return Value::String(item.pieces[0].text);
    return TypeLiteral(item.pieces[0].text);
  }
  std::string out;
  for (const Piece& p : item.pieces) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    ASSIGN_OR_RETURN(Value v, p.expr->Evaluate(scope));
    if (v.is_deferred()) return Value::Deferred(raw_);
    out += v.ToText();
  }
  return Value::String(std::move(out));
}

StatusOr<Value> AttributeValue::Evaluate(const Scope& scope) const {
  if (whole_) return whole_->Evaluate(scope);
  if (items_.size() == 1) return EvaluateItem(items_[0], scope);
  Value::List list;
  for (const Item& item : items_) {
    ASSIGN_OR_RETURN(Value v, EvaluateItem(item, scope));
    if (v.is_deferred()) return Value::Deferred(raw_);
    if (v.is_undefined()) continue;  // `$A, $B` with B unset is {A}
    list.push_back(std::move(v));
  }
  return Value::MakeList(std::move(list));
}

}  // namespace imagesmith::cyclecloud
