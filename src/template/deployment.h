// ARM deployment templates that hold image templates.
//
// About half of the Image Builder templates people publish are ARM
// deployment templates: {"$schema", "parameters", "variables", "resources":
// [{"type": "Microsoft.VirtualMachineImages/imageTemplates", ...}]}, with
// expressions such as "[parameters('location')]" (arm_expression.h). This
// module finds every imageTemplates resource, evaluates its expressions
// against the parameters (defaultValue, ARM parameters files, name=value
// pairs) and the deployment scope, and validates each one with
// ParseTemplateJson.
//
// Diagnostics point into the file where the offending text is: the template
// (an expression, a defaultValue) or the parameters file the value came
// from (Diagnostic::file names it). A value given as name=value on the
// command line has no position; its diagnostics name it instead.
//
// LoadTemplates() is the one entry point the front ends use: it accepts every
// shape parser.h accepts as well as deployment templates.
//
// Pure functions over Env (files only); safe to call from several threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "template/parser.h"

namespace imagesmith::tmpl {

// What resourceGroup(), subscription() and deployment() return.
struct DeploymentScope {
  std::string subscription_id = "00000000-0000-0000-0000-000000000000";
  std::string resource_group = "imagesmith-validate";
  std::string location = "eastus";  // the resource group's region
  std::string deployment_name;      // default: the template file's base name
};

struct DeploymentInputs {
  // Each item as az takes it: "@file.json" (an ARM parameters file), a
  // "name=value" pair, or a JSON object text {"name": {"value": ...}}.
  // Later items override earlier ones.
  std::vector<std::string> parameters;
  DeploymentScope scope;
  ParseOptions options;          // for each template found
  int64_t now_unix_seconds = 0;  // utcNow() in parameter defaults
};

// One imageTemplates resource of the file.
struct LoadedTemplate {
  std::string name;  // the resource name (evaluated), may be empty for bodies
  std::string path;  // "resources[2]" in a deployment template, "" otherwise
  ImageTemplate value;
};

struct LoadResult {
  bool is_deployment = false;
  // Every diagnostic, sorted by file then position; Diagnostic::file is set
  // for the ones in a parameters file or on the command line.
  std::vector<Diagnostic> diagnostics;
  // Set only when there are no errors: every template in the file.
  std::vector<LoadedTemplate> templates;

  bool ok() const { return error_count() == 0; }
  int error_count() const;
  int warning_count() const;
};

// True when `doc` is an ARM deployment template: it has a "resources"
// member or a $schema naming deploymentTemplate.json.
bool IsDeploymentTemplate(const Json& doc);

// Reads `path` (at most kMaxTemplateBytes) and the parameters files named
// in `in` through `env`, and returns every template with its diagnostics.
// Never fails outright: unreadable files are diagnostics.
LoadResult LoadTemplates(Env& env, const std::string& path, const DeploymentInputs& in);

// The same for text already read; `path` is only used to resolve
// "@file" parameters relative to nothing (they are read as given) and as
// the deployment's default name.
LoadResult LoadTemplatesFromText(Env& env, std::string_view text, const std::string& path,
                                 const DeploymentInputs& in);

}  // namespace imagesmith::tmpl
