// imagesmith batch ...: Batch pools, nodes, jobs and tasks, as 'az batch'
// (doc/batch.md). A front end: flags and --json-file become a request to the
// Batch providers; the pool's controller runs in the foreground for pool
// create / resize / delete and node actions (until the pool is quiet), and
// in a detached worker for task create and --no-wait.
#include <csignal>

#include "api/arm_error.h"
#include "api/local.h"
#include "base/strings.h"
#include "batch/model.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/image_template_ops.h"
#include "cli/queued_work.h"

namespace imagesmith::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted.store(true); }

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return v->string_value();
  if (v->is_number()) return v->number_text();
  if (v->is_bool()) return v->bool_value() ? "true" : "false";
  return "";
}
const Json& Sub(const Json& obj, std::string_view key) {
  static const Json kEmpty = Json::MakeObject();
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? *v : kEmpty;
}

bool Tabular(const CommandContext& ctx) {
  return ctx.format == OutputFormat::kTable || ctx.format == OutputFormat::kTsv;
}

// The data-plane object az batch prints: {"id": name, ...properties}.
Json DataPlane(const Json& resource) {
  Json out = Json::MakeObject();
  out.Set("id", Json::String(Str(resource, "name")));
  const Json& props = Sub(resource, "properties");
  if (props.is_object()) {
    for (const JsonMember& m : props.object_items()) {
      if (m.key != "id") out.Set(m.key, m.value);
    }
  }
  return out;
}

Json PoolRow(const Json& pool) {
  Json row = Json::MakeObject();
  row.Set("id", Json::String(Str(pool, "id")));
  row.Set("state", Json::String(Str(pool, "state")));
  row.Set("allocationState", Json::String(Str(pool, "allocationState")));
  row.Set("vmSize", Json::String(Str(pool, "vmSize")));
  row.Set("currentDedicatedNodes", Json::String(Str(pool, "currentDedicatedNodes")));
  row.Set("targetDedicatedNodes", Json::String(Str(pool, "targetDedicatedNodes")));
  row.Set("currentLowPriorityNodes", Json::String(Str(pool, "currentLowPriorityNodes")));
  row.Set("targetLowPriorityNodes", Json::String(Str(pool, "targetLowPriorityNodes")));
  std::string errors;
  const Json& re = Sub(pool, "resizeErrors");
  if (re.is_array()) {
    for (const Json& e : re.array_items()) errors += (errors.empty() ? "" : ",") + Str(e, "code");
  }
  row.Set("resizeErrors", Json::String(errors));
  row.Set("nodeDriver", Json::String(Str(Sub(pool, "imagesmith"), "nodeDriver")));
  return row;
}
Json NodeRow(const Json& node) {
  Json row = Json::MakeObject();
  row.Set("id", Json::String(Str(node, "id")));
  row.Set("state", Json::String(Str(node, "state")));
  row.Set("schedulingState", Json::String(Str(node, "schedulingState")));
  row.Set("isDedicated", Json::String(Str(node, "isDedicated")));
  row.Set("vmSize", Json::String(Str(node, "vmSize")));
  row.Set("runningTasksCount", Json::String(Str(node, "runningTasksCount")));
  row.Set("startTaskState", Json::String(Str(Sub(node, "startTaskInfo"), "state")));
  row.Set("startTaskExitCode", Json::String(Str(Sub(node, "startTaskInfo"), "exitCode")));
  std::string errors;
  const Json& e = Sub(node, "errors");
  if (e.is_array()) {
    for (const Json& x : e.array_items()) errors += (errors.empty() ? "" : ",") + Str(x, "code");
  }
  row.Set("errors", Json::String(errors));
  return row;
}
Json JobRow(const Json& job) {
  Json row = Json::MakeObject();
  row.Set("id", Json::String(Str(job, "id")));
  row.Set("state", Json::String(Str(job, "state")));
  row.Set("poolId", Json::String(Str(Sub(job, "poolInfo"), "poolId")));
  const Json& c = Sub(job, "taskCounts");
  row.Set("active", Json::String(Str(c, "active")));
  row.Set("running", Json::String(Str(c, "running")));
  row.Set("completed", Json::String(Str(c, "completed")));
  row.Set("failed", Json::String(Str(c, "failed")));
  return row;
}
Json TaskRow(const Json& task) {
  Json row = Json::MakeObject();
  row.Set("id", Json::String(Str(task, "id")));
  row.Set("state", Json::String(Str(task, "state")));
  row.Set("exitCode", Json::String(Str(Sub(task, "executionInfo"), "exitCode")));
  row.Set("result", Json::String(Str(Sub(task, "executionInfo"), "result")));
  row.Set("nodeId", Json::String(Str(Sub(task, "nodeInfo"), "nodeId")));
  row.Set("commandLine", Json::String(Str(task, "commandLine")));
  return row;
}

