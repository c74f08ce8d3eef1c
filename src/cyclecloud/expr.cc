#include "cyclecloud/expr.h"

#include <cctype>
#include <cmath>
#include <functional>
#include <regex>

#include "base/strings.h"

namespace imagesmith::cyclecloud {

enum class NodeKind {
  kLiteral,
  kName,
  kMember,
  kIndex,
  kCall,
  kUnary,
  kBinary,
  kTernary,
  kList,
  kRecord
};

struct ExprNode {
  NodeKind kind = NodeKind::kLiteral;
  Location at;
  Value literal;     // kLiteral
  std::string name;  // kName, kMember (field), kCall (function), kUnary/kBinary (operator)
  std::vector<std::unique_ptr<ExprNode>> kids;
  std::vector<std::string> field_names;  // kRecord, one per kid
};

namespace {

enum class Tok { kEnd, kNumber, kString, kName, kDollar, kOp };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // the operator, name, string value or number text
  size_t offset = 0;
};

class Parser {
 public:
  Parser(std::string_view text, const Location& start) : text_(text), start_(start), loc_(start) {}

  StatusOr<std::unique_ptr<ExprNode>> ParseAll() {
    RETURN_IF_ERROR(Advance());
    ASSIGN_OR_RETURN(auto node, ParseExpr(0));
    if (tok_.kind != Tok::kEnd) {
      return ErrorAt(At(tok_.offset), "unexpected " + Describe(tok_) + " after the expression");
    }
    return node;
  }

 private:
  // Locations are asked for in increasing order almost always: continue
  // from the last one instead of rescanning (keeps long inputs linear).
  Location At(size_t offset) const {
    if (offset < loc_offset_) {
      loc_offset_ = 0;
      loc_ = start_;
    }
    for (; loc_offset_ < offset && loc_offset_ < text_.size(); ++loc_offset_) {
      if (text_[loc_offset_] == '\n') {
        ++loc_.line;
        loc_.column = 1;
      } else {
        ++loc_.column;
      }
    }
    return loc_;
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kString:
        return "string \"" + t.text + "\"";
      case Tok::kDollar:
        return "'$'";
      default:
        return "'" + t.text + "'";
    }
  }

