// The template parser and validator: Image Builder template JSON in, a
// normalised ImageTemplate and every problem found out.
//
// It accepts the template as Azure does: property names and enum values in
// any case, the reference's own variants (a single string for "inline",
// "sharedImage"), display names for regions, and // comments. It reports all
// problems in one pass, each with file position, JSON path and what was
// expected, and suggests the intended name for a misspelt property.
//
// Pure functions; safe to call from several threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "template/diagnostics.h"
#include "template/model.h"

namespace imagesmith::tmpl {

// Azure Resource Manager's limit for a template file.
inline constexpr uint64_t kMaxTemplateBytes = 4 << 20;

// Image template names: 1-64 letters, digits, '.', '_' or '-', starting
// with a letter or digit.
bool IsValidTemplateName(std::string_view name);

// The apiVersions imagesmith accepts, oldest first.
const std::vector<std::string>& KnownApiVersions();

struct ParseResult {
  std::optional<ImageTemplate> value;   // set exactly when there are no errors
  std::vector<Diagnostic> diagnostics;  // errors and warnings in file order

  bool ok() const { return value.has_value(); }
  int error_count() const;
  int warning_count() const;
};

// Parses and validates template text. Never fails outright: problems,
// including JSON syntax errors, are diagnostics.
ParseResult ParseTemplate(std::string_view text);

// Reads `path` through `env` (refusing files over kMaxTemplateBytes) and
// parses it. An unreadable file is reported as a diagnostic without position.
ParseResult ParseTemplateFile(Env& env, const std::string& path);

}  // namespace imagesmith::tmpl