using RowFn = Json (*)(const Json&);

void PrintOne(const Json& resource, RowFn row, CommandContext& ctx) {
  Json dp = DataPlane(resource);
  PrintResult(Tabular(ctx) ? row(dp) : dp, ctx);
}
void PrintMany(const api::Response& resp, RowFn row, CommandContext& ctx) {
  Json out = Json::MakeArray();
  for (const Json& item : PrintableItems(resp)) {
    Json dp = DataPlane(item);
    out.Append(Tabular(ctx) ? row(dp) : dp);
  }
  PrintResult(out, ctx);
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

struct Session {
  std::unique_ptr<api::Local> local;
  ResourceId account = ResourceId::ForSubscription("");

  ResourceId Pool(const std::string& id) const { return account.Child("pools", id); }
  ResourceId Job(const std::string& id) const { return account.Child("jobs", id); }
};

StatusOr<Session> Open(const ParsedArgs& args, CommandContext& ctx) {
  std::string group = args.Get("resource-group", EnvOr("IMAGESMITH_BATCH_RESOURCE_GROUP", "batch"));
  std::string account = args.Get("account-name", EnvOr("AZURE_BATCH_ACCOUNT", "imagesmith"));
  RETURN_IF_ERROR(ValidateResourceGroupName(group).WithContext("--resource-group"));
  RETURN_IF_ERROR(batch::ValidateBatchId(account, "--account-name"));
  Session s;
  ASSIGN_OR_RETURN(s.local, api::OpenLocal(*ctx.env));
  s.account = ResourceId::ForResource(s.local->services.subscription, group, "Microsoft.Batch",
                                      "batchAccounts", account);
  return s;
}

int Fail(const Status& s, CommandContext& ctx) {
  *ctx.err << "ERROR: " << api::ToArmError(s).message << "\n";
  return ExitCodeFor(s.code());
}

// Runs `req` (wait = foreground controller unless --no-wait) with progress
// on stderr and Ctrl-C stopping the controller (the pool stays as it is; the
// next command resumes it).
StatusOr<api::Response> CallWithController(Session& s, api::Request req, bool no_wait,
                                           CommandContext& ctx) {
  req.wait = !no_wait;
  bool show = ctx.stderr_is_tty || ctx.verbose;
  req.progress = [&ctx, show](api::ProgressKind kind, std::string_view line) {
    if (show || kind == api::ProgressKind::kNotice) *ctx.err << "imagesmith: " << line << "\n";
  };
  req.interrupt = &g_interrupted;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  auto resp = s.local->Call(std::move(req));
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  if (resp.ok() && no_wait && !resp->operation_id.empty()) {
    RETURN_IF_ERROR(HandOffQueued(ctx, s.local->services.data_dir, resp->operation_id));
  }
  return resp;
}

// After a resize ran here: 0 when it ended without resizeErrors; 1 with an
// error naming them otherwise (the pool was printed already).
int ResizeOutcome(const api::Response& resp, bool waited, CommandContext& ctx) {
  if (!waited) return 0;
  const Json& errors = Sub(Sub(resp.body, "properties"), "resizeErrors");
  if (!errors.is_array() || errors.array_items().empty()) return 0;
  for (const Json& e : errors.array_items()) {
    *ctx.err << "ERROR: the resize ended with " << Str(e, "code") << ": " << Str(e, "message")
             << "\n";
  }
  return 1;
}

StatusOr<Json> ReadJsonFile(Env& env, const std::string& path) {
  auto text = env.ReadFile(path, 16 << 20);
  if (!text.ok()) return text.status().WithContext("--json-file " + path);
  auto json = ParseJson(*text);
  if (!json.ok()) return InvalidArgumentError(path + ":" + json.status().message());
  if (!json->is_object()) return InvalidArgumentError(path + ": expected a JSON object");
  return *json;
}

StatusOr<int64_t> IntFlag(const ParsedArgs& args, const std::string& name) {
  std::string v = args.Get(name);
  bool neg = !v.empty() && v[0] == '-';
  if (!IsAsciiDigits(neg ? v.substr(1) : v) || v.size() > 12) {
    return InvalidArgumentError("--" + name + ": '" + v + "' is not a whole number");
  }
  return std::stoll(v);
}

// ---- pools ---------------------------------------------------------------------

int PoolCreate(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  if (args.Has("json-file")) {
    auto file = ReadJsonFile(*ctx.env, args.Get("json-file"));
    if (!file.ok()) return Fail(file.status(), ctx);
    body = *file;
  }
  auto set = [&](const char* flag, const char* key) {
    if (args.Has(flag)) body.Set(key, Json::String(args.Get(flag)));
  };
  set("id", "id");
  set("vm-size", "vmSize");
  set("resize-timeout", "resizeTimeout");
  for (const char* flag :
       {"target-dedicated-nodes", "target-low-priority-nodes", "task-slots-per-node"}) {
    if (!args.Has(flag)) continue;
    auto n = IntFlag(args, flag);
    if (!n.ok()) return Fail(n.status(), ctx);
    std::string key = flag == std::string("target-dedicated-nodes")      ? "targetDedicatedNodes"
                      : flag == std::string("target-low-priority-nodes") ? "targetLowPriorityNodes"
                                                                         : "taskSlotsPerNode";
    body.Set(key, Json::Int(*n));
  }
  if (args.Has("image") || args.Has("node-agent-sku-id")) {
    Json* vmc = body.Find("virtualMachineConfiguration");
    if (vmc == nullptr || !vmc->is_object()) {
      vmc = &body.Set("virtualMachineConfiguration", Json::MakeObject());
    }
    if (args.Has("image")) {
      Json ref = Json::MakeObject();
      ref.Set("virtualMachineImageId", Json::String(args.Get("image")));
      vmc->Set("imageReference", ref);
    }
    if (args.Has("node-agent-sku-id")) {
      vmc->Set("nodeAgentSKUId", Json::String(args.Get("node-agent-sku-id")));
    }
  }
  if (args.Has("start-task-command-line")) {
    Json st = Json::MakeObject();
    st.Set("commandLine", Json::String(args.Get("start-task-command-line")));
    st.Set("waitForSuccess",
           Json::Bool(args.Has("start-task-wait-for-success") || !args.Has("start-task-no-wait")));
    body.Set("startTask", st);
  }
  if (args.Has("metadata")) {
    Json md = Json::MakeArray();
    for (const std::string& kv : args.GetAll("metadata")) {
      size_t eq = kv.find('=');
      Json item = Json::MakeObject();
      item.Set("name", Json::String(kv.substr(0, eq)));
      item.Set("value", Json::String(eq == std::string::npos ? "" : kv.substr(eq + 1)));
      md.Append(item);
    }
    body.Set("metadata", md);
  }
  if (args.Has("node-driver")) {
    Json* ext = body.Find("imagesmith");
    if (ext == nullptr || !ext->is_object()) ext = &body.Set("imagesmith", Json::MakeObject());
    ext->Set("nodeDriver", Json::String(args.Get("node-driver")));
  }
  if (args.Has("location")) body.Set("location", Json::String(args.Get("location")));
  std::string id = Str(body, "id");
  if (id.empty()) {
    return Fail(InvalidArgumentError("id: the pool's id is required (--id, or \"id\" in the "
                                     "--json-file)"),
                ctx);
  }
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  Status valid = batch::ValidateBatchId(id, "id");
  if (!valid.ok()) return Fail(valid, ctx);
  auto resp = CallWithController(*s, MakeRequest(api::Verb::kPut, s->Pool(id), body),
                                 args.Has("no-wait"), ctx);
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, PoolRow, ctx);
  return ResizeOutcome(*resp, !args.Has("no-wait"), ctx);
}

