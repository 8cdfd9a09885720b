// /proc: a fresh procfs for the sandbox's pid namespace, with the paths container runtimes
// mask (bind /dev/null over files, an empty read-only tmpfs over directories) and read-only.
#pragma once

#include <string>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Mounts proc at `root`/proc; must run in the new pid namespace, before pivot_root.
Failure mount_proc(const std::string& root);

}  // namespace boxcar::executors::native
