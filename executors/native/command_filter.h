// Command filter: the part of the seccomp policy that init itself is exempt from. init needs
// clone3 (CLONE_INTO_CGROUP puts a command into its own cgroup at birth), but the filter cannot
// read clone3's flags, which sit in memory, so commands must not have it: every process init
// forks stacks this small filter (clone3 -> ENOSYS, so libc falls back to clone, whose flags
// the main filter checks) on the inherited one before it runs anything but init's own code.
#pragma once

#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Loads the filter into the calling process (no_new_privs is already set: inherited from init).
Failure deny_clone3();

}  // namespace boxcar::executors::native
