// CycleCloud clusters (Microsoft.CycleCloud/clusters, imagesmith's own type:
// CycleCloud has no ARM resource). PUT imports a template: the body carries
// the template file's text, the section to use and the parameters; the
// provider parses and assembles it (cyclecloud/cluster.h) before anything is
// written, so a bad template leaves nothing behind. The stored resource holds
// the assembled cluster and each node's state. Images are not resolved here;
// nodes resolve them when they start (cyclecloud/image_resolution.h).
#include <cctype>

#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "base/strings.h"
#include "cyclecloud/cluster.h"
#include "cyclecloud/template_file.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace {

constexpr const char* kClusterType = "Microsoft.CycleCloud/clusters";
constexpr const char* kRead = "Microsoft.CycleCloud/clusters/read";
constexpr const char* kWrite = "Microsoft.CycleCloud/clusters/write";
constexpr const char* kDelete = "Microsoft.CycleCloud/clusters/delete";

Status CheckClusterId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(kClusterType)) {
    return InvalidArgumentError("expected a " + std::string(kClusterType) + " ID, got " +
                                id.ToString());
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  const std::string& name = id.name();
  bool ok = !name.empty() && name.size() <= 80;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (!ok) {
    return ArmStatus(
        StatusCode::kInvalidArgument, "InvalidResourceName",
        "cluster name " + QuoteForMessage(name) + " must be 1-80 letters, digits, '-', '_' or '.'",
        id.ToString());
  }
  return Status::Ok();
}

struct FileBody {
  std::string name;
  std::string text;
};

StatusOr<std::optional<FileBody>> ReadFile(const BodyObject& props, std::string_view key,
                                           bool required) {
  if (!props.Has(key)) {
    if (required)
      return BodyError(props.PathOf(key), "is required: {\"name\": ..., \"text\": ...}");
    return std::optional<FileBody>();
  }
  ASSIGN_OR_RETURN(BodyObject f, props.Object(key));
  RETURN_IF_ERROR(f.AllowOnly({"name", "text"}));
  FileBody out;
  ASSIGN_OR_RETURN(out.name, f.RequiredString("name"));
  ASSIGN_OR_RETURN(out.text, f.RequiredString("text"));
  return std::optional<FileBody>(std::move(out));
}

// The assembled cluster and what the body asked for, or the template's
// error (InvalidTemplate, its message starting FILE:LINE:COL).
struct Imported {
  cyclecloud::ClusterSpec spec;
  std::string template_name;
  std::string section;
  Json given = Json::MakeObject();
};

StatusOr<Imported> Import(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"template", "clusterSection", "parameterFile", "parameters",
                                   "state", "nodes", "cluster", "provisioningState"}));
  ASSIGN_OR_RETURN(std::optional<FileBody> tmpl, ReadFile(props, "template", true));
  ASSIGN_OR_RETURN(std::optional<FileBody> param_file, ReadFile(props, "parameterFile", false));
  ASSIGN_OR_RETURN(std::optional<std::string> section, props.String("clusterSection"));
  Imported out;
  out.template_name = tmpl->name;
  out.section = section.value_or("");
  cyclecloud::ParameterValues params, overrides;
  auto invalid = [](const Status& s) {
    return ArmStatus(StatusCode::kInvalidArgument, "InvalidTemplate", s.message());
  };
  if (param_file) {
    StatusOr<cyclecloud::ParameterValues> p =
        cyclecloud::ParseParameterFile(param_file->text, param_file->name);
    if (!p.ok()) return invalid(p.status());
    params = std::move(*p);
  }
  if (const Json* given = props.Find("parameters"); given != nullptr && !given->is_null()) {
    if (!given->is_object()) return BodyError(props.PathOf("parameters"), "must be an object");
    for (const JsonMember& m : given->object_items()) {
      cyclecloud::ParameterValue v{
          cyclecloud::Value::FromJson(m.value),
          cyclecloud::Location{props.PathOf("parameters") + "." + m.key, 1, 1}};
      overrides.emplace_back(m.key, std::move(v));
    }
  }
  for (const auto* list : {&params, &overrides}) {
    for (const auto& [name, value] : *list) out.given.Set(name, value.value.ToJson());
  }
  StatusOr<cyclecloud::TemplateFile> file = cyclecloud::ParseTemplateFile(tmpl->text, tmpl->name);
  if (!file.ok()) return invalid(file.status());
  StatusOr<cyclecloud::ClusterSpec> spec =
      cyclecloud::AssembleCluster(*file, params, out.section, overrides);
  if (!spec.ok()) return invalid(spec.status());
  out.spec = std::move(*spec);
  return out;
}

