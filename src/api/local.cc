#include "api/local.h"

#include "auth/directory.h"
#include "base/data_dir.h"
#include "meta/scopes.h"

namespace imagesmith::api {

StatusOr<std::unique_ptr<Local>> OpenLocal(Env& env) {
  auto local = std::make_unique<Local>();
  ASSIGN_OR_RETURN(local->services.data_dir, DataDirPath());
  const std::string& dir = local->services.data_dir;
  Status made = env.CreateDirs(dir);
  if (!made.ok()) {
    return made.WithContext("cannot create the data directory " + dir +
                            " (set IMAGESMITH_HOME to a writable directory)");
  }
  ASSIGN_OR_RETURN(local->meta, meta::OpenSqliteMetaStore(env, dir + "/meta.db"));
  RETURN_IF_ERROR(local->meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource sub, meta::EnsureDefaultSubscription(txn, env));
    local->services.subscription = sub.id.subscription();
    ASSIGN_OR_RETURN(auth::DirectoryInfo directory, auth::EnsureDirectory(txn));
    local->owner.principal = auth::OwnerPrincipal(directory);
    return Status::Ok();
  }));
  local->services.env = &env;
  local->services.meta = local->meta.get();
  local->registry = BuiltinRegistry();
  local->operations = std::make_unique<Operations>(local->services);
  AddBuiltinHandlers(*local->operations);
  local->services.operations = local->operations.get();
  return local;
}

}  // namespace imagesmith::api
