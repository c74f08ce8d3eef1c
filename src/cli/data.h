// Opening the data directory for a command: creates it if needed, opens the
// metadata database and makes sure the default subscription exists.
#pragma once

#include <memory>
#include <string>

#include "base/env.h"
#include "meta/meta_store.h"

namespace imagesmith::cli {

struct Data {
  std::string dir;                        // the data directory
  std::unique_ptr<meta::MetaStore> meta;  // meta.db inside it
  std::string subscription;               // the default subscription's GUID

  // /subscriptions/{sub}/resourceGroups/{group}.
  ResourceId Group(const std::string& name) const {
    return ResourceId::ForResourceGroup(subscription, name);
  }
};

// Fails with a message that names the directory when it cannot be created or
// the database cannot be opened.
StatusOr<Data> OpenData(Env& env);

}  // namespace imagesmith::cli
