#include "vm/socket_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>

namespace imagesmith::vm {

StatusOr<std::unique_ptr<SocketDir>> SocketDir::Make(Env& env) {
  std::string base = "/tmp";
  // $TMPDIR is honoured only while it keeps the path short: the point of
  // this directory is its length.
  if (const char* t = std::getenv("TMPDIR");
      t != nullptr && t[0] == '/' && std::strlen(t) <= kMaxBaseLength) {
    base = t;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
  }
  std::string templ = (base == "/" ? "" : base) + "/imagesmith-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    int e = errno;
    return UnavailableError("cannot make a private directory for the VM's sockets in " + base +
                            ": " + std::strerror(e));
  }
  return std::unique_ptr<SocketDir>(new SocketDir(env, templ));
}

SocketDir::~SocketDir() { (void)env_.RemoveAll(dir_); }

std::string SocketDir::Path(std::string_view name) const { return dir_ + "/" + std::string(name); }

}  // namespace imagesmith::vm
