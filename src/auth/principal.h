// Principal: who makes a request. Users, service principals (created with
// 'ad sp create-for-rbac') and user-assigned managed identities (the
// identities image templates name). Role assignments name a principal by its
// object ID. Copyable value type.
#pragma once

#include <string>

namespace imagesmith::auth {

enum class PrincipalKind {
  kUser,              // the data directory's owner, and users created later
  kServicePrincipal,  // an application with a client secret
  kManagedIdentity,   // Microsoft.ManagedIdentity/userAssignedIdentities
};

struct Principal {
  PrincipalKind kind = PrincipalKind::kUser;
  std::string object_id;  // a GUID; role assignments use it as principalId
  std::string name;  // the user's name, the SP's appId or display name, the identity's resource ID
  // The data directory's owner (local CLI use): allowed everything, as the
  // account that created the subscription is in Azure.
  bool is_owner = false;
};

}  // namespace imagesmith::auth
