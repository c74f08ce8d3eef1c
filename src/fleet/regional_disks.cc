#include "fleet/regional_disks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/sha256.h"
#include "base/strings.h"

namespace imagesmith::fleet {
namespace {

// An exclusive flock on `path`, released when the object goes.
class FileLock {
 public:
  static StatusOr<FileLock> Take(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError("open " + path, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd);
        return ErrnoError("flock " + path, err);
      }
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Status CheckUser(const std::string& user) {
  bool ok = !user.empty() && user.size() <= 128 && user != "." && user != "..";
  for (char c : user) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return InvalidArgumentError("regional disk user " + QuoteForMessage(user) +
                                " must be 1-128 characters of [A-Za-z0-9_.-]");
  }
  return Status::Ok();
}

}  // namespace

RegionalDisks::RegionalDisks(Env& env, const std::string& state_dir)
    : env_(env), root_(JoinPath(state_dir, "disks")) {}

std::string RegionalDisks::DirFor(const std::string& image_id, const std::string& region) const {
  std::string key = Sha256Of(AsciiToLower(image_id) + "\n" + AsciiToLower(region)).ToHex();
  return JoinPath(root_, key.substr(0, 16));
}

StatusOr<std::string> RegionalDisks::Acquire(const std::string& image_id, const std::string& region,
                                             const std::string& user,
                                             const Materialize& materialize) {
  RETURN_IF_ERROR(CheckUser(user));
  std::string dir = DirFor(image_id, region);
  RETURN_IF_ERROR(env_.CreateDirs(root_));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(dir + ".lock"));
  std::string disk = dir + "/disk.raw";
  bool made = false;
  if (!env_.FileExists(disk)) {
    // A directory without a disk is what an interrupted Acquire leaves.
    RETURN_IF_ERROR(env_.RemoveAll(dir));
    RETURN_IF_ERROR(env_.CreateDirs(dir + "/users"));
    std::string tmp = dir + "/disk.raw.tmp";
    // The source is written first, so that every disk has one (HeldBy).
    Status s = env_.WriteFileAtomic(dir + "/source", image_id + "\n" + region + "\n");
    if (s.ok()) s = materialize(tmp);
    if (s.ok()) s = env_.Rename(tmp, disk);
    if (!s.ok()) {
      (void)env_.RemoveAll(dir);
      return s.WithContext("making the regional disk of " + image_id + " in " + region);
    }
    made = true;
  }
  Status s = env_.WriteFileAtomic(dir + "/users/" + user, "");
  if (!s.ok()) {
    if (made) (void)env_.RemoveAll(dir);
    return s;
  }
  return disk;
}

Status RegionalDisks::Release(const std::string& image_id, const std::string& region,
                              const std::string& user) {
  RETURN_IF_ERROR(CheckUser(user));
  std::string dir = DirFor(image_id, region);
  if (!env_.IsDirectory(dir)) return Status::Ok();
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(dir + ".lock"));
  RETURN_IF_ERROR(env_.RemoveAll(dir + "/users/" + user));
  StatusOr<std::vector<std::string>> left = env_.ListDir(dir + "/users");
  if (!left.ok() || left->empty()) {
    RETURN_IF_ERROR(env_.RemoveAll(dir));
    // The lock file stays (removing it under the lock would race a waiter).
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> RegionalDisks::Users(const std::string& image_id,
                                                        const std::string& region) {
  std::string users = DirFor(image_id, region) + "/users";
  if (!env_.IsDirectory(users)) return std::vector<std::string>();
  return env_.ListDir(users);
}

StatusOr<std::vector<RegionalDisks::Held>> RegionalDisks::HeldBy(const std::string& user) {
  RETURN_IF_ERROR(CheckUser(user));
  std::vector<Held> out;
  if (!env_.IsDirectory(root_)) return out;
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_.ListDir(root_));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string dir = JoinPath(root_, name);
    if (EndsWith(name, ".lock") || !env_.FileExists(dir + "/users/" + user)) continue;
    StatusOr<std::string> source = env_.ReadFile(dir + "/source", 4096);
    if (!source.ok()) continue;  // being made or removed right now
    std::vector<std::string> lines = Split(*source, '\n');
    if (lines.size() < 2 || lines[0].empty() || lines[1].empty()) continue;
    out.push_back(Held{lines[0], lines[1]});
  }
  return out;
}

}  // namespace imagesmith::fleet
