// imagesmith identity ...: user-assigned managed identities, as 'az
// identity'. A front end over the userAssignedIdentities provider.
#include "api/local.h"
#include "base/region.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

constexpr const char* kType = "Microsoft.ManagedIdentity/userAssignedIdentities";

// az's flattened shape: properties' members at the top.
Json AzIdentity(const Json& arm) {
  Json out = Json::MakeObject();
  const Json& p = *arm.Find("properties");
  out.Set("clientId", *p.Find("clientId"));
  out.Set("id", *arm.Find("id"));
  out.Set("location", *arm.Find("location"));
  out.Set("name", *arm.Find("name"));
  out.Set("principalId", *p.Find("principalId"));
  out.Set("resourceGroup", *arm.Find("resourceGroup"));
  out.Set("systemData", Json::Null());
  out.Set("tags", *arm.Find("tags"));
  out.Set("tenantId", *p.Find("tenantId"));
  out.Set("type", *arm.Find("type"));
  return out;
}

ResourceId IdentityId(const api::Local& local, const ParsedArgs& args) {
  return ResourceId::ForResource(local.services.subscription, args.Get("resource-group"),
                                 "Microsoft.ManagedIdentity", "userAssignedIdentities",
                                 args.Get("name"));
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto tags = ParseTagArgs(args.GetAll("tags"));
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  std::string location = args.Get("location");
  if (location.empty() &&
      (*local)->registry->Find("Microsoft.Resources/resourceGroups") == nullptr) {
    return ReportError(InvalidArgumentError("--location is required"), ctx);
  }
  if (location.empty()) {
    // az takes the group's location.
    api::Request g;
    g.verb = api::Verb::kGet;
    g.id =
        ResourceId::ForResourceGroup((*local)->services.subscription, args.Get("resource-group"));
    auto group = (*local)->Call(std::move(g));
    if (!group.ok() || group->body.Find("location") == nullptr) {
      return ReportError(InvalidArgumentError("--location is required (the resource group's "
                                              "location could not be read: " +
                                              group.status().message() + ")"),
                         ctx);
    }
    location = group->body.Find("location")->string_value();
  }
  api::Request r;
  r.verb = api::Verb::kPut;
  r.id = IdentityId(**local, args);
  r.body = Json::MakeObject();
  r.body.Set("location", Json::String(location));
  r.body.Set("tags", *tags);
  auto resp = (*local)->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(AzIdentity(resp->body), ctx);
  return 0;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kGet;
  r.id = IdentityId(**local, args);
  auto resp = (*local)->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(AzIdentity(resp->body), ctx);
  return 0;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kList;
  r.id = args.Has("resource-group") ? ResourceId::ForResourceGroup((*local)->services.subscription,
                                                                   args.Get("resource-group"))
                                    : ResourceId::ForSubscription((*local)->services.subscription);
  r.list_type = kType;
  auto resp = (*local)->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& item : resp->body.Find("value")->array_items()) out.Append(AzIdentity(item));
  PrintResult(out, ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kDelete;
  r.id = IdentityId(**local, args);
  auto resp = (*local)->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  return 0;
}

OptionSpec Group(bool required) {
  return {"resource-group", 'g', "GROUP", "The resource group.", false, required};
}
OptionSpec Name() { return {"name", 'n', "NAME", "The identity's name.", false, true}; }

}  // namespace

void RegisterIdentityCommands(CommandRegistry& registry) {
  registry.AddGroup("identity",
                    "User-assigned managed identities (what templates name in "
                    "'identity').");
  registry.Add(CommandSpec{
      .path = "identity create",
      .summary = "Create a user-assigned identity: a principal that roles can be given to.",
      .description = "Prints its principalId (the object ID for 'role assignment create'),\n"
                     "clientId and tenantId. The location defaults to the group's.",
      .args_usage = "",
      .options = {Group(true),
                  Name(),
                  {"location", 'l', "REGION", "The region (default: the group's)."},
                  {"tags", 0, "K=V", "Tags, az's syntax.", true}},
      .examples = {"imagesmith identity create -g images -n builder-id"},
      .run = RunCreate,
  });
  registry.Add(CommandSpec{
      .path = "identity show",
      .summary = "Show a user-assigned identity.",
      .description = "",
      .args_usage = "",
      .options = {Group(true), Name()},
      .examples = {"imagesmith identity show -g images -n builder-id"},
      .run = RunShow,
  });
  registry.Add(CommandSpec{
      .path = "identity list",
      .summary = "List user-assigned identities in a group or the subscription.",
      .description = "",
      .args_usage = "",
      .options = {Group(false)},
      .examples = {"imagesmith identity list -g images -o table"},
      .run = RunList,
  });
  registry.Add(CommandSpec{
      .path = "identity delete",
      .summary = "Delete a user-assigned identity.",
      .description = "Role assignments that name it stay until they are deleted, as in Azure.",
      .args_usage = "",
      .options = {Group(true), Name()},
      .examples = {"imagesmith identity delete -g images -n builder-id"},
      .run = RunDelete,
  });
}

}  // namespace imagesmith::cli
