// The Service Fabric managed cluster and node type providers
// (doc/servicefabric.md). Node work (making, scaling, rolling out nodes)
// is a durable operation (sf_node_type_ops.cc); these providers validate,
// authorize and start it.
#include "api/arm_error.h"
#include "api/body.h"
#include "api/etag.h"
#include "api/provider_util.h"
#include "api/sf_internal.h"
#include "api/template_internal.h"
#include "auth/authorize.h"
#include "auth/directory.h"
#include "base/random.h"
#include "base/strings.h"
#include "fleet/node_driver.h"
#include "gallery/names.h"
#include "meta/scopes.h"

namespace imagesmith::api {

std::unique_ptr<Provider> NewManagedClusterProvider();
std::unique_ptr<Provider> NewNodeTypeProvider();

namespace sf {
namespace {

constexpr char kClusterRead[] = "Microsoft.ServiceFabric/managedClusters/read";
constexpr char kClusterWrite[] = "Microsoft.ServiceFabric/managedClusters/write";
constexpr char kClusterDelete[] = "Microsoft.ServiceFabric/managedClusters/delete";
constexpr char kNodeTypeRead[] = "Microsoft.ServiceFabric/managedClusters/nodeTypes/read";
constexpr char kNodeTypeWrite[] = "Microsoft.ServiceFabric/managedClusters/nodeTypes/write";
constexpr char kNodeTypeDelete[] = "Microsoft.ServiceFabric/managedClusters/nodeTypes/delete";
constexpr char kNodeTypeRestart[] =
    "Microsoft.ServiceFabric/managedClusters/nodeTypes/restart/action";
constexpr char kNodeTypeReimage[] =
    "Microsoft.ServiceFabric/managedClusters/nodeTypes/reimage/action";

const std::vector<std::string> kApiVersions = {"2022-08-01-preview", "2023-02-01-preview",
                                               "2023-12-01-preview", "2024-04-01"};

// Names: 4-23 letters and digits, starting with a letter (clusters); node
// types 1-9 letters, digits and '_' (Service Fabric's limit, as node names
// are made from them).
Status CheckClusterName(const std::string& name) {
  bool ok =
      name.size() >= 4 && name.size() <= 23 && std::isalpha(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  if (!ok) {
    return InvalidArgumentError("cluster name " + QuoteForMessage(name) +
                                ": 4-23 letters, digits and hyphens, beginning with a letter");
  }
  return Status::Ok();
}
Status CheckNodeTypeName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 9 && std::isalpha(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) {
    return InvalidArgumentError("node type name " + QuoteForMessage(name) +
                                ": 1-9 letters, digits and underscores, beginning with a letter");
  }
  return Status::Ok();
}

Status CheckClusterId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(kClusterType)) {
    return InvalidArgumentError(std::string("expected a ") + kClusterType + " ID, got " +
                                id.ToString());
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group()));
  return CheckClusterName(id.name());
}
Status CheckNodeTypeId(const ResourceId& id) {
  if (id.kind() != ResourceId::Kind::kResource || !id.IsType(kNodeTypeType)) {
    return InvalidArgumentError(std::string("expected a ") + kNodeTypeType + " ID, got " +
                                id.ToString());
  }
  RETURN_IF_ERROR(CheckClusterId(id.Parent()));
  return CheckNodeTypeName(id.name());
}

StatusOr<meta::Resource> GetCluster(meta::Transaction& txn, const ResourceId& id) {
  auto r = txn.Get(id);
  if (r.status().code() == StatusCode::kNotFound) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                     "the managed cluster " + id.ToString() +
                         " was not found; create it with 'imagesmith sf managed-cluster create'",
                     id.ToString());
  }
  return r;
}
StatusOr<meta::Resource> GetNodeType(meta::Transaction& txn, const ResourceId& id) {
  auto r = txn.Get(id);
  if (r.status().code() == StatusCode::kNotFound) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                     "the node type " + id.ToString() +
                         " was not found; create it with 'imagesmith sf managed-node-type create'",
                     id.ToString());
  }
  return r;
}

std::string Sku(const meta::Resource& cluster) {
  const Json* sku = cluster.properties.Find("imagesmithSku");
  return sku != nullptr && sku->is_string() ? sku->string_value() : "Basic";
}
int PrimaryMinimum(const std::string& sku) { return sku == "Standard" ? 5 : 3; }