int PoolShow(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeRequest(api::Verb::kGet, s->Pool(args.Get("pool-id"))));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, PoolRow, ctx);
  return 0;
}

int PoolList(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeListRequest(s->account, batch::kPoolType));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintMany(*resp, PoolRow, ctx);
  return 0;
}

int PoolResize(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  for (const char* flag : {"target-dedicated-nodes", "target-low-priority-nodes"}) {
    if (!args.Has(flag)) continue;
    auto n = IntFlag(args, flag);
    if (!n.ok()) return Fail(n.status(), ctx);
    body.Set(flag == std::string("target-dedicated-nodes") ? "targetDedicatedNodes"
                                                           : "targetLowPriorityNodes",
             Json::Int(*n));
  }
  if (args.Has("resize-timeout"))
    body.Set("resizeTimeout", Json::String(args.Get("resize-timeout")));
  if (args.Has("node-deallocation-option")) {
    body.Set("nodeDeallocationOption", Json::String(args.Get("node-deallocation-option")));
  }
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  api::Request req = MakeRequest(api::Verb::kAction, s->Pool(args.Get("pool-id")), body);
  req.action = "resize";
  auto resp = CallWithController(*s, std::move(req), args.Has("no-wait"), ctx);
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, PoolRow, ctx);
  return ResizeOutcome(*resp, !args.Has("no-wait"), ctx);
}

