// imagesmith account get-access-token, ad sp ..., role assignment|definition
// ...: sign-in and role-based access, as az prints them (doc/auth.md). A
// front end: parse, call api/accounts.h or a provider, print.
#include <ctime>

#include "api/accounts.h"
#include "api/local.h"
#include "auth/role_assignments.h"
#include "auth/roles.h"
#include "base/random.h"
#include "base/strings.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

constexpr const char* kAssignments = "Microsoft.Authorization/roleAssignments";

// az's expiresOn: local time, "2024-05-01 13:45:12.000000".
std::string LocalTime(int64_t s) {
  time_t t = static_cast<time_t>(s);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S.000000", &tm);
  return buf;
}

int RunGetAccessToken(const ParsedArgs& args, CommandContext& ctx) {
  bool sp = args.Has("service-principal");
  if (!sp && (args.Has("username") || args.Has("password"))) {
    return ReportError(InvalidArgumentError("--username and --password go with "
                                            "--service-principal"),
                       ctx);
  }
  if (sp && (args.Get("username").empty() || !args.Has("password"))) {
    return ReportError(InvalidArgumentError("--service-principal needs --username APPID and "
                                            "--password SECRET"),
                       ctx);
  }
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  api::Services& services = (*local)->services;
  auto token = sp ? api::ServicePrincipalToken(services, args.Get("username"), args.Get("password"))
                  : api::AccessTokenFor(services, (*local)->owner);
  if (!token.ok()) {
    return ReportError(token.status(), ctx,
                       sp ? "Check the appId and the password 'imagesmith ad sp create-for-rbac' "
                            "printed (running it again gives a new password)."
                          : "");
  }
  Json out = Json::MakeObject();
  out.Set("accessToken", Json::String(token->access_token));
  out.Set("expiresOn", Json::String(LocalTime(token->expires_on)));
  out.Set("expires_on", Json::Int(token->expires_on));
  out.Set("subscription", Json::String(services.subscription));
  out.Set("tenant", Json::String(token->tenant));
  out.Set("tokenType", Json::String("Bearer"));
  PrintResult(out, ctx);
  return 0;
}

int RunCreateForRbac(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  std::vector<std::string> scopes = args.GetAll("scopes");
  auto sp = api::CreateForRbac((*local)->services, (*local)->owner, args.Get("name"),
                               args.Get("role"), scopes);
  if (!sp.ok()) return ReportError(sp.status(), ctx);
  if (sp->existed) {
    *ctx.err << "Found an existing application instance: (appId) " << sp->app_id
             << ". We will patch it.\n";
  }
  for (const std::string& scope : scopes) {
    *ctx.err << "Creating '" << args.Get("role") << "' role assignment under scope '" << scope
             << "'\n";
  }
  *ctx.err << "The output includes credentials that you must protect. Be sure that you do not "
              "include these credentials in your code or check the credentials into your "
              "source control. For more information, see doc/auth.md\n";
  Json out = Json::MakeObject();
  out.Set("appId", Json::String(sp->app_id));
  out.Set("displayName", Json::String(sp->display_name));
  out.Set("password", Json::String(sp->password));
  out.Set("tenant", Json::String(sp->tenant));
  PrintResult(out, ctx);
  return 0;
}

int RunSpList(const ParsedArgs&, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  auto list = api::ListServicePrincipals((*local)->services);
  if (!list.ok()) return ReportError(list.status(), ctx);
  PrintResult(*list, ctx);
  return 0;
}

int RunSpDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  Status s = api::DeleteServicePrincipal((*local)->services, (*local)->owner, args.Get("id"));
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

// A role assignment in az's flattened shape, with the role's and the
// principal's names as 'az role assignment list' shows them.
Json AzAssignment(api::Services& services, const Json& arm) {
  const Json& p = *arm.Find("properties");
  Json out = Json::MakeObject();
  for (const char* k : {"condition", "conditionVersion", "createdBy", "createdOn",
                        "delegatedManagedIdentityResourceId", "description"}) {
    out.Set(k, *p.Find(k));
  }
  out.Set("id", *arm.Find("id"));
  out.Set("name", *arm.Find("name"));
  out.Set("principalId", *p.Find("principalId"));
  auto name = api::PrincipalDisplayName(services, p.Find("principalId")->string_value());
  out.Set("principalName", Json::String(name.ok() ? *name : ""));
  out.Set("principalType", *p.Find("principalType"));
  auto scope = ResourceId::Parse(p.Find("scope")->string_value());
  if (scope.ok() && !scope->resource_group().empty()) {
    out.Set("resourceGroup", Json::String(scope->resource_group()));
  }
  out.Set("roleDefinitionId", *p.Find("roleDefinitionId"));
  const auth::RoleDefinition* role = auth::FindRole(p.Find("roleDefinitionId")->string_value());
  out.Set("roleDefinitionName", Json::String(role != nullptr ? role->name : ""));
  out.Set("scope", *p.Find("scope"));
  out.Set("type", *arm.Find("type"));
  out.Set("updatedBy", *p.Find("updatedBy"));
  out.Set("updatedOn", *p.Find("updatedOn"));
  return out;
}

