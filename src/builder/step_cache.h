// The step cache: the filesystem changes each customizer made, kept as an
// overlay layer under a key derived from everything that determines them:
//
//   key = SHA-256("imagesmith-step-v1" | parent key | canonical step JSON |
//                 digest of every input the step fetched)
//
// A layer holds only what its step changed (an overlayfs upper directory,
// whiteouts included), so a cached step costs its own changes, never a copy
// of the tree. Layers are published by rename, so a layer is either complete
// or absent. Thread-compatible; several processes may share a cache (a
// layer committed twice keeps the first).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/sha256.h"

namespace imagesmith::build {

std::string StepKey(const std::string& parent_key, const Json& canonical_step,
                    const std::vector<Sha256Digest>& input_digests);

struct CacheEntryInfo {
  std::string key;
  uint64_t bytes = 0;
  int64_t last_used_us = 0;
};

class StepCache {
 public:
  StepCache(Env& env, std::string dir) : env_(env), dir_(std::move(dir)) {}

  // The layer directory for `key` if cached (and marks it used), else nullopt.
  std::optional<std::string> Lookup(const std::string& key);
  // Publishes `upper_dir` (moved, not copied; it must be on the cache's
  // filesystem) as the layer for `key`, with `info` recorded beside it.
  // Returns the layer's path.
  StatusOr<std::string> Commit(const std::string& key, const std::string& upper_dir,
                               const Json& info);
  // Every entry, least recently used first.
  StatusOr<std::vector<CacheEntryInfo>> List();
  // Removes least recently used entries until the cache is at most
  // `max_bytes`. Returns the entries removed. Entries in `keep` stay.
  StatusOr<std::vector<CacheEntryInfo>> Prune(uint64_t max_bytes,
                                              const std::vector<std::string>& keep = {});

  const std::string& dir() const { return dir_; }

 private:
  Env& env_;
  std::string dir_;
};

// Bytes used by a directory tree (allocated blocks, not following symlinks).
uint64_t TreeDiskUsage(const std::string& dir);

}  // namespace imagesmith::build
