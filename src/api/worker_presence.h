// Worker presence: a long-running operation worker (`imagesmith serve` with
// workers, `imagesmith internal worker` without --exit-when-idle) announces
// itself on the data directory, so a command that queues work (--no-wait)
// knows whether a worker will claim it or it must start one.
//
// Each worker holds an exclusive flock(2) on DATA/workers/<pid>.lock (the
// file holds its worker ID) for as long as it runs; the kernel drops the lock
// when the process dies, however it dies, so a lock that can be taken is a
// dead worker's (its file is removed). Presence is per host: a worker on
// another host sharing the database is not seen (the queued operation still
// waits for it, or for the detached worker a command starts).
//
// Thread-safety: Announce and LiveWorkers may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/statusor.h"

namespace imagesmith::api {

class WorkerPresence {
 public:
  // Creates and locks DATA/workers/<pid>.lock with `worker_id` in it.
  // Unavailable naming the file when it cannot.
  static StatusOr<std::unique_ptr<WorkerPresence>> Announce(const std::string& data_dir,
                                                            const std::string& worker_id);
  // Unlocks and removes the file: the worker no longer takes new work.
  ~WorkerPresence();
  WorkerPresence(const WorkerPresence&) = delete;
  WorkerPresence& operator=(const WorkerPresence&) = delete;

 private:
  WorkerPresence(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// The worker IDs of the workers announced on `data_dir` that are alive;
// removes the files of dead ones. Empty when there is none (or no
// DATA/workers directory).
std::vector<std::string> LiveWorkers(const std::string& data_dir);

}  // namespace imagesmith::api
