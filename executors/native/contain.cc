#include "executors/native/contain.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "executors/native/control_channel.h"
#include "executors/native/dev.h"
#include "executors/native/git_readonly.h"
#include "executors/native/image_root.h"
#include "executors/native/init_executable.h"
#include "executors/native/mounts.h"
#include "executors/native/network.h"
#include "executors/native/proc.h"
#include "executors/native/resolv_conf.h"
#include "executors/native/rootfs.h"
#include "executors/native/uts.h"

namespace boxcar::executors::native {

namespace {

constexpr int kChannelBuffer = 8 << 20;  // one exec request (argv + env) must fit a record

// The fork()ed child holds every fd the agent had; keep only `keep`.
void close_all_except(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > next) ::close_range(next, static_cast<unsigned>(fd) - 1, 0);
    next = static_cast<unsigned>(fd) + 1;
  }
  ::close_range(next, ~0U, 0);
}

Failure wait_until_mapped(int sync) {
  char c;
  if (::read(sync, &c, 1) != 1) ::_exit(1);  // the first child failed and reported it
  ::close(sync);
  return ok();
}

// The first child, still host root outside pid 1's namespaces: its id maps and cgroups.
Failure map_init(const ContainConfig& c, pid_t pid) {
  if (Status maps = write_id_maps(pid, c.ids); !maps) return fail("user namespace id maps", maps.error().err);
  for (const auto& procs : c.cgroup_procs) {
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    std::string value = std::to_string(pid);
    bool good = fd >= 0 && ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (!good) return fail("cgroup attach", err);
  }
  return ok();
}

// pid 1 of the new pid namespace, in the new user namespace; the order matters. Returns
// only on failure: the last step replaces this copy of the agent with boxcar-init.
Failure contain_init(const ContainConfig& c, int& ctl, int sync) {
  BOXCAR_TRY(wait_until_mapped(sync));  // uid_map, gid_map and cgroups are written
  BOXCAR_TRY(become_root());
  BOXCAR_TRY(enter_cgroup_namespace());
  BOXCAR_TRY(make_mounts_private("mount namespace"));
  const bool image = c.image_fd >= 0;
  const std::string& root = image ? c.image_mount_point : c.root_dir;
  if (image) {
    BOXCAR_TRY(enter_image_root(c.image_fd, root, c.root_dir, c.tmp_bytes));
  } else {
    BOXCAR_TRY(enter_root_template(c.root_dir, c.tmp_bytes));
  }
  BOXCAR_TRY(mount_proc(root));
  BOXCAR_TRY(mount_dev(root, c.shm_bytes));
  // Up to here nothing depends on the step. A prewarmed sandbox for a layered step waits
  // here: its layers are made when the step takes it, and nothing of the step runs before
  // they are mounted (the step's commands are queued behind them on the channel).
  std::vector<LayeredMount> handed;
  std::string hostname = c.hostname;
  const std::vector<LayeredMount>* layered = c.layered;
  bool layered_workspace = c.layered_workspace;
  if (c.deferred) {
    hostname.clear();
    BOXCAR_TRY(receive_layered(ctl, root, handed, hostname));
    layered = &handed;
    layered_workspace = false;
    for (const auto& m : handed) layered_workspace = layered_workspace || m.target == root + "/workspace";
  }
  if (layered_workspace && c.deferred) ::close(c.workspace_fd);  // the checkout stays out of reach
  if (!layered_workspace) BOXCAR_TRY(attach(c.workspace_fd, (root + "/workspace").c_str(), "workspace mount"));
  if (layered) BOXCAR_TRY(mount_layered(*layered));
  handed.clear();  // their overlays hold the layers now
  BOXCAR_TRY(make_git_read_only(root + "/workspace"));
  if (c.resolv_fd >= 0) BOXCAR_TRY(mount_resolv_conf(c.resolv_fd, root));
  BOXCAR_TRY(pivot_into(root));
  BOXCAR_TRY(set_hostname(hostname));
  if (c.network == NetworkMode::none) BOXCAR_TRY(loopback_up());
  int init_fd = c.init_fd;
  BOXCAR_TRY(init_descriptors(ctl, init_fd));
  // From here on init and every command it forks (filters are inherited) run under
  // no_new_privs and the filter; capabilities are dropped per command, before exec.
  BOXCAR_TRY(apply_seccomp(*c.policy.seccomp));
  // Last: nothing of the agent (memory, argv, environment) survives this exec.
  return exec_init(init_fd, c.policy.caps->mask());
}

[[noreturn]] void report_failure(int ctl, const Failure& f) {
  send_message(ctl, Writer(Msg::failed).str(f.facility).u64(static_cast<uint64_t>(f.err)).data());
  ::_exit(1);
}

[[noreturn]] void first_child(const ContainConfig& c, int ctl) {
  std::vector<int> keep{ctl, c.workspace_fd, c.netns_fd, c.init_fd, c.image_fd, c.resolv_fd};
  if (c.layered) {
    for (int fd : layered_fds(*c.layered)) keep.push_back(fd);
  }
  close_all_except(std::move(keep));
  if (Failure f = enter_job_network(c.network, c.netns_fd)) report_failure(ctl, f);
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) report_failure(ctl, fail("pipe"));
  // CLONE_PARENT: pid 1 becomes the agent's child, so the agent can reap it and this
  // process can exit at once. A raw clone: this process is single-threaded.
  unsigned long flags = CLONE_PARENT | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | SIGCHLD;
  if (c.network == NetworkMode::none) flags |= CLONE_NEWNET;
  long pid = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) report_failure(ctl, fail("clone namespaces"));
  if (pid == 0) {
    ::close(sync[1]);
    report_failure(ctl, contain_init(c, ctl, sync[0]));
  }
  ::close(sync[0]);
  // On failure pid 1 sees the pipe close and exits; the agent reaps it via Msg::unshared.
  Failure failed = map_init(c, static_cast<pid_t>(pid));
  if (!failed) (void)!::write(sync[1], "m", 1);
  send_message(ctl, Writer(Msg::unshared).u64(static_cast<uint64_t>(pid)).data());
  if (failed) report_failure(ctl, failed);
  ::_exit(0);
}

}  // namespace

Result<Spawned> spawn_sandbox(const ContainConfig& config) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) return Error{"control channel", errno};
  unique_fd ours(sp[0]), theirs(sp[1]);
  for (int fd : sp) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kChannelBuffer, sizeof kChannelBuffer);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kChannelBuffer, sizeof kChannelBuffer);
  }
  pid_t first = ::fork();
  if (first < 0) return Error{"fork", errno};
  if (first == 0) first_child(config, theirs.get());
  Spawned s;
  s.first_pid = first;
  s.first_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, first, 0)));
  if (!s.first_pidfd) {
    int e = errno;
    ::kill(first, SIGKILL);
    int status;
    ::waitpid(first, &status, 0);
    return Error{"pidfd_open", e};
  }
  s.ctl = std::move(ours);
  return s;
}

}  // namespace boxcar::executors::native
