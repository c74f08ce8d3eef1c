// Batch jobs and tasks (doc/batch.md), and the pool controller's operation
// handler. Creating a task makes sure the pool's controller runs (queued
// for a worker: the CLI starts one, `imagesmith serve` has its own).
#include "api/arm_error.h"
#include "api/batch_body.h"
#include "api/batch_internal.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "base/strings.h"
#include "batch/controller.h"
#include "builder/distribute.h"
#include "fleet/regional_disks.h"
#include "gallery/publish.h"
#include "store/store.h"

namespace imagesmith::api {

using batch::JGet;
using batch::JInt;
using batch::JObj;
using batch::JStr;

namespace {

constexpr char kJobRead[] = "Microsoft.Batch/batchAccounts/jobs/read";
constexpr char kJobWrite[] = "Microsoft.Batch/batchAccounts/jobs/write";
constexpr char kJobDelete[] = "Microsoft.Batch/batchAccounts/jobs/delete";
constexpr char kTaskRead[] = "Microsoft.Batch/batchAccounts/jobs/tasks/read";
constexpr char kTaskWrite[] = "Microsoft.Batch/batchAccounts/jobs/tasks/write";
constexpr char kTaskDelete[] = "Microsoft.Batch/batchAccounts/jobs/tasks/delete";

std::string NowText(Services& s) { return batch::FormatUtc(s.env->NowMicros()); }

StatusOr<meta::Resource> GetJob(meta::Transaction& txn, const ResourceId& job) {
  auto r = txn.Get(job);
  if (r.ok() || r.status().code() != StatusCode::kNotFound) return r;
  return NotFoundError("the job " + job.name() + " does not exist in Batch account " +
                       job.Parent().name() + "; create it with 'imagesmith batch job create'");
}

class JobProvider final : public Provider {
 public:
  std::string_view Type() const override { return batch::kJobType; }
  std::vector<std::string> ApiVersions() const override { return BatchApiVersions(); }

