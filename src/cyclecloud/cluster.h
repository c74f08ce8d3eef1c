// A cluster read from a CycleCloud template: the chosen [cluster] section
// with its parameters applied, `[[node defaults]]` and `Extends` merged in,
// abstract nodes dropped and every attribute evaluated. This is what
// `import_cluster` checks and stores; images are not looked at here (they
// are resolved when a node starts, image_resolution.h).
//
// Order of a node's attributes, later wins: [[node defaults]], then each
// node named by Extends (in the order given, each merged the same way),
// then the node's own. Subsections merge by type and name; configuration
// merges key by key (`[[[configuration slurm]]]` keys get "slurm." before
// them).
//
// Names an expression may read: the template's parameters (from any
// [parameters]/[[parameter]] section), ClusterName, and the names of
// [noderef] and [environment] sections, whose values exist only when the
// cluster runs (they evaluate to a deferred value).
//
// Thread-compatible; the structs are plain values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/statusor.h"
#include "cyclecloud/location.h"
#include "cyclecloud/template_file.h"
#include "cyclecloud/value.h"

namespace imagesmith::cyclecloud {

using Attributes = std::vector<std::pair<std::string, Value>>;  // key as written, in order

// The value of `key` (ignoring case) or nullptr.
const Value* FindAttribute(const Attributes& attributes, std::string_view key);

struct SubsectionSpec {
  std::string type;  // "volume", "network-interface", "cluster-init", "input-endpoint"
  std::string name;
  Attributes attributes;
};

struct NodeSpec {
  std::string name;
  bool is_array = false;  // [[nodearray]]
  Location at;
  Attributes attributes;
  Attributes configuration;  // flattened "slurm.version" keys
  std::vector<SubsectionSpec> subsections;

  Json ToJson() const;
};

struct ParameterValue {
  Value value;
  Location at;  // where it was given (parameter file) or defined (default)
};
// Parameter values from a parameter file, by name as written.
using ParameterValues = std::vector<std::pair<std::string, ParameterValue>>;

struct ClusterSpec {
  std::string name;  // the [cluster] section's name
  Location at;
  Attributes attributes;
  std::vector<NodeSpec> nodes;  // nodes and nodearrays, abstract ones and defaults left out
  Attributes parameters;        // every declared parameter with its value (undefined if unset)
  std::vector<std::string> deferred_names;  // [noderef] and [environment] names
  // Parameters marked Required = true that have no value: import accepts
  // them (as CycleCloud does); starting the cluster refuses.
  std::vector<std::string> missing_required;

  const NodeSpec* FindNode(std::string_view name) const;
  Json ToJson() const;
  static StatusOr<ClusterSpec> FromJson(const Json& json);
};

// Reads a parameter file: JSON (an object of name: value; also when
// `path` ends in .json or the text starts with '{') or .properties
// (`Name = value` lines, '#' comments, values typed as in templates).
// Errors name PATH:LINE:COL.
StatusOr<ParameterValues> ParseParameterFile(std::string_view text, const std::string& path);

// Assembles the cluster `section` (the only [cluster] if empty) of `file`.
// Checks, each error naming FILE:LINE:COL (or the parameter file's place):
// every value's syntax anywhere in the file; a -c name that is not a
// [cluster] (the message lists them); a parameter file naming a parameter
// the template does not declare (the message suggests the closest; values
// from `overrides`, import_cluster's -P, may name undeclared ones, as
// CycleCloud's -P does); values of the wrong type for ParameterType Integer or
// Boolean; unknown names in the cluster's
// and its nodes', [noderef]'s and [environment]'s values; Extends naming
// no node, or a loop; node names used twice; MaxCount, MaxCoreCount and
// Azure.MaxScalesetSize that are not whole numbers in range.
StatusOr<ClusterSpec> AssembleCluster(const TemplateFile& file, const ParameterValues& params,
                                      const std::string& section,
                                      const ParameterValues& overrides = {});

}  // namespace imagesmith::cyclecloud
