#include "api/template_provider.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "api/arm_error.h"
#include "api/etag.h"
#include "api/template_internal.h"
#include "auth/authorize.h"
#include "base/random.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "builder/pipeline.h"
#include "builder/run_log.h"
#include "meta/scopes.h"
#include "template/azure_compat.h"
#include "template/parser.h"

namespace imagesmith::api {

namespace internal {

Json& Ext(meta::Resource& r) {
  if (r.properties.Find("imagesmith") == nullptr)
    r.properties.Set("imagesmith", Json::MakeObject());
  return *r.properties.Find("imagesmith");
}

const Json* ExtField(const meta::Resource& r, const char* name) {
  const Json* ext = r.properties.Find("imagesmith");
  return ext != nullptr && ext->is_object() ? ext->Find(name) : nullptr;
}

std::string ExtString(const meta::Resource& r, const char* name) {
  const Json* v = ExtField(r, name);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

std::string LastRunState(const meta::Resource& r) {
  const Json* last = r.properties.Find("lastRunStatus");
  const Json* state = last != nullptr && last->is_object() ? last->Find("runState") : nullptr;
  return state != nullptr && state->is_string() ? state->string_value() : "";
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

std::optional<Operation> RunOperation(meta::Transaction& txn, const meta::Resource& r) {
  std::string id = ExtString(r, "operationId");
  if (id.empty()) return std::nullopt;
  auto row = txn.GetOperation(id);
  if (!row.ok()) return std::nullopt;
  return OperationFromRow(*row);
}

bool RunAbandoned(meta::Transaction& txn, const meta::Resource& r, int64_t now_us) {
  std::string state = LastRunState(r);
  if (state != "Running" && state != "Canceling") return false;
  std::optional<Operation> op = RunOperation(txn, r);
  if (!op.has_value()) return true;  // nothing can finish it
  return op->done() || Operations::Abandoned(*op, now_us);
}

std::string AbandonedMessage(const meta::Resource& r, const std::string& why) {
  return why + ". Its log is in 'imagesmith image-template logs -g " + r.id.resource_group() +
         " -n " + r.id.name() + "'; start a new run with 'imagesmith image-template run -g " +
         r.id.resource_group() + " -n " + r.id.name() + "'";
}

// The staging area's storage account: one per template, named from the
// template's ID (Azure's 3-24 lowercase letters and digits).
std::string StagingAccountName(const ResourceId& template_id) {
  return "imgsmith" + Sha256Of(AsciiToLower(template_id.ToString())).ToHex().substr(0, 16);
}

std::string StagingDir(const std::string& data_dir, const build::StagingGroup& g,
                       const ResourceId& template_id) {
  return data_dir + "/staging/" + AsciiToLower(g.id.resource_group()) + "/" +
         StagingAccountName(template_id) + "/vhds";
}

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

// lastRunStatus as it really is: a run whose worker died is Failed, and
// says why (until the operation is reaped and the record itself says so).
Json EffectiveRunStatus(meta::Transaction& txn, const meta::Resource& r, int64_t now_us) {
  Json status = *r.properties.Find("lastRunStatus");
  if (!RunAbandoned(txn, r, now_us)) return status;
  std::optional<Operation> op = RunOperation(txn, r);
  std::string why = "the run's worker";
  if (op.has_value() && !op->owner.empty()) why += " " + op->owner;
  if (op.has_value()) why += " (operation " + op->id + ")";
  why += " stopped without recording a result: it was killed or crashed";
  if (op.has_value() && op->error.has_value()) why = op->error->message;
  status.Set("runState", Json::String("Failed"));
  status.Set("message", Json::String(AbandonedMessage(r, why)));
  return status;
}

Json ShowJson(meta::Transaction& txn, const meta::Resource& r, int64_t now_us) {
  Json j = r.ToJson();
  const Json& props = *j.Find("properties");
  Json public_props = Json::MakeObject();
  for (const JsonMember& m : props.object_items()) {
    if (m.key == "imagesmith") continue;
    public_props.Set(m.key,
                     m.key == "lastRunStatus" ? EffectiveRunStatus(txn, r, now_us) : m.value);
  }
  if (const Json* last = ExtField(r, "lastRun"); last != nullptr) {
    public_props.Set("lastRun", *last);
  }
  j.Set("properties", public_props);
  return j;
}

}  // namespace internal

using namespace internal;  // NOLINT: this file's own helpers

namespace {

void EraseMember(Json& object, std::string_view key) {
  auto& items = object.object_items();
  std::erase_if(items, [&](const JsonMember& m) { return m.key == key; });
}

constexpr char kNamespace[] = "Microsoft.VirtualMachineImages";
constexpr char kWrite[] = "Microsoft.VirtualMachineImages/imageTemplates/write";
constexpr char kRead[] = "Microsoft.VirtualMachineImages/imageTemplates/read";
constexpr char kDeleteAction[] = "Microsoft.VirtualMachineImages/imageTemplates/delete";
constexpr char kRunAction[] = "Microsoft.VirtualMachineImages/imageTemplates/run/action";
constexpr char kCancelAction[] = "Microsoft.VirtualMachineImages/imageTemplates/cancel/action";

Status ValidateTemplateName(const std::string& name) {
  if (!tmpl::IsValidTemplateName(name)) {
    return ArmStatus(StatusCode::kInvalidArgument, "InvalidResourceName",
                     "image template name " + QuoteForMessage(name) +
                         " must be 1-64 letters, digits, '-', '_' or '.', starting with a "
                         "letter or digit");
  }
  return Status::Ok();
}

StatusOr<meta::Resource> GetTemplate(meta::Transaction& txn, const ResourceId& id) {
  RETURN_IF_ERROR(meta::GetGroup(txn, id.Parent()).status());
  auto r = txn.Get(id);
  if (r.status().code() == StatusCode::kNotFound) {
    return NotFoundError("image template '" + id.name() + "' was not found in resource group '" +
                         id.resource_group() + "'; create it with 'imagesmith image-template " +
                         "create -g " + id.resource_group() + " -n " + id.name() +
                         " --image-template FILE'");
  }
  return r;
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

// Fails every abandoned run operation among `templates` (their worker died),
// so their records say Failed and what they left is cleaned up.
void ReapAbandoned(Services& services, const std::vector<std::string>& operation_ids) {
  for (const std::string& id : operation_ids) (void)services.operations->Reap(id);
}

std::string NewRunId(Env& env) {
  std::string t = build::FormatTime(env.NowMicros());
  std::string id;
  for (char c : t.substr(0, 19)) {
    if (c != '-' && c != ':') id.push_back(c);
  }
  return id + "Z-" + RandomHex(6);
}

class ImageTemplateProvider final : public Provider {
 public:
  std::string_view Type() const override { return kTemplateType; }
  std::vector<std::string> ApiVersions() const override { return tmpl::KnownApiVersions(); }

  StatusOr<Response> Put(Services& s, const Request& req) override {
    const ResourceId& id = req.id;
    RETURN_IF_ERROR(ValidateTemplateName(id.name()));
    if (!req.body.is_object()) {
      return ArmStatus(StatusCode::kInvalidArgument, "InvalidRequestContent",
                       "the request body must be an image template (a JSON object)");
    }
    Json body = req.body;
    std::string template_dir;
    if (const Json* ext = body.Find("imagesmith"); ext != nullptr) {
      if (const Json* d = ext->Find("templateDir"); d != nullptr && d->is_string()) {
        template_dir = d->string_value();
      }
      EraseMember(body, "imagesmith");
    }
    tmpl::ParseOptions po;
    po.name = id.name();
    po.default_api_version =
        req.api_version.empty() ? tmpl::KnownApiVersions().back() : req.api_version;
    tmpl::ParseResult parsed = tmpl::ParseTemplateJson(body, po);
    if (!parsed.ok()) {
      std::string message = "the image template is invalid: ";
      std::string target;
      bool first = true;
      for (const tmpl::Diagnostic& d : parsed.diagnostics) {
        if (d.severity != tmpl::Severity::kError) continue;
        if (!first) message += "; ";
        message += (d.path.empty() ? "" : d.path + ": ") + d.message;
        if (first) target = d.path;
        first = false;
      }
      (void)target;
      return ArmStatus(StatusCode::kInvalidArgument, "InvalidRequestContent", message);
    }
    const tmpl::ImageTemplate& t = *parsed.value;
    RETURN_IF_ERROR(build::Precheck(t));
    // A build reads and writes the files a template names on this host with
    // imagesmith's rights, so only the data directory's owner may name them
    // (others use https:// URLs, as in Azure).
    if (!req.caller.principal.is_owner) {
      if (!template_dir.empty()) {
        return ArmStatus(StatusCode::kPermissionDenied, "AuthorizationFailed",
                         "imagesmith.templateDir: only the data directory's owner may resolve "
                         "template paths on the imagesmith host",
                         "imagesmith.templateDir");
      }
      auto local = tmpl::HostPathReferences(t);
      if (!local.empty()) {
        return ArmStatus(
            StatusCode::kPermissionDenied, "AuthorizationFailed",
            local[0].first + ": '" + local[0].second +
                "' is a file on the imagesmith host; only the data directory's owner may name "
                "host files in a template. Use an https:// URL (with sha256Checksum)",
            local[0].first);
      }
    }
    const std::string guid = NewUuidV4();
    Json out;
    std::string etag;
    bool created = false;
    RETURN_IF_TXN_ERROR(s.meta->Update([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kWrite, id));
      RETURN_IF_ERROR(meta::GetGroup(txn, id.Parent()).status());
      meta::Resource fresh = TemplateResource(id, t, template_dir);
      auto existing = txn.Get(id);
      if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
        return existing.status();
      }
      if (existing.ok() && req.if_none_match == "*") {
        return ArmStatus(StatusCode::kAborted, "PreconditionFailed",
                         "image template '" + id.name() + "' already exists in resource group '" +
                             id.resource_group() + "'; delete it first, or use 'imagesmith build'");
      }
      RETURN_IF_ERROR(CheckPreconditions(req, existing.ok() ? &*existing : nullptr));
      if (existing.ok()) {
        // Keep run history, cache records and the staging group; replace the definition.
        if (const Json* last = existing->properties.Find("lastRunStatus")) {
          fresh.properties.Set("lastRunStatus", *last);
        }
        if (const Json* sg = existing->properties.Find("exactStagingResourceGroup")) {
          fresh.properties.Set("exactStagingResourceGroup", *sg);
        }
        Json& ext = Ext(fresh);
        for (const char* k : {"lastSteps", "lastRun", "runHistory", "runCount", "operationId",
                              "currentRunDir", "staging"}) {
          if (const Json* v = ExtField(*existing, k)) ext.Set(k, *v);
        }
        if (ExtField(*existing, "staging") == nullptr) {
          ASSIGN_OR_RETURN(
              build::StagingGroup g,
              build::PrepareStagingGroup(txn, id, t.location, t.staging_resource_group, guid));
          fresh.properties.Set("exactStagingResourceGroup", Json::String(g.id.ToString()));
          ext.Set("staging", g.ToJson());
        }
        RETURN_IF_ERROR(txn.Replace(fresh));
      } else {
        ASSIGN_OR_RETURN(
            build::StagingGroup g,
            build::PrepareStagingGroup(txn, id, t.location, t.staging_resource_group, guid));
        fresh.properties.Set("exactStagingResourceGroup", Json::String(g.id.ToString()));
        Ext(fresh).Set("staging", g.ToJson());
        RETURN_IF_ERROR(txn.Create(fresh));
        created = true;
      }
      out = ShowJson(txn, fresh, s.env->NowMicros());
      etag = EtagOf(fresh);
      return Status::Ok();
    }));
    Response resp;
    resp.http_status = created ? 201 : 200;
    resp.body = std::move(out);
    resp.etag = etag;
    return resp;
  }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    Response resp;
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<std::string> reap;
      RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
        RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, req.id));
        ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, req.id));
        int64_t now = s.env->NowMicros();
        if (pass == 0 && RunAbandoned(txn, r, now) && RunOperation(txn, r).has_value()) {
          reap.push_back(ExtString(r, "operationId"));
        }
        resp.body = ShowJson(txn, r, now);
        resp.etag = EtagOf(r);
        return Status::Ok();
      }));
      if (reap.empty()) break;
      ReapAbandoned(s, reap);
    }
    return resp;
  }

  StatusOr<Response> List(Services& s, const Request& req) override {
    Response resp;
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<std::string> reap;
      Json value = Json::MakeArray();
      RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
        RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, req.id));
        if (req.id.kind() == ResourceId::Kind::kResourceGroup) {
          RETURN_IF_ERROR(meta::GetGroup(txn, req.id).status());
        }
        ASSIGN_OR_RETURN(auto all, txn.ListByType(req.id, kTemplateType));
        int64_t now = s.env->NowMicros();
        for (const meta::Resource& r : all) {
          if (pass == 0 && RunAbandoned(txn, r, now) && RunOperation(txn, r).has_value()) {
            reap.push_back(ExtString(r, "operationId"));
          }
          value.Append(ShowJson(txn, r, now));
        }
        return Status::Ok();
      }));
      resp.body = Json::MakeObject();
      resp.body.Set("value", std::move(value));
      if (reap.empty()) break;
      ReapAbandoned(s, reap);
    }
    return resp;
  }

  StatusOr<Response> Delete(Services& s, const Request& req) override {
    std::string runs_dir;
    std::vector<std::string> staged_files;
    RETURN_IF_TXN_ERROR(s.meta->Update([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kDeleteAction, req.id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, req.id));
      RETURN_IF_ERROR(CheckPreconditions(req, &r));
      std::string state = LastRunState(r);
      if ((state == "Running" || state == "Canceling") &&
          !RunAbandoned(txn, r, s.env->NowMicros())) {
        return FailedPreconditionError("image template '" + r.id.name() +
                                       "' is running; cancel it first");
      }
      ASSIGN_OR_RETURN(auto outputs, txn.ListChildren(r.id, kRunOutputType));
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
    }));
    // The runs, their disks and VHDs in the staging area go with the
    // template, as the reference warns. Cached steps stay (cache prune).
    if (!runs_dir.empty()) (void)s.env->RemoveAll(runs_dir);
    for (const std::string& f : staged_files) {
      (void)s.env->RemoveAll(f);
      (void)::rmdir(Dirname(f).c_str());  // the group's directory, once empty
    }
    Response resp;
    resp.http_status = 200;
    resp.body = Json::Null();
    return resp;
  }

  StatusOr<Response> Action(Services& s, const Request& req) override {
    if (EqualsIgnoreCase(req.action, "run")) return Run(s, req);
    if (EqualsIgnoreCase(req.action, "cancel")) return Cancel(s, req);
    if (EqualsIgnoreCase(req.action, "validate")) return Validate(s, req);
    return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                     "image templates have no action '" + req.action + "' (run, cancel, validate)");
  }

 private:
  // POST {template}/validate with a template as the body: every problem the
  // PUT would refuse it for, without storing anything. imagesmith's own (the
  // web console checks a template while it is typed). 200 {"valid",
  // "diagnostics": [{"severity", "path", "message"}]}. Needs the write action
  // on the template's ID (who may not create it has nothing to check).
  StatusOr<Response> Validate(Services& s, const Request& req) {
    const ResourceId& id = req.id;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      return auth::Authorize(txn, req.caller.principal, kWrite, id);
    }));
    Json diagnostics = Json::MakeArray();
    bool valid = true;
    auto add = [&](const std::string& severity, const std::string& path,
                   const std::string& message) {
      Json d = Json::MakeObject();
      d.Set("severity", Json::String(severity));
      d.Set("path", Json::String(path));
      d.Set("message", Json::String(message));
      diagnostics.Append(std::move(d));
      if (severity == "error") valid = false;
    };
    if (Status name = ValidateTemplateName(id.name()); !name.ok()) {
      add("error", "name", ToArmError(name).message);
    }
    if (!req.body.is_object()) {
      add("error", "", "the template must be a JSON object");
    } else {
      Json body = req.body;
      EraseMember(body, "imagesmith");
      tmpl::ParseOptions po;
      po.name = id.name();
      po.default_api_version =
          req.api_version.empty() ? tmpl::KnownApiVersions().back() : req.api_version;
      tmpl::ParseResult parsed = tmpl::ParseTemplateJson(body, po);
      for (const tmpl::Diagnostic& d : parsed.diagnostics) {
        add(d.severity == tmpl::Severity::kError ? "error" : "warning", d.path, d.message);
      }
      if (parsed.ok()) {
        if (Status pre = build::Precheck(*parsed.value); !pre.ok()) {
          add("error", "", ToArmError(pre).message);
        }
      }
    }
    Response resp;
    resp.body = Json::MakeObject();
    resp.body.Set("valid", Json::Bool(valid));
    resp.body.Set("diagnostics", std::move(diagnostics));
    return resp;
  }

  StatusOr<Response> Run(Services& s, const Request& req) {
    const ResourceId& id = req.id;
    bool use_cache = true;
    if (req.body.is_object()) {
      if (const Json* nc = req.body.Find("noCache"); nc != nullptr && nc->is_bool()) {
        use_cache = !nc->bool_value();
      }
    }
    // A run whose worker died is failed (and cleaned up) before a new one.
    std::string dead_op;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRunAction, id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
      if (RunAbandoned(txn, r, s.env->NowMicros())) dead_op = ExtString(r, "operationId");
      return Status::Ok();
    }));
    if (!dead_op.empty()) ReapAbandoned(s, {dead_op});

    std::string run_id = NewRunId(*s.env);
    std::string run_dir = s.data_dir + "/runs/" +
                          Sha256Of(AsciiToLower(id.ToString())).ToHex().substr(0, 16) + "/" +
                          run_id;
    std::string abandoned_dir;  // the work of a run that was killed
    Operation op;
    RETURN_IF_TXN_ERROR(s.meta->Update([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRunAction, id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
      std::string state = LastRunState(r);
      int64_t now = s.env->NowMicros();
      if (state == "Running" || state == "Canceling") {
        if (!RunAbandoned(txn, r, now)) {
          std::optional<Operation> cur = RunOperation(txn, r);
          return FailedPreconditionError(
              "image template '" + id.name() + "' is already running (operation " +
              (cur ? cur->id : std::string("?")) + ", worker " +
              (cur && !cur->owner.empty() ? cur->owner : std::string("queued")) +
              "); wait for it or cancel it with 'imagesmith image-template cancel -g " +
              id.resource_group() + " -n " + id.name() + "'");
        }
        abandoned_dir = ExtString(r, "currentRunDir");
      }
      Json input = Json::MakeObject();
      input.Set("runId", Json::String(run_id));
      input.Set("runDirectory", Json::String(run_dir));
      input.Set("useCache", Json::Bool(use_cache));
      // Who started it: a template without an identity publishes as them.
      input.Set("startedBy", Json::String(req.caller.principal.object_id));
      ASSIGN_OR_RETURN(op, s.operations->StartIn(txn, kTemplateRunOperation, id, r.location, input,
                                                 /*held=*/req.wait));
      r.properties.Set("lastRunStatus", NewLastRunStatus("Running", "Queued", "", op.start_us, 0));
      Json& ext = Ext(r);
      ext.Set("operationId", Json::String(op.id));
      ext.Set("currentRunDir", Json::String(run_dir));
      EraseMember(ext, "runnerPid");
      EraseMember(ext, "runnerStartTicks");
      const Json* count = ext.Find("runCount");
      ext.Set("runCount", Json::Int((count != nullptr ? count->AsInt64().value_or(0) : 0) + 1));
      return txn.Replace(r);
    }));
    // A killed run leaves its workspace (layers of the image tree, the disk
    // being written); its log and finished disk stay for inspection.
    if (!abandoned_dir.empty() && s.env->FileExists(abandoned_dir + "/work")) {
      (void)s.env->RemoveAll(abandoned_dir + "/work");
    }
    Response resp;
    resp.operation_id = op.id;
    if (!req.wait) {
      resp.http_status = 202;
      resp.body = op.ToJson();
      return resp;
    }
    ASSIGN_OR_RETURN(Operation done, s.operations->Execute(op.id, req.progress, req.interrupt));
    (void)done;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
      resp.body = ShowJson(txn, r, s.env->NowMicros());
      resp.etag = EtagOf(r);
      return Status::Ok();
    }));
    return resp;
  }

  StatusOr<Response> Cancel(Services& s, const Request& req) {
    Response resp;
    RETURN_IF_TXN_ERROR(s.meta->Update([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kCancelAction, req.id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, req.id));
      bool running = LastRunState(r) == "Running" && !RunAbandoned(txn, r, s.env->NowMicros());
      std::optional<Operation> op = RunOperation(txn, r);
      if (!running || !op.has_value()) {
        return FailedPreconditionError("image template '" + r.id.name() +
                                       "' has no run in progress");
      }
      op->cancel_requested = true;
      meta::OperationRow row = OperationToRow(*op);
      RETURN_IF_ERROR(txn.ReplaceOperation(row));
      Json status = *r.properties.Find("lastRunStatus");
      status.Set("runState", Json::String("Canceling"));
      r.properties.Set("lastRunStatus", status);
      resp.operation_id = op->id;
      resp.body = op->ToJson();
      return txn.Replace(r);
    }));
    resp.http_status = 202;
    return resp;
  }
};

