// init: pid 1 of every sandbox. Not a separate binary: the sandbox's first process runs this
// loop as a function, so nothing a step could overwrite is ever exec'd as init. It runs the
// commands the agent sends over the control channel, reports each one's wait status, reaps
// orphans, and forwards SIGTERM to everything else in the sandbox.
#pragma once

#include "executors/native/caps.h"
#include "executors/native/facility.h"
#include "executors/native/seccomp_filter.h"

namespace boxcar::executors::native {

// What every command runs under: the seccomp filter (loaded into init once, inherited) and
// the capability set (dropped in each command before exec; init keeps its own to set up).
struct CommandPolicy {
  const CapSet* caps = nullptr;
  const SeccompProgram* seccomp = nullptr;
};

// Hardens the future init: not dumpable (steps, root in the same user namespace, cannot
// ptrace it or read its memory), the agent's environment wiped, fds 0-2 on /dev/null, every
// other fd but `keep` closed. Runs after pivot_root.
Failure harden_init(int keep);
// The loop. Exits (which kills the whole pid namespace) when the control channel closes.
[[noreturn]] void init_main(int ctl, const CommandPolicy& policy);

}  // namespace boxcar::executors::native
