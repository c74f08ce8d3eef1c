// Microsoft.VirtualMachineImages/imageTemplates: the provider of image
// templates, their runOutputs and their `run` / `cancel` actions, and the
// durable operation that does a run (template_run.cc).
//
// A template resource keeps the normalised template; its properties carry
// Azure's provisioningState and lastRunStatus, plus an "imagesmith" object
// with what a local run needs (the template's directory for relative URIs,
// the current run's operation and directory, the previous run's cache keys,
// the staging group). Each run has a directory under DATA/runs/ with
// customization.log and the disk.
//
//   PUT     the template body as Azure's REST API takes it (also what
//           `az resource create --is-full-object` sends); 201 new, 200
//           replaced. A body member "imagesmith": {"templateDir": DIR}
//           (front ends only) resolves relative scriptUri / sourceUri paths.
//   GET     the template; lastRunStatus says Failed for a run whose worker
//           died (the operation is failed and cleaned up first).
//   LIST    by group or subscription.
//   DELETE  the template, its runOutputs, its runs and its staging group.
//   POST run     202 + the operation (wait = false), or runs it here and
//                returns 200 + the template (wait = true).
//   POST cancel  asks the running operation to stop; 202.
//   runOutputs   GET / LIST (child type .../imageTemplates/runOutputs).
//
// Thread-safety: as provider.h.
#pragma once

#include <memory>
#include <string>

#include "api/operations.h"
#include "api/provider.h"
#include "template/model.h"

namespace imagesmith::api {

inline constexpr char kTemplateType[] = "Microsoft.VirtualMachineImages/imageTemplates";
inline constexpr char kRunOutputType[] = "Microsoft.VirtualMachineImages/imageTemplates/runOutputs";
// imagesmith's own: a run's customization.log from a byte offset (not Azure's).
inline constexpr char kRunLogType[] =
    "Microsoft.VirtualMachineImages/imageTemplates/customizationLog";
// imagesmith's own: the template's run history, newest first (not Azure's).
inline constexpr char kRunHistoryType[] = "Microsoft.VirtualMachineImages/imageTemplates/runs";
// How many runs' records a template keeps (older ones are dropped; their
// logs stay in the run directories).
inline constexpr int kRunHistoryLimit = 20;
inline constexpr char kTemplateRunOperation[] = "Microsoft.VirtualMachineImages/imageTemplates/run";

std::unique_ptr<Provider> NewImageTemplateProvider();
std::unique_ptr<Provider> NewRunOutputProvider();
// GET {template}/customizationLog?runId=&offset=: {"runId", "runs" (newest
// first), "runState", "offset", "nextOffset", "content"} -- whole lines of the
// run's log from `offset`, at most 256 KiB. Needs the template's read action.
std::unique_ptr<Provider> NewRunLogProvider();
// GET {template}/runs: {"value": [one record per run, newest first]}, at most
// kRunHistoryLimit: lastRunStatus's members (runState, runSubState, message,
// startTime, endTime) plus runId, source, disk, diskSizeBytes, cacheHits,
// cacheMisses, customizationLog, storedImage of that run. Needs the
// template's read action.
std::unique_ptr<Provider> NewRunHistoryProvider();
// The handler of kTemplateRunOperation (template_run.cc).
std::unique_ptr<OperationHandler> NewTemplateRunHandler();

ResourceId TemplateId(const Services& s, const std::string& group, const std::string& name);

// The PUT body for a template a front end has parsed already: Azure's shape
// plus "imagesmith": {"templateDir": template_dir}.
Json TemplatePutBody(const tmpl::ImageTemplate& t, const std::string& template_dir);

// The stored template of `id`: its normalised JSON and the directory its
// relative paths resolve against. NotFound names the template.
struct StoredTemplate {
  Json template_json;
  std::string template_dir;
};
StatusOr<StoredTemplate> GetStoredTemplate(Services& services, const Caller& caller,
                                           const ResourceId& id);

// The customization.log of the template's current (or last) run; NotFound
// when it has not run.
StatusOr<std::string> TemplateLogPath(Services& services, const Caller& caller,
                                      const ResourceId& id);

// Makes the resource group `group` in `location` when it does not exist (the
// group 'imagesmith build' uses by default).
Status EnsureGroup(Services& services, const Caller& caller, const ResourceId& group,
                   const std::string& location);

// The group's location; NotFound naming it (and how to create it).
StatusOr<std::string> GroupLocation(Services& services, const ResourceId& group);

}  // namespace imagesmith::api
