// ExecTree: one command's cgroup-v2 directory, <sandbox's v2 cgroup>/c<n> (ExecRequest::own_tree).
// The command is born in it (clone3 CLONE_INTO_CGROUP by init, command_fork.h), so everything it
// starts, daemons that setsid() away included, is in it too: signals go to the pids listed in
// cgroup.procs (as the agent's pid namespace sees them) and SIGKILL goes through cgroup.kill,
// which the kernel applies atomically against forks.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::native {

class ExecTree {
 public:
  // Makes `parent`/`name` and delegates its cgroup.procs to `owner` (the sandbox's root on the
  // host), which CLONE_INTO_CGROUP requires of init. `parent`'s own cgroup.procs must be
  // delegated too (StepCgroup does it): the kernel checks the common ancestor.
  static Result<ExecTree> create(const std::string& parent, const std::string& name, uid_t owner);
  ExecTree() = default;
  ExecTree(ExecTree&&) = default;
  ExecTree& operator=(ExecTree&&) = default;

  // The directory, for Msg::exec; taken once (the agent needs no copy once it was sent).
  unique_fd take_dir() { return std::move(dir_); }
  const std::string& path() const { return path_; }
  // `sig` to every process in the tree.
  Status signal(int sig) const;
  // SIGKILL to every process in the tree at once.
  Status kill() const;
  // Removes the directory; false while a process is still in it (or left as a zombie).
  bool remove() const;

 private:
  std::string path_;
  unique_fd dir_;
};

// Why commands' trees cannot be cgroups under `tree_root` (a v2 directory the agent may create
// cgroups in), or "" when they can: cgroup.kill must exist (Linux 5.14) and a probe must be born
// into a cgroup there with clone3 CLONE_INTO_CGROUP (5.7).
std::string probe_exec_trees(const std::string& tree_root);

}  // namespace boxcar::executors::native
