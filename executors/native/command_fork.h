// Command fork: how init starts a command (and how the agent probes that it can, once): a child
// process with a pidfd for the agent and, for ExecRequest::own_tree, in its own cgroup from its
// first instruction on (clone3 CLONE_INTO_CGROUP), so nothing it forks can be born outside.
#pragma once

#include <sys/types.h>

namespace boxcar::executors::native {

// Like fork(): 0 in the child, the child's pid in the parent, -1 with errno. `cgroup_dir` is a
// cgroup-v2 directory fd to be born in, or -1 (the parent's cgroups). `pidfd` receives the
// child's pidfd (-1 when the kernel gives none). The caller must be single-threaded: the child
// is a raw copy that must exec or _exit without touching another thread's locks.
pid_t fork_command(int cgroup_dir, int& pidfd);

}  // namespace boxcar::executors::native
