// imagesmith group ...: resource groups, as 'az group'.
#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "meta/scopes.h"

namespace imagesmith::cli {
namespace {

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto location = Region::Parse(args.Get("location"));
  if (!location.ok()) return ReportError(location.status(), ctx);
  auto tags = ParseTagArgs(args.GetAll("tags"));
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Json body = Json::MakeObject();
  body.Set("location", Json::String(location->name()));
  body.Set("tags", *tags);
  api::Request req = MakeRequest(api::Verb::kPut, client->Group(args.Get("name")), body);
  // `group create` creates; it does not replace an existing group.
  req.if_none_match = "*";
  auto r = client->Call(req);
  if (!r.ok() && r.status().code() == StatusCode::kAborted) {
    return ReportError(
        AlreadyExistsError("resource group '" + args.Get("name") + "' already exists"), ctx);
  }
  if (!r.ok()) return ReportError(r.status(), ctx);
  PrintResult(Printable(r->body), ctx);
  return 0;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r = client->Call(MakeRequest(api::Verb::kGet, client->Group(args.Get("name"))));
  if (!r.ok()) return ReportError(r.status(), ctx);
  PrintResult(Printable(r->body), ctx);
  return 0;
}

int RunList(const ParsedArgs&, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r = client->Call(MakeListRequest(client->Subscription(), meta::kGroupType));
  if (!r.ok()) return ReportError(r.status(), ctx);
  Json out = Json::MakeArray();
  for (Json& item : PrintableItems(*r)) out.Append(std::move(item));
  PrintResult(out, ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Status s = DeleteResource(*client, client->Group(args.Get("name")));
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
