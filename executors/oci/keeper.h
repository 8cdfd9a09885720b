// Keeper: one small process per sandbox that owns the container's life on the host. It is a
// static program of its own (keeper_main.cc, embedded like boxcar-init and written once per
// executor), so a long-lived keeper pins nothing of the agent's memory. It runs
// `runtime run --detach`, then reports like native's first child on the control channel
// (Msg::unshared with init's pid, or Msg::failed with the runtime's own words), becomes the
// reaper of the container's init (a child subreaper), and waits until the agent lets go of the
// sandbox: the agent closes its end of the keeper's pipe on destroy, or dies. Then it tears the
// container down (`runtime delete --force`, unmounts, removes the bundle), so the agent's
// io_context never waits for runc, and a dead agent's sandboxes go too.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::oci {

// The keeper program's fds: the container's control channel, and the pipe whose end means
// "tear down". Its arguments: RUNTIME RUNTIME_ROOT BUNDLE ID [UNMOUNT...].
constexpr int kKeeperControlFd = 3;
constexpr int kKeeperLifeFd = 4;

struct KeeperConfig {
  std::string program;       // the keeper program (write_keeper_program)
  std::string runtime;       // the runtime binary
  std::string runtime_root;  // its --root: this executor's own container state
  std::string bundle;        // the bundle directory (config.json)
  std::string id;            // the container id
  std::vector<std::string> unmount;  // host mounts made for the sandbox, unmounted at teardown
  int ctl = -1;              // init's end of the control channel: fd 3 of the container
};

struct Keeper {
  pid_t pid = -1;
  unique_fd pidfd;  // the keeper, the agent's child: reaped by SandboxState as its first child
  unique_fd life;   // closing it starts the teardown
};

// The keeper program (embedded at build time) as a read-only executable at `path`.
Status write_keeper_program(const std::filesystem::path& path);

// Forks and execs the keeper and returns at once. `ctl` stays open in the caller (close it).
Result<Keeper> spawn_keeper(const KeeperConfig& config);

// Synchronously: `runtime --root R delete --force ID` for each container in R, unmounts
// what is mounted below `dir`, and removes `dir` without entering any mount that is left. For what a dead agent left (its keepers
// killed too); a live keeper does the same for its own sandbox.
void remove_leftovers(const std::string& runtime, const std::string& runtime_root, const std::string& dir);

}  // namespace boxcar::executors::oci
