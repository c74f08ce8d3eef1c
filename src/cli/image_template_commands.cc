// imagesmith image-template ... and imagesmith build: image templates as
// resources (Microsoft.VirtualMachineImages/imageTemplates), their runs, and
// the one-step build.
//
// A template resource keeps the normalised template; its properties carry
// Azure's provisioningState and lastRunStatus, plus an "imagesmith" object
// with what a local run needs (the template's directory for relative URIs,
// the current run, the previous run's cache keys). Each run has a directory
// under DATA/runs/ with customization.log and the disk.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "base/process.h"
#include "base/random.h"
#include "base/strings.h"
#include "builder/pipeline.h"
#include "builder/run_log.h"
#include "builder/staging.h"
#include "cli/command.h"
#include "cli/data.h"
#include "cli/image_template_ops.h"
#include "cli/template_input.h"
#include "meta/scopes.h"
#include "store/store.h"
#include "template/parser.h"

namespace imagesmith::cli {
namespace {

constexpr const char kTemplateType[] = "Microsoft.VirtualMachineImages/imageTemplates";
constexpr const char kNamespace[] = "Microsoft.VirtualMachineImages";

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

ResourceId TemplateId(const Data& d, const std::string& group, const std::string& name) {
  return ResourceId::ForResource(d.subscription, group, kNamespace, "imageTemplates", name);
}

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

Json NewLastRunStatus(const std::string& state, const std::string& sub_state,
                      const std::string& message, int64_t start_us, int64_t end_us) {
  Json s = Json::MakeObject();
  s.Set("startTime", Json::String(build::FormatTime(start_us)));
  s.Set("endTime", end_us > 0 ? Json::String(build::FormatTime(end_us)) : Json::Null());
  s.Set("runState", Json::String(state));
  s.Set("runSubState", Json::String(sub_state));
  s.Set("message", Json::String(message));
  return s;
}

// The resource's properties: the normalised template's plus state.
meta::Resource TemplateResource(const ResourceId& id, const tmpl::ImageTemplate& t,
                                const std::string& template_dir) {
  Json full = t.ToJson();
  meta::Resource r{id, t.location.name(), Json::MakeObject(), *full.Find("properties"), 0, 0, 0};
  if (const Json* tags = full.Find("tags")) r.tags = *tags;
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  Json ext = Json::MakeObject();
  ext.Set("template", full);
  ext.Set("templateDir", Json::String(template_dir));
  ext.Set("runCount", Json::Int(0));
  r.properties.Set("imagesmith", std::move(ext));
  return r;
}

Json& Ext(meta::Resource& r) { return *r.properties.Find("imagesmith"); }

const Json* ExtField(const meta::Resource& r, const char* name) {
  const Json* ext = r.properties.Find("imagesmith");
  return ext != nullptr && ext->is_object() ? ext->Find(name) : nullptr;
}

std::string ExtString(const meta::Resource& r, const char* name) {
  const Json* v = ExtField(r, name);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

// Whether the process that claimed the template's last run still runs (the
// pid with its start time, so a recycled pid does not count).
bool RunnerAlive(const meta::Resource& r) {
  const Json* pid = ExtField(r, "runnerPid");
  const Json* ticks = ExtField(r, "runnerStartTicks");
  if (pid == nullptr) return false;
  uint64_t start = ticks != nullptr ? static_cast<uint64_t>(ticks->AsInt64().value_or(0)) : 0;
  return ProcessAlive(static_cast<int>(pid->AsInt64().value_or(0)), start);
}

std::string LastRunState(const meta::Resource& r) {
  const Json* last = r.properties.Find("lastRunStatus");
  const Json* state = last != nullptr && last->is_object() ? last->Find("runState") : nullptr;
  return state != nullptr && state->is_string() ? state->string_value() : "";
}

// A run still recorded as Running or Canceling whose process is gone: it was
// killed (or crashed) before it could record how it ended.
bool RunAbandoned(const meta::Resource& r) {
  std::string state = LastRunState(r);
  return (state == "Running" || state == "Canceling") && !RunnerAlive(r);
}

// lastRunStatus as it really is: an abandoned run is Failed, and says why.
Json EffectiveRunStatus(const meta::Resource& r) {
  Json status = *r.properties.Find("lastRunStatus");
  if (!RunAbandoned(r)) return status;
  const Json* pid = ExtField(r, "runnerPid");
  status.Set("runState", Json::String("Failed"));
  status.Set("message",
             Json::String("the run's process (" + (pid != nullptr ? pid->number_text() : "?") +
                          ") ended without recording a result: it was killed or crashed. Its "
                          "log is in 'imagesmith image-template logs -g " +
                          r.id.resource_group() + " -n " + r.id.name() +
                          "'; start a new run with 'imagesmith image-template run -g " +
                          r.id.resource_group() + " -n " + r.id.name() + "'"));
  return status;
}

// Azure's shape for show/list: the resource, without the internal extension.
Json ShowJson(const meta::Resource& r) {
  Json j = r.ToJson();
  const Json& props = *j.Find("properties");
  Json public_props = Json::MakeObject();
  for (const JsonMember& m : props.object_items()) {
    if (m.key == "imagesmith") continue;
    public_props.Set(m.key, m.key == "lastRunStatus" ? EffectiveRunStatus(r) : m.value);
  }
  if (const Json* last = ExtField(r, "lastRun"); last != nullptr) {
    public_props.Set("lastRun", *last);
  }
  j.Set("properties", public_props);
  return j;
}

StatusOr<meta::Resource> GetTemplate(meta::Transaction& txn, const Data& d,
                                     const std::string& group, const std::string& name) {
  RETURN_IF_ERROR(meta::GetGroup(txn, d.Group(group)).status());
  auto r = txn.Get(TemplateId(d, group, name));
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("image template '" + name + "' was not found in resource group '" + group +
                         "'; create it with 'imagesmith image-template create -g " + group +
                         " -n " + name + " --image-template FILE'");
  }
  return r;
}

std::string NewRunId(Env& env) {
  std::string t = build::FormatTime(env.NowMicros());
  std::string id;
  for (char c : t.substr(0, 19)) {
    if (c != '-' && c != ':') id.push_back(c);
  }
  return id + "Z-" + RandomHex(6);
}

// Runs the template `id` now, in the foreground. Prints the final resource.
// The staging area's storage account: one per template, named from the
// template's ID (Azure's 3-24 lowercase letters and digits).
std::string StagingAccountName(const ResourceId& template_id) {
  return "imgsmith" + Sha256Of(AsciiToLower(template_id.ToString())).ToHex().substr(0, 16);
}

std::string StagingDir(const Data& data, const build::StagingGroup& g,
                       const ResourceId& template_id) {
  return data.dir + "/staging/" + AsciiToLower(g.id.resource_group()) + "/" +
         StagingAccountName(template_id) + "/vhds";
}

// The storage account resource that stands for the staged VHDs in the
// staging group (so the group is not empty while they exist).
Status RecordStagingAccount(meta::Transaction& txn, const build::StagingGroup& g,
                            const ResourceId& template_id, const std::string& dir) {
  ResourceId acct =
      ResourceId::ForResource(g.id.subscription(), g.id.resource_group(), "Microsoft.Storage",
                              "storageAccounts", StagingAccountName(template_id));
  ASSIGN_OR_RETURN(bool exists, txn.Exists(acct));
  if (exists) return Status::Ok();
  ASSIGN_OR_RETURN(meta::Resource group, txn.Get(g.id));
  meta::Resource r{acct, group.location, Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
  r.properties.Set("path", Json::String(Dirname(dir)));
  r.properties.Set("provisioningState", Json::String("Succeeded"));
  return txn.Create(r);
}

int RunTemplate(CommandContext& ctx, Data& data, const ResourceId& id, bool use_cache) {
  // Opened before the run is claimed, so a failure here leaves no run behind.
  auto store = store::Store::Open(*ctx.env, data.dir + "/store");
  if (!store.ok()) return ReportError(store.status(), ctx);
  auto self = SelfExePath();
  if (!self.ok()) return ReportError(self.status(), ctx);
  // Claim the template for this run.
  std::string run_id = NewRunId(*ctx.env);
  std::string run_dir = data.dir + "/runs/" +
                        Sha256Of(AsciiToLower(id.ToString())).ToHex().substr(0, 16) + "/" + run_id;
  int64_t start = ctx.env->NowMicros();
  std::optional<tmpl::ImageTemplate> t;
  std::string template_dir;
  std::vector<build::StepRecord> previous;
  std::optional<build::StagingGroup> staging;
  std::string abandoned_dir;  // the work of a run that was killed
  Status claimed = data.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    if (const Json* sg = ExtField(r, "staging")) {
      ASSIGN_OR_RETURN(staging, build::StagingGroup::FromJson(*sg));
    }
    std::string state = LastRunState(r);
    if ((state == "Running" || state == "Canceling") && RunnerAlive(r)) {
      return FailedPreconditionError("image template '" + id.name() +
                                     "' is already running (process " +
                                     ExtField(r, "runnerPid")->number_text() +
                                     "); wait for it or cancel it with 'imagesmith "
                                     "image-template cancel -g " +
                                     id.resource_group() + " -n " + id.name() + "'");
    }
    if (RunAbandoned(r)) abandoned_dir = ExtString(r, "currentRunDir");
    tmpl::ParseResult parsed = tmpl::ParseTemplate(ExtField(r, "template")->Dump(-1));
    if (!parsed.ok())
      return DataLossError("the stored template of " + id.ToString() + " is damaged");
    t = std::move(parsed.value);
    template_dir = ExtString(r, "templateDir");
    if (const Json* steps = ExtField(r, "lastSteps"); steps != nullptr && steps->is_array()) {
      for (const Json& s : steps->array_items()) previous.push_back(build::StepRecord::FromJson(s));
    }
    r.properties.Set("lastRunStatus", NewLastRunStatus("Running", "Queued", "", start, 0));
    Json& ext = Ext(r);
    ext.Set("runnerPid", Json::Int(::getpid()));
    ext.Set("runnerStartTicks", Json::Int(static_cast<int64_t>(ProcessStartTicks(::getpid()))));
    ext.Set("currentRunDir", Json::String(run_dir));
    const Json* count = ext.Find("runCount");
    ext.Set("runCount", Json::Int((count != nullptr ? count->AsInt64().value_or(0) : 0) + 1));
    return txn.Replace(r);
  });
  if (!claimed.ok()) return ReportError(claimed, ctx);
  // A killed run leaves its workspace (layers of the image tree, the disk
  // being written); its log and finished disk stay for inspection.
  if (!abandoned_dir.empty() && ctx.env->FileExists(abandoned_dir + "/work")) {
    (void)ctx.env->RemoveAll(abandoned_dir + "/work");
  }
  Status made = ctx.env->CreateDirs(run_dir);
  if (!made.ok()) return ReportError(made, ctx);

