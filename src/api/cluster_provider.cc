// CycleCloud clusters (Microsoft.CycleCloud/clusters, imagesmith's own type:
// CycleCloud has no ARM resource). PUT imports a template: the body carries
// the template file's text, the section to use and the parameters; the
// provider parses and assembles it (cyclecloud/cluster.h) before anything is
// written, so a bad template leaves nothing behind. The stored resource holds
// the assembled cluster and one record per node (cluster_internal.h). Images
// are not resolved here; nodes resolve them when they start (cluster_ops.cc).
//
// Actions: start, terminate, addNodes, removeNode. Each marks nodes
// (Acquiring, Terminating) in one transaction -- checking the node limits
// first, so a refused request changes nothing -- and starts the cluster
// operation that moves them (one at a time per cluster).
#include <cctype>
#include <set>

#include "api/arm_error.h"
#include "api/body.h"
#include "api/cluster_internal.h"
#include "api/etag.h"
#include "api/operations.h"
#include "api/provider_util.h"
#include "api/resource_providers.h"
#include "api/template_internal.h"
#include "base/strings.h"
#include "cyclecloud/cluster.h"
#include "cyclecloud/image_resolution.h"
#include "cyclecloud/scaling.h"
#include "cyclecloud/template_file.h"
#include "fleet/node_driver.h"
#include "meta/scopes.h"

namespace imagesmith::api {
namespace cc {

std::string AgentVersion() { return IMAGESMITH_PROJECT_VERSION; }

}  // namespace cc
namespace {

using cc::kClusterType;
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
  std::string driver;  // "" when the body does not say
  Json given = Json::MakeObject();
};

StatusOr<Imported> Import(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"template", "clusterSection", "parameterFile", "parameters",
                                   "state", "nodes", "nodearrays", "cluster", "provisioningState",
                                   "nodeDriver", "operationId"}));
  ASSIGN_OR_RETURN(std::optional<FileBody> tmpl, ReadFile(props, "template", true));
  ASSIGN_OR_RETURN(std::optional<FileBody> param_file, ReadFile(props, "parameterFile", false));
  ASSIGN_OR_RETURN(std::optional<std::string> section, props.String("clusterSection"));
  ASSIGN_OR_RETURN(std::optional<std::string> driver, props.String("nodeDriver"));
  if (driver && *driver != "qemu" && *driver != "sim") {
    return BodyError(props.PathOf("nodeDriver"), "must be qemu or sim, got " + *driver);
  }
  Imported out;
  out.driver = driver.value_or("");
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

const Json* Nodes(const meta::Resource& r) {
  const Json* n = r.properties.Find("nodes");
  return n != nullptr && n->is_array() ? n : nullptr;
}

// A new record for node `name` of `def` (Off).
Json NewNode(const ResourceId& cluster, const std::string& name, const cyclecloud::NodeSpec& def,
             int64_t index) {
  Json j = Json::MakeObject();
  j.Set("name", Json::String(name));
  j.Set("template", Json::String(def.name));
  j.Set("nodearray", def.is_array ? Json::String(def.name) : Json());
  j.Set("state", Json::String("Off"));
  // The driver's node id: unique on the host for (cluster, node name).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : AsciiToLower(cluster.ToString() + "/" + name)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char id[32];
  std::snprintf(id, sizeof id, "cc%016llx", static_cast<unsigned long long>(h));
  j.Set("nodeId", Json::String(id));
  std::string host = AsciiToLower(cluster.name() + "-" + name);
  for (char& c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
  }
  j.Set("hostname", Json::String(host.substr(0, 63)));
  if (def.is_array) {
    std::optional<int64_t> max_ss;
    if (const cyclecloud::Value* v =
            cyclecloud::FindAttribute(def.attributes, "Azure.MaxScalesetSize");
        v != nullptr && v->kind() == cyclecloud::Value::Kind::kInt) {
      max_ss = v->int_value();
    }
    j.Set("scaleSet",
          Json::String(def.name + "-ss" + std::to_string(cyclecloud::ScaleSetOf(index, max_ss))));
  }
  return j;
}

