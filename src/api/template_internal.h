// What template_provider.cc and template_run.cc share about the stored
// template resource (its "imagesmith" extension and lastRunStatus). Not a
// public interface.
#pragma once

#include <string>

#include "api/operations.h"
#include "builder/staging.h"
#include "meta/meta_store.h"

// RETURN_IF_ERROR around a transaction whose callback uses RETURN_IF_ERROR
// itself (its variable would shadow the outer one).
#define RETURN_IF_TXN_ERROR(expr)                                    \
  do {                                                               \
    ::imagesmith::Status imagesmith_txn_status_ = (expr);            \
    if (!imagesmith_txn_status_.ok()) return imagesmith_txn_status_; \
  } while (0)

namespace imagesmith::api::internal {

Json& Ext(meta::Resource& r);
const Json* ExtField(const meta::Resource& r, const char* name);
std::string ExtString(const meta::Resource& r, const char* name);

// lastRunStatus.runState as stored ("" before any run).
std::string LastRunState(const meta::Resource& r);

Json NewLastRunStatus(const std::string& state, const std::string& sub_state,
                      const std::string& message, int64_t start_us, int64_t end_us);

// The operation of the template's current or last run; nullopt when none
// (or it is gone).
std::optional<Operation> RunOperation(meta::Transaction& txn, const meta::Resource& r);

// A run recorded as Running or Canceling whose operation's worker died (or
// whose operation ended without the template hearing of it).
bool RunAbandoned(meta::Transaction& txn, const meta::Resource& r, int64_t now_us);

// The message a run whose worker died shows.
std::string AbandonedMessage(const meta::Resource& r, const std::string& why);

// The staging area's directory of VHDs for the template.
std::string StagingDir(const std::string& data_dir, const build::StagingGroup& g,
                       const ResourceId& template_id);
Status RecordStagingAccount(meta::Transaction& txn, const build::StagingGroup& g,
                            const ResourceId& template_id, const std::string& dir);

// Azure's shape for show/list: the resource without the extension, with
// lastRun.
Json ShowJson(meta::Transaction& txn, const meta::Resource& r, int64_t now_us);

}  // namespace imagesmith::api::internal
