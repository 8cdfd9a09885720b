// spawn: starts one command as a new session with exactly the argv, environment, working
// directory and file descriptors it is given, optionally inside a cgroup v2 directory.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::host {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] without '/' is looked up in the PATH of `env`
  std::vector<std::string> env;   // the whole environment
  std::string cwd;                // the working directory (absolute)
  int cgroup_fd = -1;             // a cgroup v2 directory to start in; -1: the caller's
};

struct Child {
  pid_t pid = -1;
  unique_fd pidfd;  // readable once the child exited; reap with waitid(P_PIDFD)
  unique_fd out;    // read ends of the child's stdout and stderr (O_NONBLOCK, O_CLOEXEC)
  unique_fd err;
};

// Starts the command with stdin = /dev/null, stdout and stderr = two fresh pipes, no other
// descriptor, default signal dispositions and an empty signal mask, as leader of its own
// session. Blocks until the child has exec'd (or failed to), which is microseconds.
//
// An error means nothing runs: the child could not be created or set up (the message names
// the step that failed). A program that cannot be found or executed is not an error: the
// child writes `boxcar: cannot run "foo": No such file or directory` to its stderr and
// exits 127 (not found) or 126 (found, not executable), as a shell does.
Result<Child> spawn(const SpawnRequest& request);

}  // namespace boxcar::executors::host
