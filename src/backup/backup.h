// Backup and restore of a data directory's durable state: the metadata
// database and the content-addressed store (doc/backup.md).
//
//   CreateBackup: live meta.db --online backup--> snapshot (one point in time)
//                 snapshot: interrupted runs and versions marked Failed
//                 pin every image the snapshot names, check each is complete
//                 copy those images' objects the backup lacks (verified)
//                 snapshot -> meta-<sha256>.db; backup.json last (atomic)
//   RestoreBackup: check backup.json, the database's digest and integrity,
//                 copy every image it lists (each object verified) into an
//                 empty data directory, then meta.db last.
//
// A backup directory holds one backup; creating a backup into it again is
// incremental (objects already there are not copied). Its layout and the
// consistency argument are in doc/backup.md. What is not backed up: the
// platform catalog, caches, run logs, build sources and staged VHDs (all
// rebuilt or re-exported on demand).
//
// Thread-compatible. Safe while builds, publishes and gc run in other
// processes on the same data directory; two backups into one directory at
// once are refused (Unavailable).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/statusor.h"
#include "meta/meta_store.h"
#include "store/store.h"

namespace imagesmith::backup {

// The file in a backup directory that describes it; written last.
inline constexpr const char kManifestName[] = "backup.json";

struct BackupStats {
  std::string meta_file;  // "meta-<sha256>.db", relative to the backup directory
  uint64_t meta_bytes = 0;
  uint64_t resources = 0;  // rows in the snapshot
  uint64_t images = 0;     // distinct (region, image) pairs copied or already present
  uint64_t copied_objects = 0;
  uint64_t copied_bytes = 0;  // compressed bytes written to the backup
  uint64_t present_objects = 0;
  // Resource IDs the snapshot records as Failed because they were in flight
  // (a version Creating/Updating, a run Running/Canceling) at backup time.
  std::vector<std::string> interrupted;
};

// Backs up `meta` and the images its resources name from `store` into
// `backup_dir` (created if missing; an earlier backup there is updated
// incrementally). `backup_dir` must be missing, empty, or a backup.
// FailedPrecondition when it is none of those or when a named image is not
// complete in the store (the message names the resource, region and image
// and says to run fsck); Unavailable when another backup into the same
// directory runs; errors of the database and the store otherwise. On error
// the previous backup in `backup_dir`, if any, is still whole.
StatusOr<BackupStats> CreateBackup(Env& env, meta::MetaStore& meta, store::Store& store,
                                   const std::string& backup_dir,
                                   const store::ProgressFn& progress);

struct RestoreStats {
  uint64_t images = 0;
  uint64_t copied_objects = 0;
  uint64_t copied_bytes = 0;
  std::string created_utc;  // when the backup was taken
};

// Restores the backup in `backup_dir` into `data_dir`, which must be
// missing or an empty directory (FailedPrecondition saying to move it aside
// otherwise). DataLoss naming the file when backup.json, the database or an
// object is missing, damaged or does not match its digest;
// FailedPrecondition when `backup_dir` is not a backup. Every object is
// verified before it is written. On error everything the restore created in
// `data_dir` is removed again.
StatusOr<RestoreStats> RestoreBackup(Env& env, const std::string& backup_dir,
                                     const std::string& data_dir,
                                     const store::ProgressFn& progress);

}  // namespace imagesmith::backup
