// imagesmith group ...: resource groups, as 'az group'.
#include "base/strings.h"
#include "cli/command.h"
#include "cli/data.h"
#include "meta/scopes.h"

namespace imagesmith::cli {
namespace {

Json GroupJson(const meta::Resource& r) {
  Json j = Json::MakeObject();
  j.Set("id", Json::String(r.id.ToString()));
  j.Set("location", Json::String(r.location));
  j.Set("name", Json::String(r.id.name()));
  j.Set("properties", r.properties);
  j.Set("tags", r.tags);
  j.Set("type", Json::String(meta::kGroupType));
  return j;
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto location = Region::Parse(args.Get("location"));
  if (!location.ok()) return ReportError(location.status(), ctx);
  auto tags = ParseTagArgs(args.GetAll("tags"));
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out;
  Status s = data->meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, meta::CreateGroup(txn, data->subscription, args.Get("name"),
                                                         *location, *tags));
    out = GroupJson(r);
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out;
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource r, meta::GetGroup(txn, data->Group(args.Get("name"))));
    out = GroupJson(r);
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunList(const ParsedArgs&, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Json out = Json::MakeArray();
  Status s = data->meta->Read([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(auto groups, txn.ListChildren(ResourceId::ForSubscription(data->subscription),
                                                   meta::kGroupType));
    for (const meta::Resource& r : groups) out.Append(GroupJson(r));
    return Status::Ok();
  });
  if (!s.ok()) return ReportError(s, ctx);
  PrintResult(out, ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  Status s = data->meta->Update([&](meta::Transaction& txn) {
    return meta::DeleteGroup(txn, data->Group(args.Get("name")));
  });
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

OptionSpec NameOption() {
  return {"name", 'n', "NAME", "Name of the resource group.", false, true};
}

}  // namespace

void RegisterGroupCommands(CommandRegistry& registry) {
  registry.AddGroup("group", "Manage resource groups.");
  registry.Add(CommandSpec{
      .path = "group create",
      .summary = "Create a resource group.",
      .description =
          "Names are 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending in '.'.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {NameOption(),
                  {"location", 'l', "REGION", "Region, e.g. eastus or \"East US\".", false, true},
                  {"tags", 0, "KEY=VALUE", "Space-separated tags.", true, false}},
      .examples = {"imagesmith group create -n images -l eastus --tags team=platform"},
      .run = RunCreate,
  });
  registry.Add(CommandSpec{.path = "group show",
                           .summary = "Show a resource group.",
                           .description = "",
                           .args_usage = "",
                           .min_positionals = 0,
                           .max_positionals = 0,
                           .options = {NameOption()},
                           .examples = {"imagesmith group show -n images"},
                           .run = RunShow});
  registry.Add(CommandSpec{.path = "group list",
                           .summary = "List resource groups.",
                           .description = "",
                           .args_usage = "",
                           .min_positionals = 0,
                           .max_positionals = 0,
                           .options = {},
                           .examples = {"imagesmith group list -o table"},
                           .run = RunList});
  registry.Add(CommandSpec{
      .path = "group delete",
      .summary = "Delete an empty resource group.",
      .description = "A group that still holds resources is not deleted; the error lists them.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {NameOption(),
                  {"yes", 'y', "", "Do not ask for confirmation (accepted for az compatibility)."}},
      .examples = {"imagesmith group delete -n images --yes"},
      .run = RunDelete});
}

}  // namespace imagesmith::cli