int PoolStopResize(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  api::Request req = MakeRequest(api::Verb::kAction, s->Pool(args.Get("pool-id")), Json());
  req.action = "stopResize";
  auto resp = CallWithController(*s, std::move(req), args.Has("no-wait"), ctx);
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, PoolRow, ctx);
  return 0;
}

int PoolDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  ResourceId id = s->Pool(args.Get("pool-id"));
  auto resp = CallWithController(*s, MakeRequest(api::Verb::kDelete, id), args.Has("no-wait"), ctx);
  if (!resp.ok()) return Fail(resp.status(), ctx);
  if (resp->http_status == 204) {
    return Fail(s->local->Call(MakeRequest(api::Verb::kGet, id)).status(), ctx);
  }
  return 0;
}

// ---- nodes --------------------------------------------------------------------

int NodeList(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeListRequest(s->Pool(args.Get("pool-id")), batch::kNodeType));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintMany(*resp, NodeRow, ctx);
  return 0;
}

int NodeShow(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  ResourceId id = s->Pool(args.Get("pool-id")).Child("nodes", args.Get("node-id"));
  auto resp = s->local->Call(MakeRequest(api::Verb::kGet, id));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, NodeRow, ctx);
  return 0;
}

int NodeAction(const ParsedArgs& args, CommandContext& ctx, const std::string& action) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  std::vector<std::string> nodes = args.GetAll("node-id");
  for (const std::string& n : args.GetAll("node-list")) nodes.push_back(n);
  if (nodes.empty())
    return Fail(InvalidArgumentError("--node-id: give the node to " + action), ctx);
  Json body = Json::MakeObject();
  std::string option = args.Get("node-deallocation-option",
                                args.Get("node-reboot-option", args.Get("node-reimage-option")));
  if (action == "disableScheduling") {
    option = args.Get("node-disable-scheduling-option");
    if (!option.empty()) body.Set("nodeDisableSchedulingOption", Json::String(option));
  } else if (!option.empty()) {
    body.Set("nodeDeallocationOption", Json::String(option));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    ResourceId id = s->Pool(args.Get("pool-id")).Child("nodes", nodes[i]);
    api::Request req =
        MakeRequest(action == "delete" ? api::Verb::kDelete : api::Verb::kAction, id, body);
    req.action = action;
    // Only the last request runs (or waits for) the controller: it sees
    // the earlier ones' node actions too.
    StatusOr<api::Response> resp = api::Response{};
    if (i + 1 < nodes.size()) {
      req.wait = false;
      resp = s->local->Call(std::move(req));
    } else {
      resp = CallWithController(*s, std::move(req), args.Has("no-wait"), ctx);
    }
    if (!resp.ok()) return Fail(resp.status(), ctx);
    if (i + 1 == nodes.size() && action != "delete") PrintOne(resp->body, NodeRow, ctx);
  }
  return 0;
}

// ---- jobs and tasks ---------------------------------------------------------------

int JobCreate(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  if (args.Has("json-file")) {
    auto file = ReadJsonFile(*ctx.env, args.Get("json-file"));
    if (!file.ok()) return Fail(file.status(), ctx);
    body = *file;
  }
  if (args.Has("id")) body.Set("id", Json::String(args.Get("id")));
  if (args.Has("pool-id")) {
    Json info = Json::MakeObject();
    info.Set("poolId", Json::String(args.Get("pool-id")));
    body.Set("poolInfo", info);
  }
  if (args.Has("priority")) {
    auto n = IntFlag(args, "priority");
    if (!n.ok()) return Fail(n.status(), ctx);
    body.Set("priority", Json::Int(*n));
  }
  std::string id = Str(body, "id");
  if (id.empty()) return Fail(InvalidArgumentError("id: the job's id is required (--id)"), ctx);
  Status valid = batch::ValidateBatchId(id, "id");
  if (!valid.ok()) return Fail(valid, ctx);
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeRequest(api::Verb::kPut, s->Job(id), body));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, JobRow, ctx);
  return 0;
}

int JobShow(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeRequest(api::Verb::kGet, s->Job(args.Get("job-id"))));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, JobRow, ctx);
  return 0;
}

int JobList(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeListRequest(s->account, batch::kJobType));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintMany(*resp, JobRow, ctx);
  return 0;
}

int JobDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  ResourceId id = s->Job(args.Get("job-id"));
  auto resp = s->local->Call(MakeRequest(api::Verb::kDelete, id));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  if (resp->http_status == 204) {
    return Fail(s->local->Call(MakeRequest(api::Verb::kGet, id)).status(), ctx);
  }
  return 0;
}

