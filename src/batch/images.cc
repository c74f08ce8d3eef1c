#include "batch/images.h"

#include "base/strings.h"
#include "gallery/names.h"
#include "gallery/resources.h"

namespace imagesmith::batch {
namespace {

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

int64_t Int(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? v->AsInt64().value_or(0) : 0;
}

std::string WithThousands(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace

std::string PoolImageIdOf(const Json& props) {
  const Json* vmc = props.Find("virtualMachineConfiguration");
  if (vmc == nullptr || !vmc->is_object()) return "";
  const Json* ref = vmc->Find("imageReference");
  return ref != nullptr ? Str(*ref, "virtualMachineImageId") : "";
}

StatusOr<PoolImage> ResolvePoolImage(meta::Transaction& txn, const std::string& image_id,
                                     const std::string& region, const std::string& path) {
  auto id = ResourceId::Parse(image_id);
  if (!id.ok() || id->kind() != ResourceId::Kind::kResource ||
      !(id->IsType(gallery::kManagedImageType) || id->IsType(gallery::kImageVersionType))) {
    return InvalidArgumentError(path + ": '" + image_id +
                                "' is not the ID of a managed image "
                                "(/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/"
                                "images/NAME) or a gallery image version "
                                "(…/galleries/G/images/D/versions/X.Y.Z)");
  }
  PoolImage out;
  out.image_id = image_id;
  auto r = txn.Get(*id);
  if (!r.ok()) {
    if (r.status().code() != StatusCode::kNotFound) return r.status();
    return NotFoundError(path + ": the image " + image_id +
                         " does not exist; create it (imagesmith image create, imagesmith sig "
                         "image-version create or imagesmith build) or fix the ID");
  }
  if (id->IsType(gallery::kManagedImageType)) {
    const Json* sp = r->properties.Find("storageProfile");
    const Json* os_disk = sp != nullptr && sp->is_object() ? sp->Find("osDisk") : nullptr;
    if (os_disk != nullptr) out.os_type = Str(*os_disk, "osType");
    out.uefi = Str(r->properties, "hyperVGeneration") == "V2";
    if (!EqualsIgnoreCase(r->location, region)) {
      return FailedPreconditionError(path + ": the managed image " + image_id + " is in " +
                                     r->location + ", not in the pool's region " + region +
                                     "; a pool uses a managed image in its own region");
    }
    return out;
  }
  ASSIGN_OR_RETURN(gallery::VersionRecord rec, gallery::VersionRecord::FromResource(*r));
  out.os_type = rec.os_type.empty() ? "Linux" : rec.os_type;
  out.uefi = rec.hyper_v_generation == "V2";
  auto region_parsed = Region::Parse(region);
  const gallery::ReplicaStatus* replica =
      region_parsed.ok() ? rec.Replica(*region_parsed) : nullptr;
  if (replica == nullptr || replica->state != gallery::ReplicaState::kCompleted) {
    std::string have;
    for (const gallery::ReplicaStatus& rs : rec.replication) {
      if (rs.state != gallery::ReplicaState::kCompleted) continue;
      have += (have.empty() ? "" : ", ") + rs.region.name();
    }
    return FailedPreconditionError(
        path + ": the image version " + image_id + " is not replicated to the pool's region " +
        region + " (" +
        (replica == nullptr ? "not a target region"
                            : "replica " + std::string(gallery::ReplicaStateName(replica->state))) +
        "; completed in: " + (have.empty() ? "none" : have) +
        "); add the region with 'imagesmith sig image-version update --add-regions " + region +
        "' and wait for it to complete");
  }
  return out;
}

Status CheckNodeAgentSku(const std::string& sku, const std::string& os_type,
                         const std::string& path) {
  std::vector<std::string> fitting = FittingNodeAgentSkus(os_type);
  for (const std::string& f : fitting) {
    if (EqualsIgnoreCase(f, sku)) return Status::Ok();
  }
  bool known = false;
  for (const std::string& k : KnownNodeAgentSkus()) known = known || EqualsIgnoreCase(k, sku);
  return InvalidArgumentError(path + ": '" + sku + "' " +
                              (known ? "does not fit the image's OS (" + os_type + ")"
                                     : std::string("is not a node agent SKU imagesmith knows")) +
                              "; the SKUs that fit this image are: " + Join(fitting, ", "));
}

Status CheckImageLimits(meta::Transaction& txn, const ResourceId& pool, const std::string& image_id,
                        int64_t dedicated, int64_t low_priority, const std::string& dedicated_path,
                        const std::string& low_priority_path) {
  ASSIGN_OR_RETURN(std::vector<meta::Resource> pools,
                   txn.ListByType(ResourceId::ForSubscription(pool.subscription()), kPoolType));
  int64_t other_dedicated = 0, other_low = 0;
  std::string others_d, others_l;
  for (const meta::Resource& p : pools) {
    if (EqualsIgnoreCase(p.id.ToString(), pool.ToString())) continue;
    if (!EqualsIgnoreCase(PoolImageIdOf(p.properties), image_id)) continue;
    int64_t d = Int(p.properties, "targetDedicatedNodes");
    int64_t l = Int(p.properties, "targetLowPriorityNodes");
    other_dedicated += d;
    other_low += l;
    if (d > 0) others_d += (others_d.empty() ? "" : ", ") + p.id.name() + " " + std::to_string(d);
    if (l > 0) others_l += (others_l.empty() ? "" : ", ") + p.id.name() + " " + std::to_string(l);
  }
  auto refuse = [&](const std::string& path, const char* kind, int64_t limit, int64_t asked,
                    int64_t held, const std::string& who) {
    return InvalidArgumentError(
        path + ": " + std::to_string(asked) + " " + kind + " nodes for pool '" + pool.name() +
        "' would exceed Batch's limit of " + WithThousands(limit) + " " + kind +
        " nodes per custom image (" + image_id + "): other pools on this image hold " +
        std::to_string(held) + (who.empty() ? "" : " (" + who + ")") + ", so at most " +
        std::to_string(std::max<int64_t>(0, limit - held)) +
        " are left; use a copy of the image for more nodes");
  };
  if (dedicated + other_dedicated > kMaxDedicatedPerImage) {
    return refuse(dedicated_path, "dedicated", kMaxDedicatedPerImage, dedicated, other_dedicated,
                  others_d);
  }
  if (low_priority + other_low > kMaxLowPriorityPerImage) {
    return refuse(low_priority_path, "low-priority", kMaxLowPriorityPerImage, low_priority,
                  other_low, others_l);
  }
  return Status::Ok();
}

Status CheckVhdCapacity(const std::vector<std::string>& vhd_uris, int64_t nodes,
                        const std::string& path) {
  int64_t capacity = static_cast<int64_t>(vhd_uris.size()) * kLinuxNodesPerVhd;
  if (nodes <= capacity) return Status::Ok();
  int64_t needed = (nodes + kLinuxNodesPerVhd - 1) / kLinuxNodesPerVhd;
  return InvalidArgumentError(path + ": " + std::to_string(nodes) + " nodes need " +
                              std::to_string(needed) + " VHD copies (one VHD serves at most " +
                              std::to_string(kLinuxNodesPerVhd) + " Linux nodes), but " +
                              std::to_string(vhd_uris.size()) +
                              " are given; copy the VHD and list every copy in osDisk.imageUris");
}

StatusOr<std::vector<ResourceId>> PoolsUsingImage(meta::Transaction& txn,
                                                  const std::string& subscription,
                                                  const ResourceId& image) {
  ASSIGN_OR_RETURN(std::vector<meta::Resource> pools,
                   txn.ListByType(ResourceId::ForSubscription(subscription), kPoolType));
  std::string want = AsciiToLower(image.ToString());
  std::vector<ResourceId> out;
  for (const meta::Resource& p : pools) {
    std::string used = AsciiToLower(PoolImageIdOf(p.properties));
    if (used.empty()) continue;
    if (used == want || StartsWith(used, want + "/")) out.push_back(p.id);
  }
  return out;
}

Status CheckImageNotInUse(meta::Transaction& txn, const ResourceId& image, bool force) {
  if (force) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<ResourceId> pools,
                   PoolsUsingImage(txn, image.subscription(), image));
  if (pools.empty()) return Status::Ok();
  std::string names;
  for (const ResourceId& p : pools) {
    names += (names.empty() ? "" : ", ") + p.types()[0].name + "/" + p.name();
  }
  return FailedPreconditionError(
      image.ToString() + " is used by " + std::to_string(pools.size()) + " Batch pool" +
      (pools.size() == 1 ? "" : "s") + " (" + names +
      "); delete or move the pools first, or delete with --force (their next allocation then "
      "fails with AllocationFailed)");
}

}  // namespace imagesmith::batch
