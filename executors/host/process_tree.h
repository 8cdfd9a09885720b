// ProcessTree: every process a command started, daemons and double forks included, so that
// all of them can be signalled and their end observed.
//
// Backed by a cgroup v2 directory when this process can create one (children are cloned into
// it; cgroup.kill and cgroup.events make kill and "empty" exact). Otherwise by an environment
// cookie (BOXCAR_SANDBOX_ID, as Jenkins' ProcessTreeKiller does) plus the command's process
// group, found by scanning /proc: best effort, a process that clears its environment and
// leaves the group escapes.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::host {

class ProcessTree {
 public:
  // A subtree, e.g. one command of a sandbox. Its processes are also the parent's.
  Result<std::unique_ptr<ProcessTree>> child(std::string_view name) const;

  bool uses_cgroup() const { return dir_.valid(); }
  // cgroup mode: the directory to clone into (CLONE_INTO_CGROUP); -1 otherwise.
  int cgroup_fd() const { return dir_.get(); }
  // Cookie mode: the "NAME=value" entry to add to the command's environment; empty otherwise.
  const std::string& env_cookie() const { return cookie_; }
  // Cookie mode: the command's process group (its session leader's pid).
  void set_process_group(pid_t pgid) { pgid_ = pgid; }

  // Sends `sig` to every live process now. Best effort: a process forking at that moment
  // may leave a child that did not get it, which is why kill() is repeated until empty().
  void signal(int sig) const;
  // SIGKILL to every process (cgroup.kill: atomic against forks).
  void kill() const;
  // True when no live process is left (zombies waiting for their reaper count as gone).
  bool empty() const;
  // Removes the cgroup directories, children first. True when nothing is left (always true
  // in cookie mode); false while a process still lives in it.
  bool remove() const;

  const std::filesystem::path& path() const { return path_; }

 private:
  friend class TreeRoot;
  ProcessTree() = default;
  std::vector<pid_t> cookie_members() const;

  std::filesystem::path path_;  // cgroup mode: the directory
  unique_fd dir_;
  std::string cookie_;         // cookie mode, a command: the entry it gets
  std::string cookie_match_;   // cookie mode: environ entries that mark a member
  bool cookie_exact_ = false;  // the entry must equal cookie_match_ (else: start with it)
  pid_t pgid_ = 0;
};

// Where host sandboxes live: <cgroup2 mount>/boxcar.host/<owner>, one owner directory per
// agent process (its pid and start time), or cookies when cgroup v2 is not writable.
class TreeRoot {
 public:
  // Finds cgroup v2 in /proc/self/mountinfo and creates this process's owner directory;
  // cookies when that fails or `try_cgroup` is false.
  static std::shared_ptr<TreeRoot> open(bool try_cgroup = true);
  // Removes the owner directory and what is left in it, as far as it is empty.
  ~TreeRoot();

  bool uses_cgroup() const { return !owner_.empty(); }
  // A new, empty tree for one sandbox; `name` must be unique for this process.
  Result<std::unique_ptr<ProcessTree>> sandbox(std::string_view name) const;
  // Crash safety: kills the processes of owner directories whose agent is dead and removes
  // them. Returns the trees that still had processes, to be removed once they are empty.
  std::vector<std::unique_ptr<ProcessTree>> sweep_dead_owners() const;

  // The mount point of cgroup v2 according to `mountinfo` text; empty when there is none.
  static std::filesystem::path find_cgroup2(std::string_view mountinfo);

  TreeRoot() = default;
  TreeRoot(const TreeRoot&) = delete;
  TreeRoot& operator=(const TreeRoot&) = delete;

 private:
  std::filesystem::path owner_;
  std::string cookie_prefix_;
};

}  // namespace boxcar::executors::host
