// A short private directory for unix sockets, so a socket's path fits in
// sockaddr_un.sun_path (108 bytes, 107 usable) whatever directory the caller
// works in. A data directory can be anywhere ($IMAGESMITH_HOME of any
// length); the sockets that qemu binds and imagesmith connects to live here
// instead, at about 35 bytes: $TMPDIR (when it is short) or /tmp, then
// "imagesmith-XXXXXX" (mkdtemp, mode 0700, so only the owner can reach the
// sockets in it), then the socket's own short name.
//
// Not thread-safe; one owner. The directory is removed, with whatever is
// in it, when the object is destroyed.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/statusor.h"

namespace imagesmith::vm {

class SocketDir {
 public:
  // Longest base directory taken from $TMPDIR; a longer one is ignored in
  // favour of /tmp, so a path from Path() stays far below the limit.
  static constexpr size_t kMaxBaseLength = 48;

  // Makes the directory. Fails with the errno text (Unavailable) when it
  // cannot be made.
  static StatusOr<std::unique_ptr<SocketDir>> Make(Env& env);
  ~SocketDir();
  SocketDir(const SocketDir&) = delete;
  SocketDir& operator=(const SocketDir&) = delete;

  const std::string& dir() const { return dir_; }
  // The path of a socket called `name` in the directory; `name` should be a
  // few letters ("agent.sock").
  std::string Path(std::string_view name) const;

 private:
  SocketDir(Env& env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  Env& env_;
  std::string dir_;
};

}  // namespace imagesmith::vm