  StatusOr<Response> Put(Services& s, const Request& req) override {
    RETURN_IF_ERROR(WithTarget(batch::ValidateBatchId(req.id.name(), "job id"), "id"));
    ASSIGN_OR_RETURN(batch::JobSpec spec, ParseJobBody(req.body, req.id.name()));
    Response out;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kJobWrite, req.id));
      ASSIGN_OR_RETURN(meta::Resource account, GetAccount(txn, req.id.Parent()));
      RETURN_IF_ERROR(
          GetPool(txn, account.id.Child("pools", spec.pool_id), "poolInfo.poolId").status());
      ASSIGN_OR_RETURN(std::optional<meta::Resource> existing, FindResource(txn, req.id));
      if (existing.has_value()) {
        return ArmStatus(StatusCode::kAlreadyExists, "JobExists",
                         "the job " + req.id.name() + " already exists", req.id.ToString());
      }
      meta::Resource r = batch::NewResource(req.id);
      r.location = account.location;
      Json& p = r.properties;
      if (!spec.display_name.empty()) p.Set("displayName", Json::String(spec.display_name));
      Json pool_info = Json::MakeObject();
      pool_info.Set("poolId", Json::String(spec.pool_id));
      p.Set("poolInfo", pool_info);
      p.Set("priority", Json::Int(spec.priority));
      p.Set("state", Json::String("active"));
      p.Set("stateTransitionTime", Json::String(NowText(s)));
      p.Set("creationTime", Json::String(NowText(s)));
      Json exec = Json::MakeObject();
      exec.Set("startTime", Json::String(NowText(s)));
      exec.Set("poolId", Json::String(spec.pool_id));
      p.Set("executionInfo", exec);
      RETURN_IF_ERROR(txn.Create(r));
      out = ResourceResponse(201, BatchChildJson(r), r);
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    return out;
  }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    return GetOne(
        s, req, kJobRead,
        [&](meta::Transaction& txn) -> StatusOr<meta::Resource> {
          ASSIGN_OR_RETURN(meta::Resource job, GetJob(txn, req.id));
          return WithCounts(txn, job);
        },
        BatchChildJson);
  }
  StatusOr<Response> List(Services& s, const Request& req) override {
    return ListAll(
        s, req, kJobRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          RETURN_IF_ERROR(GetAccount(txn, req.id).status());
          ASSIGN_OR_RETURN(std::vector<meta::Resource> jobs,
                           txn.ListChildren(req.id, batch::kJobType));
          for (meta::Resource& j : jobs) {
            ASSIGN_OR_RETURN(j, WithCounts(txn, j));
          }
          return jobs;
        },
        BatchChildJson);
  }
  // Deletes the job and its tasks; a task still running is stopped by the
  // controller when it finds its record gone.
  StatusOr<Response> Delete(Services& s, const Request& req) override {
    return DeleteOne(s, req, kJobDelete, nullptr, [&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(std::vector<meta::Resource> tasks,
                       txn.ListChildren(req.id, batch::kTaskType));
      for (const meta::Resource& t : tasks) RETURN_IF_ERROR(txn.Delete(t.id));
      for (const meta::Resource& t : tasks) {
        (void)s.env->RemoveAll(batch::TaskFilesDir(s.data_dir, t.id));
      }
      return txn.Delete(req.id);
    });
  }

 private:
  // taskCounts as Batch's job GetTaskCounts gives them.
  static StatusOr<meta::Resource> WithCounts(meta::Transaction& txn, meta::Resource job) {
    ASSIGN_OR_RETURN(std::vector<meta::Resource> tasks, txn.ListChildren(job.id, batch::kTaskType));
    int64_t active = 0, running = 0, completed = 0, succeeded = 0, failed = 0;
    for (const meta::Resource& t : tasks) {
      std::string st = JStr(t.properties, "state");
      if (st == "active") ++active;
      if (st == "running" || st == "preparing") ++running;
      if (st == "completed") {
        ++completed;
        if (JStr(JGet(t.properties, "executionInfo"), "result") == "success") {
          ++succeeded;
        } else {
          ++failed;
        }
      }
    }
    Json counts = Json::MakeObject();
    counts.Set("active", Json::Int(active));
    counts.Set("running", Json::Int(running));
    counts.Set("completed", Json::Int(completed));
    counts.Set("succeeded", Json::Int(succeeded));
    counts.Set("failed", Json::Int(failed));
    job.properties.Set("taskCounts", counts);
    return job;
  }
};

class TaskProvider final : public Provider {
 public:
  std::string_view Type() const override { return batch::kTaskType; }
  std::vector<std::string> ApiVersions() const override { return BatchApiVersions(); }

