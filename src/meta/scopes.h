// Subscriptions and resource groups: the scopes every other resource lives in.
// Azure's rules, on top of a MetaStore. Functions are thread-compatible (they
// run inside the caller's transaction).
#pragma once

#include <string>

#include "base/region.h"
#include "meta/meta_store.h"

namespace imagesmith::meta {

inline constexpr const char* kGroupType = "Microsoft.Resources/resourceGroups";

// The default subscription, created on first use with a random GUID.
StatusOr<Resource> EnsureDefaultSubscription(Transaction& txn, Env& env);

// Creates a group; AlreadyExists if a group with that name (any case) exists
// in the subscription. The name is checked against Azure's rule.
StatusOr<Resource> CreateGroup(Transaction& txn, const std::string& subscription,
                               const std::string& name, const Region& location, const Json& tags);

// The group, or NotFound saying how to create it.
StatusOr<Resource> GetGroup(Transaction& txn, const ResourceId& group_id);

// Deletes an empty group. A group that still holds resources is
// FailedPrecondition listing (up to five of) them.
Status DeleteGroup(Transaction& txn, const ResourceId& group_id);

}  // namespace imagesmith::meta
