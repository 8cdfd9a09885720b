// helper_prelude: what every helper init forks (the file helper, init_files.h; the watch helper,
// init_watch.h) does first, so that all of them run as a command would: signals unblocked, only
// their socket kept (as fd 3), the commands' capability set and seccomp filter, not dumpable,
// named `name`, and their pidfd sent to the agent as a 'P' byte (so it can kill them wherever
// they are stopped). Returns the socket's fd; exits the process when any step fails.
#pragma once

#include "executors/native/caps.h"

namespace boxcar::executors::native {

int enter_helper(int sock, const CapSet& caps, const char* name);

}  // namespace boxcar::executors::native
