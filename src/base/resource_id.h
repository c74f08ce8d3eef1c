// ResourceId: an Azure Resource Manager resource ID as a value type.
//
//   /subscriptions/{sub}
//   /subscriptions/{sub}/resourceGroups/{rg}
//   /subscriptions/{sub}/resourceGroups/{rg}/providers/{Namespace}/{type}/{name}[/{type}/{name}...]
//
// Parsing validates the shape and the subscription and resource group names;
// the fixed keywords (subscriptions, resourceGroups, providers) are accepted
// in any case and written in canonical case. Comparison is case-insensitive,
// as in Azure; names keep the case they were written in. Copyable value type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/statusor.h"

namespace imagesmith {

class ResourceId {
 public:
  enum class Kind { kSubscription, kResourceGroup, kResource };

  struct TypeAndName {
    std::string type;  // "galleries"
    std::string name;  // "myGallery"
  };

  // Parses `text`. On failure returns InvalidArgument whose message says
  // which segment is wrong and what shape was expected.
  static StatusOr<ResourceId> Parse(std::string_view text);

  static ResourceId ForSubscription(std::string subscription);
  static ResourceId ForResourceGroup(std::string subscription, std::string resource_group);
  // A top-level resource: /subscriptions/s/resourceGroups/g/providers/ns/type/name.
  static ResourceId ForResource(std::string subscription, std::string resource_group,
                                std::string provider_namespace, std::string type, std::string name);

  Kind kind() const { return kind_; }
  const std::string& subscription() const { return subscription_; }
  // Empty for a subscription ID.
  const std::string& resource_group() const { return resource_group_; }
  // Empty unless kind() == kResource. "Microsoft.Compute".
  const std::string& provider_namespace() const { return namespace_; }
  const std::vector<TypeAndName>& types() const { return types_; }

  // "Microsoft.Compute/galleries/images/versions"; for subscriptions and
  // resource groups "Microsoft.Resources/subscriptions" and
  // "Microsoft.Resources/resourceGroups", as Azure reports them.
  std::string FullType() const;
  // True when FullType() equals `full_type`, ignoring case.
  bool IsType(std::string_view full_type) const;
  // The last name: the resource's, the group's or the subscription's.
  const std::string& name() const;

  // This resource's child: appends /{type}/{name}. Requires kind() == kResource.
  ResourceId Child(std::string type, std::string name) const;
  // The resource one level up: a child's parent resource, a top-level
  // resource's resource group, a group's subscription. A subscription has no
  // parent and returns itself.
  ResourceId Parent() const;

  // The canonical text form.
  std::string ToString() const;

  // Case-insensitive, as Azure compares IDs.
  friend bool operator==(const ResourceId& a, const ResourceId& b);
  friend bool operator<(const ResourceId& a, const ResourceId& b);

 private:
  ResourceId() = default;
  Kind kind_ = Kind::kSubscription;
  std::string subscription_;
  std::string resource_group_;
  std::string namespace_;
  std::vector<TypeAndName> types_;
};

// Resource group names: 1-90 characters of letters, digits, '_', '-', '.',
// '(' and ')', not ending in '.'. Returns InvalidArgument stating the rule.
Status ValidateResourceGroupName(std::string_view name);
// True for a GUID in 8-4-4-4-12 hexadecimal form.
bool IsGuid(std::string_view s);

}  // namespace imagesmith