// The [[node]] records of a freshly imported cluster: one Off record per
// [[node]]; a nodearray has none until it starts or nodes are added.
Json InitialNodes(const ResourceId& id, const cyclecloud::ClusterSpec& spec) {
  Json nodes = Json::MakeArray();
  for (const cyclecloud::NodeSpec& n : spec.nodes) {
    if (!n.is_array) nodes.Append(NewNode(id, n.name, n, 0));
  }
  return nodes;
}

std::optional<int64_t> IntAttr(const cyclecloud::NodeSpec& def, const char* key) {
  const cyclecloud::Value* v = cyclecloud::FindAttribute(def.attributes, key);
  if (v == nullptr) return std::nullopt;
  if (v->kind() == cyclecloud::Value::Kind::kInt) return v->int_value();
  if (v->kind() == cyclecloud::Value::Kind::kBool) return v->bool_value() ? 1 : 0;
  return std::nullopt;
}

std::string MachineTypeOf(const cyclecloud::NodeSpec& def) {
  const cyclecloud::Value* v = cyclecloud::FindAttribute(def.attributes, "MachineType");
  if (v == nullptr) return "Standard_D2s_v3";
  if (v->kind() == cyclecloud::Value::Kind::kList) {
    return v->list_items().empty() ? "Standard_D2s_v3" : v->list_items()[0].ToText();
  }
  return v->ToText();
}

// The node limit of nodearray `def`: MaxCount and MaxCoreCount together.
StatusOr<cyclecloud::NodeLimit> LimitOf(const cyclecloud::NodeSpec& def) {
  std::optional<int64_t> max_count = IntAttr(def, "MaxCount");
  std::optional<int64_t> max_cores = IntAttr(def, "MaxCoreCount");
  int64_t cores = 1;
  if (max_cores) {
    StatusOr<fleet::VmSize> size = fleet::LookupVmSize(MachineTypeOf(def));
    if (!size.ok()) {
      return InvalidArgumentError("nodearray " + def.name + ": MachineType " + MachineTypeOf(def) +
                                  " (needed for MaxCoreCount): " + size.status().message());
    }
    cores = size->cpus;
  }
  return cyclecloud::EffectiveNodeLimit(max_count, max_cores, cores);
}

// Adds `count` Acquiring records to nodearray `def` in `nodes`, named
// NODEARRAY-N after the highest N in use; refuses past the node limit.
Status AddArrayNodes(const ResourceId& id, const cyclecloud::NodeSpec& def, int64_t count,
                     Json& nodes, std::vector<std::string>* added) {
  int64_t current = 0, highest = 0;
  for (const Json& n : nodes.array_items()) {
    const Json* t = n.Find("template");
    if (t == nullptr || !t->is_string() || !EqualsIgnoreCase(t->string_value(), def.name)) continue;
    ++current;
    const std::string name = n.Find("name")->string_value();
    size_t dash = name.rfind('-');
    if (dash != std::string::npos) {
      highest = std::max<int64_t>(highest, std::atoll(name.c_str() + dash + 1));
    }
  }
  ASSIGN_OR_RETURN(cyclecloud::NodeLimit limit, LimitOf(def));
  RETURN_IF_ERROR(cyclecloud::CheckAddNodes(def.name, current, count, limit));
  for (int64_t i = 1; i <= count; ++i) {
    Json rec = NewNode(id, def.name + "-" + std::to_string(highest + i), def, highest + i - 1);
    rec.Set("state", Json::String("Acquiring"));
    if (added) added->push_back(rec.Find("name")->string_value());
    nodes.Append(std::move(rec));
  }
  return Status::Ok();
}

bool Busy(Services& services, meta::Transaction& txn, const meta::Resource& r) {
  const Json* op_id = r.properties.Find("operationId");
  if (op_id == nullptr || !op_id->is_string() || op_id->string_value().empty()) return false;
  auto row = txn.GetOperation(op_id->string_value());
  if (!row.ok()) return false;
  Operation op = OperationFromRow(*row);
  return !op.done() && !Operations::Abandoned(op, services.env->NowMicros());
}

