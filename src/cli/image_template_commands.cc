// imagesmith image-template ... and imagesmith build: the front end of the
// imageTemplates provider (api/template_provider.h). Each command parses its
// flags, calls the provider through api::Local, and prints; the provider
// validates, authorizes and runs (as a durable operation, api/operations.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <iostream>

#include "api/arm_error.h"
#include "api/local.h"
#include "api/operations.h"
#include "api/template_provider.h"
#include "api/worker_presence.h"
#include "base/process.h"
#include "base/strings.h"
#include "builder/pipeline.h"
#include "builder/staging.h"
#include "cli/command.h"
#include "cli/data.h"
#include "cli/image_template_ops.h"
#include "cli/queued_work.h"
#include "cli/template_input.h"
#include "template/parser.h"

namespace imagesmith::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

Status ValidateTemplateName(const std::string& name) {
  if (!tmpl::IsValidTemplateName(name)) {
    return InvalidArgumentError("image template name " + QuoteForMessage(name) +
                                " must be 1-64 letters, digits, '-', '_' or '.', starting with a "
                                "letter or digit");
  }
  return Status::Ok();
}

// Loads the one image template in FILE (any shape template validate takes),
// printing its diagnostics the way 'template validate' does. Returns nullopt
// (having printed why) when it is invalid or holds several templates.
std::optional<tmpl::LoadedTemplate> LoadOneTemplate(const ParsedArgs& args, const std::string& file,
                                                    CommandContext& ctx, Data* data,
                                                    const std::string& group) {
  auto in = TemplateInputs(args, ctx, data, group);
  if (!in.ok()) {
    ReportError(in.status(), ctx);
    return std::nullopt;
  }
  auto list = LoadTemplatesOrReport(file, *in, ctx);
  if (!list) return std::nullopt;
  if (list->size() != 1) {
    *ctx.err << "ERROR: " << file << " holds " << list->size()
             << " image templates; deploy them all with 'imagesmith deployment group create -g "
                "GROUP --template-file "
             << file << "'\n";
    return std::nullopt;
  }
  return std::move((*list)[0]);
}

std::string AbsoluteDir(const std::string& file) {
  char buf[4096];
  std::string dir = Dirname(file);
  char* real = ::realpath(dir.c_str(), buf);
  return real != nullptr ? std::string(real) : dir;
}

std::string Str(const Json* j) { return j != nullptr && j->is_string() ? j->string_value() : ""; }

std::string RunStateOf(const Json& resource) {
  const Json* props = resource.Find("properties");
  const Json* last = props != nullptr ? props->Find("lastRunStatus") : nullptr;
  return last != nullptr && last->is_object() ? Str(last->Find("runState")) : "";
}

