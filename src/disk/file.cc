// PosixFile and MemFile.
#include "disk/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>

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
  PosixFile(std::string path, int fd, uint64_t write_behind_bytes = 0)
      : path_(std::move(path)), fd_(fd), write_behind_bytes_(write_behind_bytes) {
    if (write_behind_bytes_ != 0) flusher_ = std::thread([this] { Flusher(); });
  }
  ~PosixFile() override {
    if (flusher_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(write_behind_mu_);
        stop_ = true;
      }
      write_behind_cv_.notify_one();
      flusher_.join();
    }
    ::close(fd_);
  }
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
        return ErrnoError("read " + path_ + " at offset " + std::to_string(offset + done), errno);
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
        return ErrnoError("write " + path_ + " at offset " + std::to_string(offset + done), errno);
      }
      done += static_cast<size_t>(n);
    }
    if (write_behind_bytes_ != 0 && len != 0) WriteBehind(offset, len);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoError("truncate " + path_ + " to " + std::to_string(size), errno);
    }
    return Status::Ok();
  }

  bool ConcurrentWriteSafe() const override { return true; }

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
  // Notes [offset, offset + len) as written and, once write_behind_bytes_
  // have piled up, hands the range covering them to the flusher thread.
  // Writers mostly append, so the range stays tight; an occasional write far
  // back (a table rewritten at the end) only widens it, and sync_file_range
  // skips clean pages.
  void WriteBehind(uint64_t offset, size_t len) {
    {
      std::lock_guard<std::mutex> lock(write_behind_mu_);
      Widen(&pending_lo_, &pending_hi_, pending_bytes_ != 0, offset, offset + len);
      pending_bytes_ += len;
      if (pending_bytes_ < write_behind_bytes_) return;
      Widen(&ready_lo_, &ready_hi_, ready_, pending_lo_, pending_hi_);
      ready_ = true;
      pending_bytes_ = 0;
    }
    write_behind_cv_.notify_one();
  }

  static void Widen(uint64_t* lo, uint64_t* hi, bool nonempty, uint64_t a, uint64_t b) {
    *lo = nonempty ? std::min(*lo, a) : a;
    *hi = nonempty ? std::max(*hi, b) : b;
  }

  // Starts writeback of each ready range. sync_file_range(WRITE) does not
  // wait for the I/O, but it does allocate blocks and submit the requests
  // itself, which takes 5-30 ms per 64 MiB on the bench machine; on this
  // thread that work overlaps the writers instead of stalling them. Errors
  // are ignored: this is only a hint, and a real I/O error shows up again at
  // Sync() or close.
  void Flusher() {
    std::unique_lock<std::mutex> lock(write_behind_mu_);
    while (true) {
      write_behind_cv_.wait(lock, [this] { return stop_ || ready_; });
      if (stop_) return;
      const uint64_t lo = ready_lo_, hi = ready_hi_;
      ready_ = false;
      lock.unlock();
      ::sync_file_range(fd_, static_cast<off_t>(lo), static_cast<off_t>(hi - lo),
                        SYNC_FILE_RANGE_WRITE);
      lock.lock();
    }
  }

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
  const uint64_t write_behind_bytes_;  // 0: off (and no flusher thread)
  std::mutex write_behind_mu_;         // guards the fields below
  std::condition_variable write_behind_cv_;
  uint64_t pending_bytes_ = 0;  // written since a range was last handed over
  uint64_t pending_lo_ = 0;     // the range those bytes lie in
  uint64_t pending_hi_ = 0;
  bool ready_ = false;  // a range waits for the flusher
  uint64_t ready_lo_ = 0;
  uint64_t ready_hi_ = 0;
  bool stop_ = false;
  std::thread flusher_;  // owned; joined by the destructor
};

}  // namespace

StatusOr<std::unique_ptr<File>> OpenFileForRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  return std::unique_ptr<File>(new PosixFile(path, fd));
}

StatusOr<std::unique_ptr<File>> CreateFileForWrite(const std::string& path,
                                                   const WriteFileOptions& options) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create " + path, errno);
  return std::unique_ptr<File>(new PosixFile(path, fd, options.write_behind_bytes));
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
  if (size > (uint64_t{1} << 32))
    return ResourceExhaustedError("in-memory file would exceed 4 GiB");
  data_.resize(size);
  return Status::Ok();
}

StatusOr<uint64_t> MemFile::NextData(uint64_t offset) {
  return std::min<uint64_t>(offset, data_.size());
}
StatusOr<uint64_t> MemFile::NextHole(uint64_t) { return data_.size(); }

}  // namespace imagesmith::disk