// A re-import over `current`: keeps the cluster's state, driver and every
// node record whose [[node]] or [[nodearray]] is still in the template, adds
// Off records for new [[node]]s, drops Off records of sections that are gone
// and refuses (nothing changed) to drop a node that is not Off.
Status Reimport(const Imported& imported, const meta::Resource& current, Json& props, Json& nodes) {
  const Json& old = current.properties;
  if (const Json* st = old.Find("state")) props.Set("state", *st);
  if (const Json* op = old.Find("operationId")) props.Set("operationId", *op);
  std::string old_driver = "qemu";
  if (const Json* d = old.Find("nodeDriver"); d != nullptr && d->is_string()) {
    old_driver = d->string_value();
  }
  Json merged = Json::MakeArray();
  std::set<std::string> kept;
  bool all_off = true;
  if (const Json* recs = Nodes(current)) {
    for (const Json& n : recs->array_items()) {
      const std::string name = n.Find("name")->string_value();
      const std::string tmpl = n.Find("template")->string_value();
      const std::string state = n.Find("state")->string_value();
      const cyclecloud::NodeSpec* def = imported.spec.FindNode(tmpl);
      bool was_array = n.Find("nodearray") != nullptr && n.Find("nodearray")->is_string();
      if (state != "Off") all_off = false;
      if (def == nullptr || def->is_array != was_array) {
        if (state == "Off") continue;
        return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                         "node " + name + " is " + state + " but the new template has no " +
                             (was_array ? "nodearray " : "node ") + tmpl +
                             "; remove the node (remove_node) or terminate the cluster first",
                         current.id.ToString());
      }
      kept.insert(AsciiToLower(tmpl));
      merged.Append(n);
    }
  }
  for (const Json& n : nodes.array_items()) {
    if (kept.count(AsciiToLower(n.Find("template")->string_value())) == 0) merged.Append(n);
  }
  nodes = std::move(merged);
  if (imported.driver.empty()) {
    props.Set("nodeDriver", Json::String(old_driver));
  } else if (imported.driver != old_driver && !all_off) {
    return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                     "properties.nodeDriver: cannot change from " + old_driver + " to " +
                         imported.driver + " while nodes run; terminate the cluster first",
                     current.id.ToString());
  }
  return Status::Ok();
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
      props.Set("nodeDriver", Json::String(imported.driver.empty() ? "qemu" : imported.driver));
      props.Set("cluster", imported.spec.ToJson());
      Json nodes = InitialNodes(id, imported.spec);
      if (current) {
        // A re-import keeps every node record: running nodes keep the
        // image they started with; nodes started from now on resolve the
        // new template's (ClusterJson says which differ).
        RETURN_IF_ERROR(Reimport(imported, *current, props, nodes));
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
      out = ResourceResponse(current ? 200 : 201, cc::ClusterJson(r), r);
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
        [](const meta::Resource& r) { return cc::ClusterJson(r); });
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
        [](const meta::Resource& r) { return cc::ClusterJson(r); });
  }

  // start, terminate, addNodes {nodearray, count}, removeNode {node}.
  StatusOr<Response> Action(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    RETURN_IF_ERROR(WithTarget(CheckClusterId(id), id.ToString()));
    const std::string& a = request.action;
    if (a != "start" && a != "terminate" && a != "addNodes" && a != "removeNode") {
      return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                       "clusters have no action " + QuoteForMessage(a) +
                           "; the actions are start, terminate, addNodes and removeNode",
                       id.ToString());
    }
#ifndef IMAGESMITH_HAVE_GALLERY_PUBLISH
    return ArmStatus(StatusCode::kUnimplemented, "NotSupported",
                     "this build has no gallery layer, so clusters cannot start nodes",
                     id.ToString());
