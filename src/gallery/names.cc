#include "gallery/names.h"

#include <ctime>
#include <vector>

#include "base/strings.h"

namespace imagesmith::gallery {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

StatusOr<std::string> ParseChoice(std::string_view field, std::string_view text,
                                  const std::vector<std::string>& choices) {
  for (const std::string& c : choices) {
    if (EqualsIgnoreCase(c, text)) return c;
  }
  std::string msg = std::string(field) + ": " + QuoteForMessage(text) + " is not allowed; use " +
                    Join(choices, ", ");
  std::string near = ClosestMatch(text, choices);
  if (!near.empty()) msg += " (did you mean " + near + "?)";
  return InvalidArgumentError(msg);
}

}  // namespace

Status ValidateGalleryName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 80 && name.front() != '_' && name.front() != '.' &&
            name.back() != '_' && name.back() != '.';
  for (char c : name) ok = ok && (IsAlnum(c) || c == '_' || c == '.');
  if (ok) return Status::Ok();
  return InvalidArgumentError(
      "gallery name " + QuoteForMessage(name) +
      " is invalid: a gallery name is 1-80 letters, digits, underscores "
      "and periods, and cannot begin or end with an underscore or a period");
}

Status ValidateImageDefinitionName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 80 && IsAlnum(name.front()) && IsAlnum(name.back());
  for (char c : name) ok = ok && (IsAlnum(c) || c == '-' || c == '_' || c == '.');
  if (ok) return Status::Ok();
  return InvalidArgumentError("image definition name " + QuoteForMessage(name) +
                              " is invalid: a definition name is 1-80 letters, digits, hyphens, "
                              "underscores and periods, and must begin and end with a letter or "
                              "digit");
}

Status ValidateManagedImageName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 80 && IsAlnum(name.front()) &&
            (IsAlnum(name.back()) || name.back() == '_');
  for (char c : name) ok = ok && (IsAlnum(c) || c == '-' || c == '_' || c == '.');
  if (ok) return Status::Ok();
  return InvalidArgumentError("image name " + QuoteForMessage(name) +
                              " is invalid: a managed image name is 1-80 letters, digits, "
                              "underscores, hyphens and periods, begins with a letter or digit "
                              "and ends with a letter, digit or underscore");
}

Status ValidateIdentifierPart(std::string_view field, std::string_view value) {
  size_t max = field == "publisher" ? 128 : 64;
  bool ok = !value.empty() && value.size() <= max;
  for (char c : value) ok = ok && (IsAlnum(c) || c == '-' || c == '_' || c == '.');
  if (ok) return Status::Ok();
  return InvalidArgumentError(std::string(field) + " " + QuoteForMessage(value) +
                              " is invalid: it must be 1-" + std::to_string(max) +
                              " letters, digits, hyphens, underscores and periods");
}

ResourceId GalleryId(const ResourceId& group, const std::string& gallery) {
  return ResourceId::ForResource(group.subscription(), group.resource_group(), kComputeNamespace,
                                 "galleries", gallery);
}

ResourceId DefinitionId(const ResourceId& group, const std::string& gallery,
                        const std::string& definition) {
  return GalleryId(group, gallery).Child("images", definition);
}

ResourceId ManagedImageId(const ResourceId& group, const std::string& name) {
  return ResourceId::ForResource(group.subscription(), group.resource_group(), kComputeNamespace,
                                 "images", name);
}

Status CheckIdType(const ResourceId& id, std::string_view full_type, std::string_view field) {
  if (id.IsType(full_type)) return Status::Ok();
  std::string shape;
  if (full_type == kManagedImageType) {
    shape = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/images/{name}";
  } else if (full_type == kImageDefinitionType) {
    shape =
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/"
        "{gallery}/images/{definition}";
  } else if (full_type == kImageVersionType) {
    shape =
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/"
        "{gallery}/images/{definition}/versions/{version}";
  } else {
    shape = "a resource of type " + std::string(full_type);
  }
  return InvalidArgumentError(std::string(field) + ": " + QuoteForMessage(id.ToString()) +
                              " is a " + id.FullType() + " ID; expected " + shape);
}

StatusOr<std::string> ParseOsType(std::string_view field, std::string_view text) {
  return ParseChoice(field, text, {"Linux", "Windows"});
}
StatusOr<std::string> ParseOsState(std::string_view field, std::string_view text) {
  return ParseChoice(field, text, {"Generalized", "Specialized"});
}
StatusOr<std::string> ParseHyperVGeneration(std::string_view field, std::string_view text) {
  return ParseChoice(field, text, {"V1", "V2"});
}
StatusOr<std::string> ParseStorageAccountType(std::string_view field, std::string_view text) {
  return ParseChoice(field, text, {"Standard_LRS", "Standard_ZRS", "Premium_LRS"});
}

StatusOr<int64_t> ParseDateTime(std::string_view field, std::string_view text) {
  auto fail = [&] {
    return InvalidArgumentError(std::string(field) + ": " + QuoteForMessage(text) +
                                " is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS with an "
                                "optional Z or +HH:MM offset, e.g. 2027-01-31 or "
                                "2027-01-31T12:00:00Z");
  };
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > text.size()) return false;
    std::string_view d = text.substr(pos, n);
    if (!IsAsciiDigits(d)) return false;
    out = std::stoi(std::string(d));
    return true;
  };
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!digits(0, 4, year) || text.size() < 10 || text[4] != '-' || !digits(5, 2, month) ||
      text[7] != '-' || !digits(8, 2, day)) {
    return fail();
  }
  size_t pos = 10;
  int64_t offset_s = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return fail();
    if (!digits(pos + 1, 2, hour) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(pos + 4, 2, minute)) {
      return fail();
    }
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      if (!digits(pos + 1, 2, second)) return fail();
      pos += 3;
      if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        if (pos == start) return fail();
      }
    }
    if (pos < text.size()) {
      if ((text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
        pos = text.size();
      } else if (text[pos] == '+' || text[pos] == '-') {
        int oh, om;
        if (!digits(pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
            !digits(pos + 4, 2, om) || pos + 6 != text.size() || oh > 23 || om > 59) {
          return fail();
        }
        offset_s = (text[pos] == '+' ? 1 : -1) * (int64_t{oh} * 3600 + int64_t{om} * 60);
        pos = text.size();
      } else {
        return fail();
      }
    }
  }
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 ||
      second > 59) {
    return fail();
  }
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return fail();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  int64_t seconds = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return seconds * 1000000;
}

std::string FormatDateTime(int64_t micros) {
  time_t seconds = static_cast<time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  return buf;
}

}  // namespace imagesmith::gallery
