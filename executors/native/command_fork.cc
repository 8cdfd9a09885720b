#include "executors/native/command_fork.h"

#include <linux/sched.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace boxcar::executors::native {

pid_t fork_command(int cgroup_dir, int& pidfd) {
  pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD | (cgroup_dir >= 0 ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_dir >= 0 ? static_cast<uint64_t>(cgroup_dir) : 0;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid >= 0 || errno != ENOSYS || cgroup_dir >= 0) return static_cast<pid_t>(pid);
  // A kernel before 5.3 (no clone3): a plain fork; the pidfd if pidfd_open exists (5.3 too).
  pid = ::fork();
  if (pid > 0) pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return static_cast<pid_t>(pid);
}

}  // namespace boxcar::executors::native
