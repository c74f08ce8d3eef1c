// imagesmith cyclecloud ...: clusters from CycleCloud template files, with
// CycleCloud's command names (import_cluster, show_cluster). A front end over
// the Microsoft.CycleCloud/clusters provider (api/cluster_provider.cc); the
// template is read here and checked by the provider. `parse-check` measures
// the template parser on files without touching the data directory.
#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/gallery_args.h"
#include "cyclecloud/cluster.h"
#include "cyclecloud/template_file.h"

namespace imagesmith::cli {
namespace {

constexpr const char* kType = "Microsoft.CycleCloud/clusters";
constexpr uint64_t kMaxFile = 16 << 20;

ResourceId ClusterId(const ApiClient& client, const ParsedArgs& args, const std::string& name) {
  return ResourceId::ForResource(client.subscription(), args.Get("resource-group", "cyclecloud"),
                                 "Microsoft.CycleCloud", "clusters", name);
}

StatusOr<Json> FileMember(Env& env, const std::string& path, const char* flag) {
  StatusOr<std::string> text = env.ReadFile(path, kMaxFile);
  if (!text.ok())
    return Status(text.status().code(),
                  std::string(flag) + " " + path + ": " + text.status().message());
  Json f = Json::MakeObject();
  f.Set("name", Json::String(path));
  f.Set("text", Json::String(std::move(*text)));
  return f;
}

// -P NAME=VALUE: the value typed as a template literal would be; @FILE gives
// the file's text as a string (CycleCloud's -P rawaverejson=@file.json).
StatusOr<Json> OverrideParameters(Env& env, const std::vector<std::string>& items) {
  Json out = Json::MakeObject();
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError("-P " + item + ": expected NAME=VALUE");
    }
    std::string name = item.substr(0, eq);
    std::string value = item.substr(eq + 1);
    if (StartsWith(value, "@")) {
      StatusOr<std::string> text = env.ReadFile(value.substr(1), kMaxFile);
      if (!text.ok())
        return Status(text.status().code(), "-P " + name + ": " + text.status().message());
      out.Set(name, Json::String(std::move(*text)));
      continue;
    }
    ASSIGN_OR_RETURN(cyclecloud::ParameterValues parsed,
                     cyclecloud::ParseParameterFile(name + " = " + value, "-P"));
    for (auto& [n, v] : parsed) out.Set(n, v.value.ToJson());
  }
  return out;
}

// CycleCloud's show_cluster shape: the cluster, its state, each node (one
// per machine, nodearray nodes included) and each nodearray.
Json ShowJson(const Json& arm) {
  Json out = Json::MakeObject();
  out.Set("name", *arm.Find("name"));
  out.Set("id", *arm.Find("id"));
  const Json& p = *arm.Find("properties");
  for (const char* key : {"state", "nodeDriver", "template", "clusterSection", "parameters"}) {
    if (const Json* v = p.Find(key)) out.Set(key, *v);
  }
  Json nodes = Json::MakeArray();
  if (const Json* recs = p.Find("nodes"); recs && recs->is_array()) {
    for (const Json& n : recs->array_items()) {
      Json j = Json::MakeObject();
      for (const char* key :
           {"name", "nodearray", "state", "statusMessage", "image", "imageReference",
            "imageUpToDate", "imageNote", "hostname", "scaleSet", "machineType"}) {
        if (const Json* v = n.Find(key)) j.Set(key, *v);
      }
      nodes.Append(std::move(j));
    }
  }
  out.Set("nodes", std::move(nodes));
  if (const Json* arrays = p.Find("nodearrays")) out.Set("nodearrays", *arrays);
  if (const Json* cluster = p.Find("cluster")) {
    if (const Json* m = cluster->Find("missingRequired");
        m && m->is_array() && !m->array_items().empty()) {
      out.Set("missingRequiredParameters", *m);
    }
  }
  return out;
}