// Runs the template `id`: in the foreground (printing progress, Ctrl-C
// cancels) and prints the final resource; or with --no-wait returns the
// operation at once and leaves the work to a worker.
int RunTemplate(CommandContext& ctx, api::Local& local, const ResourceId& id, bool use_cache,
                bool no_wait) {
  api::Request req;
  req.verb = api::Verb::kAction;
  req.id = id;
  req.action = "run";
  req.body = Json::MakeObject();
  req.body.Set("noCache", Json::Bool(!use_cache));
  req.wait = !no_wait;
  if (no_wait) {
    auto resp = local.Call(std::move(req));
    if (!resp.ok()) return ReportApiError(resp.status(), ctx);
    Status started = HandOffQueued(ctx, local.services.data_dir, resp->operation_id);
    if (!started.ok()) return ReportApiError(started, ctx);
    PrintResult(resp->body, ctx);
    return 0;
  }
  bool show_progress = ctx.stderr_is_tty || ctx.verbose;
  req.progress = [&](api::ProgressKind kind, std::string_view line) {
    switch (kind) {
      case api::ProgressKind::kLog:
        if (ctx.verbose || (show_progress && line.find("] ==== ") != std::string::npos)) {
          *ctx.err << line << "\n";
        }
        break;
      case api::ProgressKind::kStatus:
        if (show_progress) *ctx.err << "imagesmith: " << line << "\n";
        break;
      case api::ProgressKind::kNotice:
        *ctx.err << "imagesmith: " << line << "\n";
        break;
    }
  };
  req.interrupt = &g_interrupted;
  // Cancel: Ctrl-C / SIGTERM here, or 'image-template cancel' from another
  // shell (which marks the run's operation).
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  auto resp = local.Call(std::move(req));
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  const Json& result = resp->body;
  PrintResult(result, ctx);
  std::string state = RunStateOf(result);
  const Json* last = result.Find("properties")->Find("lastRunStatus");
  std::string message = Str(last->Find("message"));
  if (state == "Succeeded") return 0;
  if (state == "Canceled") {
    *ctx.err << "ERROR: the run was canceled\n";
    return 6;
  }
  const Json* lr = result.Find("properties")->Find("lastRun");
  std::string log = lr != nullptr ? Str(lr->Find("customizationLog")) : "";
  *ctx.err << "ERROR: the run " << state << ": " << message << "\nThe log is " << log
           << " ('imagesmith image-template logs -g " << id.resource_group() << " -n " << id.name()
           << "').\n";
  return message.find("buildTimeoutInMinutes") != std::string::npos ? 6 : 1;
}

// PUT of a parsed template; `replace` false refuses an existing one.
Status PutTemplate(api::Local& local, const ResourceId& id, const tmpl::ImageTemplate& t,
                   const std::string& template_dir, bool replace, Json* out = nullptr) {
  RETURN_IF_ERROR(ValidateTemplateName(id.name()));
  api::Request req;
  req.verb = api::Verb::kPut;
  req.id = id;
  req.body = api::TemplatePutBody(t, template_dir);
  if (!replace) req.if_none_match = "*";
  auto resp = local.Call(std::move(req));
  if (!resp.ok()) return resp.status();
  if (out != nullptr) *out = resp->body;
  return Status::Ok();
}

StatusOr<api::Response> CallSimple(api::Local& local, api::Verb verb, const ResourceId& id,
                                   const std::string& action = "") {
  api::Request req;
  req.verb = verb;
  req.id = id;
  req.action = action;
  return local.Call(std::move(req));
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto loaded =
      LoadOneTemplate(args, args.Get("image-template"), ctx, &*data, args.Get("resource-group"));
  if (!loaded) return 1;
  ResourceId id = api::TemplateId((*local)->services, args.Get("resource-group"), args.Get("name"));
  Json out;
  Status s =
      PutTemplate(**local, id, loaded->value, AbsoluteDir(args.Get("image-template")), false, &out);
  if (!s.ok()) return ReportApiError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

ResourceId IdFromArgs(api::Local& local, const ParsedArgs& args) {
  return api::TemplateId(local.services, args.Get("resource-group"), args.Get("name"));
}

int RunRun(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  return RunTemplate(ctx, **local, IdFromArgs(**local, args), !args.Has("no-cache"),
                     args.Has("no-wait"));
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto resp = CallSimple(**local, api::Verb::kGet, IdFromArgs(**local, args));
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  PrintResult(resp->body, ctx);
  return 0;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  api::Request req;
  req.verb = api::Verb::kList;
  req.list_type = api::kTemplateType;
  req.id = args.Has("resource-group")
               ? (*local)->services.Group(args.Get("resource-group"))
               : ResourceId::ForSubscription((*local)->services.subscription);
  auto resp = (*local)->Call(std::move(req));
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& r : resp->body.Find("value")->array_items()) {
    Json row = r;
    // Flattened state for -o table, as az shows it.
    const Json* last = r.Find("properties")->Find("lastRunStatus");
    if (last != nullptr && last->is_object()) {
      row.Set("runState", *last->Find("runState"));
      row.Set("runSubState", *last->Find("runSubState"));
    }
    out.Append(std::move(row));
  }
  PrintResult(out, ctx);
  return 0;
}

