#include "store/store_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace imagesmith::store {

const char* FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kCreate:
      return "create";
    case FsOp::kWrite:
      return "write";
    case FsOp::kSync:
      return "fdatasync";
    case FsOp::kRename:
      return "rename";
    case FsOp::kSyncFs:
      return "syncfs";
    case FsOp::kSyncDir:
      return "fsync(dir)";
    case FsOp::kTouch:
      return "utimensat";
    case FsOp::kLink:
      return "link";
    case FsOp::kUnlink:
      return "unlink";
  }
  return "?";
}

namespace {

class PosixStoreFs final : public StoreFs {
 public:
  StatusOr<int> Create(const std::string& path, int mode) override {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return ErrnoError("creating " + path, errno);
    return fd;
  }
  StatusOr<size_t> Write(int fd, std::string_view data, const std::string& path) override {
    while (true) {
      ssize_t n = write(fd, data.data(), data.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError("writing " + path, errno);
    }
  }
  Status Sync(int fd, const std::string& path) override {
    if (fdatasync(fd) != 0) return ErrnoError("syncing " + path, errno);
    return Status::Ok();
  }
  void Close(int fd) override { close(fd); }
  Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoError("renaming " + from + " to " + to, errno);
    }
    return Status::Ok();
  }
  Status SyncFs(const std::string& dir) override {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("opening " + dir, errno);
    int r = syncfs(fd);
    int err = errno;
    close(fd);
    if (r != 0) return ErrnoError("syncing the file system of " + dir, err);
    return Status::Ok();
  }
  Status SyncDir(const std::string& dir) override {
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("opening " + dir, errno);
    int r = fsync(fd);
    int err = errno;
    close(fd);
    if (r != 0) return ErrnoError("syncing " + dir, err);
    return Status::Ok();
  }
  Status Touch(const std::string& path) override {
    if (utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) {
      return ErrnoError("touching " + path, errno);
    }
    return Status::Ok();
  }
  Status Link(const std::string& from, const std::string& to) override {
    if (link(from.c_str(), to.c_str()) != 0) {
      return ErrnoError("linking " + from + " to " + to, errno);
    }
    return Status::Ok();
  }
  Status Unlink(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return ErrnoError("removing " + path, errno);
    return Status::Ok();
  }
};

}  // namespace

StoreFs& StoreFs::Default() {
  static PosixStoreFs* fs = new PosixStoreFs();
  return *fs;
}

Status WriteAll(StoreFs& fs, int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ASSIGN_OR_RETURN(size_t n, fs.Write(fd, data, path));
    if (n == 0) return ErrnoError("writing " + path, ENOSPC);  // no progress: treat as full
    data.remove_prefix(n);
  }
  return Status::Ok();
}

// ---- FaultInjectionFs -----------------------------------------------------

void FaultInjectionFs::Arm(const Fault& fault) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : counts_) c = 0;
  fault_ = fault;
  armed_ = true;
  enospc_next_write_ = false;
  fired_ = false;
}

void FaultInjectionFs::Disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : counts_) c = 0;
  armed_ = false;
  enospc_next_write_ = false;
  fired_ = false;
}

uint64_t FaultInjectionFs::Count(FsOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[static_cast<int>(op)];
}

int FaultInjectionFs::Hit(FsOp op, bool* short_write) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = ++counts_[static_cast<int>(op)];
  if (op == FsOp::kWrite && enospc_next_write_) {
    enospc_next_write_ = false;
    return ENOSPC;
  }
  if (!armed_ || op != fault_.op || n != fault_.nth) return 0;
  armed_ = false;
  fired_ = true;
  if (fault_.short_write && op == FsOp::kWrite) {
    *short_write = true;
    enospc_next_write_ = true;
    return 0;
  }
  return fault_.err;
}

StatusOr<int> FaultInjectionFs::Create(const std::string& path, int mode) {
  bool sw = false;
  if (int err = Hit(FsOp::kCreate, &sw)) return ErrnoError("creating " + path, err);
  return base_.Create(path, mode);
}

StatusOr<size_t> FaultInjectionFs::Write(int fd, std::string_view data, const std::string& path) {
  bool short_write = false;
  if (int err = Hit(FsOp::kWrite, &short_write)) return ErrnoError("writing " + path, err);
  if (short_write && data.size() > 1) data = data.substr(0, data.size() / 2);
  return base_.Write(fd, data, path);
}

Status FaultInjectionFs::Sync(int fd, const std::string& path) {
  bool sw = false;
  if (int err = Hit(FsOp::kSync, &sw)) return ErrnoError("syncing " + path, err);
  return base_.Sync(fd, path);
}

Status FaultInjectionFs::Rename(const std::string& from, const std::string& to) {
  bool sw = false;
  if (int err = Hit(FsOp::kRename, &sw)) {
    return ErrnoError("renaming " + from + " to " + to, err);
  }
  return base_.Rename(from, to);
}

Status FaultInjectionFs::SyncFs(const std::string& dir) {
  bool sw = false;
  if (int err = Hit(FsOp::kSyncFs, &sw)) {
    return ErrnoError("syncing the file system of " + dir, err);
  }
  return base_.SyncFs(dir);
}

Status FaultInjectionFs::SyncDir(const std::string& dir) {
  bool sw = false;
  if (int err = Hit(FsOp::kSyncDir, &sw)) return ErrnoError("syncing " + dir, err);
  return base_.SyncDir(dir);
}

Status FaultInjectionFs::Touch(const std::string& path) {
  bool sw = false;
  if (int err = Hit(FsOp::kTouch, &sw)) return ErrnoError("touching " + path, err);
  return base_.Touch(path);
}

Status FaultInjectionFs::Link(const std::string& from, const std::string& to) {
  bool sw = false;
  if (int err = Hit(FsOp::kLink, &sw)) return ErrnoError("linking " + from + " to " + to, err);
  return base_.Link(from, to);
}

Status FaultInjectionFs::Unlink(const std::string& path) {
  bool sw = false;
  if (int err = Hit(FsOp::kUnlink, &sw)) return ErrnoError("removing " + path, err);
  return base_.Unlink(path);
}

}  // namespace imagesmith::store