int RunImport(const ParsedArgs& args, CommandContext& ctx) {
  const std::string& name = args.positionals()[0];
  auto tmpl = FileMember(*ctx.env, args.Get("file"), "-f");
  if (!tmpl.ok()) return ReportError(tmpl.status(), ctx);
  Json props = Json::MakeObject();
  props.Set("template", std::move(*tmpl));
  if (args.Has("parameters")) {
    auto params = FileMember(*ctx.env, args.Get("parameters"), "-p");
    if (!params.ok()) return ReportError(params.status(), ctx);
    props.Set("parameterFile", std::move(*params));
  }
  auto overrides = OverrideParameters(*ctx.env, args.GetAll("parameter"));
  if (!overrides.ok()) return ReportError(overrides.status(), ctx);
  if (!overrides->object_items().empty()) props.Set("parameters", std::move(*overrides));
  if (args.Has("cluster")) props.Set("clusterSection", Json::String(args.Get("cluster")));
  if (args.Has("node-driver")) props.Set("nodeDriver", Json::String(args.Get("node-driver")));
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kPut;
  r.id = ClusterId(*client, args, name);
  r.body = Json::MakeObject();
  r.body.Set("properties", std::move(props));
  // Like CycleCloud, an existing cluster is replaced only with --force
  // (If-None-Match: * keeps a concurrent import from being overwritten).
  if (!args.Has("force")) {
    r.if_none_match = "*";
    auto existing = client->Call(MakeRequest(api::Verb::kGet, r.id));
    if (existing.ok()) {
      return ReportError(AlreadyExistsError("cluster " + name + " already exists"), ctx,
                         "--force replaces it");
    }
  }
  auto resp = client->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(ShowJson(resp->body), ctx);
  return 0;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kGet;
  r.id = ClusterId(*client, args, args.positionals()[0]);
  auto resp = client->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(args.Has("long") ? resp->body : ShowJson(resp->body), ctx);
  return 0;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kList;
  r.id = client->Group(args.Get("resource-group", "cyclecloud"));
  r.list_type = kType;
  auto resp = client->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& item : resp->body.Find("value")->array_items()) out.Append(ShowJson(item));
  PrintResult(out, ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kDelete;
  r.id = ClusterId(*client, args, args.positionals()[0]);
  Status st = DeleteResource(*client, r.id);
  if (!st.ok()) return ReportError(st, ctx);
  return 0;
}

// Runs one cluster action (start, terminate, addNodes, removeNode) to its
// end and prints the cluster; a node that failed is reported on stderr (the
// rest of the cluster still runs, so the exit status is 0).
int RunAction(const ParsedArgs& args, CommandContext& ctx, const std::string& cluster,
              const std::string& action, Json body) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request r;
  r.verb = api::Verb::kAction;
  r.id = ClusterId(*client, args, cluster);
  r.action = action;
  r.body = std::move(body);
  r.progress = [&ctx](api::ProgressKind kind, std::string_view line) {
    if (kind == api::ProgressKind::kNotice || ctx.stderr_is_tty) *ctx.err << line << "\n";
  };
  auto resp = client->Call(std::move(r));
  if (!resp.ok()) return ReportError(resp.status(), ctx);
  PrintResult(ShowJson(resp->body), ctx);
  return 0;
}

int RunStart(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  if (args.Has("node-driver")) body.Set("nodeDriver", Json::String(args.Get("node-driver")));
  return RunAction(args, ctx, args.positionals()[0], "start", std::move(body));
}

int RunTerminate(const ParsedArgs& args, CommandContext& ctx) {
  return RunAction(args, ctx, args.positionals()[0], "terminate", Json::MakeObject());
}

int RunAddNode(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  body.Set("nodearray", Json::String(args.Get("template")));
  int64_t count = 1;
  if (args.Has("count")) {
    auto n = ParseCountArg("--count", args.Get("count"));
    if (!n.ok()) return ReportError(n.status(), ctx);
    if (*n < 1) {
      return ReportError(
          InvalidArgumentError("--count: expected at least 1, got " + args.Get("count")), ctx);
    }
    count = *n;
  }
  body.Set("count", Json::Int(count));
  return RunAction(args, ctx, args.positionals()[0], "addNodes", std::move(body));
}

int RunRemoveNode(const ParsedArgs& args, CommandContext& ctx) {
  Json body = Json::MakeObject();
  body.Set("node", Json::String(args.positionals()[1]));
  return RunAction(args, ctx, args.positionals()[0], "removeNode", std::move(body));
}