int TaskCreate(const ParsedArgs& args, CommandContext& ctx) {
  std::vector<Json> tasks;
  if (args.Has("json-file")) {
    auto file = ReadJsonFile(*ctx.env, args.Get("json-file"));
    if (!file.ok()) return Fail(file.status(), ctx);
    tasks.push_back(*file);
  } else {
    Json body = Json::MakeObject();
    body.Set("id", Json::String(args.Get("task-id")));
    body.Set("commandLine", Json::String(args.Get("command-line")));
    if (args.Has("required-slots")) {
      auto n = IntFlag(args, "required-slots");
      if (!n.ok()) return Fail(n.status(), ctx);
      body.Set("requiredSlots", Json::Int(*n));
    }
    if (args.Has("max-task-retry-count")) {
      auto n = IntFlag(args, "max-task-retry-count");
      if (!n.ok()) return Fail(n.status(), ctx);
      Json c = Json::MakeObject();
      c.Set("maxTaskRetryCount", Json::Int(*n));
      body.Set("constraints", c);
    }
    if (args.Has("environment-settings")) {
      Json env = Json::MakeArray();
      for (const std::string& kv : args.GetAll("environment-settings")) {
        size_t eq = kv.find('=');
        Json item = Json::MakeObject();
        item.Set("name", Json::String(kv.substr(0, eq)));
        item.Set("value", Json::String(eq == std::string::npos ? "" : kv.substr(eq + 1)));
        env.Append(item);
      }
      body.Set("environmentSettings", env);
    }
    tasks.push_back(body);
  }
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  std::string task_id = Str(tasks[0], "id");
  if (task_id.empty()) {
    return Fail(InvalidArgumentError("id: the task's id is required (--task-id)"), ctx);
  }
  Status valid = batch::ValidateBatchId(task_id, "id");
  if (!valid.ok()) return Fail(valid, ctx);
  ResourceId id = s->Job(args.Get("job-id")).Child("tasks", task_id);
  api::Request req = MakeRequest(api::Verb::kPut, id, tasks[0]);
  req.wait = false;
  auto resp = s->local->Call(std::move(req));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  if (!resp->operation_id.empty()) {
    Status started = HandOffQueued(ctx, s->local->services.data_dir, resp->operation_id);
    if (!started.ok()) return Fail(started, ctx);
  }
  PrintOne(resp->body, TaskRow, ctx);
  return 0;
}

int TaskShow(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  ResourceId id = s->Job(args.Get("job-id")).Child("tasks", args.Get("task-id"));
  auto resp = s->local->Call(MakeRequest(api::Verb::kGet, id));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintOne(resp->body, TaskRow, ctx);
  return 0;
}

int TaskList(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeListRequest(s->Job(args.Get("job-id")), batch::kTaskType));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintMany(*resp, TaskRow, ctx);
  return 0;
}

int TaskFileDownload(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  ResourceId id = s->Job(args.Get("job-id")).Child("tasks", args.Get("task-id"));
  Json body = Json::MakeObject();
  body.Set("filePath", Json::String(args.Get("file-path")));
  api::Request req = MakeRequest(api::Verb::kAction, id, body);
  req.action = "getFile";
  auto resp = s->local->Call(std::move(req));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  std::string content = Str(resp->body, "content");
  std::string dest = args.Get("destination");
  if (dest.empty() || dest == "-") {
    *ctx.out << content;
    return 0;
  }
  Status w = ctx.env->WriteFileAtomic(dest, content);
  if (!w.ok()) return Fail(w.WithContext("--destination"), ctx);
  return 0;
}

// ---- accounts -------------------------------------------------------------------

int AccountSet(const ParsedArgs& args, CommandContext& ctx, bool create) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  Json body = Json::MakeObject();
  Json props = Json::MakeObject();
  for (const char* flag : {"dedicated-core-quota", "low-priority-core-quota"}) {
    if (!args.Has(flag)) continue;
    auto n = IntFlag(args, flag);
    if (!n.ok()) return Fail(n.status(), ctx);
    props.Set(
        flag == std::string("dedicated-core-quota") ? "dedicatedCoreQuota" : "lowPriorityCoreQuota",
        Json::Int(*n));
  }
  body.Set("properties", props);
  if (args.Has("location")) body.Set("location", Json::String(args.Get("location")));
  api::Request req = MakeRequest(create ? api::Verb::kPut : api::Verb::kPatch, s->account, body);
  if (!create) {
    auto exists = s->local->Call(MakeRequest(api::Verb::kGet, s->account));
    if (!exists.ok()) return Fail(exists.status(), ctx);
  }
  auto resp = s->local->Call(std::move(req));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintResult(Printable(resp->body), ctx);
  return 0;
}