  // Adds the task (201, state active) and makes sure the pool's controller
  // runs; the response's operation_id names its operation.
  StatusOr<Response> Put(Services& s, const Request& req) override {
    RETURN_IF_ERROR(WithTarget(batch::ValidateBatchId(req.id.name(), "task id"), "id"));
    ASSIGN_OR_RETURN(batch::TaskSpec spec, ParseTaskBody(req.body, req.id.name()));
    Response out;
    ControlTicket ticket;
    Status st = s.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kTaskWrite, req.id));
      ASSIGN_OR_RETURN(meta::Resource job, GetJob(txn, req.id.Parent()));
      if (JStr(job.properties, "state") != "active") {
        return FailedPreconditionError("the job " + job.id.name() + " is " +
                                       JStr(job.properties, "state") +
                                       "; tasks are added to "
                                       "active jobs");
      }
      ASSIGN_OR_RETURN(std::optional<meta::Resource> existing, FindResource(txn, req.id));
      if (existing.has_value()) {
        return ArmStatus(StatusCode::kAlreadyExists, "TaskExists",
                         "the task " + req.id.name() + " already exists in job " + job.id.name(),
                         req.id.ToString());
      }
      ResourceId pool_id =
          job.id.Parent().Child("pools", JStr(JGet(job.properties, "poolInfo"), "poolId"));
      ASSIGN_OR_RETURN(meta::Resource pool, GetPool(txn, pool_id, "poolInfo.poolId"));
      if (spec.required_slots > JInt(pool.properties, "taskSlotsPerNode", 1)) {
        return BodyError("requiredSlots",
                         "the task needs " + std::to_string(spec.required_slots) +
                             " slots but nodes of pool " + pool.id.name() + " have " +
                             std::to_string(JInt(pool.properties, "taskSlotsPerNode", 1)));
      }
      meta::Resource r = batch::NewResource(req.id);
      r.location = job.location;
      Json p = spec.command.ToJson(false);
      if (!spec.display_name.empty()) p.Set("displayName", Json::String(spec.display_name));
      p.Set("requiredSlots", Json::Int(spec.required_slots));
      p.Set("state", Json::String("active"));
      p.Set("stateTransitionTime", Json::String(NowText(s)));
      p.Set("creationTime", Json::String(NowText(s)));
      Json exec = Json::MakeObject();
      exec.Set("retryCount", Json::Int(0));
      exec.Set("requeueCount", Json::Int(0));
      p.Set("executionInfo", exec);
      r.properties = p;
      RETURN_IF_ERROR(txn.Create(r));
      if (JStr(pool.properties, "state") != "deleting") {
        ASSIGN_OR_RETURN(ticket, EnsureControl(s, txn, pool, /*held=*/false));
        RETURN_IF_ERROR(txn.Replace(pool));
      }
      out = ResourceResponse(201, BatchChildJson(r), r);
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    out.operation_id = ticket.operation_id;
    return out;
  }

  StatusOr<Response> Get(Services& s, const Request& req) override {
    return GetOne(
        s, req, kTaskRead,
        [&](meta::Transaction& txn) -> StatusOr<meta::Resource> {
          RETURN_IF_ERROR(GetJob(txn, req.id.Parent()).status());
          auto r = txn.Get(req.id);
          if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
            return NotFoundError("the task " + req.id.name() + " does not exist in job " +
                                 req.id.Parent().name());
          }
          return r;
        },
        BatchChildJson);
  }
  StatusOr<Response> List(Services& s, const Request& req) override {
    return ListAll(
        s, req, kTaskRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          RETURN_IF_ERROR(GetJob(txn, req.id).status());
          return txn.ListChildren(req.id, batch::kTaskType);
        },
        BatchChildJson);
  }
  StatusOr<Response> Delete(Services& s, const Request& req) override {
    return DeleteOne(s, req, kTaskDelete, nullptr, [&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource t, txn.Get(req.id));
      std::string st = JStr(t.properties, "state");
      if (st == "running" || st == "preparing") {
        return FailedPreconditionError("the task " + req.id.name() +
                                       " is running; wait for it to complete");
      }
      (void)s.env->RemoveAll(batch::TaskFilesDir(s.data_dir, req.id));
      return txn.Delete(req.id);
    });
  }

  // getFile {"filePath": "stdout.txt" | "stderr.txt"}: the file's text.
  StatusOr<Response> Action(Services& s, const Request& req) override {
    if (!EqualsIgnoreCase(req.action, "getFile")) {
      return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                       "Batch tasks have no action '" + req.action + "' (getFile)");
    }
    ASSIGN_OR_RETURN(BodyObject body, BodyObject::At(&req.body, ""));
    RETURN_IF_ERROR(body.AllowOnly({"filePath"}));
    ASSIGN_OR_RETURN(std::string file, body.RequiredString("filePath"));
    if (file != "stdout.txt" && file != "stderr.txt") {
      return BodyError("filePath", "'" + file +
                                       "' is not a task file; use stdout.txt or "
                                       "stderr.txt");
    }
    Status st = s.meta->Read([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, req, kTaskRead, req.id));
      RETURN_IF_ERROR(GetJob(txn, req.id.Parent()).status());
      auto t = txn.Get(req.id);
      if (!t.ok() && t.status().code() == StatusCode::kNotFound) {
        return NotFoundError("the task " + req.id.name() + " does not exist in job " +
                             req.id.Parent().name());
      }
      RETURN_IF_ERROR(t.status());
      if (JStr(t->properties, "state") == "active" &&
          JGet(JGet(t->properties, "executionInfo"), "startTime").is_null()) {
        return NotFoundError("the task " + req.id.name() + " has not run yet, so it has no " +
                             file);
      }
      return Status::Ok();
    });
    if (!st.ok()) return WithTarget(st, req.id.ToString());
    std::string path = batch::TaskFilesDir(s.data_dir, req.id) + "/" + file;
    auto text = s.env->ReadFile(path, 64ull << 20);
    if (!text.ok()) {
      return WithTarget(NotFoundError("the task " + req.id.name() + " has no " + file + " (" +
                                      text.status().message() + ")"),
                        req.id.ToString());
    }
    Response out;
    out.body = Json::MakeObject();
    out.body.Set("filePath", Json::String(file));
    out.body.Set("size", Json::Int(static_cast<int64_t>(text->size())));
    out.body.Set("content", Json::String(*text));
    return out;
  }
};