#else
    const Json body = request.body.is_object() ? request.body : Json::MakeObject();
    Operation op;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kWrite, id));
      RETURN_IF_ERROR(meta::GetGroup(txn, id.Parent()).status());
      ASSIGN_OR_RETURN(std::optional<meta::Resource> found, FindResource(txn, id));
      if (!found) {
        return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                         "cluster " + id.name() + " not found in group " + id.resource_group() +
                             "; import it with 'imagesmith cyclecloud import_cluster'");
      }
      meta::Resource& r = *found;
      if (Busy(services, txn, r)) {
        return ArmStatus(StatusCode::kAborted, "Conflict",
                         "cluster " + id.name() + " is busy: operation " +
                             r.properties.Find("operationId")->string_value() +
                             " is in progress (see 'imagesmith operation show')");
      }
      ASSIGN_OR_RETURN(cyclecloud::ClusterSpec spec,
                       cyclecloud::ClusterSpec::FromJson(*r.properties.Find("cluster")));
      Json nodes = Nodes(r) != nullptr ? *Nodes(r) : Json::MakeArray();
      std::string state = r.properties.Find("state")->string_value();
      auto body_string = [&](const char* key) -> StatusOr<std::string> {
        const Json* v = body.Find(key);
        if (v == nullptr || !v->is_string() || v->string_value().empty()) {
          return BodyError(std::string(key), "is required (a string)");
        }
        return v->string_value();
      };
      if (a == "start") {
        if (!spec.missing_required.empty()) {
          return ArmStatus(StatusCode::kFailedPrecondition, "MissingParameters",
                           "cluster " + id.name() + " cannot start: the required parameters " +
                               Join(spec.missing_required, ", ") +
                               " have no value; import it again with -p or -P",
                           id.ToString());
        }
        if (const Json* d = body.Find("nodeDriver"); d != nullptr && d->is_string()) {
          if (d->string_value() != "qemu" && d->string_value() != "sim") {
            return BodyError("nodeDriver", "must be qemu or sim, got " + d->string_value());
          }
          bool all_off = true;
          for (const Json& n : nodes.array_items()) {
            all_off = all_off && n.Find("state")->string_value() == "Off";
          }
          if (!all_off && d->string_value() != r.properties.Find("nodeDriver")->string_value()) {
            return BodyError("nodeDriver", "cannot change while nodes run; terminate first");
          }
          r.properties.Set("nodeDriver", *d);
        }
        // Off and Failed [[node]]s start; a nodearray with no nodes gets its
        // InitialCount (within its limits).
        for (Json& n : nodes.array_items()) {
          const std::string st = n.Find("state")->string_value();
          if (st == "Off" || (st == "Failed" && n.Find("nodearray")->is_null())) {
            // A Failed node may still have a machine (one that never said
            // hello): the operation stops it before making a new one.
            if (st == "Failed") n.Set("restart", Json::Bool(true));
            n.Set("state", Json::String("Acquiring"));
          }
        }
        for (const cyclecloud::NodeSpec& def : spec.nodes) {
          if (!def.is_array) continue;
          bool has = false;
          for (const Json& n : nodes.array_items()) {
            has = has || EqualsIgnoreCase(n.Find("template")->string_value(), def.name);
          }
          std::optional<int64_t> initial = IntAttr(def, "InitialCount");
          if (has || !initial || *initial <= 0) continue;
          RETURN_IF_ERROR(AddArrayNodes(id, def, *initial, nodes, nullptr));
        }
        state = "Starting";
      } else if (a == "terminate") {
        for (Json& n : nodes.array_items()) {
          if (n.Find("state")->string_value() != "Off") {
            n.Set("state", Json::String("Terminating"));
          }
        }
        state = "Terminating";
      } else if (a == "addNodes") {
        if (state != "Started") {
          return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                           "cluster " + id.name() + " is " + state +
                               "; start it (start_cluster) before adding nodes",
                           id.ToString());
        }
        ASSIGN_OR_RETURN(std::string array, body_string("nodearray"));
        const Json* count_j = body.Find("count");
        int64_t count = count_j == nullptr ? 1 : count_j->AsInt64().value_or(-1);
        if (count < 1) return BodyError("count", "must be a whole number of at least 1");
        const cyclecloud::NodeSpec* def = spec.FindNode(array);
        if (def == nullptr || !def->is_array) {
          std::vector<std::string> arrays;
          for (const cyclecloud::NodeSpec& d : spec.nodes) {
            if (d.is_array) arrays.push_back(d.name);
          }
          return ArmStatus(
              StatusCode::kInvalidArgument, "InvalidParameter",
              "cluster " + id.name() + " has no nodearray " + QuoteForMessage(array) +
                  (arrays.empty() ? "; it has none" : "; its nodearrays: " + Join(arrays, ", ")),
              "nodearray");
        }
        Status added = AddArrayNodes(id, *def, count, nodes, nullptr);
        if (!added.ok()) {
          return ArmStatus(StatusCode::kFailedPrecondition, "NodeLimitExceeded", added.message(),
                           id.ToString());
        }
      } else {  // removeNode
        ASSIGN_OR_RETURN(std::string name, body_string("node"));
        bool found_node = false;
        for (Json& n : nodes.array_items()) {
          if (!EqualsIgnoreCase(n.Find("name")->string_value(), name)) continue;
          found_node = true;
          n.Set("state", Json::String("Terminating"));
        }
        if (!found_node) {
          std::vector<std::string> names;
          for (const Json& n : nodes.array_items()) names.push_back(n.Find("name")->string_value());
          return ArmStatus(StatusCode::kNotFound, "NodeNotFound",
                           "cluster " + id.name() + " has no node " + QuoteForMessage(name) +
                               (names.empty() ? "" : "; its nodes: " + Join(names, ", ")),
                           "node");
        }
      }
      r.properties.Set("nodes", std::move(nodes));
      r.properties.Set("state", Json::String(state));
      Json input = Json::MakeObject();
      input.Set("action", Json::String(a));
      ASSIGN_OR_RETURN(op, services.operations->StartIn(txn, cc::kClusterOperation, id, r.location,
                                                        input, request.wait));
      r.properties.Set("operationId", Json::String(op.id));
      return txn.Replace(r);
    });
    if (!s.ok()) return WithTarget(s, id.ToString());
    Response resp;
    resp.operation_id = op.id;
    if (!request.wait) {
      resp.http_status = 202;
      resp.body = op.ToJson();
      return resp;
    }
    ASSIGN_OR_RETURN(Operation done,
                     services.operations->Execute(op.id, request.progress, request.interrupt));
    RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(meta::Resource r, txn.Get(id));
      resp.body = cc::ClusterJson(r);
      resp.etag = EtagOf(r);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(done.Outcome(id.ToString()));
    return resp;
