#include "cli/data.h"

#include "base/data_dir.h"
#include "meta/scopes.h"

namespace imagesmith::cli {

StatusOr<Data> OpenData(Env& env) {
  Data d;
  ASSIGN_OR_RETURN(d.dir, DataDirPath());
  Status made = env.CreateDirs(d.dir);
  if (!made.ok()) {
    return made.WithContext("cannot create the data directory " + d.dir +
                            " (set IMAGESMITH_HOME to a writable directory)");
  }
  ASSIGN_OR_RETURN(d.meta, meta::OpenSqliteMetaStore(env, d.dir + "/meta.db"));
  RETURN_IF_ERROR(d.meta->Update([&](meta::Transaction& txn) {
    ASSIGN_OR_RETURN(meta::Resource sub, meta::EnsureDefaultSubscription(txn, env));
    d.subscription = sub.id.subscription();
    return Status::Ok();
  }));
  return d;
}

}  // namespace imagesmith::cli
