#include "cli/data.h"

#include "api/local.h"

namespace imagesmith::cli {

// The api layer opens the data directory (api::OpenLocal); a command that
// still needs the database handle itself (backup, store) takes it from there.
StatusOr<Data> OpenData(Env& env) {
  ASSIGN_OR_RETURN(std::unique_ptr<api::Local> local, api::OpenLocal(env));
  Data d;
  d.dir = local->services.data_dir;
  d.subscription = local->services.subscription;
  local->operations.reset();  // it refers to the database moved out below
  d.meta = std::move(local->meta);
  return d;
}

}  // namespace imagesmith::cli
