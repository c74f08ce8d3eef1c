// Result printing: JSON for scripts (the default, like az), tables for people.
#include <algorithm>
#include <cctype>
#include <iostream>

#include "cli/command.h"

namespace imagesmith::cli {
namespace {

std::string Scalar(const Json& v) {
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
      return "";
  }
}

bool IsScalar(const Json& v) { return !v.is_array() && !v.is_object(); }

// "provisioningState" -> "ProvisioningState", as az's table output heads columns.
std::string Header(const std::string& key) {
  std::string h = key;
  if (!h.empty()) h[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(h[0])));
  return h;
}

// Display width in code points; enough for aligning our mostly-ASCII output.
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void PrintTable(const Json& result, std::ostream& os, bool tsv) {
  std::vector<const Json*> rows;
  if (result.is_array()) {
    for (const Json& r : result.array_items()) rows.push_back(&r);
  } else {
    rows.push_back(&result);
  }
  std::vector<std::string> columns;
  for (const Json* r : rows) {
    if (!r->is_object()) continue;
    for (const JsonMember& m : r->object_items()) {
      if (IsScalar(m.value) && std::find(columns.begin(), columns.end(), m.key) == columns.end()) {
        columns.push_back(m.key);
      }
    }
  }
  if (columns.empty()) {
    // A list of scalars (or objects with nothing scalar): one value per line.
    for (const Json* r : rows) {
      if (IsScalar(*r)) os << Scalar(*r) << "\n";
    }
    return;
  }
  std::vector<std::vector<std::string>> cells;
  for (const Json* r : rows) {
    std::vector<std::string> line;
    for (const std::string& c : columns) {
      const Json* v = r->is_object() ? r->Find(c) : nullptr;
      line.push_back(v == nullptr ? "" : Scalar(*v));
    }
    cells.push_back(std::move(line));
  }
  if (tsv) {
    for (const auto& line : cells) {
      for (size_t i = 0; i < line.size(); ++i) os << (i ? "\t" : "") << line[i];
      os << "\n";
    }
    return;
  }
  std::vector<size_t> width(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    width[i] = Width(Header(columns[i]));
    for (const auto& line : cells) width[i] = std::max(width[i], Width(line[i]));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i > 0) text += "  ";
      text += line[i];
      if (i + 1 < line.size()) text.append(width[i] - Width(line[i]), ' ');
    }
    os << text << "\n";
  };
  std::vector<std::string> headers, dashes;
  for (size_t i = 0; i < columns.size(); ++i) {
    headers.push_back(Header(columns[i]));
    dashes.emplace_back(width[i], '-');
  }
  emit(headers);
  emit(dashes);
  for (const auto& line : cells) emit(line);
}

}  // namespace

void PrintResult(const Json& result, CommandContext& ctx) {
  switch (ctx.format) {
    case OutputFormat::kJson:
      *ctx.out << result.Dump(2) << "\n";
      break;
    case OutputFormat::kJsonCompact:
      *ctx.out << result.Dump(-1) << "\n";
      break;
    case OutputFormat::kTable:
      PrintTable(result, *ctx.out, false);
      break;
    case OutputFormat::kTsv:
      PrintTable(result, *ctx.out, true);
      break;
    case OutputFormat::kNone:
      break;
  }
}

}  // namespace imagesmith::cli
