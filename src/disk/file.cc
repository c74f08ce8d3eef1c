// PosixFile and MemFile.
#include "disk/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace imagesmith::disk {

Status File::ReadExactAt(uint64_t offset, size_t len, char* buf, std::string_view what) {
  ASSIGN_OR_RETURN(size_t got, ReadAt(offset, len, buf));
  if (got != len) {
    ASSIGN_OR_RETURN(uint64_t size, Size());
    return DataLossError(name() + ": truncated: " + std::string(what) + " at offset " +
                         std::to_string(offset) + " needs " + std::to_string(len) +
                         " bytes, the file has " + std::to_string(size));
  }
  return Status::Ok();
}

namespace {

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  const std::string& name() const override { return path_; }
  int fd() const { return fd_; }

  StatusOr<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoError("stat " + path_, errno);
    if (S_ISBLK(st.st_mode)) {
      off_t end = ::lseek(fd_, 0, SEEK_END);
      if (end < 0) return ErrnoError("seek " + path_, errno);
      return static_cast<uint64_t>(end);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  StatusOr<size_t> ReadAt(uint64_t offset, size_t len, char* buf) override {
    if (offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) return size_t{0};
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pread(fd_, buf + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("read " + path_ + " at offset " + std::to_string(offset + done),
                          errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status WriteAt(uint64_t offset, const char* buf, size_t len) override {
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pwrite(fd_, buf + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write " + path_ + " at offset " + std::to_string(offset + done),
                          errno);
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoError("truncate " + path_ + " to " + std::to_string(size), errno);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("sync " + path_, errno);
    return Status::Ok();
  }

  StatusOr<uint64_t> AllocatedBytes() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoError("stat " + path_, errno);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }

  StatusOr<uint64_t> NextData(uint64_t offset) override { return Seek(offset, SEEK_DATA); }
  StatusOr<uint64_t> NextHole(uint64_t offset) override { return Seek(offset, SEEK_HOLE); }

 private:
  StatusOr<uint64_t> Seek(uint64_t offset, int whence) {
    ASSIGN_OR_RETURN(uint64_t size, Size());
    if (offset >= size) return size;
    off_t r = ::lseek(fd_, static_cast<off_t>(offset), whence);
    if (r < 0) {
      // ENXIO: no data after offset. EINVAL/ENOTSUP: no hole support, so
      // everything is data.
      if (errno == ENXIO) return size;
      if (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP) {
        return whence == SEEK_DATA ? offset : size;
      }
      return ErrnoError("seek in " + path_, errno);
    }
    return std::min<uint64_t>(static_cast<uint64_t>(r), size);
  }

  std::string path_;
  int fd_;
};

}  // namespace

StatusOr<std::unique_ptr<File>> OpenFileForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  return std::unique_ptr<File>(new PosixFile(path, fd));
}

StatusOr<std::unique_ptr<File>> CreateFileForWrite(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + path, errno);
  return std::unique_ptr<File>(new PosixFile(path, fd));
}

int NativeFd(File& file) {
  auto* p = dynamic_cast<PosixFile*>(&file);
  return p == nullptr ? -1 : p->fd();
}

StatusOr<size_t> MemFile::ReadAt(uint64_t offset, size_t len, char* buf) {
  if (offset >= data_.size()) return size_t{0};
  size_t n = static_cast<size_t>(std::min<uint64_t>(len, data_.size() - offset));
  std::memcpy(buf, data_.data() + offset, n);
  return n;
}

Status MemFile::WriteAt(uint64_t offset, const char* buf, size_t len) {
  if (offset + len > (uint64_t{1} << 32)) {
    return ResourceExhaustedError("in-memory file would exceed 4 GiB");
  }
  if (offset + len > data_.size()) data_.resize(offset + len);
  std::memcpy(data_.data() + offset, buf, len);
  return Status::Ok();
}

Status MemFile::Truncate(uint64_t size) {
  if (size > (uint64_t{1} << 32)) return ResourceExhaustedError("in-memory file would exceed 4 GiB");
  data_.resize(size);
  return Status::Ok();
}

StatusOr<uint64_t> MemFile::NextData(uint64_t offset) {
  return std::min<uint64_t>(offset, data_.size());
}
StatusOr<uint64_t> MemFile::NextHole(uint64_t) { return data_.size(); }

}  // namespace imagesmith::disk
