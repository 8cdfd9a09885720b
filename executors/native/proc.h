// /proc: a fresh procfs for the sandbox's pid namespace, with the paths container runtimes
// mask (bind /dev/null over files, an empty read-only tmpfs over directories) and read-only.
#pragma once

#include <string>
#include <vector>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Mounts proc at `root`/proc; must run in the new pid namespace, before pivot_root.
Failure mount_proc(const std::string& root);
// The paths below /proc that mount_proc masks and makes read-only, as "/proc/NAME": the OCI
// executor gives runc the same lists (maskedPaths, readonlyPaths).
std::vector<std::string> masked_proc_paths();
std::vector<std::string> read_only_proc_paths();

}  // namespace boxcar::executors::native