std::string Member(const Json& j, const char* key) {
  const Json* v = j.is_object() ? j.Find(key) : nullptr;
  return v && v->is_string() ? v->string_value() : "";
}

bool SameNode(const Json& a, const Json& b) {
  return EqualsIgnoreCase(Member(a, "name"), Member(b, "name")) &&
         Member(a, "kind") == Member(b, "kind");
}

Json NodesJson(const cyclecloud::ClusterSpec& spec) {
  // Every node starts Off; a nodearray has no nodes until some are added.
  Json nodes = Json::MakeArray();
  for (const cyclecloud::NodeSpec& n : spec.nodes) {
    Json j = Json::MakeObject();
    j.Set("name", Json::String(n.name));
    j.Set("kind", Json::String(n.is_array ? "nodearray" : "node"));
    if (n.is_array) {
      j.Set("nodes", Json::MakeArray());
    } else {
      j.Set("state", Json::String("Off"));
    }
    nodes.Append(std::move(j));
  }
  return nodes;
}

class ClusterProvider final : public Provider {
 public:
  std::string_view Type() const override { return kClusterType; }
  std::vector<std::string> ApiVersions() const override { return {"2024-01-01"}; }

  // Imports (201) or re-imports (200) the cluster from the template in the
  // body. Re-importing replaces the definition; node states are kept for
  // nodes that are still in it.
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckClusterId(id), target));
    StatusOr<Imported> parsed = Import(request.body);
    if (!parsed.ok()) return WithTarget(parsed.status(), target);
    Imported& imported = *parsed;
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kWrite, id));
      ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, id.Parent()));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      meta::Resource r = group;  // ResourceId has no empty state: start from a copy
      r.id = id;
      r.location = group.location;
      r.tags = Json::MakeObject();
      Json props = Json::MakeObject();
      props.Set("template", Json::String(imported.template_name));
      props.Set("clusterSection", Json::String(imported.spec.name));
      props.Set("parameters", imported.given);
      props.Set("state", Json::String("Off"));
      props.Set("cluster", imported.spec.ToJson());
      Json nodes = NodesJson(imported.spec);
      if (current) {
        // Keep what running nodes had (a re-import does not stop them).
        if (const Json* old = current->properties.Find("nodes"); old && old->is_array()) {
          for (Json& n : nodes.array_items()) {
            for (const Json& o : old->array_items()) {
              if (SameNode(o, n)) n = o;
            }
          }
        }
        if (const Json* st = current->properties.Find("state")) props.Set("state", *st);
      }
      props.Set("nodes", std::move(nodes));
      props.Set("provisioningState", Json::String("Succeeded"));
      r.properties = std::move(props);
      if (current) {
        r.tags = current->tags;
        RETURN_IF_ERROR(txn.Replace(r, current->generation));
      } else {
        RETURN_IF_ERROR(txn.Create(r));
      }
      out = ResourceResponse(current ? 200 : 201, r.ToJson(), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kRead,
        [&](meta::Transaction& txn) -> StatusOr<meta::Resource> {
          RETURN_IF_ERROR(meta::GetGroup(txn, request.id.Parent()).status());
          ASSIGN_OR_RETURN(std::optional<meta::Resource> r, FindResource(txn, request.id));
          if (!r) {
            return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                             "cluster " + request.id.name() + " not found in group " +
                                 request.id.resource_group() +
                                 "; import it with 'imagesmith cyclecloud import_cluster'");
          }
          return *r;
        },
        [](const meta::Resource& r) { return r.ToJson(); });
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    return ListAll(
        services, request, kRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          if (request.id.kind() == ResourceId::Kind::kSubscription) {
            return txn.ListByType(request.id, kClusterType);
          }
          RETURN_IF_ERROR(meta::GetGroup(txn, request.id).status());
          return txn.ListChildren(request.id, kClusterType);
        },
        [](const meta::Resource& r) { return r.ToJson(); });
  }

  // Refused while a node is not Off (terminate the cluster first).
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    return DeleteOne(
        services, request, kDelete,
        [&](meta::Transaction& txn) { return meta::GetGroup(txn, request.id.Parent()).status(); },
        [&](meta::Transaction& txn) -> Status {
          ASSIGN_OR_RETURN(meta::Resource r, txn.Get(request.id));
          const Json* state = r.properties.Find("state");
          if (state && state->is_string() && state->string_value() != "Off" &&
              state->string_value() != "Terminated") {
            return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                             "cluster " + request.id.name() + " is " + state->string_value() +
                                 "; terminate it before deleting it");
          }
          return txn.Delete(request.id);
        });
  }
};

}  // namespace

std::unique_ptr<Provider> NewCycleCloudClusterProvider() {
  return std::make_unique<ClusterProvider>();
}

}  // namespace imagesmith::api