// qemu nodes boot from the image's regional disk (fleet/regional_disks.h),
// written from the store the first time a node of that image and region
// needs it.
batch::NodeDisks RegionalNodeDisks(Services& s) {
  auto disks = std::make_shared<fleet::RegionalDisks>(*s.env, s.data_dir + "/fleet");
  Services* services = &s;
  batch::NodeDisks out;
  out.acquire = [disks, services](const std::string& image_id, const std::string& region,
                                  const std::string& node) -> StatusOr<std::string> {
    return disks->Acquire(image_id, region, node, [&](const std::string& path) -> Status {
      auto id = ResourceId::Parse(image_id);
      if (!id.ok()) return id.status();
      ASSIGN_OR_RETURN(Region where, Region::Parse(region));
      std::optional<gallery::SourceImage> source;
      RETURN_IF_ERROR(services->meta->Read([&](meta::Transaction& txn) -> Status {
        ASSIGN_OR_RETURN(gallery::SourceImage src, gallery::ResolveImageSource(txn, *id, where));
        source = src;
        return Status::Ok();
      }));
      ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                       store::Store::Open(*services->env, services->data_dir + "/store"));
      return build::ExportStoredImage(*services->env, *store, source->region, source->image,
                                      disk::DiskFormat::kRaw, path, nullptr);
    });
  };
  out.release = [disks](const std::string& image_id, const std::string& region,
                        const std::string& node) { (void)disks->Release(image_id, region, node); };
  return out;
}

class PoolControlHandler final : public OperationHandler {
 public:
  std::string_view Type() const override { return kPoolControlOperation; }
  // The controller adopts what an earlier one left: it can always resume.
  bool Resumable(const Operation&) const override { return true; }

  OperationOutcome Run(OperationContext& ctx) override {
    Services& s = ctx.services();
    const Operation& op = ctx.operation();
    batch::PoolController controller(*s.env, *s.meta, s.data_dir, op.target, op.id,
                                     batch::ControllerTiming::FromEnv(), RegionalNodeDisks(s));
    auto summary = controller.Run(
        ctx.cancel(), [&](std::string_view line) { ctx.Line(ProgressKind::kStatus, line); });
    OperationOutcome out;
    if (!summary.ok()) {
      out.status = OperationStatus::kFailed;
      out.error = ArmError{500, "ControllerFailed", summary.status().message(), "", {}};
      return out;
    }
    out.result = *summary;
    if (batch::JBool(*summary, "canceled")) {
      out.status = OperationStatus::kCanceled;
      out.error = ArmError{409,
                           "OperationCanceled",
                           "the pool's controller stopped before the pool was quiet; the next "
                           "command on the pool (or a worker) resumes it",
                           "",
                           {}};
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<Provider> NewBatchJobProvider() { return std::make_unique<JobProvider>(); }
std::unique_ptr<Provider> NewBatchTaskProvider() { return std::make_unique<TaskProvider>(); }
std::unique_ptr<OperationHandler> NewPoolControlHandler() {
  return std::make_unique<PoolControlHandler>();
}

}  // namespace imagesmith::api
