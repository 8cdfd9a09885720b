// The host executor: steps run as plain processes of the agent's machine, with no isolation.
// For trusted machines only (Executor::isolated() is false; callers warn about it).
//
// What it does give a step: exactly its own environment, the workspace as working directory,
// stdin from /dev/null, only fds 0-2, its own session; and a process tree that is tracked
// (a cgroup v2 directory per command under <cgroup2>/boxcar.host/, or an environment cookie
// where cgroup v2 is not writable) so that nothing a step started survives it: when a
// command's main process exits, whatever it left running is killed, as CI runners do.
// Resource limits, network modes and images other than "host" are not supported, and
// ExecRequest::user is ignored: every command runs as the agent's own user.
#pragma once

#include <memory>

#include "executors/executor.h"

namespace boost::asio {
class io_context;
}

namespace boxcar::executors {

struct HostOptions {
  // Track process trees with cgroup v2 when it is writable. false: always use the environment
  // cookie and process groups, as an agent without cgroup access does (for tests).
  bool cgroups = true;
};

// All callbacks of the executor's jobs and sandboxes run on `io`, which must outlive them.
std::unique_ptr<Executor> make_host_executor(boost::asio::io_context& io);
std::unique_ptr<Executor> make_host_executor(boost::asio::io_context& io, HostOptions options);

}  // namespace boxcar::executors
