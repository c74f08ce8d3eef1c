// Reading template files for commands: the options every command that takes
// a template file shares (--parameters, --api-version) and one function that
// loads a file in any accepted shape (template/deployment.h), printing its
// diagnostics the way 'template validate' does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/data.h"
#include "template/deployment.h"

namespace imagesmith::cli {

// --parameters/-p (repeatable: @FILE, NAME=VALUE or JSON) and --api-version.
OptionSpec ParametersOpt();
OptionSpec ApiVersionOpt();

// The inputs for tmpl::LoadTemplates from the command's arguments. When
// `data` is given and `group` exists there, resourceGroup() and
// subscription() describe that group; otherwise a stand-in group in eastus
// (template validate works without a data directory).
StatusOr<tmpl::DeploymentInputs> TemplateInputs(const ParsedArgs& args, CommandContext& ctx,
                                                Data* data, const std::string& group);

// Loads FILE, prints every diagnostic to ctx.err and returns the templates,
// or nullopt (having printed why) when there are errors.
std::optional<std::vector<tmpl::LoadedTemplate>> LoadTemplatesOrReport(
    const std::string& file, const tmpl::DeploymentInputs& in, CommandContext& ctx);

}  // namespace imagesmith::cli