StatusOr<ResourceId> ScopeArg(const ParsedArgs& args, const api::Services& services) {
  if (!args.Has("scope")) return ResourceId::ForSubscription(services.subscription);
  auto scope = ResourceId::Parse(args.Get("scope"));
  if (!scope.ok()) return scope.status().WithContext("--scope");
  return scope;
}

int RunAssignmentCreate(const ParsedArgs& args, CommandContext& ctx) {
  if (args.Has("assignee") == args.Has("assignee-object-id")) {
    return ReportError(InvalidArgumentError("give one of --assignee and --assignee-object-id"),
                       ctx);
  }
  if (!args.Has("role")) {
    return ReportError(InvalidArgumentError("--role is required (Owner, Contributor or Reader)"),
                       ctx);
  }
  const auth::RoleDefinition* role = auth::FindRole(args.Get("role"));
  if (role == nullptr) {
    return ReportError(InvalidArgumentError("--role: " + QuoteForMessage(args.Get("role")) +
                                            " is not a role (built-in roles: Owner, "
                                            "Contributor, Reader)"),
                       ctx);
  }
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  api::Services& services = (*local)->services;
  auto scope = ScopeArg(args, services);
  if (!scope.ok()) return ReportError(scope.status(), ctx);
  std::string principal_id = args.Get("assignee-object-id");
  if (args.Has("assignee")) {
    auto p = api::ResolveAssignee(services, args.Get("assignee"));
    if (!p.ok()) return ReportError(p.status(), ctx);
    principal_id = p->object_id;
  }
  api::Request r;
  r.verb = api::Verb::kPut;
  r.id = *scope;
  r.extension_type = kAssignments;
  r.extension_name = args.Has("name") ? args.Get("name") : NewUuidV4();
  Json props = Json::MakeObject();
  props.Set("roleDefinitionId", Json::String(role->IdIn(scope->subscription())));
  props.Set("principalId", Json::String(principal_id));
  if (args.Has("description")) props.Set("description", Json::String(args.Get("description")));
  r.body = Json::MakeObject();
  r.body.Set("properties", std::move(props));
  auto resp = (*local)->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(AzAssignment(services, resp->body), ctx);
  return 0;
}

// The assignments the list/delete flags select, in ARM's shape.
StatusOr<std::vector<Json>> SelectAssignments(const ParsedArgs& args, api::Local& local,
                                              bool for_delete) {
  api::Services& services = local.services;
  ASSIGN_OR_RETURN(ResourceId scope, ScopeArg(args, services));
  bool all = !for_delete && args.Has("all");
  bool inherited = !for_delete && args.Has("include-inherited");
  std::string principal_id;
  if (args.Has("assignee")) {
    ASSIGN_OR_RETURN(auth::Principal p, api::ResolveAssignee(services, args.Get("assignee")));
    principal_id = p.object_id;
  }
  const auth::RoleDefinition* role = nullptr;
  if (args.Has("role")) {
    role = auth::FindRole(args.Get("role"));
    if (role == nullptr) {
      return InvalidArgumentError("--role: " + QuoteForMessage(args.Get("role")) +
                                  " is not a role (built-in roles: Owner, Contributor, Reader)");
    }
  }
  api::Request r;
  r.verb = api::Verb::kList;
  r.id = all ? ResourceId::ForSubscription(services.subscription) : scope;
  r.list_type = kAssignments;
  ASSIGN_OR_RETURN(api::Response resp, local.Call(std::move(r)));
  std::vector<Json> out;
  for (const Json& a : resp.body.Find("value")->array_items()) {
    const Json& p = *a.Find("properties");
    auto at = ResourceId::Parse(p.Find("scope")->string_value());
    if (!at.ok()) continue;
    bool scope_ok = all || *at == scope || (inherited && auth::ScopeCovers(*at, scope));
    if (!scope_ok) continue;
    if (!principal_id.empty() &&
        !EqualsIgnoreCase(p.Find("principalId")->string_value(), principal_id)) {
      continue;
    }
    if (role != nullptr && auth::FindRole(p.Find("roleDefinitionId")->string_value()) != role) {
      continue;
    }
    out.push_back(a);
  }
  return out;
}

