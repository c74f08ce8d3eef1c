// Services: what a provider reaches outside itself (the Env, the metadata
// database, the data directory, the operation queue), and Caller: who is
// asking. Both are borrowed by providers for the length of one call.
#pragma once

#include <memory>
#include <string>

#include "auth/principal.h"
#include "base/env.h"
#include "base/resource_id.h"
#include "meta/meta_store.h"

namespace imagesmith::api {

class Operations;  // operations.h: durable operations and their workers

struct Services {
  Env* env = nullptr;                // never null
  meta::MetaStore* meta = nullptr;   // never null
  std::string data_dir;              // the data directory (store, runs, caches under it)
  std::string subscription;          // the default subscription's GUID
  Operations* operations = nullptr;  // never null once the api layer is open

  ResourceId Group(const std::string& name) const {
    return ResourceId::ForResourceGroup(subscription, name);
  }
};

struct Caller {
  auth::Principal principal;  // who asks; the data directory's owner for local CLI use
};

}  // namespace imagesmith::api