Json ClusterJson(const meta::Resource& r) {
  Json j = r.ToJson();
  Json props = r.properties;
  std::erase_if(props.object_items(), [](const JsonMember& m) { return m.key == "imagesmithSku"; });
  j.Set("properties", props);
  Json sku = Json::MakeObject();
  sku.Set("name", Json::String(Sku(r)));
  j.Set("sku", sku);
  return j;
}

// ---- managed clusters ------------------------------------------------------

class ManagedClusterProvider final : public Provider {
 public:
  std::string_view Type() const override { return kClusterType; }
  std::vector<std::string> ApiVersions() const override { return kApiVersions; }

  // Creates the cluster (201) or updates tags and enableAutoOSUpgrade (200).
  // The SKU cannot change (Azure: a new cluster is needed).
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckClusterId(id), target));
    ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&request.body, ""));
    std::vector<std::string_view> top_members = kTopLevelMembers;
    top_members.push_back("sku");
    RETURN_IF_ERROR(top.AllowOnly(top_members));
    ASSIGN_OR_RETURN(BodyObject sku_obj, top.Object("sku"));
    RETURN_IF_ERROR(sku_obj.AllowOnly({"name"}));
    ASSIGN_OR_RETURN(std::optional<std::string> sku, sku_obj.String("name"));
    if (sku && *sku != "Basic" && *sku != "Standard") {
      return BodyError("sku.name", QuoteForMessage(*sku) + " is not a SKU: Basic or Standard");
    }
    ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
    RETURN_IF_ERROR(
        props.AllowOnly({"enableAutoOSUpgrade", "clusterState", "provisioningState", "dnsName",
                         "fqdn", "adminUserName", "adminPassword", "clientConnectionPort",
                         "httpGatewayConnectionPort", "clusterId", "clusterUpgradeMode"}));
    ASSIGN_OR_RETURN(std::optional<bool> auto_os, props.Bool("enableAutoOSUpgrade"));
    ASSIGN_OR_RETURN(std::optional<std::string> dns, props.String("dnsName"));
    ASSIGN_OR_RETURN(std::optional<std::string> admin, props.String("adminUserName"));
    ASSIGN_OR_RETURN(std::optional<Region> location, top.Location());
    ASSIGN_OR_RETURN(std::optional<Json> tags, top.Tags());
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kClusterWrite, id));
      ASSIGN_OR_RETURN(meta::Resource group, meta::GetGroup(txn, id.Parent()));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      if (current) {
        meta::Resource r = *current;
        if (sku && *sku != Sku(r)) {
          return BodyError("sku.name", "a cluster's SKU cannot change (it is " + Sku(r) +
                                           "); create a new cluster");
        }
        if (location && location->name() != r.location) {
          return BodyError("location", "a cluster cannot move (it is in " + r.location + ")");
        }
        if (auto_os) r.properties.Set("enableAutoOSUpgrade", Json::Bool(*auto_os));
        if (tags) r.tags = *tags;
        RETURN_IF_ERROR(txn.Replace(r, r.generation));
        out = ResourceResponse(200, ClusterJson(r), r);
        return Status::Ok();
      }
      meta::Resource r{.id = id, .location = ""};
      r.location = location ? location->name() : group.location;
      r.tags = tags.value_or(Json::MakeObject());
      r.properties.Set("imagesmithSku", Json::String(sku.value_or("Basic")));
      r.properties.Set("dnsName", Json::String(dns.value_or(id.name())));
      r.properties.Set("fqdn", Json::String(dns.value_or(id.name()) + "." + r.location +
                                            ".cloudapp.imagesmith.local"));
      r.properties.Set("adminUserName", Json::String(admin.value_or("azureadmin")));
      r.properties.Set("clientConnectionPort", Json::Int(19000));
      r.properties.Set("httpGatewayConnectionPort", Json::Int(19080));
      r.properties.Set("clusterId", Json::String(NewUuidV4()));
      r.properties.Set("enableAutoOSUpgrade", Json::Bool(auto_os.value_or(false)));
      r.properties.Set("clusterState", Json::String("WaitingForNodes"));
      r.properties.Set("provisioningState", Json::String("Succeeded"));
      RETURN_IF_ERROR(txn.Create(r));
      out = ResourceResponse(201, ClusterJson(r), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return out;
  }

  StatusOr<Response> Patch(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&request.body, ""));
    RETURN_IF_ERROR(top.AllowOnly({"tags"}));
    ASSIGN_OR_RETURN(std::optional<Json> tags, top.Tags());
    Response out;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kClusterWrite, request.id));
      ASSIGN_OR_RETURN(meta::Resource r, GetCluster(txn, request.id));
      RETURN_IF_ERROR(CheckPreconditions(request, &r));
      if (tags) r.tags = *tags;
      RETURN_IF_ERROR(txn.Replace(r, r.generation));
      out = ResourceResponse(200, ClusterJson(r), r);
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, request.id.ToString());
    return out;
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kClusterRead,
        [&](meta::Transaction& txn) { return GetCluster(txn, request.id); }, ClusterJson);
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    return ListAll(
        services, request, kClusterRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          if (request.id.kind() == ResourceId::Kind::kSubscription) {
            return txn.ListByType(request.id, kClusterType);
          }
          if (request.id.kind() == ResourceId::Kind::kResourceGroup) {
            RETURN_IF_ERROR(meta::GetGroup(txn, request.id).status());
            return txn.ListChildren(request.id, kClusterType);
          }
          return InvalidArgumentError(
              "managed clusters are listed at a subscription or a resource group");
        },
        ClusterJson);
  }

  // Refused while node types remain (delete them first: their nodes run).
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    return DeleteOne(
        services, request, kClusterDelete,
        [&](meta::Transaction& txn) { return meta::GetGroup(txn, request.id.Parent()).status(); },
        [&](meta::Transaction& txn) -> Status {
          ASSIGN_OR_RETURN(std::vector<meta::Resource> nts,
                           txn.ListChildren(request.id, kNodeTypeType));
          if (!nts.empty()) {
            std::string names;
            for (const meta::Resource& nt : nts) {
              names += (names.empty() ? "" : ", ") + nt.id.name();
            }
            return ArmStatus(StatusCode::kFailedPrecondition, "CannotDeleteResource",
                             "the managed cluster " + request.id.ToString() +
                                 " still has node types (" + names +
                                 "); delete them first with 'imagesmith sf managed-node-type "
                                 "delete'",
                             request.id.ToString());
          }
          return txn.Delete(request.id);
        });
  }

  // POST checkOSUpgrades: the automatic OS upgrade controller, once (what
  // `imagesmith serve` does every minute).
  StatusOr<Response> Action(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckClusterId(request.id), request.id.ToString()));
    if (request.action != "checkOSUpgrades") {
      return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                       "managed clusters have no action " + QuoteForMessage(request.action) +
                           "; the action is checkOSUpgrades",
                       request.id.ToString());
    }
    ASSIGN_OR_RETURN(Json result, RunAutoOsUpgrade(services, request, request.id));
    Response out;
    out.body = result;
    return out;
  }
};