int RunCancel(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto resp = CallSimple(**local, api::Verb::kAction, IdFromArgs(**local, args), "cancel");
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  return 0;
}

int RunLogs(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto path = api::TemplateLogPath((*local)->services, (*local)->owner, IdFromArgs(**local, args));
  if (!path.ok()) return ReportApiError(path.status(), ctx);
  auto text = ctx.env->ReadFile(*path, 1ull << 30);
  if (!text.ok()) return ReportError(text.status(), ctx);
  *ctx.out << *text;
  return 0;
}

int RunShowRuns(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  ResourceId id = IdFromArgs(**local, args);
  if (args.Has("output-name")) {
    auto resp =
        CallSimple(**local, api::Verb::kGet, id.Child("runOutputs", args.Get("output-name")));
    if (!resp.ok()) return ReportApiError(resp.status(), ctx);
    PrintResult(resp->body, ctx);
    return 0;
  }
  api::Request req;
  req.verb = api::Verb::kList;
  req.list_type = api::kRunOutputType;
  req.id = id;
  auto resp = (*local)->Call(std::move(req));
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  PrintResult(*resp->body.Find("value"), ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto resp = CallSimple(**local, api::Verb::kDelete, IdFromArgs(**local, args));
  if (!resp.ok()) return ReportApiError(resp.status(), ctx);
  return 0;
}

int RunBuild(const ParsedArgs& args, CommandContext& ctx) {
  std::string file = args.positionals()[0];
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string group = args.Get("resource-group", "imagesmith");
  auto loaded = LoadOneTemplate(args, file, ctx, &*data, group);
  if (!loaded) return 1;
  const tmpl::ImageTemplate* t = &loaded->value;
  std::string name = args.Get("name", t->name);
  if (name.empty()) {
    name = Basename(file);
    if (EndsWith(name, ".json")) name = name.substr(0, name.size() - 5);
  }
  api::Services& services = (*local)->services;
  // The default group is made on first use, in the template's region.
  if (!args.Has("resource-group")) {
    Status g =
        api::EnsureGroup(services, (*local)->owner, services.Group(group), t->location.name());
    if (!g.ok()) return ReportApiError(g, ctx);
  }
  ResourceId id = api::TemplateId(services, group, name);
  Status s = PutTemplate(**local, id, *t, AbsoluteDir(file), true);
  if (!s.ok()) return ReportApiError(s, ctx);
  return RunTemplate(ctx, **local, id, !args.Has("no-cache"), args.Has("no-wait"));
}

// az deployment group create for the imageTemplates resources of an ARM
// deployment template: each is created or updated as 'image-template create'
// would, after all of them have been validated (nothing is written when one
// is invalid).
int RunDeploymentCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string group = args.Get("resource-group");
  std::string file = args.Get("template-file");
  api::Services& services = (*local)->services;
  auto exists = api::GroupLocation(services, services.Group(group));
  if (!exists.ok()) return ReportApiError(exists.status(), ctx);
  auto in = TemplateInputs(args, ctx, &*data, group);
  if (!in.ok()) return ReportError(in.status(), ctx);
  std::string deployment = args.Get("name");
  if (deployment.empty()) {
    deployment = Basename(file);
    if (EndsWith(deployment, ".json")) deployment.resize(deployment.size() - 5);
  }
  in->scope.deployment_name = deployment;
  auto list = LoadTemplatesOrReport(file, *in, ctx);
  if (!list) return 1;
  for (const tmpl::LoadedTemplate& t : *list) {
    Status ok = t.name.empty()
                    ? InvalidArgumentError(t.path + ": the imageTemplates resource has no name")
                    : ValidateTemplateName(t.name);
    if (ok.ok()) ok = build::Precheck(t.value);
    if (!ok.ok()) return ReportError(ok.WithContext(file + " " + t.path), ctx);
  }
  Json resources = Json::MakeArray();
  for (const tmpl::LoadedTemplate& t : *list) {
    ResourceId id = api::TemplateId(services, group, t.name);
    Status s = PutTemplate(**local, id, t.value, AbsoluteDir(file), true);
    if (!s.ok()) return ReportApiError(s.WithContext("deploying " + t.path), ctx);
    Json r = Json::MakeObject();
    r.Set("id", Json::String(id.ToString()));
    r.Set("resourceGroup", Json::String(group));
    resources.Append(std::move(r));
  }
  Json out = Json::MakeObject();
  out.Set("id", Json::String(services.Group(group).ToString() +
                             "/providers/Microsoft.Resources/deployments/" + deployment));
  out.Set("name", Json::String(deployment));
  out.Set("resourceGroup", Json::String(group));
  out.Set("type", Json::String("Microsoft.Resources/deployments"));
  Json props = Json::MakeObject();
  props.Set("provisioningState", Json::String("Succeeded"));
  props.Set("mode", Json::String("Incremental"));
  props.Set("outputResources", std::move(resources));
  out.Set("properties", std::move(props));
  PrintResult(out, ctx);
  return 0;
}

