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
  // The file the position is in when it is not the one being checked (an ARM
  // parameters file, or "--parameters name=value" for a command-line value).
  std::string file;

  // "file:line:column: error: path: message" (line/column and path omitted
  // when unknown), the form compilers use so editors can jump to it. `file`
  // is used unless the diagnostic names its own.
  std::string Format(std::string_view default_file) const;
  // {"severity","line","column","path","message"}, plus "file" when set.
  Json ToJson() const;
};

}  // namespace imagesmith::tmpl
