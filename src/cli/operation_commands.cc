// imagesmith operation show|wait|list: durable operations (api/operations.h)
// as az shows an async operation's status.
#include <cstdlib>

#include "api/local.h"
#include "api/operations.h"
#include "cli/command.h"
#include "cli/image_template_ops.h"

namespace imagesmith::cli {
namespace {

// Accepts the operation's GUID or its ARM ID (…/operations/{guid}).
std::string OperationName(const std::string& id) {
  size_t slash = id.rfind('/');
  return slash == std::string::npos ? id : id.substr(slash + 1);
}

int RunOperationShow(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  auto op = (*local)->operations->Get(OperationName(args.Get("id")));
  if (!op.ok()) return ReportApiError(op.status(), ctx);
  PrintResult(op->ToJson(true), ctx);
  return 0;
}

int RunOperationWait(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  double timeout = std::atof(args.Get("timeout", "3600").c_str());
  if (timeout <= 0) {
    return ReportError(InvalidArgumentError("--timeout: give a positive number of seconds"), ctx);
  }
  auto op = (*local)->operations->Wait(OperationName(args.Get("id")),
                                       static_cast<int64_t>(timeout * 1e6));
  if (!op.ok()) return ReportApiError(op.status(), ctx);
  PrintResult(op->ToJson(true), ctx);
  switch (op->status) {
    case api::OperationStatus::kSucceeded:
      return 0;
    case api::OperationStatus::kCanceled:
      return 6;
    default:
      return 1;
  }
}

int RunOperationList(const ParsedArgs& args, CommandContext& ctx) {
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  std::optional<ResourceId> target;
  if (args.Has("target")) {
    auto id = ResourceId::Parse(args.Get("target"));
    if (!id.ok()) return ReportError(id.status().WithContext("--target"), ctx);
    target = *id;
  }
  int limit = std::atoi(args.Get("top", "100").c_str());
  auto ops = (*local)->operations->List(target, limit > 0 ? limit : 100);
  if (!ops.ok()) return ReportApiError(ops.status(), ctx);
  Json out = Json::MakeArray();
  for (const api::Operation& op : *ops) {
    // Operations whose worker died are shown as they really are.
    if (api::Operations::Abandoned(op, ctx.env->NowMicros())) {
      auto reaped = (*local)->operations->Get(op.id);
      out.Append(reaped.ok() ? reaped->ToJson(true) : op.ToJson(true));
    } else {
      out.Append(op.ToJson(true));
    }
  }
  PrintResult(out, ctx);
  return 0;
}

}  // namespace

void RegisterOperationCommands(CommandRegistry& registry) {
  registry.AddGroup("operation",
                    "Follow durable operations (template runs started with --no-wait).");
  registry.Add(CommandSpec{
      .path = "operation show",
      .summary = "Show an operation's status.",
      .description = "Prints Azure's async operation status (id, name, status, startTime,\n"
                     "endTime, percentComplete, error) plus type, target, owner, leaseExpiry and\n"
                     "properties. An operation whose worker died is failed first, with a message\n"
                     "naming the worker and when its lease ended.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {{"id", 0, "ID", "The operation's name (a GUID) or ARM ID.", false, true}},
      .examples = {"imagesmith operation show --id 5e7c1f52-3b1e-4a55-9d0a-0d3c7f0a6b11"},
      .run = RunOperationShow,
  });
  registry.Add(CommandSpec{
      .path = "operation wait",
      .summary = "Wait until an operation ends; print it.",
      .description = "Polls the operation until it is Succeeded, Failed or Canceled. Exit status:\n"
                     "0 Succeeded, 1 Failed, 6 Canceled or --timeout passed.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {{"id", 0, "ID", "The operation's name (a GUID) or ARM ID.", false, true},
                  {"timeout", 0, "SECONDS", "Give up after this long (default 3600)."}},
      .examples = {"imagesmith operation wait --id 5e7c1f52-3b1e-4a55-9d0a-0d3c7f0a6b11 "
                   "--timeout 600"},
      .run = RunOperationWait,
  });
  registry.Add(CommandSpec{
      .path = "operation list",
      .summary = "List operations, newest first.",
      .description = "",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {{"target", 0, "RESOURCE_ID", "Only operations on this resource."},
                  {"top", 0, "N", "At most N operations (default 100)."}},
      .examples = {"imagesmith operation list -o table"},
      .run = RunOperationList,
  });
}

}  // namespace imagesmith::cli