int AccountShow(const ParsedArgs& args, CommandContext& ctx) {
  auto s = Open(args, ctx);
  if (!s.ok()) return Fail(s.status(), ctx);
  auto resp = s->local->Call(MakeRequest(api::Verb::kGet, s->account));
  if (!resp.ok()) return Fail(resp.status(), ctx);
  PrintResult(Printable(resp->body), ctx);
  return 0;
}

CommandSpec Spec(std::string path, std::string summary, std::string description,
                 std::vector<OptionSpec> options, std::vector<std::string> examples,
                 std::function<int(const ParsedArgs&, CommandContext&)> run) {
  std::vector<OptionSpec> all = {
      {"account-name", 0, "NAME",
       "Batch account (default: $AZURE_BATCH_ACCOUNT or imagesmith); made by the first pool.",
       false, false},
      {"resource-group", 'g', "GROUP",
       "Resource group of the account (default: $IMAGESMITH_BATCH_RESOURCE_GROUP or batch).", false,
       false}};
  for (OptionSpec& o : options) all.push_back(std::move(o));
  return CommandSpec{.path = std::move(path),
                     .summary = std::move(summary),
                     .description = std::move(description),
                     .args_usage = "",
                     .min_positionals = 0,
                     .max_positionals = 0,
                     .options = std::move(all),
                     .examples = std::move(examples),
                     .run = std::move(run)};
}

}  // namespace

