// The native executor: every step in its own container sandbox built from Linux namespaces,
// cgroups, seccomp and capabilities (DESIGN.md section 4). The default, isolated executor.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::executors {

struct NativeOptions {
  // uid/gid 0 inside a sandbox is host uid/gid `id_base`; the range is `id_count` ids long.
  uid_t id_base = 100000;
  uid_t id_count = 65536;
  // Lets a step ask for network = "host". Off by default: such a step reaches the host.
  bool allow_host_network = false;
  // Where the executor keeps its state: root/ (the root template) and image-root/ (where image
  // sandboxes mount their root, in their own mount namespace).
  std::filesystem::path state_dir = "/run/boxcar/native";
  // Image sandboxes' writable layers: on disk, not in /run's memory, because a step that
  // installs packages into its image writes hundreds of megabytes there. A dead agent's are
  // removed at start. Empty: <state_dir>/uppers.
  std::filesystem::path uppers_dir = "/var/lib/boxcar/uppers";
  // What one image sandbox may write to its root (--max-image-write): its upper is a
  // filesystem of this size (loop_fs.h), so the step gets ENOSPC there and the agent's disk
  // holds at most this much of it. 0: no limit (the upper is a plain directory of uppers_dir).
  uint64_t max_image_write = 10ull << 30;
  // Name of the cgroup (under the agent's own cgroup, in every hierarchy used) that holds
  // the steps' cgroups. Leftovers of a dead agent below it are removed at start.
  std::string cgroup_parent = "boxcar";
  // Keeps one sandbox per job set up ahead of time, like the last step (same limits), so that
  // the next step like it starts at once (the one after is prepared while it runs).
  bool prewarm = true;
};

// Whether this host can create the sandboxes: Ok, or one line saying why not (not root,
// user namespaces disabled) that points to `--executor host`.
Status native_available();

// Why `executor` (a native one) gives commands a process group instead of a cgroup-v2 tree of
// their own (ExecRequest::own_tree), "" when they get the cgroup: checked once, when it was
// made. The agent prints it at start, since a daemon that calls setsid() then escapes
// ExecControl::kill_tree. "" for other executors.
std::string native_tree_fallback(const Executor& executor);

// Makes the executor: builds (or reuses) the root filesystem template under state_dir and
// removes what a dead agent left (its steps' cgroups and upper directories). The executor, its jobs and their
// sandboxes are used from the thread that runs `io`; the handlers run there too.
std::unique_ptr<Executor> make_native_executor(boost::asio::io_context& io, NativeOptions options = {});

}  // namespace boxcar::executors
