#include "cyclecloud/value.h"

#include <cmath>
#include <cstdio>

#include "base/strings.h"

namespace imagesmith::cyclecloud {

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.int_ = i;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.kind_ = Kind::kDouble;
  v.double_ = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}

Value Value::MakeList(List items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::move(items);
  return v;
}

Value Value::MakeRecord(Record fields) {
  Value v;
  v.kind_ = Kind::kRecord;
  v.record_ = std::move(fields);
  return v;
}

Value Value::Deferred(std::string text) {
  Value v;
  v.kind_ = Kind::kDeferred;
  v.string_ = std::move(text);
  return v;
}

const Value* Value::Field(std::string_view name) const {
  for (const auto& [key, value] : record_) {
    if (EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
      return false;
    case Kind::kBool:
      return bool_;
    case Kind::kInt:
      return int_ != 0;
    case Kind::kDouble:
      return double_ != 0;
    case Kind::kString:
      return !string_.empty();
    case Kind::kList:
      return !list_.empty();
    case Kind::kRecord:
    case Kind::kDeferred:
      return true;
  }
  return false;
}

namespace {
std::string FormatDouble(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.1f", d);
    return buf;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", d);
  return buf;
}
}  // namespace

std::string Value::ToText() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kBool:
      return bool_ ? "true" : "false";
    case Kind::kInt:
      return std::to_string(int_);
    case Kind::kDouble:
      return FormatDouble(double_);
    case Kind::kString:
      return string_;
    case Kind::kList: {
      std::vector<std::string> parts;
      for (const Value& item : list_) parts.push_back(item.ToText());
      return Join(parts, ", ");
    }
    case Kind::kRecord: {
      std::string out = "[";
      for (size_t i = 0; i < record_.size(); ++i) {
        if (i > 0) out += "; ";
        out += record_[i].first + "=" + record_[i].second.ToText();
      }
      return out + "]";
    }
    case Kind::kDeferred:
      return string_;
  }
  return "";
}

std::string_view Value::KindName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kBool:
      return "a boolean";
    case Kind::kInt:
      return "an integer";
    case Kind::kDouble:
      return "a double";
    case Kind::kString:
      return "a string";
    case Kind::kList:
      return "a list";
    case Kind::kRecord:
      return "a record";
    case Kind::kDeferred:
      return "a reference resolved when the cluster runs";
  }
  return "a value";
}

bool Value::Equals(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (kind_ == Kind::kInt && other.kind_ == Kind::kInt) return int_ == other.int_;
    return double_value() == other.double_value();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
      return true;
    case Kind::kBool:
      return bool_ == other.bool_;
    case Kind::kString:
    case Kind::kDeferred:
      return string_ == other.string_;
    case Kind::kList:
      if (list_.size() != other.list_.size()) return false;
      for (size_t i = 0; i < list_.size(); ++i) {
        if (!list_[i].Equals(other.list_[i])) return false;
      }
      return true;
    case Kind::kRecord:
      if (record_.size() != other.record_.size()) return false;
      for (size_t i = 0; i < record_.size(); ++i) {
        if (!EqualsIgnoreCase(record_[i].first, other.record_[i].first) ||
            !record_[i].second.Equals(other.record_[i].second)) {
          return false;
        }
      }
      return true;
    default:
      return false;
  }
}

Json Value::ToJson() const {
  switch (kind_) {
    case Kind::kUndefined:
      return Json::Null();
    case Kind::kBool:
      return Json::Bool(bool_);
    case Kind::kInt:
      return Json::Int(int_);
    case Kind::kDouble:
      if (!std::isfinite(double_)) return Json::Null();
      return Json::NumberText(FormatDouble(double_));
    case Kind::kString:
      return Json::String(string_);
    case Kind::kList: {
      Json out = Json::MakeArray();
      for (const Value& item : list_) out.Append(item.ToJson());
      return out;
    }
    case Kind::kRecord: {
      Json out = Json::MakeObject();
      for (const auto& [key, value] : record_) out.Set(key, value.ToJson());
      return out;
    }
    case Kind::kDeferred: {
      Json out = Json::MakeObject();
      out.Set("deferred", Json::String(string_));
      return out;
    }
  }
  return Json::Null();
}

Value Value::FromJson(const Json& json) {
  switch (json.kind()) {
    case Json::Kind::kNull:
      return Value();
    case Json::Kind::kBool:
      return Bool(json.bool_value());
    case Json::Kind::kNumber:
      if (auto i = json.AsInt64()) return Int(*i);
      return Double(json.AsDouble().value_or(0));
    case Json::Kind::kString:
      return String(json.string_value());
    case Json::Kind::kArray: {
      List items;
      for (const Json& item : json.array_items()) items.push_back(FromJson(item));
      return MakeList(std::move(items));
    }
    case Json::Kind::kObject: {
      Record fields;
      for (const JsonMember& m : json.object_items()) fields.emplace_back(m.key, FromJson(m.value));
      return MakeRecord(std::move(fields));
    }
  }
  return Value();
}

}  // namespace imagesmith::cyclecloud