// ---- node types --------------------------------------------------------------

struct NodeTypeBody {
  std::optional<bool> is_primary;
  std::optional<int64_t> count;
  std::optional<std::string> vm_size;
  std::optional<int64_t> data_disk_gb;
  std::optional<ResourceId> image;
  std::optional<std::string> driver;
  std::optional<std::string> health_command;
  std::optional<Json> policy;  // rollingUpgradePolicy
  std::optional<Json> tags;
};

StatusOr<NodeTypeBody> ParseNodeTypeBody(const Json& body) {
  ASSIGN_OR_RETURN(BodyObject top, BodyObject::At(&body, ""));
  RETURN_IF_ERROR(top.AllowOnly(kTopLevelMembers));
  ASSIGN_OR_RETURN(BodyObject props, top.Object("properties"));
  RETURN_IF_ERROR(props.AllowOnly({"isPrimary", "vmInstanceCount", "vmSize", "dataDiskSizeGB",
                                   "vmImageResourceId", "provisioningState", "imagesmith"}));
  NodeTypeBody out;
  ASSIGN_OR_RETURN(out.tags, top.Tags());
  ASSIGN_OR_RETURN(out.is_primary, props.Bool("isPrimary"));
  ASSIGN_OR_RETURN(out.count, props.Int("vmInstanceCount"));
  ASSIGN_OR_RETURN(out.vm_size, props.String("vmSize"));
  if (out.vm_size) {
    auto size = fleet::LookupVmSize(*out.vm_size);
    if (!size.ok()) return BodyError("properties.vmSize", size.status().message());
    out.vm_size = size->name;
  }
  ASSIGN_OR_RETURN(out.data_disk_gb, props.Int("dataDiskSizeGB"));
  if (out.data_disk_gb && (*out.data_disk_gb < 0 || *out.data_disk_gb > 4095)) {
    return BodyError("properties.dataDiskSizeGB", "must be 0-4095 GiB");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> image, props.String("vmImageResourceId"));
  if (image) {
    auto id = ResourceId::Parse(*image);
    if (!id.ok()) return BodyError("properties.vmImageResourceId", id.status().message());
    auto kind = ClassifyImage(*id, "properties.vmImageResourceId");
    if (!kind.ok()) return BodyError("properties.vmImageResourceId", kind.status().message());
    out.image = *id;
  }
  ASSIGN_OR_RETURN(BodyObject ext, props.Object("imagesmith"));
  RETURN_IF_ERROR(
      ext.AllowOnly({"nodeDriver", "healthCommand", "rollingUpgradePolicy", "nodes", "currentImage",
                     "operationId", "rollout", "rolloutHistory", "autoUpgrade"}));
  ASSIGN_OR_RETURN(out.driver, ext.String("nodeDriver"));
  if (out.driver && *out.driver != "qemu" && *out.driver != "sim") {
    return BodyError("properties.imagesmith.nodeDriver",
                     QuoteForMessage(*out.driver) + " is not a node driver: qemu or sim");
  }
  ASSIGN_OR_RETURN(out.health_command, ext.String("healthCommand"));
  if (const Json* p = ext.Find("rollingUpgradePolicy"); p != nullptr && !p->is_null()) {
    RETURN_IF_ERROR(fleet::UpgradePolicy::FromJson(p, nullptr, "properties.imagesmith").status());
    out.policy = *p;
  }
  return out;
}