  Status Advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    // Chains (a+b+c..., a.b.c...) build trees as deep as they are long;
    // bounding the tokens bounds every recursion over the tree. The real
    // templates' longest expression has under 60.
    if (++tokens_ > kMaxTokens) {
      return ErrorAt(At(pos_), "expression longer than " + std::to_string(kMaxTokens) + " tokens");
    }
    tok_ = Token{};
    tok_.offset = pos_;
    if (pos_ >= text_.size()) return Status::Ok();
    char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < text_.size() &&
         std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
      size_t b = pos_;
      while (pos_ < text_.size() &&
             (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
              text_[pos_] == 'e' || text_[pos_] == 'E')) {
        ++pos_;
      }
      tok_.kind = Tok::kNumber;
      tok_.text = std::string(text_.substr(b, pos_ - b));
      return Status::Ok();
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t b = pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
        ++pos_;
      }
      tok_.kind = Tok::kName;
      tok_.text = std::string(text_.substr(b, pos_ - b));
      return Status::Ok();
    }
    if (c == '"' || c == '\'') {
      char quote = c;
      size_t b = pos_++;
      std::string value;
      while (true) {
        if (pos_ >= text_.size()) return ErrorAt(At(b), "unterminated string");
        char d = text_[pos_++];
        if (d == quote) break;
        if (d == '\\' && pos_ < text_.size()) {
          char e = text_[pos_++];
          switch (e) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            default:
              value += e;
          }
          continue;
        }
        value += d;
      }
      tok_.kind = Tok::kString;
      tok_.text = std::move(value);
      return Status::Ok();
    }
    if (c == '$') {
      ++pos_;
      tok_.kind = Tok::kDollar;
      tok_.text = "$";
      return Status::Ok();
    }
    static const char* kOps[] = {"===", "!==", "=?=", "=!=", "==", "!=", "<=", ">=", "&&", "||",
                                 "<",   ">",   "!",   "+",   "-",  "*",  "/",  "%",  "?",  ":",
                                 "(",   ")",   "{",   "}",   "[",  "]",  ",",  ";",  ".",  "="};
    for (const char* op : kOps) {
      if (text_.substr(pos_).starts_with(op)) {
        tok_.kind = Tok::kOp;
        tok_.text = op;
        pos_ += std::string_view(op).size();
        return Status::Ok();
      }
    }
    return ErrorAt(At(pos_), std::string("unexpected character '") + c + "' in expression");
  }

  bool IsOp(std::string_view op) const { return tok_.kind == Tok::kOp && tok_.text == op; }
  bool IsWord(std::string_view w) const {
    return tok_.kind == Tok::kName && EqualsIgnoreCase(tok_.text, w);
  }

  Status Expect(std::string_view op) {
    if (!IsOp(op)) {
      return ErrorAt(At(tok_.offset),
                     "expected '" + std::string(op) + "', found " + Describe(tok_));
    }
    return Advance();
  }

  std::unique_ptr<ExprNode> Make(NodeKind kind, size_t offset) {
    auto n = std::make_unique<ExprNode>();
    n->kind = kind;
    n->at = At(offset);
    return n;
  }

  // Binary operator levels: 0 or, 1 and, 2 compare, 3 sum, 4 product.
  StatusOr<std::unique_ptr<ExprNode>> ParseExpr(int depth) {
    if (++nesting_ > 200) return ErrorAt(At(tok_.offset), "expression nested too deeply");
    ASSIGN_OR_RETURN(auto cond, ParseBinary(0));
    if (IsOp("?")) {
      auto n = Make(NodeKind::kTernary, tok_.offset);
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(auto a, ParseExpr(depth + 1));
      RETURN_IF_ERROR(Expect(":"));
      ASSIGN_OR_RETURN(auto b, ParseExpr(depth + 1));
      n->kids.push_back(std::move(cond));
      n->kids.push_back(std::move(a));
      n->kids.push_back(std::move(b));
      --nesting_;
      return n;
    }
    --nesting_;
    return cond;
  }

  std::optional<std::string> BinaryOp(int level) const {
    auto any = [&](std::initializer_list<const char*> ops) -> std::optional<std::string> {
      for (const char* op : ops) {
        if (IsOp(op)) return std::string(op);
      }
      return std::nullopt;
    };
    switch (level) {
      case 0:
        return any({"||"});
      case 1:
        return any({"&&"});
      case 2:
        if (IsWord("is")) return std::string("is");
        if (IsWord("isnt")) return std::string("isnt");
        if (IsWord("in")) return std::string("in");
        return any({"===", "!==", "=?=", "=!=", "==", "!=", "<=", ">=", "<", ">"});
      case 3:
        return any({"+", "-"});
      case 4:
        return any({"*", "/", "%"});
    }
    return std::nullopt;
  }

  StatusOr<std::unique_ptr<ExprNode>> ParseBinary(int level) {
    if (level > 4) return ParseUnary();
    ASSIGN_OR_RETURN(auto left, ParseBinary(level + 1));
    while (auto op = BinaryOp(level)) {
      auto n = Make(NodeKind::kBinary, tok_.offset);
      n->name = *op;
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(auto right, ParseBinary(level + 1));
      n->kids.push_back(std::move(left));
      n->kids.push_back(std::move(right));
      left = std::move(n);
      if (level == 2) break;  // comparisons do not chain
    }
    return left;
  }

  StatusOr<std::unique_ptr<ExprNode>> ParseUnary() {
    if (IsOp("!") || IsOp("-")) {
      if (++nesting_ > 200) return ErrorAt(At(tok_.offset), "expression nested too deeply");
      auto n = Make(NodeKind::kUnary, tok_.offset);
      n->name = tok_.text;
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(auto operand, ParseUnary());
      n->kids.push_back(std::move(operand));
      --nesting_;
      return n;
    }
    return ParsePostfix();
  }

  StatusOr<std::unique_ptr<ExprNode>> ParsePostfix() {
    ASSIGN_OR_RETURN(auto node, ParsePrimary());
    while (true) {
      if (IsOp(".")) {
        auto n = Make(NodeKind::kMember, tok_.offset);
        RETURN_IF_ERROR(Advance());
        if (tok_.kind != Tok::kName) {
          return ErrorAt(At(tok_.offset), "expected a name after '.', found " + Describe(tok_));
        }
        n->name = tok_.text;
        RETURN_IF_ERROR(Advance());
        n->kids.push_back(std::move(node));
        node = std::move(n);
      } else if (IsOp("[")) {
        auto n = Make(NodeKind::kIndex, tok_.offset);
        RETURN_IF_ERROR(Advance());
        ASSIGN_OR_RETURN(auto index, ParseExpr(0));
        RETURN_IF_ERROR(Expect("]"));
        n->kids.push_back(std::move(node));
        n->kids.push_back(std::move(index));
        node = std::move(n);
      } else if (IsOp("(") && node->kind == NodeKind::kName) {
        node->kind = NodeKind::kCall;
        RETURN_IF_ERROR(Advance());
        if (!IsOp(")")) {
          while (true) {
            ASSIGN_OR_RETURN(auto arg, ParseExpr(0));
            node->kids.push_back(std::move(arg));
            if (IsOp(",")) {
              RETURN_IF_ERROR(Advance());
              continue;
            }
            break;
          }
        }
        RETURN_IF_ERROR(Expect(")"));
      } else {
        return node;
      }
    }
  }

  StatusOr<std::unique_ptr<ExprNode>> ParsePrimary() {
    size_t offset = tok_.offset;
    switch (tok_.kind) {
      case Tok::kEnd:
        return ErrorAt(At(offset), "expected a value, found end of expression");
      case Tok::kNumber: {
        auto n = Make(NodeKind::kLiteral, offset);
        const std::string& t = tok_.text;
        if (t.find_first_of(".eE") == std::string::npos) {
          errno = 0;
          char* end = nullptr;
          long long v = std::strtoll(t.c_str(), &end, 10);
          if (errno != 0 || *end != '\0') return ErrorAt(At(offset), "bad number " + t);
          n->literal = Value::Int(v);
        } else {
          char* end = nullptr;
          double d = std::strtod(t.c_str(), &end);
          if (*end != '\0') return ErrorAt(At(offset), "bad number " + t);
          n->literal = Value::Double(d);
        }
        RETURN_IF_ERROR(Advance());
        return n;
      }
      case Tok::kString: {
        auto n = Make(NodeKind::kLiteral, offset);
        n->literal = Value::String(tok_.text);
        RETURN_IF_ERROR(Advance());
        return n;
      }
      case Tok::kDollar: {
        RETURN_IF_ERROR(Advance());
        if (tok_.kind != Tok::kName) {
          return ErrorAt(At(tok_.offset), "expected a parameter name after '$'");
        }
        auto n = Make(NodeKind::kName, offset);
        n->name = tok_.text;
        RETURN_IF_ERROR(Advance());
        return n;
      }
      case Tok::kName: {
        auto n = Make(NodeKind::kLiteral, offset);
        if (IsWord("true") || IsWord("false")) {
          n->literal = Value::Bool(IsWord("true"));
        } else if (IsWord("undefined") || IsWord("null")) {
          n->literal = Value::Undefined();
        } else {
          n->kind = NodeKind::kName;
          n->name = tok_.text;
        }
        RETURN_IF_ERROR(Advance());
        return n;
      }
      case Tok::kOp:
        break;
    }
    if (IsOp("(")) {
      RETURN_IF_ERROR(Advance());
      ASSIGN_OR_RETURN(auto inner, ParseExpr(0));
      RETURN_IF_ERROR(Expect(")"));
      return inner;
    }
    if (IsOp("{")) {
      auto n = Make(NodeKind::kList, offset);
      RETURN_IF_ERROR(Advance());
      while (!IsOp("}")) {
        ASSIGN_OR_RETURN(auto item, ParseExpr(0));
        n->kids.push_back(std::move(item));
        if (IsOp(",")) {
          RETURN_IF_ERROR(Advance());
          continue;
        }
        if (!IsOp("}")) {
          return ErrorAt(At(tok_.offset), "expected ',' or '}' in list, found " + Describe(tok_));
        }
      }
      RETURN_IF_ERROR(Advance());
      return n;
    }
    if (IsOp("[")) {
      auto n = Make(NodeKind::kRecord, offset);
      RETURN_IF_ERROR(Advance());
      while (!IsOp("]")) {
        if (tok_.kind != Tok::kName) {
          return ErrorAt(At(tok_.offset),
                         "expected a field name in record, found " + Describe(tok_));
        }
        n->field_names.push_back(tok_.text);
        RETURN_IF_ERROR(Advance());
        RETURN_IF_ERROR(Expect("="));
        ASSIGN_OR_RETURN(auto value, ParseExpr(0));
        n->kids.push_back(std::move(value));
        if (IsOp(";")) {
          RETURN_IF_ERROR(Advance());
          continue;
        }
        if (!IsOp("]")) {
          return ErrorAt(At(tok_.offset), "expected ';' or ']' in record, found " + Describe(tok_));
        }
      }
      RETURN_IF_ERROR(Advance());
      return n;
    }
    return ErrorAt(At(offset), "expected a value, found " + Describe(tok_));
  }

  std::string_view text_;
  Location start_;
  size_t pos_ = 0;
  Token tok_;
  int nesting_ = 0;
  static constexpr int kMaxTokens = 2000;
  int tokens_ = 0;
  mutable size_t loc_offset_ = 0;
  mutable Location loc_;
};

