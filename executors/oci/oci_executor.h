// The OCI executor: every step in a container run by an OCI runtime (runc by default, crun or
// runsc when named) from a bundle boxcar writes, for operators who trust runc or want gVisor.
// The sandbox is the native one by contract (DESIGN.md section 4): the same user namespace
// ids, job network namespace, cgroups, seccomp rules, capabilities and boxcar-init as pid 1
// on the same control channel, so exec, stop, connect_tcp and outcomes work the same.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::executors {

struct OciOptions {
  // The runtime: a name looked up in PATH (runc, crun, runsc) or a path.
  std::string runtime = "runc";
  // uid/gid 0 inside a sandbox is host uid/gid `id_base`; the range is `id_count` ids long.
  uid_t id_base = 100000;
  uid_t id_count = 65536;
  // Lets a step ask for network = "host". Off by default: such a step reaches the host.
  bool allow_host_network = false;
  // Bundles, the runtime's state and each executor's mounts live below it; what a dead
  // agent left here is removed when an executor is made.
  std::filesystem::path state_dir = "/run/boxcar/oci";
  // Image sandboxes' writable layers, as native's (NativeOptions::uppers_dir): on disk, not in
  // state_dir's memory; a dead agent's are removed when an executor is made. Empty:
  // <state_dir>/uppers.
  std::filesystem::path uppers_dir = "/var/lib/boxcar/uppers";
  // What one image sandbox may write to its root (--max-image-write), as native's
  // (NativeOptions::max_image_write): its upper is a filesystem of this size. 0: no limit.
  uint64_t max_image_write = 10ull << 30;
  // Name of the cgroup (under the agent's own) that holds the steps' cgroups, as native's.
  std::string cgroup_parent = "boxcar";
};

// Whether this host can run the executor: root, user namespaces, and the runtime found.
// An error says why, and what to use instead.
Status oci_available(const std::string& runtime);

// Makes the executor and removes what dead agents left below state_dir (containers, mounts,
// bundles). Used from the thread that runs `io`, where the handlers run too.
std::unique_ptr<Executor> make_oci_executor(boost::asio::io_context& io, OciOptions options = {});

}  // namespace boxcar::executors
