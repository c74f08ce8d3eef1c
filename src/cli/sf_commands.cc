// imagesmith sf ...: Service Fabric managed clusters and node types, with
// `az sf managed-cluster` and `az sf managed-node-type`'s flags, plus the
// node type's rollouts (doc/servicefabric.md). A thin front end: every
// command builds one ARM request for the sf providers.
#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/gallery_args.h"

namespace imagesmith::cli {
namespace {

constexpr char kClusterType[] = "Microsoft.ServiceFabric/managedClusters";
constexpr char kNodeTypeType[] = "Microsoft.ServiceFabric/managedClusters/nodeTypes";

ResourceId ClusterOf(const ApiClient& client, const ParsedArgs& args) {
  ResourceId g = client.Group(args.Get("resource-group"));
  return ResourceId::ForResource(g.subscription(), g.resource_group(), "Microsoft.ServiceFabric",
                                 "managedClusters", args.Get("cluster-name"));
}
ResourceId NodeTypeOf(const ApiClient& client, const ParsedArgs& args) {
  return ClusterOf(client, args).Child("nodeTypes", args.Get("name"));
}

// Runs one request and prints what it answers (or `pick` of it).
int Run(const ParsedArgs& args, CommandContext& ctx,
        const std::function<StatusOr<api::Request>(ApiClient&)>& make,
        const std::function<Json(const api::Response&)>& pick = nullptr) {
  (void)args;
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto req = make(*client);
  if (!req.ok()) return ReportError(req.status(), ctx);
  if (ctx.stderr_is_tty) {
    req->progress = [&ctx](api::ProgressKind kind, std::string_view line) {
      if (kind != api::ProgressKind::kLog) *ctx.err << line << "\n";
    };
  }
  auto r = client->Call(std::move(*req));
  if (!r.ok()) return ReportError(r.status(), ctx);
  if (pick) {
    PrintResult(pick(*r), ctx);
  } else if (r->http_status != 204) {
    PrintResult(Printable(r->body), ctx);
  }
  return 0;
}

Json ListOut(const api::Response& r) {
  Json out = Json::MakeArray();
  for (const Json& item : PrintableItems(r)) out.Append(item);
  return out;
}

int ClusterCreate(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    Json body = Json::MakeObject();
    if (args.Has("location")) body.Set("location", Json::String(args.Get("location")));
    ASSIGN_OR_RETURN(Json tags, ParseTagArgs(args.GetAll("tags")));
    body.Set("tags", tags);
    Json sku = Json::MakeObject();
    sku.Set("name", Json::String(args.Get("sku", "Basic")));
    body.Set("sku", sku);
    Json props = Json::MakeObject();
    if (args.Has("dns-name")) props.Set("dnsName", Json::String(args.Get("dns-name")));
    if (args.Has("admin-user-name")) {
      props.Set("adminUserName", Json::String(args.Get("admin-user-name")));
    }
    if (args.Has("enable-auto-os-upgrade")) {
      ASSIGN_OR_RETURN(
          bool on, ParseBoolArg("--enable-auto-os-upgrade", args.Get("enable-auto-os-upgrade")));
      props.Set("enableAutoOSUpgrade", Json::Bool(on));
    }
    body.Set("properties", props);
    return MakeRequest(api::Verb::kPut, ClusterOf(c, args), body);
  });
}

int ClusterShow(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    return MakeRequest(api::Verb::kGet, ClusterOf(c, args));
  });
}

int ClusterList(const ParsedArgs& args, CommandContext& ctx) {
  return Run(
      args, ctx,
      [&](ApiClient& c) -> StatusOr<api::Request> {
        return MakeListRequest(
            args.Has("resource-group") ? c.Group(args.Get("resource-group")) : c.Subscription(),
            kClusterType);
      },
      ListOut);
}

int ClusterDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Status s = DeleteResource(*client, ClusterOf(*client, args));
  return s.ok() ? 0 : ReportError(s, ctx);
}

