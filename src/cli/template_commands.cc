// imagesmith template ...: commands that work on template files alone.
#include <iostream>

#include "cli/command.h"
#include "template/parser.h"

namespace imagesmith::cli {
namespace {

Json ResultJson(const std::string& file, const tmpl::ParseResult& r) {
  Json o = Json::MakeObject();
  o.Set("file", Json::String(file));
  o.Set("valid", Json::Bool(r.ok()));
  Json errors = Json::MakeArray();
  Json warnings = Json::MakeArray();
  for (const tmpl::Diagnostic& d : r.diagnostics) {
    (d.severity == tmpl::Severity::kError ? errors : warnings).Append(d.ToJson());
  }
  o.Set("errors", std::move(errors));
  o.Set("warnings", std::move(warnings));
  if (r.ok()) o.Set("template", r.value->ToJson());
  return o;
}

int RunValidate(const ParsedArgs& args, CommandContext& ctx) {
  bool all_valid = true;
  Json results = Json::MakeArray();
  bool text = ctx.format == OutputFormat::kJson && !args.Has("output");
  for (const std::string& file : args.positionals()) {
    tmpl::ParseResult r = tmpl::ParseTemplateFile(*ctx.env, file);
    all_valid = all_valid && r.ok();
    if (text) {
      for (const tmpl::Diagnostic& d : r.diagnostics) *ctx.out << d.Format(file) << "\n";
      int e = r.error_count();
      int w = r.warning_count();
      *ctx.out << file << ": ";
      if (e == 0) {
        *ctx.out << "valid";
      } else {
        *ctx.out << e << (e == 1 ? " error" : " errors");
      }
      if (w > 0) *ctx.out << (e == 0 ? " with " : ", ") << w << (w == 1 ? " warning" : " warnings");
      *ctx.out << "\n";
    } else {
      results.Append(ResultJson(file, r));
    }
  }
  if (!text) {
    // Like az with several --ids: one object for one file, a list for several.
    PrintResult(results.array_items().size() == 1 ? results.array_items()[0] : results, ctx);
  }
  return all_valid ? 0 : 1;
}

}  // namespace

void RegisterTemplateCommands(CommandRegistry& registry) {
  registry.AddGroup("template", "Work with Image Builder template files.");
  registry.Add(CommandSpec{
      .path = "template validate",
      .summary = "Check Image Builder template files and report every problem.",
      .description =
          "Parses each FILE as a Microsoft.VirtualMachineImages/imageTemplates template and\n"
          "checks it against the template reference: property names, types, allowed values,\n"
          "resource IDs, regions and the rules between properties. Every problem in a file is\n"
          "reported in one run as FILE:LINE:COLUMN: error: JSON.PATH: what was expected.\n"
          "\n"
          "Without -o, prints the problems for people. With -o json, prints for each file\n"
          "{file, valid, errors, warnings, template}, where template is the normalised\n"
          "template (canonical names and values, defaults filled in); one file gives one\n"
          "object, several give a list.\n"
          "\n"
          "Exit status: 0 when every file is valid (warnings allowed), 1 otherwise.",
      .args_usage = "FILE...",
      .min_positionals = 1,
      .max_positionals = 10000,
      .options = {},
      .examples = {"imagesmith template validate examples/debian12-nginx.json",
                   "imagesmith template validate -o json my-template.json | jq .template"},
      .run = RunValidate,
  });
}

}  // namespace imagesmith::cli
