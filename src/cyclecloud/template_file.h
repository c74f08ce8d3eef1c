// The structure of a CycleCloud template file: sections by bracket rank,
// each holding `Key = value` and `Key := expression` attributes. This layer
// knows the layout only (which section is inside which, where every key and
// value is); values are compiled by attribute_value.h and the cluster is
// assembled by cluster.h.
//
// Layout rules (doc/cyclecloud.md):
//   - A header `[type name]` with N brackets on each side is rank N; it
//     belongs to the nearest rank N-1 section above it. `[cluster X]`,
//     `[environment X]`, `[noderef X]` and `[parameters X]` are rank 1.
//   - Section types and keys ignore case. Names may hold spaces
//     (`[[parameters About Slurm]]`).
//   - `Key = =EXPR` is read as `Key := EXPR`.
//   - `#` starts a comment at the start of a line, or after white space
//     outside quotes, `${...}` and `'''...'''`.
//   - `'''...'''` and `"""..."""` values and `${...}` / `:=` values may span lines.
//
// Thread-compatible; the structs are plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"
#include "cyclecloud/location.h"

namespace imagesmith::cyclecloud {

struct Attribute {
  std::string key;  // as written: "Azure.MaxScalesetSize"
  Location key_at;
  bool expression = false;     // `:=`: the whole value is one expression
  std::string raw;             // the value's text, comment and outer space removed
  Location value_at;           // where raw[0] is
  bool triple_quoted = false;  // written as '''...''' or """..."""  (raw is the inside)
};

struct Section {
  std::string type;  // lower-cased: "cluster", "node", "volume", ...
  std::string name;  // as written, may be empty ("[[[configuration]]]")
  int rank = 1;
  Location at;  // the header's first '['
  std::vector<Attribute> attributes;
  std::vector<Section> children;

  // The attribute named `key` (ignoring case), last one written wins; or
  // nullptr.
  const Attribute* Find(std::string_view key) const;
};

struct TemplateFile {
  std::string path;
  std::vector<Section> sections;  // rank 1, in file order
};

// The section types the parser accepts, lower-cased.
const std::vector<std::string>& SectionTypes();

// Parses a template file's text. `path` is used in locations. Fails with
// InvalidArgument "PATH:LINE:COL: ..." at the first syntax error: a header
// whose brackets do not match, an unknown section type, a section outside
// a parent of the right type, a line that is neither a header nor
// `key = value`, an unterminated ''' or ${.
StatusOr<TemplateFile> ParseTemplateFile(std::string_view text, std::string path);

}  // namespace imagesmith::cyclecloud