// The SF resource provider reads the image for the node type (seed 000):
// it needs Reader on it (or above it).
Status CheckRpCanRead(meta::Transaction& txn, const ResourceId& image) {
  auth::Principal rp;
  for (const auth::ServicePrincipal& sp : auth::FirstPartyServicePrincipals()) {
    if (sp.object_id == auth::kServiceFabricRpObjectId) rp = sp.ToPrincipal();
  }
  std::string action = image.FullType() + "/read";
  Status s = auth::Authorize(txn, rp, action, image);
  if (s.ok()) return s;
  if (s.code() != StatusCode::kPermissionDenied) return s;
  return ArmStatus(StatusCode::kPermissionDenied, "AuthorizationFailed",
                   std::string("the Service Fabric resource provider ('") +
                       auth::kServiceFabricRpName + "', appId " + auth::kServiceFabricRpAppId +
                       ", object id " + auth::kServiceFabricRpObjectId +
                       ") does not have authorization to perform action '" + action +
                       "' over scope '" + image.ToString() +
                       "': it needs the Reader role on the image to create the node type's VMs "
                       "from it. Assign it with: imagesmith role assignment create --assignee " +
                       auth::kServiceFabricRpObjectId + " --role Reader --scope " +
                       image.ToString() + " (or at its gallery or resource group)",
                   image.ToString());
}

class NodeTypeProvider final : public Provider {
 public:
  std::string_view Type() const override { return kNodeTypeType; }
  std::vector<std::string> ApiVersions() const override { return kApiVersions; }