int ClusterCheckUpgrades(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    api::Request r = MakeRequest(api::Verb::kAction, ClusterOf(c, args));
    r.action = "checkOSUpgrades";
    return r;
  });
}

StatusOr<Json> NodeTypeBody(const ParsedArgs& args, bool create) {
  Json body = Json::MakeObject();
  Json props = Json::MakeObject();
  if (args.Has("tags")) {
    ASSIGN_OR_RETURN(Json tags, ParseTagArgs(args.GetAll("tags")));
    body.Set("tags", tags);
  }
  if (args.Has("instance-count")) {
    const std::string text = args.Get("instance-count");
    char* end = nullptr;
    long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') {
      return InvalidArgumentError("--instance-count: " + QuoteForMessage(text) +
                                  " is not an integer");
    }
    props.Set("vmInstanceCount", Json::Int(n));
  }
  if (create) props.Set("isPrimary", Json::Bool(args.Has("primary")));
  if (args.Has("vm-size")) props.Set("vmSize", Json::String(args.Get("vm-size")));
  if (args.Has("data-disk-size")) {
    ASSIGN_OR_RETURN(int64_t gb, ParseCountArg("--data-disk-size", args.Get("data-disk-size")));
    props.Set("dataDiskSizeGB", Json::Int(gb));
  }
  if (args.Has("vm-image-resource-id")) {
    props.Set("vmImageResourceId", Json::String(args.Get("vm-image-resource-id")));
  }
  Json ext = Json::MakeObject();
  if (args.Has("node-driver")) ext.Set("nodeDriver", Json::String(args.Get("node-driver")));
  if (args.Has("health-command")) {
    ext.Set("healthCommand", Json::String(args.Get("health-command")));
  }
  if (args.Has("rolling-upgrade-policy")) {
    auto p = ParseJson(args.Get("rolling-upgrade-policy"));
    if (!p.ok()) return p.status().WithContext("--rolling-upgrade-policy");
    ext.Set("rollingUpgradePolicy", *p);
  }
  if (!ext.object_items().empty()) props.Set("imagesmith", ext);
  body.Set("properties", props);
  return body;
}

int NodeTypeCreate(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    ASSIGN_OR_RETURN(Json body, NodeTypeBody(args, true));
    return MakeRequest(api::Verb::kPut, NodeTypeOf(c, args), body);
  });
}

// az's update: read, change, PUT.
int NodeTypeUpdate(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    ASSIGN_OR_RETURN(Json body, NodeTypeBody(args, false));
    return MakeRequest(api::Verb::kPut, NodeTypeOf(c, args), body);
  });
}

int NodeTypeShow(const ParsedArgs& args, CommandContext& ctx) {
  return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
    return MakeRequest(api::Verb::kGet, NodeTypeOf(c, args));
  });
}

int NodeTypeList(const ParsedArgs& args, CommandContext& ctx) {
  return Run(
      args, ctx,
      [&](ApiClient& c) -> StatusOr<api::Request> {
        return MakeListRequest(ClusterOf(c, args), kNodeTypeType);
      },
      ListOut);
}

int NodeTypeDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Status s = DeleteResource(*client, NodeTypeOf(*client, args));
  return s.ok() ? 0 : ReportError(s, ctx);
}

std::function<int(const ParsedArgs&, CommandContext&)> NodeTypeAction(std::string action) {
  return [action](const ParsedArgs& args, CommandContext& ctx) {
    return Run(args, ctx, [&](ApiClient& c) -> StatusOr<api::Request> {
      Json body = Json::MakeObject();
      if (args.Has("node-name")) {
        Json nodes = Json::MakeArray();
        for (const std::string& n : args.GetAll("node-name")) nodes.Append(Json::String(n));
        body.Set("nodes", nodes);
      }
      api::Request r = MakeRequest(api::Verb::kAction, NodeTypeOf(c, args), body);
      r.action = action;
      return r;
    });
  };
}