class RunOutputProvider final : public Provider {
 public:
  std::string_view Type() const override { return kRunOutputType; }
  std::vector<std::string> ApiVersions() const override { return tmpl::KnownApiVersions(); }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    Response resp;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      ResourceId tid = req.id.Parent();
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, tid));
      RETURN_IF_ERROR(GetTemplate(txn, tid).status());
      auto r = txn.Get(req.id);
      if (r.status().code() == StatusCode::kNotFound) {
        return NotFoundError("run output '" + req.id.name() + "' was not found");
      }
      RETURN_IF_ERROR(r.status());
      resp.body = r->ToJson();
      resp.etag = EtagOf(*r);
      return Status::Ok();
    }));
    return resp;
  }

  StatusOr<Response> List(Services& s, const Request& req) override {
    Response resp;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, req.id));
      RETURN_IF_ERROR(GetTemplate(txn, req.id).status());
      ASSIGN_OR_RETURN(auto outputs, txn.ListChildren(req.id, kRunOutputType));
      Json value = Json::MakeArray();
      for (const meta::Resource& o : outputs) value.Append(o.ToJson());
      resp.body = Json::MakeObject();
      resp.body.Set("value", std::move(value));
      return Status::Ok();
    }));
    return resp;
  }
};

// GET .../imageTemplates/{name}/customizationLog[?runId=R][&offset=N]: a
// piece of a run's customization.log from byte `offset`, so a client can
// follow a run while it goes (the web console polls it). Not an Azure API.
class RunLogProvider final : public Provider {
 public:
  std::string_view Type() const override { return kRunLogType; }
  std::vector<std::string> ApiVersions() const override { return tmpl::KnownApiVersions(); }

