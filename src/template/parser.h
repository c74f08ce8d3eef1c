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

struct ParseOptions {
  // The API version for a template without apiVersion (request bodies for
  // 'az resource create --is-full-object' often have none); empty means the
  // newest, with a warning saying so.
  std::string default_api_version;
  // The template's name when the document has none (from a REST example's
  // wrapper or an ARM resource); may be empty.
  std::string name;
};

// Parses and validates template text. Never fails outright: problems,
// including JSON syntax errors, are diagnostics.
//
// Accepted shapes: the imageTemplates resource (as in an ARM template's
// resources[] or a REST request body; "type" and "apiVersion" may be left
// out) and the REST specification's example wrapper {"parameters":
// {"parameters": BODY, "api-version": V}}. ARM deployment templates (with
// "$schema" and "resources") are read by template/deployment.h.
ParseResult ParseTemplate(std::string_view text, const ParseOptions& options = {});

// The same for a document already parsed (positions are taken from it).
ParseResult ParseTemplateJson(const Json& document, const ParseOptions& options = {});

// Reads `path` through `env` (refusing files over kMaxTemplateBytes) and
// parses it. An unreadable file is reported as a diagnostic without position.
ParseResult ParseTemplateFile(Env& env, const std::string& path, const ParseOptions& options = {});

}  // namespace imagesmith::tmpl