CommandSpec Spec(std::string path, std::string summary, std::string description,
                 std::vector<OptionSpec> options, std::vector<std::string> examples,
                 std::function<int(const ParsedArgs&, CommandContext&)> run) {
  return CommandSpec{.path = std::move(path),
                     .summary = std::move(summary),
                     .description = std::move(description),
                     .args_usage = "",
                     .min_positionals = 0,
                     .max_positionals = 0,
                     .options = std::move(options),
                     .examples = std::move(examples),
                     .run = std::move(run)};
}

}  // namespace

void RegisterSfCommands(CommandRegistry& registry) {
  registry.AddGroup("sf", "Service Fabric managed clusters and node types.");
  registry.AddGroup("sf managed-cluster", "Manage Service Fabric managed clusters.");
  registry.AddGroup("sf managed-node-type", "Manage node types of a managed cluster.");
  registry.AddGroup("sf managed-node-type rollout",
                    "A node type's OS image rollouts (VMSS rolling upgrades).");
  const OptionSpec group{
      "resource-group", 'g', "GROUP", "Name of the resource group.", false, true};
  const OptionSpec cluster{"cluster-name", 'c', "NAME", "Name of the managed cluster.",
                           false,          true};
  const OptionSpec node_type{"name", 'n', "NAME", "Name of the node type.", false, true};
  const OptionSpec tags{"tags", 0, "KEY=VALUE", "Space-separated tags.", true, false};
  registry.Add(
      Spec("sf managed-cluster create", "Create a managed cluster.",
           "SKU Basic (the primary node type needs at least 3 instances) or Standard (at least 5). "
           "--enable-auto-os-upgrade makes node types on a gallery image definition move to each "
           "new latest version.",
           {group,
            cluster,
            {"location", 'l', "REGION", "Region; default: the group's.", false, false},
            {"sku", 0, "SKU", "Basic (default) or Standard.", false, false, {"Basic", "Standard"}},
            {"dns-name", 0, "NAME", "DNS name; default: the cluster name.", false, false},
            {"admin-user-name", 0, "NAME", "Admin user of the nodes.", false, false},
            {"admin-password", 0, "PASSWORD", "Accepted for az compatibility; not stored.", false,
             false},
            {"enable-auto-os-upgrade", 0, "BOOL", "Automatic OS image upgrades.", false, false},
            tags},
           {"imagesmith sf managed-cluster create -g rg -c mysfcluster --sku Standard "
            "--enable-auto-os-upgrade true"},
           ClusterCreate));
  registry.Add(Spec("sf managed-cluster show", "Show a managed cluster.", "", {group, cluster},
                    {"imagesmith sf managed-cluster show -g rg -c mysfcluster"}, ClusterShow));
  OptionSpec optional_group = group;
  optional_group.required = false;
  registry.Add(Spec("sf managed-cluster list", "List managed clusters.", "", {optional_group},
                    {"imagesmith sf managed-cluster list -o table"}, ClusterList));
  registry.Add(Spec("sf managed-cluster delete", "Delete a managed cluster (without node types).",
                    "", {group, cluster}, {"imagesmith sf managed-cluster delete -g rg -c c1"},
                    ClusterDelete));
  registry.Add(
      Spec("sf managed-cluster check-os-upgrades", "Run the automatic OS upgrade check once.",
           "What `imagesmith serve` does every minute: for each node type on a gallery image "
           "definition, when the cluster has automatic OS upgrades, roll it to the definition's "
           "new latest version in the cluster's region, one node type at a time; a failed upgrade "
           "is retried after 24 hours, at most 3 times.",
           {group, cluster}, {"imagesmith sf managed-cluster check-os-upgrades -g rg -c c1"},
           ClusterCheckUpgrades));

  const std::vector<OptionSpec> create_opts = {
      group,
      cluster,
      node_type,
      {"instance-count", 0, "N",
       "Number of nodes (the primary: at least 3 on Basic, 5 on "
       "Standard).",
       false, true},
      {"primary", 0, "", "The primary node type (cannot change later)."},
      {"vm-size", 0, "SIZE", "VM size; default Standard_D2s_v3.", false, false},
      {"data-disk-size", 0, "GIB", "Data disk size in GiB (default 100).", false, false},
      {"vm-image-resource-id", 0, "ID",
       "A managed image, a gallery image definition (floats on latest) or a gallery image "
       "version ID.",
       false, true},
      {"node-driver", 0, "DRIVER", "qemu (default) or sim.", false, false, {"qemu", "sim"}},
      {"health-command", 0, "CMD", "Application health command run in each node.", false, false},
      {"rolling-upgrade-policy", 0, "JSON",
       "rollingUpgradePolicy (maxBatchInstancePercent, "
       "..., healthDeadline).",
       false, false},
      tags};
  registry.Add(Spec(
      "sf managed-node-type create", "Create a node type and its nodes.",
      "The Service Fabric resource provider (object id fbc587f2-66f5-4459-a027-bcd908b9d278) "
      "needs Reader on the image; the error says how to assign it.",
      create_opts,
      {"imagesmith sf managed-node-type create -g rg -c c1 -n pnt --primary --instance-count 5 "
       "--vm-image-resource-id /subscriptions/.../galleries/gal/images/deb --node-driver sim"},
      NodeTypeCreate));
  registry.Add(
      Spec("sf managed-node-type update", "Scale a node type or change its tags.", "",
           {group,
            cluster,
            node_type,
            {"instance-count", 0, "N", "New number of nodes.", false, false},
            {"health-command", 0, "CMD", "Application health command.", false, false},
            {"rolling-upgrade-policy", 0, "JSON", "rollingUpgradePolicy.", false, false},
            tags},
           {"imagesmith sf managed-node-type update -g rg -c c1 -n pnt --instance-count 7"},
           NodeTypeUpdate));
  registry.Add(Spec("sf managed-node-type show", "Show a node type.", "",
                    {group, cluster, node_type}, {}, NodeTypeShow));
  registry.Add(Spec("sf managed-node-type list", "List a cluster's node types.", "",
                    {group, cluster}, {}, NodeTypeList));
  registry.Add(Spec("sf managed-node-type delete", "Delete a node type and its nodes.", "",
                    {group, cluster, node_type}, {}, NodeTypeDelete));
  const OptionSpec node_names{"node-name", 0,    "NODE", "Only these nodes (default: all).",
                              true,        false};
  registry.Add(Spec("sf managed-node-type restart", "Restart nodes, one upgrade domain at a time.",
                    "", {group, cluster, node_type, node_names, {"force", 0, "", "Accepted."}}, {},
                    NodeTypeAction("restart")));
  registry.Add(Spec("sf managed-node-type reimage",
                    "Reimage nodes onto their image, one upgrade domain at a time.", "",
                    {group, cluster, node_type, node_names, {"force", 0, "", "Accepted."}}, {},
                    NodeTypeAction("reimage")));
  registry.Add(Spec("sf managed-node-type rollout show",
                    "Show the current (or last) rollout: az vmss rolling-upgrade get-latest.", "",
                    {group, cluster, node_type}, {}, NodeTypeAction("getRollout")));
  registry.Add(Spec("sf managed-node-type rollout cancel",
                    "Cancel the rollout in progress: az vmss rolling-upgrade cancel.", "",
                    {group, cluster, node_type}, {}, NodeTypeAction("cancelRollout")));
  registry.Add(Spec("sf managed-node-type rollout history",
                    "The last 5 rollouts, newest first: az vmss get-os-upgrade-history.", "",
                    {group, cluster, node_type}, {}, NodeTypeAction("rolloutHistory")));
  registry.Add(Spec("sf managed-node-type rollout start",
                    "Roll to the image definition's latest now: az vmss rolling-upgrade start.", "",
                    {group, cluster, node_type}, {}, NodeTypeAction("osRollingUpgrade")));
}

}  // namespace imagesmith::cli
