// The operations behind 'imagesmith image-template ...', shared with the
// az-style 'imagesmith image builder ...' surface (image_builder_commands.cc)
// so both front ends run the same code. Each command function takes the
// image-template command's arguments (-g/--resource-group, -n/--name, ...)
// and returns the exit code, having printed its result or error.
#pragma once

#include <string>

#include "api/local.h"
#include "api/template_provider.h"
#include "base/json.h"
#include "base/statusor.h"
#include "cli/command.h"
#include "cli/data.h"
#include "template/model.h"

namespace imagesmith::cli::itops {

int Show(const ParsedArgs& args, CommandContext& ctx);
int List(const ParsedArgs& args, CommandContext& ctx);
int Delete(const ParsedArgs& args, CommandContext& ctx);
int Run(const ParsedArgs& args, CommandContext& ctx);  // also reads --no-cache
int Cancel(const ParsedArgs& args, CommandContext& ctx);
int ShowRuns(const ParsedArgs& args, CommandContext& ctx);  // also reads --output-name

// Creates the template `name` in `group` (replace = false), or creates or
// replaces its definition keeping its runs (replace = true), as
// 'image-template create' / 'build' do. `template_dir` resolves relative
// scriptUri / sourceUri paths.
Status Put(api::Local& local, const std::string& group, const std::string& name,
           const tmpl::ImageTemplate& t, const std::string& template_dir, bool replace);

// The stored template: its normalised JSON and the directory its relative
// paths resolve against. NotFound names the template.
using Stored = api::StoredTemplate;
StatusOr<Stored> GetStored(api::Local& local, const std::string& group, const std::string& name);

// The template's lastRunStatus.runState as show reports it ("" before any run);
// NotFound when the template does not exist.
StatusOr<std::string> RunState(api::Local& local, const std::string& group,
                               const std::string& name);

}  // namespace imagesmith::cli::itops

namespace imagesmith::cli {

// The api layer on the local data directory, opened once per process
// (api::OpenLocal); the CLI acts as the data directory's owner.
StatusOr<api::Local*> OpenApi(CommandContext& ctx);

// Prints a provider's error (its ARM message, without the code prefix) and
// returns the exit code for it.
int ReportApiError(const Status& status, CommandContext& ctx);

}  // namespace imagesmith::cli
