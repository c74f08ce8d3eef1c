// Opening the api layer on the local data directory: what a CLI command (and
// `imagesmith serve`) does first. Creates the data directory if needed, opens
// the metadata database, makes sure the default subscription exists, and
// builds the provider registry.
//
// Not thread-safe to open; the returned Local may then be shared between
// threads as Registry and Services allow.
#pragma once

#include <memory>
#include <string>

#include "api/operations.h"
#include "api/provider.h"
#include "api/services.h"
#include "base/statusor.h"

namespace imagesmith::api {

struct Local {
  std::unique_ptr<meta::MetaStore> meta;
  std::unique_ptr<Registry> registry;
  Services services;  // points into this Local
  // Durable operations; this process's worker. Declared after `services`,
  // which it borrows.
  std::unique_ptr<Operations> operations;
  // Local use of the data directory acts as its owner.
  Caller owner;

  Local() = default;
  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;

  // Dispatches as the owner.
  StatusOr<Response> Call(Request request) {
    request.caller = owner;
    return registry->Dispatch(services, request);
  }
};

// Fails with a message that names the directory when it cannot be created or
// the database cannot be opened.
StatusOr<std::unique_ptr<Local>> OpenLocal(Env& env);

}  // namespace imagesmith::api
