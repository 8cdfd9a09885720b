// contain: creating one sandbox, as one ordered list of facilities (like nsjail's contain.cc).
// The agent forks a first child (host root) that joins the job's network and clones pid 1
// into new namespaces, as the agent's child (CLONE_PARENT). Still privileged outside them,
// the first child writes pid 1's id maps and cgroups, releases it, reports its pid and
// exits; pid 1 builds the filesystem, loads the seccomp filter and execs boxcar-init (see
// init.h), which replaces the copy of the agent it was until then. Nothing in the agent
// waits: it only reads the control channel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/caps.h"
#include "executors/native/cgroup.h"
#include "executors/native/layered_mounts.h"
#include "executors/native/seccomp_filter.h"
#include "executors/native/user_ns.h"
#include "executors/spec.h"

namespace boxcar::executors::native {

// What every command runs under: the seccomp filter (loaded before init's exec, inherited)
// and the capability set (dropped by init in each command before exec).
struct CommandPolicy {
  const CapSet* caps = nullptr;
  const SeccompProgram* seccomp = nullptr;
};

struct ContainConfig {
  std::string root_dir;      // the root template's mount point (see rootfs.h)
  // For an image (see image_root.h): the detached overlay mount, made ready by the agent, and
  // the empty directory pid 1 attaches it on; -1 for "host".
  int image_fd = -1;
  std::string image_mount_point;
  int workspace_fd = -1;     // the detached, idmapped workspace mount
  // The step's layered directories (layered_mounts.h); one of them may be /workspace, which
  // then takes the place of workspace_fd.
  const std::vector<LayeredMount>* layered = nullptr;
  bool layered_workspace = false;
  // A sandbox prepared ahead for a step with layered directories: pid 1 sets up everything
  // but /workspace, then waits on the control channel for the step that takes it (its layered
  // directories and hostname, layered_mounts.h receive_layered) and finishes the setup with
  // them; `layered`, `layered_workspace` and `hostname` are unused.
  bool deferred = false;
  // For "host": a detached read-only bind of the job's resolv.conf to put over /etc/resolv.conf
  // (resolv_conf.h); -1 for the root's own. An image's is written into its /etc instead.
  int resolv_fd = -1;
  int netns_fd = -1;         // the job's network namespace (network = job)
  NetworkMode network = NetworkMode::job;
  uint64_t tmp_bytes = 1ull << 30;
  uint64_t shm_bytes = 64ull << 20;
  std::string hostname;
  IdRange ids;
  std::vector<std::string> cgroup_procs;  // cgroup.procs files to put pid 1 in
  CommandPolicy policy;
  int init_fd = -1;          // boxcar-init's sealed memfd (see init_executable.h)
};

struct Spawned {
  pid_t first_pid = -1;
  unique_fd first_pidfd;  // the first child, to reap once it exits (right after Msg::unshared)
  unique_fd ctl;          // the agent's end of the control channel
};

// Agent side: forks the first child and returns at once. Next on `ctl`: Msg::unshared with
// pid 1's pid, or Msg::failed {facility, errno}; then Msg::ready or Msg::failed from pid 1.
// Exec requests may be sent at once: pid 1 reads them once it is set up.
Result<Spawned> spawn_sandbox(const ContainConfig& config);

}  // namespace boxcar::executors::native