int RunInternalPutTree(const ParsedArgs& args, CommandContext& ctx) {
  Status s =
      build::PutTreeMain(*ctx.env, args.Get("store"), args.Get("region"), args.Get("meta-file"),
                         args.Get("result-file"), args.positionals()[0]);
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

OptionSpec GroupOpt() { return {"resource-group", 'g', "GROUP", "Resource group.", false, true}; }
OptionSpec NameOpt() { return {"name", 'n', "NAME", "Name of the image template.", false, true}; }
OptionSpec NoCacheOpt() {
  return {"no-cache", 0, "", "Run every customizer again instead of reusing cached steps."};
}
OptionSpec NoWaitOpt() {
  return {"no-wait", 0, "",
          "Do not wait: print the run's operation at once and let a worker do the work "
          "(follow it with 'imagesmith operation wait --id ID')."};
}

int RunInternalWorker(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  static std::atomic<bool> stop{false};
  // Stop() is one atomic store: safe in a signal handler. The operation
  // running now is stopped and handed back (Operations::Stop).
  static api::Operations* operations = nullptr;
  operations = (*local)->operations.get();
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    stop.store(true);
    if (operations != nullptr) operations->Stop();
  };
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A worker that stays announces itself, so --no-wait commands leave their
  // work to it (api/worker_presence.h); one that exits when idle does not.
  std::unique_ptr<api::WorkerPresence> presence;
  if (!args.Has("exit-when-idle")) {
    auto p = api::WorkerPresence::Announce((*local)->services.data_dir,
                                           (*local)->operations->worker_id());
    if (!p.ok()) return ReportApiError(p.status(), ctx);
    presence = std::move(*p);
  }
  Status s = (*local)->operations->Work(stop, args.Has("exit-when-idle"));
  if (!s.ok()) return ReportApiError(s, ctx);
  return 0;
}

CommandSpec Simple(std::string path, std::string summary, std::vector<OptionSpec> options,
                   std::string example, std::function<int(const ParsedArgs&, CommandContext&)> run,
                   std::string description = "") {
  return CommandSpec{std::move(path),    std::move(summary),   std::move(description), "", 0, 0,
                     std::move(options), {std::move(example)}, std::move(run)};
}

}  // namespace

