// Helpers shared by the store's tests: temp dirs and a small real tree with
// every kind of entry the store must round-trip. Test-only.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/env.h"

namespace imagesmith::store::testing {

inline std::string TempDir() {
  std::string t = "/tmp/store_test.XXXXXX";
  if (mkdtemp(t.data()) == nullptr) abort();
  return t;
}

inline void WriteFile(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) abort();
  close(fd);
}

inline void SetMtime(const std::string& path, time_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

// A tree with regular, empty, large (chunked) and setuid files, a file with
// a capability xattr, owners, a hard link, a symlink, a fifo, a device and
// nested directories. `salt` varies one file's content.
inline void MakeTree(const std::string& root, const std::string& salt = "") {
  mkdir(root.c_str(), 0755);
  mkdir((root + "/etc").c_str(), 0755);
  mkdir((root + "/usr").c_str(), 0755);
  mkdir((root + "/usr/bin").c_str(), 0755);
  mkdir((root + "/dev").c_str(), 0755);
  WriteFile(root + "/etc/hostname", "imagesmith\n" + salt);
  WriteFile(root + "/etc/empty", "");
  std::string big;
  for (int i = 0; i < (9 << 20) / 16; ++i)
    big += "0123456789abcde" + std::string(1, static_cast<char>('a' + i % 26));
  WriteFile(root + "/usr/bin/big", big);
  WriteFile(root + "/usr/bin/ping", "ELF-ish ping");
  const char cap[] =
      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
  setxattr((root + "/usr/bin/ping").c_str(), "security.capability", cap, sizeof(cap) - 1, 0);
  setxattr((root + "/etc/hostname").c_str(), "user.note", "hello", 5, 0);
  WriteFile(root + "/usr/bin/su", "setuid");
  chown((root + "/usr/bin/su").c_str(), 0, 0);
  chmod((root + "/usr/bin/su").c_str(), 04755);
  WriteFile(root + "/etc/owned", "owned");
  chown((root + "/etc/owned").c_str(), 1234, 5678);
  link((root + "/usr/bin/ping").c_str(), (root + "/usr/bin/ping6").c_str());
  symlink("../etc/hostname", (root + "/usr/hostname-link").c_str());
  mkfifo((root + "/dev/fifo").c_str(), 0640);
  mknod((root + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3));
  for (const char* p : {"/etc", "/usr", "/dev", "/etc/empty", "/usr/bin/big", "/usr/bin/ping",
                        "/usr/bin/su", "/etc/owned", "/dev/fifo", "/dev/null"}) {
    SetMtime(root + p, 1500000000, 0);
  }
  SetMtime(root + "/usr/hostname-link", 1600000000, 5);
  SetMtime(root + "/etc/hostname", 1600000001, 123456789);
  SetMtime(root + "/usr/bin", 1600000002, 42);
  SetMtime(root, 1600000003, 7);
}

}  // namespace imagesmith::store::testing