  StatusOr<Response> List(Services& s, const Request& req) override {
    const ResourceId& id = req.id;
    std::string current_dir, state;
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
      current_dir = ExtString(r, "currentRunDir");
      if (r.properties.Find("lastRunStatus") != nullptr) {
        const Json status = EffectiveRunStatus(txn, r, s.env->NowMicros());
        const Json* st = status.Find("runState");
        if (st != nullptr && st->is_string()) state = st->string_value();
      }
      return Status::Ok();
    }));
    if (current_dir.empty()) {
      return NotFoundError("image template '" + id.name() + "' has not run yet");
    }
    const std::string runs_dir = Dirname(current_dir);
    const std::string current_run = current_dir.substr(runs_dir.size() + 1);
    std::vector<std::string> runs;
    if (auto listed = s.env->ListDir(runs_dir); listed.ok()) runs = *listed;
    std::sort(runs.rbegin(), runs.rend());  // run IDs start with their UTC time: newest first
    std::string run = current_run;
    if (auto it = req.params.find("runId"); it != req.params.end()) {
      run = it->second;
      if (std::find(runs.begin(), runs.end(), run) == runs.end()) {
        return ArmStatus(
            StatusCode::kNotFound, "ResourceNotFound",
            "image template '" + id.name() + "' has no run '" + run.substr(0, 64) + "'");
      }
    }
    uint64_t offset = 0;
    if (auto it = req.params.find("offset"); it != req.params.end()) {
      char* end = nullptr;
      unsigned long long n = std::strtoull(it->second.c_str(), &end, 10);
      if (it->second.empty() || *end != '\0' || it->second[0] == '-') {
        return ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter",
                         "offset must be a byte offset (a whole number from 0)");
      }
      offset = n;
    }
    constexpr uint64_t kChunk = 256 * 1024;
    std::string text;
    std::string path = runs_dir + "/" + run + "/customization.log";
    if (s.env->FileExists(path)) {
      ASSIGN_OR_RETURN(text, s.env->ReadFile(path, offset + kChunk));
    }
    if (offset > text.size()) offset = text.size();
    std::string piece = text.substr(offset);
    // Whole lines only, so a client never shows half a line (unless one
    // line is longer than a chunk).
    if (size_t nl = piece.rfind('\n'); nl != std::string::npos) {
      piece.resize(nl + 1);
    } else if (piece.size() < kChunk) {
      piece.clear();
    }
    Response resp;
    resp.body = Json::MakeObject();
    resp.body.Set("runId", Json::String(run));
    Json list = Json::MakeArray();
    for (const std::string& r : runs) list.Append(Json::String(r));
    resp.body.Set("runs", std::move(list));
    resp.body.Set("runState", Json::String(run == current_run ? state : "Ended"));
    resp.body.Set("offset", Json::Int(static_cast<int64_t>(offset)));
    resp.body.Set("nextOffset", Json::Int(static_cast<int64_t>(offset + piece.size())));
    // The log's bytes as written; a step that printed bytes that are not
    // UTF-8 gets them replaced by the client's UTF-8 decoder (and the server
    // sanitizes error messages, so the run ID above is safe to echo).
    resp.body.Set("content", Json::String(piece));
    return resp;
  }
};