int RunAssignmentList(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  auto selected = SelectAssignments(args, **local, false);
  if (!selected.ok()) return ReportError(selected.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& a : *selected) out.Append(AzAssignment((*local)->services, a));
  PrintResult(out, ctx);
  return 0;
}

int RunAssignmentDelete(const ParsedArgs& args, CommandContext& ctx) {
  if (!args.Has("ids") && !args.Has("assignee") && !args.Has("role") && !args.Has("scope")) {
    return ReportError(InvalidArgumentError("give --ids, or at least one of --assignee, --role "
                                            "and --scope"),
                       ctx);
  }
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  std::vector<auth::RoleAssignmentRef> refs;
  for (const std::string& id : args.GetAll("ids")) {
    auto ref = auth::ParseRoleAssignmentId(id);
    if (!ref.ok()) return ReportError(ref.status().WithContext("--ids"), ctx);
    refs.push_back(*ref);
  }
  if (!args.Has("ids")) {
    auto selected = SelectAssignments(args, **local, true);
    if (!selected.ok()) return ReportError(selected.status(), ctx);
    for (const Json& a : *selected) {
      refs.push_back(*auth::ParseRoleAssignmentId(a.Find("id")->string_value()));
    }
  }
  int deleted = 0;
  for (const auth::RoleAssignmentRef& ref : refs) {
    api::Request r;
    r.verb = api::Verb::kDelete;
    r.id = ref.scope;
    r.extension_type = kAssignments;
    r.extension_name = ref.name;
    auto resp = (*local)->Call(std::move(r));
    if (!resp.ok()) return ReportError(resp.status(), ctx);
    if (resp->http_status == 200) ++deleted;
  }
  if (deleted == 0) *ctx.err << "WARNING: No matched assignments were found to delete\n";
  return 0;
}

int RunDefinitionList(const ParsedArgs& args, CommandContext& ctx) {
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  Json out = Json::MakeArray();
  for (const auth::RoleDefinition& role : auth::BuiltinRoles()) {
    if (args.Has("name") && !EqualsIgnoreCase(args.Get("name"), role.name) &&
        !EqualsIgnoreCase(args.Get("name"), role.guid)) {
      continue;
    }
    Json perm = Json::MakeObject();
    Json actions = Json::MakeArray();
    for (const std::string& a : role.actions) actions.Append(Json::String(a));
    Json not_actions = Json::MakeArray();
    for (const std::string& a : role.not_actions) not_actions.Append(Json::String(a));
    perm.Set("actions", std::move(actions));
    perm.Set("dataActions", Json::MakeArray());
    perm.Set("notActions", std::move(not_actions));
    perm.Set("notDataActions", Json::MakeArray());
    Json perms = Json::MakeArray();
    perms.Append(std::move(perm));
    Json scopes = Json::MakeArray();
    scopes.Append(Json::String("/"));
    Json j = Json::MakeObject();
    j.Set("assignableScopes", std::move(scopes));
    j.Set("description", Json::String(role.description));
    j.Set("id", Json::String(role.IdIn((*local)->services.subscription)));
    j.Set("name", Json::String(role.guid));
    j.Set("permissions", std::move(perms));
    j.Set("roleName", Json::String(role.name));
    j.Set("roleType", Json::String("BuiltInRole"));
    j.Set("type", Json::String("Microsoft.Authorization/roleDefinitions"));
    out.Append(std::move(j));
  }
  PrintResult(out, ctx);
  return 0;
}

}  // namespace

