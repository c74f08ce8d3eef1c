#include "json_mutator.h"

#include <random>
#include <utility>

#include "base/json.h"

namespace imagesmith::fuzz {
namespace {

void Collect(Json& v, std::vector<Json*>& out) {
  out.push_back(&v);
  if (v.is_array()) {
    for (Json& item : v.array_items()) Collect(item, out);
  } else if (v.is_object()) {
    for (JsonMember& m : v.object_items()) Collect(m.value, out);
  }
}

// A value of a kind different from `old`, built from the pieces given.
Json OtherKind(const Json& old, std::mt19937& rng, const std::vector<std::string>& odd_strings) {
  auto pick_string = [&]() {
    if (odd_strings.empty()) return std::string("x");
    return odd_strings[rng() % odd_strings.size()];
  };
  static const char* const kNumbers[] = {"0",     "-1", "1",   "4294967296",
                                         "1e400", "-0", "0.5", "99999999999999999999999"};
  for (int attempt = 0; attempt < 8; ++attempt) {
    Json v;
    switch (rng() % 9) {
      case 0:
        v = Json::Null();
        break;
      case 1:
        v = Json::Bool(rng() % 2 == 0);
        break;
      case 2:
        v = Json::NumberText(kNumbers[rng() % (sizeof kNumbers / sizeof kNumbers[0])]);
        break;
      case 3:
        v = Json::String(pick_string());
        break;
      case 4:
        // The old value as a string: "eastus" where ["eastus"] was.
        if (old.is_array() && !old.array_items().empty()) {
          v = old.array_items()[0];
        } else {
          v = Json::String(old.is_string() ? old.string_value() : pick_string());
        }
        break;
      case 5:
        v = Json::MakeArray();
        v.Append(old);  // ["x"] where "x" was
        break;
      case 6:
        v = Json::MakeArray();
        break;
      case 7:
        v = Json::MakeObject();
        break;
      default:
        v = Json::MakeObject();
        v.Set("type", Json::String(pick_string()));
        break;
    }
    if (v.kind() != old.kind() || (v.is_array() && old.is_array())) return v;
  }
  return Json::Null();
}

}  // namespace

std::string MutateJsonStructure(const std::string& input, uint32_t seed,
                                const std::vector<std::string>& known_names,
                                const std::vector<std::string>& odd_strings) {
  auto doc = ParseJson(input);
  if (!doc.ok()) return "";
  Json root = std::move(*doc);
  std::vector<Json*> nodes;
  Collect(root, nodes);
  std::mt19937 rng(seed);
  Json& target = *nodes[rng() % nodes.size()];
  switch (rng() % 6) {
    case 0:
    case 1:
    case 2:
      // Change the type of a value (most often: this is what finds bugs).
      target = OtherKind(target, rng, odd_strings);
      break;
    case 3:
      // Add a known property with a value of any kind.
      if (target.is_object() && !known_names.empty()) {
        target.object_items().push_back(
            JsonMember{known_names[rng() % known_names.size()],
                       {},
                       OtherKind(Json::MakeObject(), rng, odd_strings)});
      } else {
        target = OtherKind(target, rng, odd_strings);
      }
      break;
    case 4:
      // Duplicate an element or a member (lists and repeated keys).
      if (target.is_array() && !target.array_items().empty()) {
        Json copy = target.array_items()[rng() % target.array_items().size()];
        target.Append(std::move(copy));
      } else if (target.is_object() && !target.object_items().empty()) {
        JsonMember copy = target.object_items()[rng() % target.object_items().size()];
        target.object_items().push_back(std::move(copy));
      } else {
        target = OtherKind(target, rng, odd_strings);
      }
      break;
    default:
      // Re-case or drop a key (names ignore case; required ones go missing).
      if (target.is_object() && !target.object_items().empty()) {
        auto& items = target.object_items();
        size_t i = rng() % items.size();
        if (rng() % 2 == 0) {
          for (char& c : items[i].key) {
            if (rng() % 2 == 0)
              c = static_cast<char>(c ^ 0x20 * ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
          }
        } else {
          items.erase(items.begin() + static_cast<std::ptrdiff_t>(i));
        }
      } else {
        target = OtherKind(target, rng, odd_strings);
      }
      break;
  }
  return root.Dump(rng() % 2 == 0 ? 2 : -1);
}

}  // namespace imagesmith::fuzz