class RunHistoryProvider final : public Provider {
 public:
  std::string_view Type() const override { return kRunHistoryType; }
  std::vector<std::string> ApiVersions() const override { return tmpl::KnownApiVersions(); }

  StatusOr<Response> List(Services& s, const Request& req) override {
    Json value = Json::MakeArray();
    RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(auth::Authorize(txn, req.caller.principal, kRead, req.id));
      ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, req.id));
      if (const Json* h = ExtField(r, "runHistory"); h != nullptr && h->is_array()) value = *h;
      // The newest run as it really is (a run whose worker died is Failed).
      if (!value.array_items().empty() && r.properties.Find("lastRunStatus") != nullptr) {
        Json& first = value.array_items().front();
        const Json* rid = first.Find("runId");
        const Json* last = ExtField(r, "lastRun");
        const Json* lrid = last != nullptr ? last->Find("runId") : nullptr;
        if (rid != nullptr && lrid != nullptr && rid->is_string() && lrid->is_string() &&
            rid->string_value() == lrid->string_value()) {
          Json status = EffectiveRunStatus(txn, r, s.env->NowMicros());
          for (const JsonMember& m : status.object_items()) first.Set(m.key, m.value);
        }
      }
      return Status::Ok();
    }));
    Response resp;
    resp.body = Json::MakeObject();
    resp.body.Set("value", std::move(value));
    return resp;
  }
};

}  // namespace

