// Small readers and writers for the JSON documents of pool, node, job and
// task records. Internal to src/batch/ and the batch providers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"
#include "meta/meta_store.h"

namespace imagesmith::batch {

// An empty resource record at `id`.
inline meta::Resource NewResource(ResourceId id) {
  return meta::Resource{std::move(id), "", Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
}

inline std::string JStr(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}
inline int64_t JInt(const Json& obj, std::string_view key, int64_t fallback = 0) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? v->AsInt64().value_or(fallback) : fallback;
}
inline bool JBool(const Json& obj, std::string_view key, bool fallback = false) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_bool() ? v->bool_value() : fallback;
}
// The member `key` of `obj`, made an empty object first when absent or not
// an object.
inline Json& JObj(Json& obj, std::string_view key) {
  Json* v = obj.Find(key);
  if (v == nullptr || !v->is_object()) return obj.Set(std::string(key), Json::MakeObject());
  return *v;
}
inline const Json& JGet(const Json& obj, std::string_view key) {
  static const Json kNull;
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? *v : kNull;
}
inline void JErase(Json& obj, std::string_view key) {
  if (!obj.is_object()) return;
  auto& items = obj.object_items();
  items.erase(
      std::remove_if(items.begin(), items.end(), [&](const JsonMember& m) { return m.key == key; }),
      items.end());
}

}  // namespace imagesmith::batch
