#include "cli/queued_work.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "api/worker_presence.h"
#include "base/env.h"

namespace imagesmith::cli {
namespace {

// Starts a worker process that runs queued operations and exits when none
// is left, detached from this one (its own session, output to a log in the
// data directory), so --no-wait work happens without a server.
Status StartDetachedWorker(const std::string& data_dir) {
  ASSIGN_OR_RETURN(std::string self, SelfExePath());
  std::string log = data_dir + "/worker.log";
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("starting a worker process", errno);
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the grandchild is reparented: no zombie, no wait
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 0);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(self.c_str(), self.c_str(), "internal", "worker", "--exit-when-idle",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  (void)::waitpid(pid, &status, 0);
  return Status::Ok();
}

}  // namespace

Status HandOffQueued(CommandContext& ctx, const std::string& data_dir,
                     const std::string& operation_id) {
  std::vector<std::string> live = api::LiveWorkers(data_dir);
  if (!live.empty()) {
    *ctx.err << "imagesmith: operation " << operation_id << " is queued; the running worker "
             << live.front() << " will run it (follow it with 'imagesmith operation wait --id "
             << operation_id << "')\n";
    return Status::Ok();
  }
  return StartDetachedWorker(data_dir);
}

}  // namespace imagesmith::cli