#endif
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
          std::vector<std::string> running;
          if (const Json* nodes = Nodes(r)) {
            for (const Json& n : nodes->array_items()) {
              const Json* st = n.Find("state");
              if (st != nullptr && st->is_string() && st->string_value() != "Off") {
                running.push_back(n.Find("name")->string_value() + " (" + st->string_value() + ")");
              }
            }
          }
          if ((state && state->is_string() && state->string_value() != "Off" &&
               state->string_value() != "Terminated") ||
              !running.empty()) {
            return ArmStatus(StatusCode::kFailedPrecondition, "Conflict",
                             "cluster " + request.id.name() + " is " +
                                 (state && state->is_string() ? state->string_value() : "?") +
                                 (running.empty() ? "" : " with nodes " + Join(running, ", ")) +
                                 "; terminate it before deleting it",
                             request.id.ToString());
          }
          return txn.Delete(request.id);
        });
  }
};

}  // namespace

std::unique_ptr<Provider> NewCycleCloudClusterProvider() {
  return std::make_unique<ClusterProvider>();
}

namespace cc {

Json ClusterJson(const meta::Resource& r) {
  Json j = r.ToJson();
  const Json* cluster = r.properties.Find("cluster");
  if (cluster == nullptr) return j;
  StatusOr<cyclecloud::ClusterSpec> spec = cyclecloud::ClusterSpec::FromJson(*cluster);
  if (!spec.ok()) return j;
  Json props = r.properties;
  Json* nodes = props.Find("nodes");
  if (nodes != nullptr && nodes->is_array()) {
    for (Json& n : nodes->array_items()) {
      const Json* tmpl = n.Find("template");
      const Json* ref = n.Find("imageReference");
      const Json* image = n.Find("image");
      if (tmpl == nullptr || !tmpl->is_string() || ref == nullptr || !ref->is_string()) continue;
      const cyclecloud::NodeSpec* def = spec->FindNode(tmpl->string_value());
      if (def == nullptr) continue;
      // Copies: Set below may move n's members.
      const std::string started_from = ref->string_value();
      const std::string runs = image != nullptr && image->is_string() ? image->string_value() : "?";
      const std::string now = cyclecloud::DescribeNodeImage(*def);
      const bool same = now == started_from;
      n.Set("imageUpToDate", Json::Bool(same));
      if (!same) {
        n.Set("imageNote",
              Json::String("runs " + runs + " (started from " + started_from +
                           "); the template now says " + (now.empty() ? "no image" : now) +
                           ": nodes started from now on use that, this one keeps "
                           "its image"));
      }
    }
  }
  Json arrays = Json::MakeArray();
  for (const cyclecloud::NodeSpec& def : spec->nodes) {
    if (!def.is_array) continue;
    Json a = Json::MakeObject();
    a.Set("name", Json::String(def.name));
    a.Set("machineType", Json::String(MachineTypeOf(def)));
    a.Set("image", Json::String(cyclecloud::DescribeNodeImage(def)));
    std::optional<int64_t> max_ss = IntAttr(def, "Azure.MaxScalesetSize");
    for (const auto& [key, value] : {std::pair<const char*, std::optional<int64_t>>{
                                         "initialCount", IntAttr(def, "InitialCount")},
                                     {"maxCount", IntAttr(def, "MaxCount")},
                                     {"maxCoreCount", IntAttr(def, "MaxCoreCount")},
                                     {"maxScalesetSize", max_ss}}) {
      a.Set(key, value ? Json::Int(*value) : Json());
    }
    StatusOr<cyclecloud::NodeLimit> limit = LimitOf(def);
    if (limit.ok() && limit->max_nodes) {
      a.Set("maxNodes", Json::Int(*limit->max_nodes));
      a.Set("limit", Json::String(limit->reason));
    } else {
      a.Set("maxNodes", Json());
    }
    std::vector<std::pair<std::string, Json>> sets;  // in order of first use
    int64_t count = 0;
    if (nodes != nullptr && nodes->is_array()) {
      for (const Json& n : nodes->array_items()) {
        const Json* t = n.Find("template");
        if (t == nullptr || !t->is_string() || !EqualsIgnoreCase(t->string_value(), def.name)) {
          continue;
        }
        ++count;
        const Json* ss = n.Find("scaleSet");
        std::string set = ss != nullptr && ss->is_string() ? ss->string_value() : def.name + "-ss0";
        auto it =
            std::find_if(sets.begin(), sets.end(), [&](const auto& p) { return p.first == set; });
        if (it == sets.end()) {
          sets.emplace_back(set, Json::MakeArray());
          it = sets.end() - 1;
        }
        it->second.Append(*n.Find("name"));
      }
    }
    std::sort(sets.begin(), sets.end(), [](const auto& x, const auto& y) {
      return x.first.size() != y.first.size() ? x.first.size() < y.first.size() : x.first < y.first;
    });
    a.Set("nodeCount", Json::Int(count));
    Json scale_sets = Json::MakeArray();
    for (auto& [name, members] : sets) {
      Json o = Json::MakeObject();
      o.Set("name", Json::String(name));
      o.Set("nodes", std::move(members));
      scale_sets.Append(std::move(o));
    }
    a.Set("scaleSets", std::move(scale_sets));
    arrays.Append(std::move(a));
  }
  props.Set("nodearrays", std::move(arrays));
  j.Set("properties", std::move(props));
  return j;
}

}  // namespace cc

}  // namespace imagesmith::api
