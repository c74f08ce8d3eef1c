// Worker presence by flock(2) (see worker_presence.h). POSIX calls directly:
// the Env interface has no file locks, and a lock that the kernel drops at
// process death is the point.
#include "api/worker_presence.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace imagesmith::api {

StatusOr<std::unique_ptr<WorkerPresence>> WorkerPresence::Announce(const std::string& data_dir,
                                                                   const std::string& worker_id) {
  std::string dir = data_dir + "/workers";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return UnavailableError("creating " + dir + ": " + std::strerror(errno));
  }
  std::string path = dir + "/" + std::to_string(::getpid()) + ".lock";
  int fd = -1;
  // A reader (LiveWorkers) may take the lock between our open and flock and
  // remove the file as a dead worker's: then lock a new one.
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return UnavailableError("creating " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX) != 0) {
      int e = errno;
      ::close(fd);
      return UnavailableError("locking " + path + ": " + std::strerror(e));
    }
    struct stat held {
    }, named{};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
      break;
    }
    ::close(fd);
    fd = -1;
    if (attempt >= 10) return UnavailableError("locking " + path + ": it keeps being removed");
  }
  std::string text = worker_id + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return UnavailableError("writing " + path + ": " + std::strerror(e));
  }
  return std::unique_ptr<WorkerPresence>(new WorkerPresence(fd, std::move(path)));
}

WorkerPresence::~WorkerPresence() {
  // Unlink first: a reader that opens the file after this sees no file.
  ::unlink(path_.c_str());
  ::close(fd_);
}

std::vector<std::string> LiveWorkers(const std::string& data_dir) {
  std::vector<std::string> out;
  std::string dir = data_dir + "/workers";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".lock") continue;
    std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
      ::unlink(path.c_str());  // nobody holds it: a dead worker's
    } else {
      char buf[256];
      ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
      std::string id = n > 0 ? std::string(buf, static_cast<size_t>(n)) : name;
      while (!id.empty() && (id.back() == '\n' || id.back() == '\0')) id.pop_back();
      out.push_back(id);
    }
    ::close(fd);
  }
  ::closedir(d);
  return out;
}

}  // namespace imagesmith::api