// Parses each file and assembles each of its [cluster] sections with no
// parameters but those of -P; one line per file, then the counts.
int RunParseCheck(const ParsedArgs& args, CommandContext& ctx) {
  auto overrides = OverrideParameters(*ctx.env, args.GetAll("parameter"));
  if (!overrides.ok()) return ReportError(overrides.status(), ctx);
  cyclecloud::ParameterValues given;  // as -P: undeclared names allowed
  for (const JsonMember& m : overrides->object_items()) {
    given.emplace_back(m.key, cyclecloud::ParameterValue{cyclecloud::Value::FromJson(m.value),
                                                         cyclecloud::Location{"-P", 1, 1}});
  }
  int ok = 0, failed = 0, clusters = 0, nodes = 0;
  for (const std::string& path : args.positionals()) {
    StatusOr<std::string> text = ctx.env->ReadFile(path, kMaxFile);
    Status st = text.status();
    int file_clusters = 0, file_nodes = 0;
    if (st.ok()) {
      StatusOr<cyclecloud::TemplateFile> file = cyclecloud::ParseTemplateFile(*text, path);
      st = file.status();
      if (st.ok()) {
        for (const cyclecloud::Section& s : file->sections) {
          if (s.type != "cluster") continue;
          StatusOr<cyclecloud::ClusterSpec> spec =
              cyclecloud::AssembleCluster(*file, {}, s.name, given);
          if (!spec.ok()) {
            st = spec.status();
            break;
          }
          ++file_clusters;
          file_nodes += static_cast<int>(spec->nodes.size());
        }
        if (st.ok() && file_clusters == 0)
          st = InvalidArgumentError(path + ": no [cluster] section");
      }
    }
    if (st.ok()) {
      ++ok;
      clusters += file_clusters;
      nodes += file_nodes;
      *ctx.out << "ok   " << path << ": " << file_clusters << " cluster(s), " << file_nodes
               << " node(s)/nodearray(s)\n";
    } else {
      ++failed;
      *ctx.out << "FAIL " << st.message() << "\n";
    }
  }
  *ctx.out << (ok + failed) << " files, " << ok << " parsed, " << failed << " failed; " << clusters
           << " clusters, " << nodes << " nodes and nodearrays\n";
  return failed == 0 ? 0 : 1;
}

OptionSpec Group() {
  return {"resource-group", 'g', "GROUP",
          "The resource group holding the cluster (default: cyclecloud)."};
}
OptionSpec NodeDriver() {
  return {"node-driver",  0,
          "DRIVER",       "qemu (default): real VMs; sim: simulated nodes. Kept in the cluster.",
          false,          false,
          {"qemu", "sim"}};
}
OptionSpec Parameter() {
  return {"parameter", 'P', "NAME=VALUE",
          "A parameter value (after -p's); VALUE @FILE is the file's text.", true};
}

}  // namespace

