// The regional disks qemu nodes boot from: one raw disk per (image, region),
// made once (by a caller-supplied function that writes the image's raw disk
// from the store, e.g. build::ExportStoredImage) and shared read-only as the
// backing file of every node overlay that uses it. Removed by Release when
// its last user lets go.
//
// Layout under `state_dir` (doc/fleet.md, "Regional disks"):
//   disks/<key>/disk.raw        the disk (<key>: sha256 of "image_id\nregion", 16 hex)
//   disks/<key>/source          "image_id\nregion\n", for people and fsck
//   disks/<key>/users/<user>    one empty file per user: the durable reference count
//   disks/<key>.lock            flock'ed while a disk is made, acquired or released
// Reference counts are files, not rows in the metadata database: the fleet
// layer sits below api/ and keeps all its host state under state_dir; a user
// is a node id, so acquiring twice for one node counts once.
//
// Thread-safe and process-safe (the flock serializes every change per disk).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/statusor.h"

namespace imagesmith::fleet {

class RegionalDisks {
 public:
  // Writes the image's raw disk to `path` (which does not exist yet).
  using Materialize = std::function<Status(const std::string& path)>;

  RegionalDisks(Env& env, const std::string& state_dir);

  // Returns the path of the disk for (image_id, region), making it with
  // `materialize` when it does not exist, and records `user` ([A-Za-z0-9_.-],
  // 1-128 bytes) as one of its users. On error nothing is recorded and no
  // partial disk is left; the error is materialize's, with context.
  StatusOr<std::string> Acquire(const std::string& image_id, const std::string& region,
                                const std::string& user, const Materialize& materialize);
  // Forgets `user`; removes the disk when no user is left. OK when `user`
  // (or the disk) is not there.
  Status Release(const std::string& image_id, const std::string& region, const std::string& user);
  // The users of (image_id, region)'s disk, sorted; empty when there is none.
  StatusOr<std::vector<std::string>> Users(const std::string& image_id, const std::string& region);
  // A disk someone holds.
  struct Held {
    std::string image_id;
    std::string region;
  };
  // Every disk `user` holds (read from each disk's source file), in key
  // order. A fleet that acquires disks under one user name (a Service
  // Fabric node type) releases them all with it when it is deleted.
  StatusOr<std::vector<Held>> HeldBy(const std::string& user);
  // The directory of (image_id, region)'s disk (whether or not it exists).
  std::string DirFor(const std::string& image_id, const std::string& region) const;

 private:
  Env& env_;
  std::string root_;  // state_dir/disks
};

}  // namespace imagesmith::fleet
