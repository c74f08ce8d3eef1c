// The operation that runs an image template (kTemplateRunOperation): the
// build pipeline in this worker, with the template's lastRunStatus kept up
// to date, the outcome and runOutputs recorded, and -- when the worker that
// ran it died -- the run marked Failed and what it left half-done removed.
#include <atomic>
#include <cstdio>

#include "api/template_internal.h"
#include "api/template_provider.h"
#include "auth/authorize.h"
#include "auth/directory.h"
#include "base/process.h"
#include "base/strings.h"
#include "builder/distribute.h"
#include "builder/pipeline.h"
#include "builder/run_log.h"
#include "gallery/resources.h"
#include "store/store.h"
#include "template/parser.h"

namespace imagesmith::api {
namespace {

using namespace internal;  // NOLINT: the template resource's helpers

// Adds one run's record at the front of the template's run history and keeps
// the newest kRunHistoryLimit (doc/console.md, "Run history").
void AppendRunHistory(Json& ext, Json entry) {
  Json history = Json::MakeArray();
  history.Append(std::move(entry));
  if (const Json* old = ext.Find("runHistory"); old != nullptr && old->is_array()) {
    for (const Json& e : old->array_items()) {
      if (history.array_items().size() >= static_cast<size_t>(kRunHistoryLimit)) break;
      history.Append(e);
    }
  }
  ext.Set("runHistory", std::move(history));
}

constexpr char kVersionType[] = "Microsoft.Compute/galleries/images/versions";

// Whether `op` is still held by the worker running it: a worker whose lease
// ran out (another took the operation over and failed it) must not write the
// run's state any more.
Status StillHeld(meta::Transaction& txn, const Operation& op) {
  ASSIGN_OR_RETURN(meta::OperationRow row, txn.GetOperation(op.id));
  if (row.owner != op.owner || row.status != "InProgress") {
    return AbortedError("operation " + op.id + " is no longer held by " + op.owner +
                        "; its run's outcome is not recorded");
  }
  return Status::Ok();
}

double PercentFor(const std::string& sub_state) {
  if (sub_state == "Queued") return 0;
  if (sub_state == "Building") return 10;
  if (sub_state == "Customizing") return 30;
  if (sub_state == "Validating") return 70;
  if (sub_state == "Distributing") return 85;
  return 0;
}

std::string InputString(const Operation& op, const char* name) {
  const Json* v = op.input.Find(name);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

class TemplateRunHandler final : public OperationHandler {
 public:
  std::string_view Type() const override { return kTemplateRunOperation; }

  OperationOutcome Run(OperationContext& ctx) override {
    Services& s = ctx.services();
    const Operation& op = ctx.operation();
    const ResourceId& id = op.target;
    const std::string run_id = InputString(op, "runId");
    const std::string run_dir = InputString(op, "runDirectory");
    const Json* uc = op.input.Find("useCache");
    const bool use_cache = uc == nullptr || !uc->is_bool() || uc->bool_value();
    const int64_t start = op.start_us;

    // Fails the run before the build started: the record says why.
    auto fail_early = [&](const Status& why) {
      (void)s.meta->Update([&](meta::Transaction& txn) {
        RETURN_IF_ERROR(StillHeld(txn, op));
        ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
        if (ExtString(r, "operationId") != op.id) return Status::Ok();
        Json status =
            NewLastRunStatus("Failed", "Queued", why.message(), start, s.env->NowMicros());
        r.properties.Set("lastRunStatus", status);
        Json entry = status;
        entry.Set("runId", Json::String(run_id));
        AppendRunHistory(Ext(r), std::move(entry));
        return txn.Replace(r);
      });
      OperationOutcome out;
      out.status = OperationStatus::kFailed;
      out.error = ToArmError(why);
      out.result.Set("runState", Json::String("Failed"));
      out.result.Set("message", Json::String(why.message()));
      return out;
    };

    auto store = store::Store::Open(*s.env, s.data_dir + "/store");
    if (!store.ok()) return fail_early(store.status());
    auto self = SelfExePath();
    if (!self.ok()) return fail_early(self.status());
    std::optional<tmpl::ImageTemplate> t;
    std::string template_dir;
    std::vector<build::StepRecord> previous;
    std::optional<build::StagingGroup> staging;
    std::optional<auth::Principal> acting_as;
    Status read = s.meta->Read([&](meta::Transaction& txn) {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
      if (const Json* sg = ExtField(r, "staging")) {
        ASSIGN_OR_RETURN(staging, build::StagingGroup::FromJson(*sg));
      }
      const Json* stored = ExtField(r, "template");
      tmpl::ParseResult parsed = tmpl::ParseTemplate(stored != nullptr ? stored->Dump(-1) : "");
      if (!parsed.ok()) {
        return DataLossError("the stored template of " + id.ToString() + " is damaged");
      }
      t = std::move(parsed.value);
      // The build acts as the template's identity, as Image Builder does;
      // a template without one acts as whoever started the run.
      if (t->identity.has_value()) {
        auto identity = auth::PrincipalForIdentity(txn, *t->identity);
        if (!identity.ok()) return identity.status().WithContext("identity.userAssignedIdentities");
        acting_as = *identity;
      } else if (std::string by = InputString(op, "startedBy"); !by.empty()) {
        ASSIGN_OR_RETURN(acting_as, auth::FindPrincipal(txn, by));
      }
      template_dir = ExtString(r, "templateDir");
      if (const Json* steps = ExtField(r, "lastSteps"); steps != nullptr && steps->is_array()) {
        for (const Json& st : steps->array_items()) {
          previous.push_back(build::StepRecord::FromJson(st));
        }
      }
      return Status::Ok();
    });
    if (!read.ok()) return fail_early(read);
    Status made = s.env->CreateDirs(run_dir);
    if (!made.ok()) return fail_early(made);

    auto log = build::RunLog::Open(
        *s.env, run_dir + "/customization.log",
        [&](std::string_view line) { ctx.Line(OperationContext::LineKind::kLog, line); });
    if (!log.ok()) return fail_early(log.status());
    ctx.Line(OperationContext::LineKind::kStatus, "run " + run_id + ", log: " + (*log)->path());

    // The store for ManagedImage/SharedImage targets and store sources, and
    // the staging area for VHDs without a uri.
    build::PublishContext publish{
        s.meta, store->get(), s.data_dir + "/store", *self, id, t->location, {}};
    if (acting_as.has_value()) {
      publish.authorize = [&acting_as](meta::Transaction& txn, std::string_view action,
                                       const ResourceId& scope) {
        return auth::Authorize(txn, *acting_as, action, scope);
      };
    }
    build::BuildOptions opts;
    opts.publish = &publish;
    if (staging.has_value()) opts.staging_dir = StagingDir(s.data_dir, *staging, id);
    opts.template_dir = template_dir;
    opts.data_dir = s.data_dir;
    opts.run_dir = run_dir;
    opts.use_cache = use_cache;
    opts.cancel = &ctx.cancel();
    opts.previous_steps = previous;
    opts.on_sub_state = [&](const std::string& sub) {
      (void)s.meta->Update([&](meta::Transaction& txn) {
        RETURN_IF_ERROR(StillHeld(txn, op));
        ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
        std::string state = LastRunState(r);
        r.properties.Set("lastRunStatus", NewLastRunStatus(state, sub, "", start, 0));
        return txn.Replace(r);
      });
      ctx.SetPercent(PercentFor(sub));
      ctx.Line(OperationContext::LineKind::kStatus, sub);
    };
    build::BuildOutcome outcome = build::RunBuild(*s.env, *t, opts, **log);
    const bool stopped = outcome.state == build::RunState::kCanceled && ctx.stopping();
    if (stopped) {
      // Not canceled by anyone: the worker was stopped (SIGTERM). The run
      // fails saying so; the operation fails with WorkerStopped.
      outcome.state = build::RunState::kFailed;
      outcome.message = "the worker " + op.owner +
                        " running this build was stopped (SIGTERM or SIGINT) while " +
                        outcome.last_sub_state +
                        "; the run was interrupted: start it again (the step cache keeps the "
                        "finished steps)";
      (*log)->Info(outcome.message);
    }

    // errorHandling: keep the workspace of a failed customization on abort.
    bool customizer_failure =
        outcome.state != build::RunState::kSucceeded && outcome.last_sub_state == "Customizing";
    bool keep =
        customizer_failure && t->error_handling.on_customizer_error == tmpl::ErrorAction::kAbort;
    if (outcome.state == build::RunState::kCanceled) keep = false;
    if (keep) {
      (*log)->Info("errorHandling.onCustomizerError is abort: the workspace is kept at " + run_dir +
                   "/work");
      ctx.Line(OperationContext::LineKind::kNotice,
               "the workspace is kept for inspection: " + run_dir + "/work");
    } else {
      (void)s.env->RemoveAll(run_dir + "/work");
      (void)s.env->RemoveAll(run_dir + "/inputs");
    }

    Status recorded = s.meta->Update([&](meta::Transaction& txn) {
      RETURN_IF_ERROR(StillHeld(txn, op));
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
      r.properties.Set("lastRunStatus",
                       NewLastRunStatus(build::RunStateName(outcome.state), outcome.last_sub_state,
                                        outcome.message, start, s.env->NowMicros()));
      Json& ext = Ext(r);
      Json steps = Json::MakeArray();
      for (const auto& st : outcome.steps) steps.Append(st.ToJson());
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
      Json entry = *r.properties.Find("lastRunStatus");
      for (const JsonMember& m : last.object_items()) {
        if (m.key != "runDirectory" && m.key != "workspace") entry.Set(m.key, m.value);
      }
      AppendRunHistory(ext, std::move(entry));
      RETURN_IF_ERROR(txn.Replace(r));
      // One runOutputs resource per distribution target, as Azure keeps them.
      for (const build::RunOutput& o : outcome.outputs) {
        ResourceId oid = id.Child("runOutputs", o.run_output_name);
        meta::Resource out{oid, "", Json::MakeObject(), Json::MakeObject(), 0, 0, 0};
        if (!o.artifact_uri.empty()) {
          out.properties.Set("artifactUri", Json::String(o.artifact_uri));
        }
        if (!o.artifact_id.empty()) out.properties.Set("artifactId", Json::String(o.artifact_id));
        out.properties.Set("provisioningState", Json::String(o.provisioning_state));
        if (!o.error.empty()) out.properties.Set("error", Json::String(o.error));
        ASSIGN_OR_RETURN(bool exists, txn.Exists(oid));
        RETURN_IF_ERROR(exists ? txn.Replace(out) : txn.Create(out));
      }
      if (staging.has_value() && !opts.staging_dir.empty() &&
          s.env->IsDirectory(opts.staging_dir)) {
        RETURN_IF_ERROR(RecordStagingAccount(txn, *staging, id, opts.staging_dir));
      }
      return Status::Ok();
    });

    OperationOutcome out;
    std::string state = build::RunStateName(outcome.state);
    out.result.Set("runState", Json::String(state));
    out.result.Set("runSubState", Json::String(outcome.last_sub_state));
    out.result.Set("message", Json::String(outcome.message));
    out.result.Set("runId", Json::String(run_id));
    out.result.Set("customizationLog", Json::String(run_dir + "/customization.log"));
    // Read by /metrics (imagesmith_build_phase_duration_seconds).
    Json phases = Json::MakeObject();
    for (const auto& [phase, seconds] : outcome.phase_seconds) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.3f", seconds);
      phases.Set(phase, Json::NumberText(text));
    }
    out.result.Set("phaseSeconds", phases);
    if (!recorded.ok()) {
      out.status = OperationStatus::kFailed;
      out.error = ToArmError(recorded);
      return out;
    }
    switch (outcome.state) {
      case build::RunState::kSucceeded:
        out.status = OperationStatus::kSucceeded;
        break;
      case build::RunState::kCanceled:
        out.status = OperationStatus::kCanceled;
        out.error = ArmError{409,
                             "OperationCanceled",
                             outcome.message.empty() ? "the run was canceled" : outcome.message,
                             "",
                             {}};
        break;
      default:
        out.status = OperationStatus::kFailed;
        out.error = ArmError{stopped ? 503 : 500,
                             stopped                         ? "WorkerStopped"
                             : state == "PartiallySucceeded" ? "PartiallySucceeded"
                                                             : "BuildFailed",
                             "the run " + state + ": " + outcome.message,
                             "",
                             {}};
        break;
    }
    return out;
  }

  // A build is not resumed from the middle: the next run starts again
  // (taking what it can from the step cache).
  bool Resumable(const Operation&) const override { return false; }

  Status OnAbandoned(Services& s, const Operation& op, const std::string& why) override {
    std::vector<std::string> removed;
    Status st = s.meta->Update([&](meta::Transaction& txn) {
      removed.clear();
      auto r = txn.Get(op.target);
      if (r.status().code() == StatusCode::kNotFound) return Status::Ok();
      RETURN_IF_ERROR(r.status());
      // Versions this template's killed run left Creating would make the
      // next run skip their numbers and would never finish: remove them.
      ResourceId scope = ResourceId::ForSubscription(op.target.subscription());
      ASSIGN_OR_RETURN(auto versions, txn.ListByType(scope, kVersionType));
      for (const meta::Resource& v : versions) {
        auto rec = gallery::VersionRecord::FromResource(v);
        if (!rec.ok() || rec->provisioning_state != "Creating") continue;
        auto source = ResourceId::Parse(rec->source_id);
        if (!source.ok() || !(*source == op.target)) continue;
        RETURN_IF_ERROR(gallery::DeleteVersion(txn, v.id, s.env->NowMicros()));
        removed.push_back(v.id.ToString());
      }
      std::string state = LastRunState(*r);
      if (ExtString(*r, "operationId") != op.id || (state != "Running" && state != "Canceling")) {
        return Status::Ok();
      }
      std::string message = why;
      for (const std::string& v : removed) {
        message += "; the gallery version " + v + " it left Creating was removed";
      }
      const Json* last = r->properties.Find("lastRunStatus");
      const Json* sub = last != nullptr ? last->Find("runSubState") : nullptr;
      r->properties.Set(
          "lastRunStatus",
          NewLastRunStatus("Failed", sub != nullptr && sub->is_string() ? sub->string_value() : "",
                           AbandonedMessage(*r, message), op.start_us, s.env->NowMicros()));
      return txn.Replace(*r);
    });
    std::string run_dir = InputString(op, "runDirectory");
    if (!run_dir.empty() && s.env->FileExists(run_dir + "/work")) {
      (void)s.env->RemoveAll(run_dir + "/work");
    }
    return st;
  }
};

}  // namespace

std::unique_ptr<OperationHandler> NewTemplateRunHandler() {
  return std::make_unique<TemplateRunHandler>();
}

}  // namespace imagesmith::api