void RegisterBatchCommands(CommandRegistry& registry) {
  registry.AddGroup("batch", "Manage Batch pools, nodes, jobs and tasks (az batch).");
  registry.AddGroup("batch account", "Manage the implicit Batch account (core quotas).");
  registry.AddGroup("batch pool", "Manage Batch pools of nodes booted from custom images.");
  registry.AddGroup("batch node", "Manage the nodes of a Batch pool.");
  registry.AddGroup("batch job", "Manage Batch jobs.");
  registry.AddGroup("batch task", "Manage Batch tasks.");
  registry.AddGroup("batch task file", "Read the files of a Batch task.");
  const OptionSpec pool_id{"pool-id", 0, "ID", "The pool's id.", false, true};
  const OptionSpec job_id{"job-id", 0, "ID", "The job's id.", false, true};
  const OptionSpec no_wait{"no-wait", 0, "",
                           "Return at once; a detached worker runs the pool's controller."};
  const OptionSpec location{
      "location", 'l', "REGION", "Region of a new account (default: the group's).", false, false};

  registry.Add(Spec("batch account show", "Show the Batch account.", "", {},
                    {"imagesmith batch account show --account-name acct"}, AccountShow));
  registry.Add(
      Spec("batch account create", "Create the Batch account (pool create also makes it).", "",
           {location,
            {"dedicated-core-quota", 0, "N", "Dedicated core quota (default 10000).", false, false},
            {"low-priority-core-quota", 0, "N", "Low-priority core quota (default 10000).", false,
             false}},
           {"imagesmith batch account create --account-name acct -g batch -l eastus"},
           [](const ParsedArgs& a, CommandContext& c) { return AccountSet(a, c, true); }));
  registry.Add(
      Spec("batch account set", "Set the Batch account's core quotas.",
           "A resize that needs more cores than the quota allows allocates what fits and reports "
           "AccountCoreQuotaReached.",
           {{"dedicated-core-quota", 0, "N", "Dedicated core quota.", false, false},
            {"low-priority-core-quota", 0, "N", "Low-priority core quota.", false, false}},
           {"imagesmith batch account set --dedicated-core-quota 40"},
           [](const ParsedArgs& a, CommandContext& c) { return AccountSet(a, c, false); }));

  registry.Add(Spec(
      "batch pool create", "Create a pool and allocate its nodes.",
      "Takes the JSON of 'az batch pool create --json-file' (or az's flags). The image is a "
      "managed image or gallery image version ID, replicated to the account's region; "
      "nodeAgentSKUId must fit its OS. Without --no-wait the pool's controller runs here until "
      "the pool is steady (progress on stderr; Ctrl-C stops waiting, the pool stays).",
      {{"json-file", 0, "FILE", "The pool in Batch's JSON (data-plane or ARM shape).", false,
        false},
       {"id", 0, "ID", "The pool's id.", false, false},
       {"vm-size", 0, "SIZE", "VM size, e.g. Standard_D2s_v3.", false, false},
       {"image", 0, "IMAGE_ID", "Managed image or gallery image version ID.", false, false},
       {"node-agent-sku-id", 0, "SKU", "e.g. 'batch.node.debian 12'.", false, false},
       {"target-dedicated-nodes", 0, "N", "Dedicated nodes.", false, false},
       {"target-low-priority-nodes", 0, "N", "Low-priority nodes.", false, false},
       {"resize-timeout", 0, "DURATION", "ISO 8601, at least PT5M (default PT15M).", false, false},
       {"start-task-command-line", 0, "CMD", "The start task's command line.", false, false},
       {"start-task-wait-for-success", 0, "", "Nodes wait for the start task (default)."},
       {"task-slots-per-node", 0, "N", "Tasks that run at once on a node (default 1).", false,
        false},
       {"metadata", 0, "KEY=VALUE", "Space-separated metadata.", true, false},
       {"node-driver", 0, "DRIVER", "qemu (default) or sim.", false, false, {"qemu", "sim"}},
       location,
       no_wait},
      {"imagesmith batch pool create --json-file pool.json --node-driver sim",
       "imagesmith batch pool create --id p1 --vm-size Standard_D2s_v3 --image "
       "/subscriptions/…/versions/1.0.0 --node-agent-sku-id 'batch.node.debian 12' "
       "--target-dedicated-nodes 2"},
      PoolCreate));
  registry.Add(Spec("batch pool show", "Show a pool.", "", {pool_id},
                    {"imagesmith batch pool show --pool-id p1"}, PoolShow));
  registry.Add(Spec("batch pool list", "List the account's pools.", "", {},
                    {"imagesmith batch pool list -o table"}, PoolList));
  registry.Add(Spec("batch pool resize", "Change a steady pool's target node counts.",
                    "Shrinking honours --node-deallocation-option: requeue (default), terminate, "
                    "taskcompletion or retaineddata.",
                    {pool_id,
                     {"target-dedicated-nodes", 0, "N", "Dedicated nodes.", false, false},
                     {"target-low-priority-nodes", 0, "N", "Low-priority nodes.", false, false},
                     {"resize-timeout", 0, "DURATION", "ISO 8601, at least PT5M.", false, false},
                     {"node-deallocation-option", 0, "OPTION",
                      "requeue, terminate, taskcompletion, "
                      "retaineddata.",
                      false, false},
                     no_wait},
                    {"imagesmith batch pool resize --pool-id p1 --target-dedicated-nodes 1 "
                     "--node-deallocation-option taskcompletion"},
                    PoolResize));
  registry.Add(Spec("batch pool stop-resize", "Stop a pool's resize (ResizeStopped).", "",
                    {pool_id, no_wait}, {"imagesmith batch pool stop-resize --pool-id p1"},
                    PoolStopResize));
  registry.Add(Spec("batch pool delete", "Delete a pool and its nodes.", "",
                    {pool_id, no_wait, {"yes", 'y', "", "Accepted for az compatibility."}},
                    {"imagesmith batch pool delete --pool-id p1 --yes"}, PoolDelete));

  const OptionSpec node_id{"node-id", 0, "ID", "The node's id.", true, false};
  registry.Add(Spec("batch node list", "List a pool's nodes.", "", {pool_id},
                    {"imagesmith batch node list --pool-id p1 -o table"}, NodeList));
  OptionSpec one_node = node_id;
  one_node.required = true;
  one_node.repeatable = false;
  registry.Add(Spec("batch node show", "Show a node.", "", {pool_id, one_node},
                    {"imagesmith batch node show --pool-id p1 --node-id tvmps_…"}, NodeShow));
  registry.Add(
      Spec("batch node reboot", "Reboot a node.", "Its tasks are requeued.",
           {pool_id,
            node_id,
            {"node-reboot-option", 0, "OPTION", "requeue (default) or terminate.", false, false},
            no_wait},
           {"imagesmith batch node reboot --pool-id p1 --node-id tvmps_…"},
           [](const ParsedArgs& a, CommandContext& c) { return NodeAction(a, c, "reboot"); }));
  registry.Add(
      Spec("batch node reimage", "Reimage a node: a fresh disk from the pool's image.", "",
           {pool_id,
            node_id,
            {"node-reimage-option", 0, "OPTION", "requeue (default) or terminate.", false, false},
            no_wait},
           {"imagesmith batch node reimage --pool-id p1 --node-id tvmps_…"},
           [](const ParsedArgs& a, CommandContext& c) { return NodeAction(a, c, "reimage"); }));
  registry.Add(
      Spec("batch node delete", "Remove nodes from a pool (its target shrinks by one each).", "",
           {pool_id,
            node_id,
            {"node-list", 0, "ID", "Nodes to remove (az's name for --node-id).", true, false},
            {"node-deallocation-option", 0, "OPTION",
             "requeue, terminate, taskcompletion, "
             "retaineddata.",
             false, false},
            no_wait},
           {"imagesmith batch node delete --pool-id p1 --node-list tvmps_…"},
           [](const ParsedArgs& a, CommandContext& c) { return NodeAction(a, c, "delete"); }));

  registry.AddGroup("batch node scheduling", "Enable or disable task scheduling on a node.");
  registry.Add(Spec(
      "batch node scheduling disable", "Stop scheduling tasks on a node: it goes offline.",
      "The node takes no new task and is offline once nothing runs on it. Its running tasks are "
      "requeued (default), terminated, or left to finish (taskcompletion).",
      {pool_id,
       one_node,
       {"node-disable-scheduling-option", 0, "OPTION",
        "requeue (default), terminate or taskcompletion.", false, false},
       no_wait},
      {"imagesmith batch node scheduling disable --pool-id p1 --node-id tvmps_… "
       "--node-disable-scheduling-option taskcompletion"},
      [](const ParsedArgs& a, CommandContext& c) {
        return NodeAction(a, c, "disableScheduling");
      }));
  registry.Add(Spec(
      "batch node scheduling enable", "Schedule tasks on a node again.",
      "An offline node becomes idle and takes tasks.", {pool_id, one_node, no_wait},
      {"imagesmith batch node scheduling enable --pool-id p1 --node-id tvmps_…"},
      [](const ParsedArgs& a, CommandContext& c) { return NodeAction(a, c, "enableScheduling"); }));

  registry.Add(Spec("batch job create", "Create a job on a pool.", "",
                    {{"json-file", 0, "FILE", "The job in Batch's JSON.", false, false},
                     {"id", 0, "ID", "The job's id.", false, false},
                     {"pool-id", 0, "ID", "The pool its tasks run on.", false, false},
                     {"priority", 0, "N", "-1000 to 1000 (default 0).", false, false}},
                    {"imagesmith batch job create --id j1 --pool-id p1"}, JobCreate));
  registry.Add(Spec("batch job show", "Show a job with its task counts.", "", {job_id},
                    {"imagesmith batch job show --job-id j1"}, JobShow));
  registry.Add(Spec("batch job list", "List the account's jobs.", "", {},
                    {"imagesmith batch job list -o table"}, JobList));
  registry.Add(Spec("batch job delete", "Delete a job and its tasks.", "",
                    {job_id, {"yes", 'y', "", "Accepted for az compatibility."}},
                    {"imagesmith batch job delete --job-id j1 --yes"}, JobDelete));

  registry.Add(Spec(
      "batch task create", "Add a task to a job.",
      "The task is queued (state active) and the pool's controller runs it on a node with free "
      "slots; without a server a detached worker runs the controller until the pool is quiet.",
      {job_id,
       {"json-file", 0, "FILE", "The task in Batch's JSON.", false, false},
       {"task-id", 0, "ID", "The task's id.", false, false},
       {"command-line", 0, "CMD", "What the task runs (/bin/sh -c in the node).", false, false},
       {"environment-settings", 0, "KEY=VALUE", "Space-separated variables.", true, false},
       {"required-slots", 0, "N", "Slots the task takes (default 1).", false, false},
       {"max-task-retry-count", 0, "N", "Retries after a non-zero exit.", false, false}},
      {"imagesmith batch task create --job-id j1 --task-id t1 --command-line 'echo hi'"},
      TaskCreate));
  const OptionSpec task_id{"task-id", 0, "ID", "The task's id.", false, true};
  registry.Add(Spec("batch task show", "Show a task.", "", {job_id, task_id},
                    {"imagesmith batch task show --job-id j1 --task-id t1"}, TaskShow));
  registry.Add(Spec("batch task list", "List a job's tasks.", "", {job_id},
                    {"imagesmith batch task list --job-id j1 -o table"}, TaskList));
  registry.Add(
      Spec("batch task file download", "Download a task's stdout.txt or stderr.txt.", "",
           {job_id,
            task_id,
            {"file-path", 0, "FILE", "stdout.txt or stderr.txt.", false, true},
            {"destination", 0, "PATH", "Where to write it ('-' or none: standard output).", false,
             false}},
           {"imagesmith batch task file download --job-id j1 --task-id t1 --file-path stdout.txt "
            "--destination out.txt"},
           TaskFileDownload));
}

}  // namespace imagesmith::cli
