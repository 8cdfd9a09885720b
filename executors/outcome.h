// Outcome: how a command in a sandbox ended. A value, not an error: a failed step is a result.
#pragma once

#include <string>

namespace boxcar::executors {

struct Outcome {
  // quota_exceeded: the sandbox API stopped it because its sandbox's /workspace went past its
  // disk quota (sandboxes/disk_quota.h); no executor reports it.
  enum class Kind { ok, failed, timeout, oom, signaled, cancelled, setup_error, quota_exceeded };

  Kind kind = Kind::ok;
  int exit_code = 0;     // failed: the exit status (1-255)
  int signal = 0;        // signaled: the signal number
  std::string facility;  // setup_error: which facility failed ("mount /proc", "cgroup memory")
  int err = 0;           // setup_error: errno
  std::string message;   // setup_error and others: a sentence for the user

  static Outcome exited(int status) {
    return status == 0 ? Outcome{} : Outcome{Kind::failed, status, 0, {}, 0, {}};
  }
  static Outcome killed_by(int sig) { return Outcome{Kind::signaled, 0, sig, {}, 0, {}}; }
  static Outcome setup(std::string facility, int err, std::string message) {
    return Outcome{Kind::setup_error, 0, 0, std::move(facility), err, std::move(message)};
  }
  static Outcome of(Kind k) { return Outcome{k, 0, 0, {}, 0, {}}; }

  bool ok() const { return kind == Kind::ok; }
};

const char* to_string(Outcome::Kind k);
// One line for summaries: "exit code 2", "killed by SIGKILL", "timed out",
// "setup failed: mount /proc: Permission denied".
std::string describe(const Outcome& o);

}  // namespace boxcar::executors