  // Creates the node type and starts making its nodes, or scales an
  // existing one (vmInstanceCount; the other properties cannot change
  // through PUT except tags and the rolling upgrade policy).
  StatusOr<Response> Put(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    const std::string target = id.ToString();
    RETURN_IF_ERROR(WithTarget(CheckNodeTypeId(id), target));
    ASSIGN_OR_RETURN(NodeTypeBody body, ParseNodeTypeBody(request.body));
    Operation op;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kNodeTypeWrite, id));
      ASSIGN_OR_RETURN(meta::Resource cluster, GetCluster(txn, id.Parent()));
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      RETURN_IF_ERROR(CheckPreconditions(request, current ? &*current : nullptr));
      const std::string sku = Sku(cluster);
      meta::Resource r{.id = id, .location = ""};
      bool is_primary = false;
      if (current) {
        r = *current;
        const Json* was = r.properties.Find("isPrimary");
        is_primary = was != nullptr && was->is_bool() && was->bool_value();
        if (body.is_primary && *body.is_primary != is_primary) {
          return BodyError("properties.isPrimary", std::string("cannot change (the node type is ") +
                                                       (is_primary ? "" : "not ") +
                                                       "primary); create a new node type instead");
        }
        auto same_string = [&](const char* key, const std::optional<std::string>& v) -> Status {
          const Json* was_v = r.properties.Find(key);
          if (v && was_v != nullptr && was_v->is_string() &&
              !EqualsIgnoreCase(was_v->string_value(), *v)) {
            return BodyError(
                std::string("properties.") + key,
                "cannot change on an existing node type (it is " + was_v->string_value() + ")");
          }
          return Status::Ok();
        };
        RETURN_IF_ERROR(same_string("vmSize", body.vm_size));
        RETURN_IF_ERROR(same_string(
            "vmImageResourceId",
            body.image ? std::optional<std::string>(body.image->ToString()) : std::nullopt));
        if (body.driver && *body.driver != ExtString(r, "nodeDriver")) {
          return BodyError(
              "properties.imagesmith.nodeDriver",
              "cannot change on an existing node type (it is " + ExtString(r, "nodeDriver") + ")");
        }
      } else {
        if (!body.is_primary) return BodyError("properties.isPrimary", "is required");
        if (!body.count) return BodyError("properties.vmInstanceCount", "is required");
        if (!body.image) {
          return BodyError("properties.vmImageResourceId",
                           "is required: a managed image, a gallery image definition or a "
                           "gallery image version ID");
        }
        is_primary = *body.is_primary;
        r.id = id;
        r.location = cluster.location;
        r.properties.Set("isPrimary", Json::Bool(is_primary));
        r.properties.Set("vmSize", Json::String(body.vm_size.value_or("Standard_D2s_v3")));
        r.properties.Set("dataDiskSizeGB", Json::Int(body.data_disk_gb.value_or(100)));
        r.properties.Set("vmImageResourceId", Json::String(body.image->ToString()));
        Ext(r).Set("nodeDriver", Json::String(body.driver.value_or("qemu")));
        Ext(r).Set("nodes", Json::MakeArray());
        Ext(r).Set("rolloutHistory", Json::MakeArray());
      }
      if (body.count) {
        int64_t n = *body.count;
        if (n == 0) {
          return BodyError("properties.vmInstanceCount",
                           "0 is not allowed: a node type needs at least 1 instance (delete the "
                           "node type instead)");
        }
        if (n == -1 && is_primary) {
          return BodyError("properties.vmInstanceCount",
                           "-1 (autoscale) is not allowed on the primary node type");
        }
        if (n == -1) {
          return BodyError("properties.vmInstanceCount",
                           "-1 (autoscale) is not supported by imagesmith yet; give a count");
        }
        if (n < -1 || n > 1000) return BodyError("properties.vmInstanceCount", "must be 1-1000");
        if (is_primary && n < PrimaryMinimum(sku)) {
          return BodyError("properties.vmInstanceCount",
                           "the primary node type of a " + sku + " cluster needs at least " +
                               std::to_string(PrimaryMinimum(sku)) +
                               " instances (Basic: at least 3, Standard: at least 5); got " +
                               std::to_string(n));
        }
        r.properties.Set("vmInstanceCount", Json::Int(n));
      }
      if (body.health_command) Ext(r).Set("healthCommand", Json::String(*body.health_command));
      if (body.policy) Ext(r).Set("rollingUpgradePolicy", *body.policy);
      if (body.tags) r.tags = *body.tags;
      if (!current) {
        // The image must exist, be usable in the cluster's region, and the
        // SF resource provider must be able to read it.
        ASSIGN_OR_RETURN(bool image_exists, txn.Exists(*body.image));
        if (!image_exists) {
          return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                           "properties.vmImageResourceId: the image " + body.image->ToString() +
                               " does not exist",
                           body.image->ToString());
        }
        RETURN_IF_ERROR(Allow(txn, request, body.image->FullType() + "/read", *body.image));
        RETURN_IF_ERROR(CheckRpCanRead(txn, *body.image));
        auto image = ResolveNodeImage(txn, *body.image, r.location);
        if (!image.ok()) return image.status().WithContext("properties.vmImageResourceId");
        Ext(r).Set("currentImage", Json::String(*image));
        r.properties.Set("provisioningState", Json::String("Creating"));
        RETURN_IF_ERROR(txn.Create(r));
      } else {
        r.properties.Set("provisioningState", Json::String("Updating"));
        RETURN_IF_ERROR(txn.Replace(r, r.generation));
      }
      ASSIGN_OR_RETURN(op, StartNodeTypeOperation(services, txn, r, "provision", Json::MakeObject(),
                                                  request.wait));
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, target);
    return FinishNodeTypeOperation(services, request, op, id);
  }

  StatusOr<Response> Get(Services& services, const Request& request) override {
    RETURN_IF_ERROR(WithTarget(CheckNodeTypeId(request.id), request.id.ToString()));
    return GetOne(
        services, request, kNodeTypeRead,
        [&](meta::Transaction& txn) { return GetNodeType(txn, request.id); }, NodeTypeJson);
  }

  StatusOr<Response> List(Services& services, const Request& request) override {
    return ListAll(
        services, request, kNodeTypeRead,
        [&](meta::Transaction& txn) -> StatusOr<std::vector<meta::Resource>> {
          if (!request.id.IsType(kClusterType)) {
            return InvalidArgumentError("node types are listed under a managed cluster");
          }
          RETURN_IF_ERROR(GetCluster(txn, request.id).status());
          return txn.ListChildren(request.id, kNodeTypeType);
        },
        NodeTypeJson);
  }

  // Deletes the nodes (an operation), then the node type. The primary node
  // type goes only when it is the last one.
  StatusOr<Response> Delete(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    RETURN_IF_ERROR(WithTarget(CheckNodeTypeId(id), id.ToString()));
    Operation op;
    bool existed = true;
    Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
      RETURN_IF_ERROR(Allow(txn, request, kNodeTypeDelete, id));
      RETURN_IF_ERROR(GetCluster(txn, id.Parent()).status());
      ASSIGN_OR_RETURN(std::optional<meta::Resource> current, FindResource(txn, id));
      if (!current) {
        existed = false;
        return Status::Ok();
      }
      RETURN_IF_ERROR(CheckPreconditions(request, &*current));
      const Json* primary = current->properties.Find("isPrimary");
      if (primary != nullptr && primary->is_bool() && primary->bool_value()) {
        ASSIGN_OR_RETURN(std::vector<meta::Resource> all,
                         txn.ListChildren(id.Parent(), kNodeTypeType));
        if (all.size() > 1) {
          return ArmStatus(StatusCode::kFailedPrecondition, "CannotDeleteResource",
                           "the primary node type " + id.name() +
                               " can be deleted only when it is the cluster's last node type",
                           id.ToString());
        }
      }
      meta::Resource r = *current;
      r.properties.Set("provisioningState", Json::String("Deleting"));
      RETURN_IF_ERROR(txn.Replace(r, r.generation));
      ASSIGN_OR_RETURN(
          op, StartNodeTypeOperation(services, txn, r, "delete", Json::MakeObject(), request.wait));
      return Status::Ok();
    });
    if (!s.ok()) return WithTarget(s, id.ToString());
    if (!existed) return DeleteResponse(false);
    if (!request.wait) {
      Response resp;
      resp.http_status = 202;
      resp.operation_id = op.id;
      resp.body = op.ToJson();
      return resp;
    }
    ASSIGN_OR_RETURN(Operation done,
                     services.operations->Execute(op.id, request.progress, request.interrupt));
    if (done.status != OperationStatus::kSucceeded) {
      return ArmStatus(StatusCode::kInternal, done.error ? done.error->code : "DeleteFailed",
                       done.error ? done.error->message : "the delete failed", id.ToString());
    }
    return DeleteResponse(true);
  }

  // restart, reimage: every node, one upgrade domain at a time.
  // getRollout, cancelRollout, rolloutHistory: the node type's rollouts.
  // osRollingUpgrade: a user-started rollout to the image's latest.
  StatusOr<Response> Action(Services& services, const Request& request) override {
    const ResourceId& id = request.id;
    RETURN_IF_ERROR(WithTarget(CheckNodeTypeId(id), id.ToString()));
    const std::string& a = request.action;
    if (a == "getRollout" || a == "rolloutHistory") {
      Response out;
      RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
        RETURN_IF_ERROR(Allow(txn, request, kNodeTypeRead, id));
        ASSIGN_OR_RETURN(meta::Resource r, GetNodeType(txn, id));
        const Json* history = ExtFind(r, "rolloutHistory");
        if (a == "rolloutHistory") {
          Json value = history != nullptr && history->is_array() ? *history : Json::MakeArray();
          out.body = Json::MakeObject();
          out.body.Set("value", value);
          return Status::Ok();
        }
        const Json* current = ExtFind(r, "rollout");
        if (current == nullptr || current->is_null()) {
          return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                           "the node type " + id.name() + " has had no rollout yet", id.ToString());
        }
        auto state = fleet::RolloutState::FromJson(*current);
        if (!state.ok()) return state.status();
        out.body = state->ToJson();
        return Status::Ok();
      }));
      return out;
    }
    if (a == "cancelRollout") {
      std::string op_id;
      RETURN_IF_TXN_ERROR(services.meta->Read([&](meta::Transaction& txn) -> Status {
        RETURN_IF_ERROR(Allow(txn, request, kNodeTypeWrite, id));
        ASSIGN_OR_RETURN(meta::Resource r, GetNodeType(txn, id));
        const Json* current = ExtFind(r, "rollout");
        auto state = current != nullptr && !current->is_null()
                         ? fleet::RolloutState::FromJson(*current)
                         : StatusOr<fleet::RolloutState>(NotFoundError(""));
        if (!state.ok() || state->done()) {
          return ArmStatus(StatusCode::kFailedPrecondition, "NoRollingUpgradeInProgress",
                           "the node type " + id.name() + " has no rollout in progress",
                           id.ToString());
        }
        op_id = ExtString(r, "operationId");
        return Status::Ok();
      }));
      RETURN_IF_ERROR(services.operations->RequestCancel(op_id));
      Response out;
      out.http_status = 202;
      out.operation_id = op_id;
      out.body = Json::MakeObject();
      out.body.Set("operationId", Json::String(op_id));
      out.body.Set("status", Json::String("CancelRequested"));
      return out;
    }
    if (a == "restart" || a == "reimage" || a == "osRollingUpgrade") {
      Operation op;
      Status s = services.meta->Update([&](meta::Transaction& txn) -> Status {
        RETURN_IF_ERROR(Allow(txn, request,
                              a == "restart"   ? kNodeTypeRestart
                              : a == "reimage" ? kNodeTypeReimage
                                               : kNodeTypeWrite,
                              id));
        ASSIGN_OR_RETURN(meta::Resource r, GetNodeType(txn, id));
        Json extra = Json::MakeObject();
        std::string kind = a;
        if (a == "osRollingUpgrade") {
          kind = "rollout";
          ASSIGN_OR_RETURN(
              ResourceId ref,
              ResourceId::Parse(r.properties.Find("vmImageResourceId")->string_value()));
          ASSIGN_OR_RETURN(std::string latest, ResolveNodeImage(txn, ref, r.location));
          if (EqualsIgnoreCase(latest, ExtString(r, "currentImage"))) {
            return ArmStatus(StatusCode::kFailedPrecondition, "AlreadyUpToDate",
                             "the node type " + id.name() + " already runs " + latest,
                             id.ToString());
          }
          extra.Set("targetImage", Json::String(latest));
          extra.Set("startedBy", Json::String("User"));
        }
        if (request.body.is_object()) {
          if (const Json* nodes = request.body.Find("nodes"); nodes != nullptr) {
            extra.Set("nodes", *nodes);
          }
        }
        ASSIGN_OR_RETURN(op, StartNodeTypeOperation(services, txn, r, kind, extra, request.wait));
        return Status::Ok();
      });
      if (!s.ok()) return WithTarget(s, id.ToString());
      return FinishNodeTypeOperation(services, request, op, id);
    }
    return ArmStatus(StatusCode::kNotFound, "InvalidAction",
                     "node types have no action " + QuoteForMessage(a) +
                         "; the actions are restart, reimage, osRollingUpgrade, getRollout, "
                         "cancelRollout and rolloutHistory",
                     id.ToString());
  }
};

}  // namespace
}  // namespace sf

std::unique_ptr<Provider> NewManagedClusterProvider() {
  return std::make_unique<sf::ManagedClusterProvider>();
}
std::unique_ptr<Provider> NewNodeTypeProvider() { return std::make_unique<sf::NodeTypeProvider>(); }

}  // namespace imagesmith::api
