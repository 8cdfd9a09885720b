// measure_workspace: the disk space and inodes a directory tree holds, measured with
// base/tree_walk.h (no link followed, no other mount entered, a hard-linked file counted once,
// allocated blocks rather than apparent sizes), stopping as soon as a limit is passed. The job
// workspaces' watchdog (agent/daemon/workspace_watch.h) and the sandbox API's /workspace quota
// (sandboxes/disk_quota.h) both measure with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/duration.h"
#include "base/result.h"

namespace boxcar {

struct WorkspaceLimits {
  uint64_t bytes = 10ull << 30;  // disk space (allocated blocks); 0 = no limit
  uint64_t inodes = 1'000'000;   // files, directories and links; 0 = no limit
  Millis interval{1'000};        // the shortest time between two walks of one workspace
};

struct WorkspaceUsage {
  uint64_t bytes = 0;   // blocks allocated, a hard-linked file once
  uint64_t inodes = 0;  // entries below the root
};

// Measures `dirs` together (`dir` alone below; a directory not there holds nothing). Stops
// counting as soon as a limit is passed, so an attack costs no more to measure than the limit
// allows. An Error when `keep_going` said stop.
Result<WorkspaceUsage> measure_workspace(const std::filesystem::path& dir, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going = {});
Result<WorkspaceUsage> measure_workspace(const std::vector<std::filesystem::path>& dirs, const WorkspaceLimits& limits,
                                         const std::function<bool()>& keep_going = {});

// "" within the limits; else why not, e.g. "workspace over its 10.0 GiB limit".
std::string over_limit(const WorkspaceUsage& usage, const WorkspaceLimits& limits);

}  // namespace boxcar