// ---- evaluation ----------------------------------------------------------------

Status KindError(const ExprNode& n, const std::string& what, const Value& got) {
  return ErrorAt(n.at, what + ", got " + std::string(got.KindName()) +
                           (got.is_undefined() ? "" : " " + QuoteForMessage(got.ToText())));
}

bool LooseEquals(const Value& a, const Value& b) {
  if (a.kind() == Value::Kind::kString && b.kind() == Value::Kind::kString) {
    return EqualsIgnoreCase(a.string_value(), b.string_value());
  }
  return a.Equals(b);
}

class Evaluator {
 public:
  explicit Evaluator(const Scope& scope) : scope_(scope) {}

  StatusOr<Value> Eval(const ExprNode& n) {
    switch (n.kind) {
      case NodeKind::kLiteral:
        return n.literal;
      case NodeKind::kName: {
        StatusOr<Value> v = scope_.Lookup(n.name);
        if (!v.ok()) {
          if (v.status().code() == StatusCode::kNotFound) {
            return ErrorAt(n.at, "unknown parameter " + n.name);
          }
          return v.status();
        }
        return *v;
      }
      case NodeKind::kMember: {
        ASSIGN_OR_RETURN(Value base, Eval(*n.kids[0]));
        if (base.is_deferred() || base.is_undefined()) return base;
        if (base.kind() != Value::Kind::kRecord) {
          return KindError(n, "'." + n.name + "' needs a record", base);
        }
        const Value* f = base.Field(n.name);
        return f ? *f : Value::Undefined();
      }
      case NodeKind::kIndex: {
        ASSIGN_OR_RETURN(Value base, Eval(*n.kids[0]));
        ASSIGN_OR_RETURN(Value index, Eval(*n.kids[1]));
        if (base.is_deferred() || index.is_deferred()) return Value::Deferred("");
        if (base.is_undefined()) return base;
        if (base.kind() == Value::Kind::kList && index.kind() == Value::Kind::kInt) {
          int64_t i = index.int_value();
          if (i < 0 || i >= static_cast<int64_t>(base.list_items().size())) return Value();
          return base.list_items()[static_cast<size_t>(i)];
        }
        if (base.kind() == Value::Kind::kRecord && index.kind() == Value::Kind::kString) {
          const Value* f = base.Field(index.string_value());
          return f ? *f : Value::Undefined();
        }
        return KindError(n, "[] needs a list and an integer or a record and a string", base);
      }
      case NodeKind::kList: {
        Value::List items;
        for (const auto& kid : n.kids) {
          ASSIGN_OR_RETURN(Value v, Eval(*kid));
          if (v.is_deferred()) return v;
          items.push_back(std::move(v));
        }
        return Value::MakeList(std::move(items));
      }
      case NodeKind::kRecord: {
        Value::Record fields;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          ASSIGN_OR_RETURN(Value v, Eval(*n.kids[i]));
          if (v.is_deferred()) return v;
          fields.emplace_back(n.field_names[i], std::move(v));
        }
        return Value::MakeRecord(std::move(fields));
      }
      case NodeKind::kTernary: {
        ASSIGN_OR_RETURN(Value c, Eval(*n.kids[0]));
        if (c.is_deferred()) return c;
        return Eval(*n.kids[c.Truthy() ? 1 : 2]);
      }
      case NodeKind::kUnary: {
        ASSIGN_OR_RETURN(Value v, Eval(*n.kids[0]));
        if (v.is_deferred()) return v;
        if (n.name == "!") return Value::Bool(!v.Truthy());
        if (v.kind() == Value::Kind::kInt) return Value::Int(-v.int_value());
        if (v.kind() == Value::Kind::kDouble) return Value::Double(-v.double_value());
        if (v.is_undefined()) return v;
        return KindError(n, "'-' needs a number", v);
      }
      case NodeKind::kBinary:
        return EvalBinary(n);
      case NodeKind::kCall:
        return EvalCall(n);
    }
    return InternalError("unknown expression node");
  }

 private:
  StatusOr<Value> EvalBinary(const ExprNode& n) {
    const std::string& op = n.name;
    if (op == "&&" || op == "||") {
      ASSIGN_OR_RETURN(Value a, Eval(*n.kids[0]));
      if (a.is_deferred()) return a;
      if (op == "&&" && !a.Truthy()) return Value::Bool(false);
      if (op == "||" && a.Truthy()) return Value::Bool(true);
      ASSIGN_OR_RETURN(Value b, Eval(*n.kids[1]));
      if (b.is_deferred()) return b;
      return Value::Bool(b.Truthy());
    }
    ASSIGN_OR_RETURN(Value a, Eval(*n.kids[0]));
    ASSIGN_OR_RETURN(Value b, Eval(*n.kids[1]));
    if (a.is_deferred()) return a;
    if (b.is_deferred()) return b;
    if (op == "==") return Value::Bool(LooseEquals(a, b));
    if (op == "!=") return Value::Bool(!LooseEquals(a, b));
    if (op == "===" || op == "is" || op == "=?=") return Value::Bool(a.Equals(b));
    if (op == "!==" || op == "isnt" || op == "=!=") return Value::Bool(!a.Equals(b));
    if (op == "in") {
      if (b.is_undefined()) return Value::Bool(false);
      if (b.kind() != Value::Kind::kList) return KindError(n, "'in' needs a list on its right", b);
      for (const Value& item : b.list_items()) {
        if (LooseEquals(a, item)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      if (a.is_undefined() || b.is_undefined()) return Value::Bool(false);
      int cmp;
      if (a.is_number() && b.is_number()) {
        double x = a.double_value(), y = b.double_value();
        cmp = x < y ? -1 : (x > y ? 1 : 0);
      } else if (a.kind() == Value::Kind::kString && b.kind() == Value::Kind::kString) {
        cmp = a.string_value().compare(b.string_value());
      } else {
        return KindError(n, "'" + op + "' needs two numbers or two strings", a.is_number() ? b : a);
      }
      if (op == "<") return Value::Bool(cmp < 0);
      if (op == "<=") return Value::Bool(cmp <= 0);
      if (op == ">") return Value::Bool(cmp > 0);
      return Value::Bool(cmp >= 0);
    }
    // Arithmetic.
    if (op == "+" && (a.kind() == Value::Kind::kString || b.kind() == Value::Kind::kString)) {
      return Value::String(a.ToText() + b.ToText());
    }
    if (a.is_undefined() || b.is_undefined()) return Value::Undefined();
    if (!a.is_number()) return KindError(n, "'" + op + "' needs numbers", a);
    if (!b.is_number()) return KindError(n, "'" + op + "' needs numbers", b);
    if (a.kind() == Value::Kind::kInt && b.kind() == Value::Kind::kInt) {
      int64_t x = a.int_value(), y = b.int_value();
      if (op == "+") return Value::Int(x + y);
      if (op == "-") return Value::Int(x - y);
      if (op == "*") return Value::Int(x * y);
      if (y == 0) return ErrorAt(n.at, "division by zero");
      if (op == "/") return Value::Int(x / y);
      return Value::Int(x % y);
    }
    double x = a.double_value(), y = b.double_value();
    if (op == "+") return Value::Double(x + y);
    if (op == "-") return Value::Double(x - y);
    if (op == "*") return Value::Double(x * y);
    if (y == 0) return ErrorAt(n.at, "division by zero");
    if (op == "/") return Value::Double(x / y);
    return Value::Double(std::fmod(x, y));
  }

  Status Arity(const ExprNode& n, size_t min, size_t max) {
    size_t got = n.kids.size();
    if (got >= min && got <= max) return Status::Ok();
    std::string want =
        min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
    return ErrorAt(n.at, n.name + "() takes " + want + " argument" + (max == 1 ? "" : "s") +
                             ", got " + std::to_string(got));
  }

  StatusOr<std::string> StringArg(const ExprNode& n, const Value& v, int index) {
    if (v.kind() == Value::Kind::kString) return v.string_value();
    return KindError(n, n.name + "() argument " + std::to_string(index) + " must be a string", v);
  }

  StatusOr<Value> EvalCall(const ExprNode& n) {
    std::string fn = AsciiToLower(n.name);
    // Lazy ones first: only the chosen branch is evaluated.
    if (fn == "ifthenelse") {
      RETURN_IF_ERROR(Arity(n, 3, 3));
      ASSIGN_OR_RETURN(Value c, Eval(*n.kids[0]));
      if (c.is_deferred()) return c;
      return Eval(*n.kids[c.Truthy() ? 1 : 2]);
    }
    if (fn == "ifundefined") {
      RETURN_IF_ERROR(Arity(n, 2, 2));
      ASSIGN_OR_RETURN(Value a, Eval(*n.kids[0]));
      if (!a.is_undefined()) return a;
      return Eval(*n.kids[1]);
    }
    std::vector<Value> args;
    for (const auto& kid : n.kids) {
      ASSIGN_OR_RETURN(Value v, Eval(*kid));
      if (v.is_deferred()) return v;
      args.push_back(std::move(v));
    }
    if (fn == "strjoin") {
      if (args.empty()) return Arity(n, 1, 1000);
      ASSIGN_OR_RETURN(std::string sep, StringArg(n, args[0], 1));
      std::vector<std::string> parts;
      for (size_t i = 1; i < args.size(); ++i) {
        if (args[i].kind() == Value::Kind::kList) {
          for (const Value& item : args[i].list_items()) {
            if (!item.is_undefined()) parts.push_back(item.ToText());
          }
        } else if (!args[i].is_undefined()) {
          parts.push_back(args[i].ToText());
        }
      }
      return Value::String(Join(parts, sep));
    }
    if (fn == "strcat") {
      std::string out;
      for (const Value& v : args) out += v.ToText();
      return Value::String(std::move(out));
    }
    if (fn == "size") {
      RETURN_IF_ERROR(Arity(n, 1, 1));
      const Value& v = args[0];
      if (v.is_undefined()) return Value::Int(0);
      if (v.kind() == Value::Kind::kString)
        return Value::Int(static_cast<int64_t>(v.string_value().size()));
      if (v.kind() == Value::Kind::kList)
        return Value::Int(static_cast<int64_t>(v.list_items().size()));
      if (v.kind() == Value::Kind::kRecord) {
        return Value::Int(static_cast<int64_t>(v.record_fields().size()));
      }
      return KindError(n, "size() needs a string, a list or a record", v);
    }
    if (fn == "trim" || fn == "tolower" || fn == "toupper") {
      RETURN_IF_ERROR(Arity(n, 1, 1));
      if (args[0].is_undefined()) return args[0];
      ASSIGN_OR_RETURN(std::string s, StringArg(n, args[0], 1));
      if (fn == "trim") return Value::String(std::string(TrimWhitespace(s)));
      if (fn == "tolower") return Value::String(AsciiToLower(s));
      for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return Value::String(std::move(s));
    }
    if (fn == "substr") {
      RETURN_IF_ERROR(Arity(n, 2, 3));
      if (args[0].is_undefined()) return args[0];
      ASSIGN_OR_RETURN(std::string s, StringArg(n, args[0], 1));
      if (args[1].kind() != Value::Kind::kInt)
        return KindError(n, "substr() offset must be an integer", args[1]);
      int64_t size = static_cast<int64_t>(s.size());
      int64_t start = args[1].int_value();
      if (start < 0) start = std::max<int64_t>(0, size + start);
      if (start > size) start = size;
      int64_t len = size - start;
      if (args.size() == 3) {
        if (args[2].kind() != Value::Kind::kInt) {
          return KindError(n, "substr() length must be an integer", args[2]);
        }
        len = args[2].int_value();
        if (len < 0) len = std::max<int64_t>(0, size - start + len);
        len = std::min(len, size - start);
      }
      return Value::String(s.substr(static_cast<size_t>(start), static_cast<size_t>(len)));
    }
    if (fn == "regexp" || fn == "regexps") {
      // regexp(PATTERN, TEXT): does TEXT contain a match; regexps(PATTERN,
      // TEXT, REPLACEMENT): TEXT with every match replaced.
      RETURN_IF_ERROR(Arity(n, fn == "regexp" ? 2 : 3, fn == "regexp" ? 2 : 3));
      ASSIGN_OR_RETURN(std::string pattern, StringArg(n, args[0], 1));
      if (args[1].is_undefined()) return fn == "regexp" ? Value::Bool(false) : args[1];
      ASSIGN_OR_RETURN(std::string text, StringArg(n, args[1], 2));
      std::regex re;
      try {
        re = std::regex(pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return ErrorAt(n.kids[0]->at,
                       "bad regular expression " + QuoteForMessage(pattern) + ": " + e.what());
      }
      if (fn == "regexp") return Value::Bool(std::regex_search(text, re));
      ASSIGN_OR_RETURN(std::string repl, StringArg(n, args[2], 3));
      return Value::String(std::regex_replace(text, re, repl));
    }
    if (fn == "startswith" || fn == "endswith") {
      // startswith(PREFIX, TEXT), as the real templates call it.
      RETURN_IF_ERROR(Arity(n, 2, 2));
      if (args[1].is_undefined()) return Value::Bool(false);
      ASSIGN_OR_RETURN(std::string affix, StringArg(n, args[0], 1));
      ASSIGN_OR_RETURN(std::string text, StringArg(n, args[1], 2));
      return Value::Bool(fn == "startswith" ? StartsWith(text, affix) : EndsWith(text, affix));
    }
    if (fn == "ceil" || fn == "floor" || fn == "round") {
      RETURN_IF_ERROR(Arity(n, 1, 1));
      if (args[0].kind() == Value::Kind::kInt) return args[0];
      if (!args[0].is_number()) return KindError(n, fn + "() needs a number", args[0]);
      double d = args[0].double_value();
      double r = fn == "ceil" ? std::ceil(d) : (fn == "floor" ? std::floor(d) : std::round(d));
      return Value::Int(static_cast<int64_t>(r));
    }
    if (fn == "min" || fn == "max") {
      if (args.empty()) return Arity(n, 1, 1000);
      Value best;
      for (const Value& v : args) {
        if (v.is_undefined()) continue;
        if (!v.is_number()) return KindError(n, fn + "() needs numbers", v);
        if (best.is_undefined() || (fn == "min" ? v.double_value() < best.double_value()
                                                : v.double_value() > best.double_value())) {
          best = v;
        }
      }
      return best;
    }
    return ErrorAt(
        n.at, "unknown function " + n.name + "()" + [&] {
          std::string near = ClosestMatch(fn, FunctionNames());
          return near.empty() ? std::string() : "; did you mean " + near + "()?";
        }());
  }

  const Scope& scope_;
};

void CollectNames(const ExprNode& n, std::vector<Expression::NameUse>& out) {
  if (n.kind == NodeKind::kName) out.push_back({n.name, n.at});
  for (const auto& kid : n.kids) CollectNames(*kid, out);
}

}  // namespace

const std::vector<std::string>& FunctionNames() {
  static const std::vector<std::string> names = {
      "ifthenelse", "ifundefined", "strjoin", "strcat", "size",    "trim",
      "tolower",    "toupper",     "substr",  "regexp", "regexps", "startswith",
      "endswith",   "ceil",        "floor",   "round",  "min",     "max"};
  return names;
}

StatusOr<Expression> Expression::Parse(std::string_view text, const Location& start) {
  Parser parser(text, start);
  ASSIGN_OR_RETURN(auto root, parser.ParseAll());
  Expression e;
  e.root_ = std::move(root);
  e.text_ = std::string(text);
  return e;
}

Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

std::vector<Expression::NameUse> Expression::Names() const {
  std::vector<NameUse> out;
  if (root_) CollectNames(*root_, out);
  return out;
}

Status Expression::CheckReferences(const Scope& scope) const {
  for (const NameUse& use : Names()) {
    StatusOr<Value> v = scope.Lookup(use.name);
    if (!v.ok() && v.status().code() == StatusCode::kNotFound) {
      return ErrorAt(use.at, "unknown parameter " + use.name);
    }
  }
  return Status::Ok();
}

StatusOr<Value> Expression::Evaluate(const Scope& scope) const {
  Evaluator evaluator(scope);
  ASSIGN_OR_RETURN(Value v, evaluator.Eval(*root_));
  if (v.is_deferred()) return Value::Deferred("${" + text_ + "}");
  return v;
}

}  // namespace imagesmith::cyclecloud