  bool show_progress = ctx.stderr_is_tty || ctx.verbose;
  auto log =
      build::RunLog::Open(*ctx.env, run_dir + "/customization.log", [&](std::string_view line) {
        if (ctx.verbose || (show_progress && line.find("] ==== ") != std::string::npos)) {
          *ctx.err << line << "\n";
        }
      });
  if (!log.ok()) return ReportError(log.status(), ctx);
  if (show_progress)
    *ctx.err << "imagesmith: run " << run_id << ", log: " << (*log)->path() << "\n";

  // Cancel: Ctrl-C / SIGTERM, or 'image-template cancel' from another shell
  // (which leaves a file in the run directory).
  std::atomic<bool> cancel{false};
  std::atomic<bool> done{false};
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::thread watcher([&] {
    while (!done.load()) {
      if (g_interrupted.load() || ctx.env->FileExists(run_dir + "/cancel-requested")) {
        cancel.store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  // The store for ManagedImage/SharedImage targets and store sources, and
  // the staging area for VHDs without a uri.
  build::PublishContext publish{data.meta.get(), store->get(), data.dir + "/store",
                                *self,           id,           t->location};
  build::BuildOptions opts;
  opts.publish = &publish;
  if (staging.has_value()) opts.staging_dir = StagingDir(data, *staging, id);
  opts.template_dir = template_dir;
  opts.data_dir = data.dir;
  opts.run_dir = run_dir;
  opts.use_cache = use_cache;
  opts.cancel = &cancel;
  opts.previous_steps = previous;
  opts.on_sub_state = [&](const std::string& sub) {
    (void)data.meta->Update([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
      const Json* last = r.properties.Find("lastRunStatus");
      std::string state = last->Find("runState")->string_value();
      r.properties.Set("lastRunStatus", NewLastRunStatus(state, sub, "", start, 0));
      return txn.Replace(r);
    });
    if (show_progress) *ctx.err << "imagesmith: " << sub << "\n";
  };
  build::BuildOutcome outcome = build::RunBuild(*ctx.env, *t, opts, **log);
  done.store(true);
  watcher.join();
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);

  // errorHandling: keep the workspace of a failed customization on abort.
  bool customizer_failure =
      outcome.state != build::RunState::kSucceeded && outcome.last_sub_state == "Customizing";
  bool keep =
      customizer_failure && t->error_handling.on_customizer_error == tmpl::ErrorAction::kAbort;
  if (outcome.state == build::RunState::kCanceled) keep = false;
  if (keep) {
    (*log)->Info("errorHandling.onCustomizerError is abort: the workspace is kept at " + run_dir +
                 "/work");
    *ctx.err << "imagesmith: the workspace is kept for inspection: " << run_dir << "/work\n";
  } else {
    (void)ctx.env->RemoveAll(run_dir + "/work");
    (void)ctx.env->RemoveAll(run_dir + "/inputs");
  }

  Json result;
  Status recorded = data.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
    r.properties.Set("lastRunStatus",
                     NewLastRunStatus(build::RunStateName(outcome.state), outcome.last_sub_state,
                                      outcome.message, start, ctx.env->NowMicros()));
    Json& ext = Ext(r);
    ext.Set("runnerPid", Json::Int(0));
    Json steps = Json::MakeArray();
    for (const auto& s : outcome.steps) steps.Append(s.ToJson());
    if (!outcome.steps.empty() || outcome.state == build::RunState::kSucceeded) {
      ext.Set("lastSteps", std::move(steps));
    }
    Json last = Json::MakeObject();
    last.Set("runId", Json::String(run_id));
    last.Set("runDirectory", Json::String(run_dir));
    last.Set("customizationLog", Json::String(run_dir + "/customization.log"));
    last.Set("source", Json::String(outcome.source_urn));
    last.Set("hyperVGeneration", Json::String(outcome.hyper_v_generation));
    if (!outcome.disk_path.empty()) {
      last.Set("disk", Json::String(outcome.disk_path));
      last.Set("diskSizeBytes", Json::Int(static_cast<int64_t>(outcome.disk_size_bytes)));
    }
    last.Set("cacheHits", Json::Int(outcome.cache_hits));
    last.Set("cacheMisses", Json::Int(outcome.cache_misses));
    if (keep) last.Set("workspace", Json::String(run_dir + "/work"));
    if (!outcome.stored_image.empty()) {
      last.Set("storedImage", Json::String(outcome.stored_image));
    }
    ext.Set("lastRun", last);
    RETURN_IF_ERROR(txn.Replace(r));
    // One runOutputs resource per distribution target, as Azure keeps them.
    for (const build::RunOutput& o : outcome.outputs) {
      ResourceId oid = id.Child("runOutputs", o.run_output_name);
      meta::Resource out{oid, "", Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
      if (!o.artifact_uri.empty()) out.properties.Set("artifactUri", Json::String(o.artifact_uri));
      if (!o.artifact_id.empty()) out.properties.Set("artifactId", Json::String(o.artifact_id));
      out.properties.Set("provisioningState", Json::String(o.provisioning_state));
      if (!o.error.empty()) out.properties.Set("error", Json::String(o.error));
      ASSIGN_OR_RETURN(bool exists, txn.Exists(oid));
      RETURN_IF_ERROR(exists ? txn.Replace(out) : txn.Create(out));
    }
    if (staging.has_value() && !opts.staging_dir.empty() &&
        ctx.env->IsDirectory(opts.staging_dir)) {
      RETURN_IF_ERROR(RecordStagingAccount(txn, *staging, id, opts.staging_dir));
    }
    result = ShowJson(r);
    return Status::Ok();
  });
  if (!recorded.ok()) return ReportError(recorded, ctx);
  PrintResult(result, ctx);
  switch (outcome.state) {
    case build::RunState::kSucceeded:
      return 0;
    case build::RunState::kCanceled:
      *ctx.err << "ERROR: the run was canceled\n";
      return 6;
    default:
      *ctx.err << "ERROR: the run " << build::RunStateName(outcome.state) << ": " << outcome.message
               << "\nThe log is " << run_dir << "/customization.log ('imagesmith image-template "
               << "logs -g " << id.resource_group() << " -n " << id.name() << "').\n";
      return outcome.message.find("buildTimeoutInMinutes") != std::string::npos ? 6 : 1;
  }
}

// Creates the template, or (replace) updates an idle one's definition. A new
// template gets its staging resource group (builder/staging.h).
Status PutTemplate(Data& data, const ResourceId& id, const tmpl::ImageTemplate& t,
                   const std::string& template_dir, bool replace) {
  RETURN_IF_ERROR(ValidateTemplateName(id.name()));
  RETURN_IF_ERROR(build::Precheck(t));
  const std::string guid = NewUuidV4();
  return data.meta->Update([&](meta::Transaction& txn) {
    RETURN_IF_ERROR(meta::GetGroup(txn, id.Parent()).status());
    meta::Resource fresh = TemplateResource(id, t, template_dir);
    auto existing = txn.Get(id);
    if (existing.ok()) {
      if (!replace) {
        return AlreadyExistsError("image template '" + id.name() +
                                  "' already exists in resource group '" + id.resource_group() +
                                  "'; delete it first, or use 'imagesmith build'");
      }
      // Keep run history, cache records and the staging group; replace the definition.
      const Json* last = existing->properties.Find("lastRunStatus");
      if (last != nullptr) fresh.properties.Set("lastRunStatus", *last);
      if (const Json* sg = existing->properties.Find("exactStagingResourceGroup")) {
        fresh.properties.Set("exactStagingResourceGroup", *sg);
      }
      Json& ext = Ext(fresh);
      for (const char* k :
           {"lastSteps", "lastRun", "runCount", "runnerPid", "currentRunDir", "staging"}) {
        if (const Json* v = ExtField(*existing, k)) ext.Set(k, *v);
      }
      if (ExtField(*existing, "staging") == nullptr) {
        ASSIGN_OR_RETURN(
            build::StagingGroup g,
            build::PrepareStagingGroup(txn, id, t.location, t.staging_resource_group, guid));
        fresh.properties.Set("exactStagingResourceGroup", Json::String(g.id.ToString()));
        ext.Set("staging", g.ToJson());
      }
      return txn.Replace(fresh);
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    ASSIGN_OR_RETURN(
        build::StagingGroup g,
        build::PrepareStagingGroup(txn, id, t.location, t.staging_resource_group, guid));
    fresh.properties.Set("exactStagingResourceGroup", Json::String(g.id.ToString()));
    Ext(fresh).Set("staging", g.ToJson());
    return txn.Create(fresh);
  });
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto loaded =
      LoadOneTemplate(args, args.Get("image-template"), ctx, &*data, args.Get("resource-group"));
  if (!loaded) return 1;
  const tmpl::ImageTemplate* t = &loaded->value;
  ResourceId id = TemplateId(*data, args.Get("resource-group"), args.Get("name"));
  Status s = PutTemplate(*data, id, *t, AbsoluteDir(args.Get("image-template")), false);
  if (!s.ok()) return ReportError(s, ctx);
  Json out;
  Status r = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource res, txn.Get(id));
    out = ShowJson(res);
    return Status::Ok();
  });
  if (!r.ok()) return ReportError(r, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunRun(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  ResourceId id = TemplateId(*data, args.Get("resource-group"), args.Get("name"));
  Status exists = data->meta->Read([&](meta::Transaction& txn) {
    return GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")).status();
  });
  if (!exists.ok()) return ReportError(exists, ctx);
  return RunTemplate(ctx, *data, id, !args.Has("no-cache"));
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out;
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r,
                     GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")));
    out = ShowJson(r);
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out = Json::MakeArray();
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ResourceId scope = ResourceId::ForSubscription(data->subscription);
    if (args.Has("resource-group")) {
      ASSIGN_OR_RETURN(meta::Resource g,
                       meta::GetGroup(txn, data->Group(args.Get("resource-group"))));
      scope = g.id;
    }
    ASSIGN_OR_RETURN(auto all, txn.ListByType(scope, kTemplateType));
    for (const meta::Resource& r : all) {
      Json row = ShowJson(r);
      // Flattened state for -o table, as az shows it.
      if (r.properties.Find("lastRunStatus") != nullptr) {
        Json last = EffectiveRunStatus(r);
        row.Set("runState", *last.Find("runState"));
        row.Set("runSubState", *last.Find("runSubState"));
      }
      out.Append(std::move(row));
    }
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunCancel(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Status s = data->meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r,
                     GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")));
    const Json* last = r.properties.Find("lastRunStatus");
    bool running = LastRunState(r) == "Running" && RunnerAlive(r);
    if (!running) {
      return FailedPreconditionError("image template '" + r.id.name() + "' has no run in progress");
    }
    std::string dir = ExtString(r, "currentRunDir");
    RETURN_IF_ERROR(ctx.env->WriteFileAtomic(dir + "/cancel-requested", "cancel\n"));
    Json status = *last;
    status.Set("runState", Json::String("Canceling"));
    r.properties.Set("lastRunStatus", status);
    return txn.Replace(r);
  });
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

int RunLogs(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string path;
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r,
                     GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")));
    std::string dir = ExtString(r, "currentRunDir");
    if (dir.empty()) return NotFoundError("image template '" + r.id.name() + "' has not run yet");
    path = dir + "/customization.log";
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  auto text = ctx.env->ReadFile(path, 1ull << 30);
  if (!text.ok()) return ReportError(text.status(), ctx);
  *ctx.out << *text;
  return 0;
}

int RunShowRuns(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out = Json::MakeArray();
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r,
                     GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")));
    ASSIGN_OR_RETURN(auto outputs,
                     txn.ListChildren(r.id, std::string(kTemplateType) + "/runOutputs"));
    for (const meta::Resource& o : outputs) {
      if (args.Has("output-name") && !EqualsIgnoreCase(o.id.name(), args.Get("output-name"))) {
        continue;
      }
      out.Append(o.ToJson());
    }
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  if (args.Has("output-name")) {
    if (out.array_items().empty()) {
      return ReportError(
          NotFoundError("run output '" + args.Get("output-name") + "' was not found"), ctx);
    }
    PrintResult(out.array_items()[0], ctx);
  } else {
    PrintResult(out, ctx);
  }
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string runs_dir;
  std::vector<std::string> staged_files;
  Status s = data->meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r,
                     GetTemplate(txn, *data, args.Get("resource-group"), args.Get("name")));
    std::string state = LastRunState(r);
    if ((state == "Running" || state == "Canceling") && RunnerAlive(r)) {
      return FailedPreconditionError("image template '" + r.id.name() +
                                     "' is running; cancel it first");
    }
    ASSIGN_OR_RETURN(auto outputs,
                     txn.ListChildren(r.id, std::string(kTemplateType) + "/runOutputs"));
    for (const meta::Resource& o : outputs) RETURN_IF_ERROR(txn.Delete(o.id));
    std::string dir = ExtString(r, "currentRunDir");
    if (!dir.empty()) runs_dir = Dirname(dir);
    RETURN_IF_ERROR(txn.Delete(r.id));
    if (const Json* sg = ExtField(r, "staging")) {
      ASSIGN_OR_RETURN(build::StagingGroup g, build::StagingGroup::FromJson(*sg));
      ASSIGN_OR_RETURN(staged_files, build::StagingFiles(txn, g));
      RETURN_IF_ERROR(build::ReleaseStagingGroup(txn, g, r.id));
    }
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  // The runs, their disks and VHDs in the staging area go with the template,
  // as the reference warns. Cached steps stay (imagesmith cache prune).
  if (!runs_dir.empty()) (void)ctx.env->RemoveAll(runs_dir);
  for (const std::string& f : staged_files) {
    (void)ctx.env->RemoveAll(f);
    (void)::rmdir(Dirname(f).c_str());  // the group's directory, once empty
  }
  return 0;
}

int RunBuild(const ParsedArgs& args, CommandContext& ctx) {
  std::string file = args.positionals()[0];
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
  // The default group is made on first use, in the template's region.
  if (!args.Has("resource-group")) {
    Status g = data->meta->Update([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(bool exists, txn.Exists(data->Group(group)));
      if (exists) return Status::Ok();
      return meta::CreateGroup(txn, data->subscription, group, t->location, Json::MakeObject())
          .status();
    });
    if (!g.ok()) return ReportError(g, ctx);
  }
  ResourceId id = TemplateId(*data, group, name);
  Status s = PutTemplate(*data, id, *t, AbsoluteDir(file), true);
  if (!s.ok()) return ReportError(s, ctx);
  return RunTemplate(ctx, *data, id, !args.Has("no-cache"));
}

// az deployment group create for the imageTemplates resources of an ARM
// deployment template: each is created or updated as 'image-template create'
// would, after all of them have been validated (nothing is written when one
// is invalid).
int RunDeploymentCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string group = args.Get("resource-group");
  std::string file = args.Get("template-file");
  Status exists = data->meta->Read(
      [&](meta::Transaction& txn) { return meta::GetGroup(txn, data->Group(group)).status(); });
  if (!exists.ok()) return ReportError(exists, ctx);
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
    ResourceId id = TemplateId(*data, group, t.name);
    Status s = PutTemplate(*data, id, t.value, AbsoluteDir(file), true);
    if (!s.ok()) return ReportError(s.WithContext("deploying " + t.path), ctx);
    Json r = Json::MakeObject();
    r.Set("id", Json::String(id.ToString()));
    r.Set("resourceGroup", Json::String(group));
    resources.Append(std::move(r));
  }
  Json out = Json::MakeObject();
  out.Set("id", Json::String(data->Group(group).ToString() +
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

Status Put(Data& data, const std::string& group, const std::string& name,
           const tmpl::ImageTemplate& t, const std::string& template_dir, bool replace) {
  return PutTemplate(data, TemplateId(data, group, name), t, template_dir, replace);
}

StatusOr<Stored> GetStored(Data& data, const std::string& group, const std::string& name) {
  Stored out;
  RETURN_IF_ERROR(data.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, data, group, name));
    const Json* t = ExtField(r, "template");
    if (t == nullptr)
      return DataLossError("the stored template of " + r.id.ToString() + " is damaged");
    out.template_json = *t;
    out.template_dir = ExtString(r, "templateDir");
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::string> RunState(Data& data, const std::string& group, const std::string& name) {
  std::string state;
  RETURN_IF_ERROR(data.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, data, group, name));
    if (r.properties.Find("lastRunStatus") != nullptr) {
      const Json* s = EffectiveRunStatus(r).Find("runState");
      if (s != nullptr && s->is_string()) state = s->string_value();
    }
    return Status::Ok();
  }));
  return state;
}

}  // namespace itops

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
                      {GroupOpt(), NameOpt(), NoCacheOpt()},
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
