// Layered mounts: a step's layered directories (SandboxSpec::layered), each an overlayfs of the
// step's own layer over read-only lowers. overlayfs cannot itself be idmapped, so the agent
// idmaps every layer directory (as it does the workspace) and pid 1 mounts the overlay inside
// the sandbox's user namespace, as its root, with `userxattr`, over those idmapped mounts: the
// files reach the host with the owners the workspace's files get.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"
#include "executors/spec.h"

namespace boxcar::executors::native {

// Lowers of one layered directory at most: each is a mount of its own in the sandbox, and a
// chain of needs this deep is a mistake rather than a pipeline.
constexpr size_t kMaxLayeredLowers = 128;

// One layered directory, ready for pid 1: its mounts and the paths it attaches them on.
struct LayeredMount {
  unique_fd layer;                        // idmapped mount of LayeredDir::layer
  std::vector<unique_fd> lowers;          // idmapped mounts of the lowers, highest first
  std::string staging;                    // an empty directory under the new root's /tmp
  std::string layer_point;                // staging/L: where `layer` is attached
  std::vector<std::string> lower_points;  // staging/0, staging/1, ...
  std::string target;                     // root + LayeredDir::target
};

// Agent side: makes <layer>/upper (owned and moded as the lowest lower's root, which the
// overlay's root shows) and <layer>/work, and the idmapped mounts (through `userns`) for a
// sandbox whose root pid 1 builds at `root`. An Error names the directory and, for too many
// lowers, the count and the limit.
Result<std::vector<LayeredMount>> prepare_layered(const std::vector<LayeredDir>& dirs, int userns,
                                                  const std::string& root);

// The descriptors pid 1 needs (to keep across the first child's fd cleanup), of all mounts or
// of one (in the order layered_message's receiver expects).
std::vector<int> layered_fds(const std::vector<LayeredMount>& mounts);
std::vector<int> layered_fds(const LayeredMount& mount);

// A prewarmed sandbox gets its step's layered directories over the control channel: one
// Msg::layered record per directory (this body, with layered_fds(mount) attached), then
// Msg::configure with the hostname.
std::string layered_message(const LayeredDir& dir);

// Child side, in a prewarmed sandbox's pid 1 before it mounts /workspace (ContainConfig::deferred):
// reads the Msg::layered records up to Msg::configure into `mounts` (placed under `root` as
// prepare_layered places them) and `hostname`. Anything else, or the channel closing, fails.
Failure receive_layered(int ctl, const std::string& root, std::vector<LayeredMount>& mounts, std::string& hostname);

// Child side, as root of the sandbox's user and mount namespaces, after the root's /tmp is
// mounted: each overlay on its target, the staging mounts detached and removed after.
Failure mount_layered(const std::vector<LayeredMount>& mounts);

// Whether one of `dirs` is the sandbox's /workspace (then the job's workspace is not attached).
bool layers_workspace(const std::vector<LayeredDir>& dirs);

}  // namespace boxcar::executors::native