namespace itops {

int Show(const ParsedArgs& args, CommandContext& ctx) { return RunShow(args, ctx); }
int List(const ParsedArgs& args, CommandContext& ctx) { return RunList(args, ctx); }
int Delete(const ParsedArgs& args, CommandContext& ctx) { return RunDelete(args, ctx); }
int Run(const ParsedArgs& args, CommandContext& ctx) { return RunRun(args, ctx); }
int Cancel(const ParsedArgs& args, CommandContext& ctx) { return RunCancel(args, ctx); }
int ShowRuns(const ParsedArgs& args, CommandContext& ctx) { return RunShowRuns(args, ctx); }

Status Put(api::Local& local, const std::string& group, const std::string& name,
           const tmpl::ImageTemplate& t, const std::string& template_dir, bool replace) {
  return PutTemplate(local, api::TemplateId(local.services, group, name), t, template_dir, replace);
}

StatusOr<api::StoredTemplate> GetStored(api::Local& local, const std::string& group,
                                        const std::string& name) {
  return api::GetStoredTemplate(local.services, local.owner,
                                api::TemplateId(local.services, group, name));
}

StatusOr<std::string> RunState(api::Local& local, const std::string& group,
                               const std::string& name) {
  auto resp = CallSimple(local, api::Verb::kGet, api::TemplateId(local.services, group, name));
  if (!resp.ok()) return resp.status();
  return RunStateOf(resp->body);
}

}  // namespace itops

StatusOr<api::Local*> OpenApi(CommandContext& ctx) {
  // One per process: a command may call several of these helpers.
  static std::unique_ptr<api::Local> local;
  if (local == nullptr) {
    ASSIGN_OR_RETURN(local, api::OpenLocal(*ctx.env));
  }
  return local.get();
}

int ReportApiError(const Status& status, CommandContext& ctx) {
  *ctx.err << "ERROR: " << api::ToArmError(status).message << "\n";
  return ExitCodeFor(status.code());
}

