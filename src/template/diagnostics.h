// Diagnostics: the problems found in a template file, each with its position,
// JSON path and what was expected. Plain value types.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"

namespace imagesmith::tmpl {

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourcePos pos;     // {0,0} when the problem is not at one place in the file
  std::string path;  // "properties.customize[1].sha256Checksum"; "" for the file itself
  std::string message;

  // "file:line:column: error: path: message" (line/column and path omitted
  // when unknown), the form compilers use so editors can jump to it.
  std::string Format(std::string_view file) const;
  // {"severity","line","column","path","message"}.
  Json ToJson() const;
};

}  // namespace imagesmith::tmpl
