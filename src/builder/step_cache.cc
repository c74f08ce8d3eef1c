#include "builder/step_cache.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace imagesmith::build {

std::string StepKey(const std::string& parent_key, const Json& canonical_step,
                    const std::vector<Sha256Digest>& input_digests) {
  Sha256Hasher h;
  h.Update("imagesmith-step-v1\n");
  h.Update(parent_key);
  h.Update("\n");
  h.Update(canonical_step.Dump(-1));
  h.Update("\n");
  for (const Sha256Digest& d : input_digests) {
    h.Update(d.ToHex());
    h.Update("\n");
  }
  return h.Finish().ToHex();
}

namespace {
thread_local uint64_t g_usage = 0;
int AddUsage(const char*, const struct stat* st, int, struct FTW*) {
  g_usage += static_cast<uint64_t>(st->st_blocks) * 512;
  return 0;
}
}  // namespace

uint64_t TreeDiskUsage(const std::string& dir) {
  g_usage = 0;
  nftw(dir.c_str(), AddUsage, 64, FTW_PHYS);
  return g_usage;
}

std::optional<std::string> StepCache::Lookup(const std::string& key) {
  std::string entry = dir_ + "/" + key;
  if (!env_.IsDirectory(entry + "/layer") || !env_.FileExists(entry + "/step.json")) {
    return std::nullopt;
  }
  ::utimensat(AT_FDCWD, (entry + "/step.json").c_str(), nullptr, 0);  // last used
  return entry + "/layer";
}

StatusOr<std::string> StepCache::Commit(const std::string& key, const std::string& upper_dir,
                                        const Json& info) {
  RETURN_IF_ERROR(env_.CreateDirs(dir_));
  std::string entry = dir_ + "/" + key;
  std::string tmp = dir_ + "/.tmp-" + key + "-" + std::to_string(::getpid());
  RETURN_IF_ERROR(env_.RemoveAll(tmp));
  RETURN_IF_ERROR(env_.CreateDirs(tmp));
  RETURN_IF_ERROR(env_.Rename(upper_dir, tmp + "/layer"));
  RETURN_IF_ERROR(env_.WriteFileAtomic(tmp + "/step.json", info.Dump(2) + "\n"));
  if (::rename(tmp.c_str(), entry.c_str()) != 0) {
    int err = errno;
    if ((err == ENOTEMPTY || err == EEXIST) && Lookup(key)) {
      // Someone else committed the same step first; theirs is equivalent.
      RETURN_IF_ERROR(env_.RemoveAll(tmp));
      return entry + "/layer";
    }
    (void)env_.RemoveAll(tmp);
    return ErrnoError("publish cache entry " + entry, err);
  }
  return entry + "/layer";
}

StatusOr<std::vector<CacheEntryInfo>> StepCache::List() {
  std::vector<CacheEntryInfo> out;
  if (!env_.IsDirectory(dir_)) return out;
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(dir_));
  for (const std::string& n : names) {
    if (n.empty() || n[0] == '.') continue;
    struct stat st {};
    if (::stat((dir_ + "/" + n + "/step.json").c_str(), &st) != 0) continue;
    out.push_back({n, TreeDiskUsage(dir_ + "/" + n),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.last_used_us < b.last_used_us; });
  return out;
}

StatusOr<std::vector<CacheEntryInfo>> StepCache::Prune(uint64_t max_bytes,
                                                       const std::vector<std::string>& keep) {
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> entries, List());
  uint64_t total = 0;
  for (const auto& e : entries) total += e.bytes;
  std::vector<CacheEntryInfo> removed;
  for (const auto& e : entries) {
    if (total <= max_bytes) break;
    if (std::find(keep.begin(), keep.end(), e.key) != keep.end()) continue;
    // Rename first so a concurrent Lookup never sees a half-deleted layer.
    std::string doomed = dir_ + "/.prune-" + e.key;
    RETURN_IF_ERROR(env_.Rename(dir_ + "/" + e.key, doomed));
    RETURN_IF_ERROR(env_.RemoveAll(doomed));
    total -= e.bytes;
    removed.push_back(e);
  }
  return removed;
}

}  // namespace imagesmith::build
