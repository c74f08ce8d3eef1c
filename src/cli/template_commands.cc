// imagesmith template ...: commands that work on template files alone.
#include <iostream>

#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/template_input.h"
#include "meta/scopes.h"
#include "template/azure_compat.h"
#include "template/parser.h"

namespace imagesmith::cli {

OptionSpec ParametersOpt() {
  return {"parameters",
          'p',
          "PARAMS",
          "For ARM deployment templates: @FILE (an ARM parameters file), NAME=VALUE, or JSON; "
          "may be repeated, later values win.",
          true,
          false};
}

OptionSpec ApiVersionOpt() {
  return {"api-version", 0,
          "VERSION",     "The apiVersion for a template without one (default: the newest).",
          false,         false};
}

StatusOr<tmpl::DeploymentInputs> TemplateInputs(const ParsedArgs& args, CommandContext& ctx,
                                                Data* data, const std::string& group) {
  tmpl::DeploymentInputs in;
  in.parameters = args.GetAll("parameters");
  in.options.default_api_version = args.Get("api-version");
  in.now_unix_seconds = ctx.env->NowMicros() / 1000000;
  if (data != nullptr && !group.empty()) {
    in.scope.subscription_id = data->subscription;
    in.scope.resource_group = group;
    // resourceGroup().location, when the group exists (a missing group is
    // reported where it matters, by the deployment).
    ASSIGN_OR_RETURN(ApiClient api, ApiClient::Open(*ctx.env));
    auto g = api.Call(MakeRequest(api::Verb::kGet, data->Group(group)));
    if (g.ok()) {
      if (const Json* loc = g->body.Find("location"); loc != nullptr && loc->is_string()) {
        in.scope.location = loc->string_value();
      }
    }
  }
  return in;
}

std::optional<std::vector<tmpl::LoadedTemplate>> LoadTemplatesOrReport(
    const std::string& file, const tmpl::DeploymentInputs& in, CommandContext& ctx) {
  tmpl::LoadResult r = tmpl::LoadTemplates(*ctx.env, file, in);
  for (const tmpl::Diagnostic& d : r.diagnostics) *ctx.err << d.Format(file) << "\n";
  if (!r.ok()) {
    *ctx.err << "ERROR: " << file << " is not a valid template (" << r.error_count()
             << " error(s)); run 'imagesmith template validate " << file << "'\n";
    return std::nullopt;
  }
  return std::move(r.templates);
}

namespace {

Json ResultJson(const std::string& file, const tmpl::LoadResult& r) {
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
  if (r.ok() && !r.is_deployment && r.templates.size() == 1) {
    o.Set("template", r.templates[0].value.ToJson());
  } else if (r.ok() && r.is_deployment) {
    Json list = Json::MakeArray();
    for (const tmpl::LoadedTemplate& t : r.templates) {
      Json item = Json::MakeObject();
      item.Set("path", Json::String(t.path));
      item.Set("name", Json::String(t.name));
      item.Set("template", t.value.ToJson());
      list.Append(std::move(item));
    }
    o.Set("templates", std::move(list));
  }
  return o;
}

int RunValidate(const ParsedArgs& args, CommandContext& ctx) {
  bool all_valid = true;
  Json results = Json::MakeArray();
  bool text = ctx.format == OutputFormat::kJson && !args.Has("output");
  std::optional<Data> data;
  if (args.Has("resource-group")) {
    auto d = OpenData(*ctx.env);
    if (!d.ok()) return ReportError(d.status(), ctx);
    data = std::move(*d);
  }
  auto in = TemplateInputs(args, ctx, data ? &*data : nullptr, args.Get("resource-group"));
  if (!in.ok()) return ReportError(in.status(), ctx);
  for (const std::string& file : args.positionals()) {
    tmpl::LoadResult r = tmpl::LoadTemplates(*ctx.env, file, *in);
    if (args.Has("azure")) {
      for (const tmpl::LoadedTemplate& t : r.templates) {
        for (tmpl::Diagnostic& d : tmpl::AzureCompatibility(t.value, *ctx.env, Dirname(file))) {
          if (!t.path.empty()) d.path = t.path + "." + d.path;
          r.diagnostics.push_back(std::move(d));
        }
      }
    }
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
          "A FILE may be the imageTemplates resource (type and apiVersion may be left out,\n"
          "as in request bodies), the REST specification's example wrapper, or an ARM\n"
          "deployment template: each Microsoft.VirtualMachineImages/imageTemplates resource\n"
          "in resources[] is evaluated (parameters, variables, concat, format, resourceId,\n"
          "resourceGroup() ...) with the values from --parameters and each parameter's\n"
          "defaultValue, then validated. Problems in a value from a parameters file are\n"
          "reported at that file's line and column.\n"
          "\n"
          "Exit status: 0 when every file is valid (warnings allowed), 1 otherwise.",
      .args_usage = "FILE...",
      .min_positionals = 1,
      .max_positionals = 10000,
      .options = {ParametersOpt(),
                  ApiVersionOpt(),
                  {"resource-group", 'g', "GROUP",
                   "Evaluate resourceGroup() and subscription() against this group "
                   "(default: a stand-in group in eastus)."},
                  {"azure", 0, "",
                   "Also warn about what Azure would refuse or handle differently (local "
                   "script paths, File customizer limits, VHD URIs, properties newer than the "
                   "apiVersion)."}},
      .examples = {"imagesmith template validate examples/debian12-nginx.json",
                   "imagesmith template validate azuredeploy.json -p @azuredeploy.parameters.json "
                   "-p location=westus2",
                   "imagesmith template validate -o json my-template.json | jq .template"},
      .run = RunValidate,
  });
}

}  // namespace imagesmith::cli