void RegisterAuthCommands(CommandRegistry& registry) {
  registry.Add(CommandSpec{
      .path = "account get-access-token",
      .summary = "Get a bearer token for the REST API (the owner's, or a service principal's).",
      .description =
          "Without options: a token for the data directory's owner. With --service-principal:\n"
          "a token for the application --username after checking its --password. Tokens are\n"
          "signed with the data directory's key and expire after an hour (doc/auth.md).",
      .args_usage = "",
      .options = {{"service-principal", 0, "", "Sign in as a service principal."},
                  {"username", 'u', "APPID", "The service principal's appId."},
                  {"password", 'p', "SECRET", "The service principal's password."}},
      .examples = {"imagesmith account get-access-token",
                   "imagesmith account get-access-token --service-principal -u APPID -p SECRET"},
      .run = RunGetAccessToken,
  });
  registry.AddGroup("ad", "The directory: service principals.");
  registry.AddGroup("ad sp", "Service principals: applications that sign in with a secret.");
  registry.Add(CommandSpec{
      .path = "ad sp create-for-rbac",
      .summary = "Create a service principal and give it a role at some scopes.",
      .description =
          "Prints appId, displayName, password and tenant. The password is shown only now;\n"
          "only a salted slow hash of it is stored. Running it again for the same --name\n"
          "gives the existing service principal a new password.",
      .args_usage = "",
      .options = {{"name", 'n', "NAME", "The display name.", false, true},
                  {"role", 0, "ROLE", "Owner, Contributor or Reader."},
                  {"scopes", 0, "ID", "Resource IDs the role applies at.", true}},
      .examples = {"imagesmith ad sp create-for-rbac --name ci --role Contributor --scopes "
                   "/subscriptions/SUB/resourceGroups/images"},
      .run = RunCreateForRbac,
  });
  registry.Add(CommandSpec{
      .path = "ad sp list",
      .summary = "List service principals (never their secrets).",
      .description = "",
      .args_usage = "",
      .options = {{"all", 0, "", "Accepted for az compatibility; every one is listed."}},
      .examples = {"imagesmith ad sp list -o table"},
      .run = RunSpList,
  });
  registry.Add(CommandSpec{
      .path = "ad sp delete",
      .summary = "Delete a service principal and its role assignments.",
      .description = "Its tokens stop working at once.",
      .args_usage = "",
      .options = {{"id", 0, "ID", "The appId or object ID.", false, true}},
      .examples = {"imagesmith ad sp delete --id APPID"},
      .run = RunSpDelete,
  });
  registry.AddGroup("role", "Role-based access: who may do what, where.");
  registry.AddGroup("role assignment", "Roles given to principals at scopes.");
  std::vector<OptionSpec> select = {
      {"assignee", 0, "NAME", "appId, object ID, display name, identity resource ID or owner."},
      {"role", 0, "ROLE", "Owner, Contributor or Reader."},
      {"scope", 0, "ID", "Subscription, resource group or resource ID (default: subscription)."}};
  std::vector<OptionSpec> create_opts = select;
  create_opts.push_back({"assignee-object-id", 0, "GUID", "The principal's object ID."});
  create_opts.push_back({"description", 0, "TEXT", "A description of the assignment."});
  create_opts.push_back({"name", 0, "GUID", "The assignment's name (default: a new GUID)."});
  registry.Add(CommandSpec{
      .path = "role assignment create",
      .summary = "Give a principal a role at a scope (and everything below it).",
      .description = "Needs Microsoft.Authorization/roleAssignments/write at the scope: Owner.",
      .args_usage = "",
      .options = create_opts,
      .examples = {"imagesmith role assignment create --assignee APPID --role Reader --scope "
                   "/subscriptions/SUB/resourceGroups/images/providers/Microsoft.Compute/"
                   "galleries/gal"},
      .run = RunAssignmentCreate,
  });
  std::vector<OptionSpec> list_opts = select;
  list_opts.push_back({"all", 0, "", "Every assignment in the subscription, at any scope."});
  list_opts.push_back({"include-inherited", 0, "", "Also assignments at scopes above --scope."});
  registry.Add(CommandSpec{
      .path = "role assignment list",
      .summary = "List role assignments at a scope.",
      .description = "By default only assignments at exactly --scope (the subscription when\n"
                     "omitted) are shown, as az does; --include-inherited adds those above it,\n"
                     "--all shows every one.",
      .args_usage = "",
      .options = list_opts,
      .examples = {"imagesmith role assignment list --all -o table"},
      .run = RunAssignmentList,
  });
  std::vector<OptionSpec> delete_opts = select;
  delete_opts.push_back({"ids", 0, "ID", "Role assignment IDs.", true});
  registry.Add(CommandSpec{
      .path = "role assignment delete",
      .summary = "Delete the role assignments at --scope that match the flags, or --ids.",
      .description = "Needs Microsoft.Authorization/roleAssignments/delete: Owner.",
      .args_usage = "",
      .options = delete_opts,
      .examples = {"imagesmith role assignment delete --assignee APPID --role Reader --scope ID"},
      .run = RunAssignmentDelete,
  });
  registry.AddGroup("role definition", "The built-in roles.");
  registry.Add(CommandSpec{
      .path = "role definition list",
      .summary = "List the built-in roles (Owner, Contributor, Reader) and their actions.",
      .description = "",
      .args_usage = "",
      .options = {{"name", 'n', "NAME", "Only this role (name or GUID)."}},
      .examples = {"imagesmith role definition list --name Reader"},
      .run = RunDefinitionList,
  });
}

}  // namespace imagesmith::cli