std::unique_ptr<Provider> NewImageTemplateProvider() {
  return std::make_unique<ImageTemplateProvider>();
}
std::unique_ptr<Provider> NewRunOutputProvider() { return std::make_unique<RunOutputProvider>(); }
std::unique_ptr<Provider> NewRunLogProvider() { return std::make_unique<RunLogProvider>(); }
std::unique_ptr<Provider> NewRunHistoryProvider() { return std::make_unique<RunHistoryProvider>(); }

ResourceId TemplateId(const Services& s, const std::string& group, const std::string& name) {
  return ResourceId::ForResource(s.subscription, group, kNamespace, "imageTemplates", name);
}

Json TemplatePutBody(const tmpl::ImageTemplate& t, const std::string& template_dir) {
  Json body = t.ToJson();
  Json ext = Json::MakeObject();
  ext.Set("templateDir", Json::String(template_dir));
  body.Set("imagesmith", std::move(ext));
  return body;
}

StatusOr<StoredTemplate> GetStoredTemplate(Services& services, const Caller& caller,
                                           const ResourceId& id) {
  StoredTemplate out;
  RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) {
    RETURN_IF_ERROR(auth::Authorize(txn, caller.principal, kRead, id));
    ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
    const Json* t = ExtField(r, "template");
    if (t == nullptr)
      return DataLossError("the stored template of " + r.id.ToString() + " is damaged");
    out.template_json = *t;
    out.template_dir = ExtString(r, "templateDir");
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::string> TemplateLogPath(Services& services, const Caller& caller,
                                      const ResourceId& id) {
  std::string path;
  RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) {
    RETURN_IF_ERROR(auth::Authorize(txn, caller.principal, kRead, id));
    ASSIGN_OR_RETURN(meta::Resource r, GetTemplate(txn, id));
    std::string dir = ExtString(r, "currentRunDir");
    if (dir.empty()) return NotFoundError("image template '" + r.id.name() + "' has not run yet");
    path = dir + "/customization.log";
    return Status::Ok();
  }));
  return path;
}

Status EnsureGroup(Services& services, const Caller& caller, const ResourceId& group,
                   const std::string& location) {
  return services.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(bool exists, txn.Exists(group));
    if (exists) return Status::Ok();
    RETURN_IF_ERROR(auth::Authorize(
        txn, caller.principal, "Microsoft.Resources/subscriptions/resourceGroups/write", group));
    ASSIGN_OR_RETURN(Region region, Region::Parse(location));
    return meta::CreateGroup(txn, group.subscription(), group.resource_group(), region,
                             Json::MakeObject())
        .status();
  });
}

StatusOr<std::string> GroupLocation(Services& services, const ResourceId& group) {
  std::string location;
  RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource g, meta::GetGroup(txn, group));
    location = g.location;
    return Status::Ok();
  }));
  return location;
}

}  // namespace imagesmith::api