void RegisterImageTemplateCommands(CommandRegistry& registry) {
  registry.AddGroup("image-template", "Manage image templates and their runs (az image builder).");
  registry.Add(Simple(
      "image-template create", "Create an image template from a template file.",
      {GroupOpt(),
       NameOpt(),
       {"image-template", 0, "FILE", "The Image Builder template (JSON).", false, true},
       ParametersOpt(),
       ApiVersionOpt()},
      "imagesmith image-template create -g images -n nginx --image-template "
      "examples/debian12-nginx.json",
      RunCreate,
      "The file is validated as 'imagesmith template validate' does. Relative scriptUri and\n"
      "sourceUri paths resolve against the file's directory when the template runs."));
  registry.Add(Simple("image-template run", "Build the image now, in the foreground.",
                      {GroupOpt(), NameOpt(), NoCacheOpt(), NoWaitOpt()},
                      "imagesmith image-template run -g images -n nginx", RunRun,
                      "Prints the template with lastRunStatus when the run ends. Exit status: 0\n"
                      "Succeeded, 1 Failed or PartiallySucceeded, 6 Canceled or timed out.\n"
                      "Ctrl-C cancels the run."));
  registry.Add(Simple("image-template show", "Show an image template and its last run.",
                      {GroupOpt(), NameOpt()}, "imagesmith image-template show -g images -n nginx",
                      RunShow));
  registry.Add(Simple("image-template list", "List image templates.",
                      {{"resource-group", 'g', "GROUP", "Only this resource group."}},
                      "imagesmith image-template list -o table", RunList));
  registry.Add(Simple("image-template delete",
                      "Delete an image template, its runs and their outputs in the staging area.",
                      {GroupOpt(), NameOpt(), {"yes", 'y', "", "Accepted for az compatibility."}},
                      "imagesmith image-template delete -g images -n nginx", RunDelete));
  registry.Add(Simple(
      "image-template cancel", "Cancel the running build; it stops within seconds as Canceled.",
      {GroupOpt(), NameOpt()}, "imagesmith image-template cancel -g images -n nginx", RunCancel,
      "Returns at once, as Azure's Cancel does; watch lastRunStatus.runState go\n"
      "from Canceling to Canceled with 'imagesmith image-template show'."));
  registry.Add(Simple("image-template logs", "Print the customization.log of the last run.",
                      {GroupOpt(), NameOpt()}, "imagesmith image-template logs -g images -n nginx",
                      RunLogs));
  registry.Add(
      Simple("image-template show-runs", "Show the run outputs (one per distribution target).",
             {GroupOpt(), NameOpt(), {"output-name", 0, "NAME", "Only this runOutputName."}},
             "imagesmith image-template show-runs -g images -n nginx -o table", RunShowRuns));
  registry.Add(CommandSpec{
      .path = "build",
      .summary = "Build an image from a template file in one step (create or update, then run).",
      .description =
          "Validates FILE, stores it as image template NAME (default: the template's name or\n"
          "the file's name) in GROUP (default: 'imagesmith', created in the template's region),\n"
          "and runs it in the foreground. Steps that match a previous build of the template are\n"
          "taken from the step cache; the log says, for each step, hit or miss and why.",
      .args_usage = "FILE",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {{"resource-group", 'g', "GROUP", "Resource group (default: imagesmith)."},
                  {"name", 'n', "NAME", "Image template name."},
                  NoCacheOpt(),
                  NoWaitOpt(),
                  ParametersOpt(),
                  ApiVersionOpt()},
      .examples = {"imagesmith build examples/debian12-nginx.json",
                   "imagesmith build --no-cache -n nginx examples/debian12-nginx.json"},
      .run = RunBuild,
  });
  registry.AddGroup("deployment", "Deploy ARM templates (az deployment).");
  registry.AddGroup("deployment group", "Deploy ARM templates to a resource group.");
  registry.Add(CommandSpec{
      .path = "deployment group create",
      .summary = "Deploy the image templates of an ARM deployment template.",
      .description =
          "Evaluates the ARM deployment template FILE as 'az deployment group create' would\n"
          "(parameters from --parameters and defaultValue, variables, template functions,\n"
          "resourceGroup() and subscription() of GROUP) and creates or updates each\n"
          "Microsoft.VirtualMachineImages/imageTemplates resource in it, as 'image-template\n"
          "create' does. Other resource types are reported and left out. Every template is\n"
          "validated before any is written. Run them with 'image-template run'.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {GroupOpt(),
                  {"template-file", 'f', "FILE", "The ARM deployment template.", false, true},
                  ParametersOpt(),
                  {"name", 'n', "NAME", "Deployment name (default: the file's base name)."},
                  ApiVersionOpt()},
      .examples = {"imagesmith deployment group create -g images --template-file azuredeploy.json "
                   "--parameters @azuredeploy.parameters.json --parameters imageName=web"},
      .run = RunDeploymentCreate,
  });
  registry.AddGroup("internal", "Commands imagesmith runs itself; not for direct use.");
  registry.Add(CommandSpec{
      .path = "internal worker",
      .summary = "Run queued durable operations (started by --no-wait without a server).",
      .description = "Claims queued operations, and those whose worker died, one at a time and\n"
                     "runs them (doc/operations.md). With --exit-when-idle it exits when none\n"
                     "is left; otherwise it runs until SIGTERM.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {{"exit-when-idle", 0, "", "Exit when no operation is left to claim."}},
      .examples = {},
      .run = RunInternalWorker,
  });
  registry.Add(CommandSpec{
      .path = "internal put-tree",
      .summary = "Store a file tree as a store image (run by builds in their mount namespace).",
      .description = "Puts TREE into the store at --store in --region with the meta document in\n"
                     "--meta-file, and writes {image, newObjects, newBytes, reusedObjects} to\n"
                     "--result-file. Builds run it where the image's overlay layers are mounted.",
      .args_usage = "TREE",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {{"store", 0, "DIR", "The store directory.", false, true},
                  {"region", 0, "REGION", "The region to store into.", false, true},
                  {"meta-file", 0, "FILE", "The image's meta document (JSON).", false, true},
                  {"result-file", 0, "FILE", "Where to write the result (JSON).", false, true}},
      .examples = {},
      .run = RunInternalPutTree,
  });
}

}  // namespace imagesmith::cli