void RegisterCycleCloudCommands(CommandRegistry& registry) {
  registry.AddGroup("cyclecloud", "Clusters defined by CycleCloud template files.");
  registry.Add(CommandSpec{
      .path = "cyclecloud import_cluster",
      .summary = "Import a cluster from a CycleCloud template file.",
      .description = "Parses the template, applies the parameters (-p file, then -P values, then\n"
                     "each parameter's DefaultValue) and checks every value's syntax and every\n"
                     "reference; an error names FILE:LINE:COL and nothing is stored. Images are\n"
                     "resolved when nodes start, so a template naming images this machine lacks\n"
                     "still imports. Nodes start Off. See doc/cyclecloud.md.",
      .args_usage = "NAME",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {{"file", 'f', "TEMPLATE", "The template file (.txt).", false, true},
                  {"parameters", 'p', "PARAMS",
                   "Parameter values: a .json object or a .properties file."},
                  Parameter(),
                  {"cluster", 'c', "SECTION",
                   "The [cluster SECTION] to import when the file has several."},
                  {"force", 0, "", "Replace an existing cluster of that name."},
                  NodeDriver(),
                  Group()},
      .examples =
          {"imagesmith cyclecloud import_cluster hpc -f slurm.txt -p params.json",
           "imagesmith cyclecloud import_cluster demo -f cluster.txt -c Demo -P MaxCount=4"},
      .run = RunImport,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud show_cluster",
      .summary = "Show a cluster: its state, parameters and nodes.",
      .description = "--long prints the whole stored resource, the assembled attributes of\n"
                     "every node included.",
      .args_usage = "NAME",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {Group(), {"long", 'l', "", "The whole stored cluster."}},
      .examples = {"imagesmith cyclecloud show_cluster hpc"},
      .run = RunShow,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud list_clusters",
      .summary = "List the clusters in a group.",
      .description = "",
      .args_usage = "",
      .options = {Group()},
      .examples = {"imagesmith cyclecloud list_clusters"},
      .run = RunList,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud delete_cluster",
      .summary = "Delete a cluster whose nodes are all Off.",
      .description = "",
      .args_usage = "NAME",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {Group()},
      .examples = {"imagesmith cyclecloud delete_cluster hpc"},
      .run = RunDelete,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud start_cluster",
      .summary = "Start a cluster's nodes and wait until each is Ready or Failed.",
      .description =
          "Every [[node]] that is Off (or Failed) and, for each nodearray with no nodes, its\n"
          "InitialCount nodes go Acquiring (the image is resolved now) -> Preparing (the VM\n"
          "boots with imagesmith's agent) -> Ready (the agent's hello). A node whose image,\n"
          "size or agent attributes do not resolve is Failed with a message naming it; the\n"
          "rest of the cluster still starts and the exit status is 0. See doc/cyclecloud.md.",
      .args_usage = "NAME",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {NodeDriver(), Group()},
      .examples = {"imagesmith cyclecloud start_cluster hpc",
                   "imagesmith cyclecloud start_cluster demo --node-driver sim"},
      .run = RunStart,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud terminate_cluster",
      .summary = "Stop every node of a cluster.",
      .description = "Nodes go Terminating, then [[node]]s are Off and nodearray nodes are\n"
                     "removed; the cluster is Terminated. No VM is left running.",
      .args_usage = "NAME",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {Group()},
      .examples = {"imagesmith cyclecloud terminate_cluster hpc"},
      .run = RunTerminate,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud add_node",
      .summary = "Add nodes to a nodearray of a started cluster.",
      .description =
          "Refused, with nothing added, when the nodearray would exceed MaxCount or\n"
          "MaxCoreCount (enforced together; the lower wins). New nodes are named\n"
          "NODEARRAY-N and go to a new backing scale set every Azure.MaxScalesetSize nodes.",
      .args_usage = "CLUSTER",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {{"template", 't', "NODEARRAY", "The nodearray to add to.", false, true},
                  {"count", 'c', "COUNT", "How many nodes (default 1)."},
                  Group()},
      .examples = {"imagesmith cyclecloud add_node hpc -t execute -c 4"},
      .run = RunAddNode,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud remove_node",
      .summary = "Terminate a node and remove it from the cluster.",
      .description = "A nodearray node is removed; a [[node]] goes back to Off.",
      .args_usage = "CLUSTER NODE",
      .min_positionals = 2,
      .max_positionals = 2,
      .options = {Group()},
      .examples = {"imagesmith cyclecloud remove_node hpc execute-3"},
      .run = RunRemoveNode,
  });
  registry.Add(CommandSpec{
      .path = "cyclecloud parse-check",
      .summary = "Parse template files and report each one (a measuring tool).",
      .description = "Assembles every [cluster] section of each FILE with no parameters but\n"
                     "-P's, printing 'ok' or 'FAIL FILE:LINE:COL: ...' per file and the counts.\n"
                     "Exit 1 when any file fails. Touches no data directory.",
      .args_usage = "FILE...",
      .min_positionals = 1,
      .max_positionals = 100000,
      .options = {Parameter()},
      .examples = {"imagesmith cyclecloud parse-check templates/*.txt"},
      .run = RunParseCheck,
  });
}

}  // namespace imagesmith::cli
