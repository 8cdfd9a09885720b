// init_executable: boxcar-init (see init.h), embedded in the agent at build time, copied once
// into a sealed memfd, and the exec into it that ends the setup of every sandbox.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Agent side: a read-only, close-on-exec fd of a memfd holding boxcar-init, sealed against
// every change (write, grow, shrink, new seals), so nothing can alter what pid 1 runs.
Result<unique_fd> make_init_memfd();
// Child side, after the sandbox is set up: `ctl` moves to kInitControlFd (without
// close-on-exec), 0-2 become /dev/null, every other fd but `init_fd` (which may move) is closed.
Failure init_descriptors(int& ctl, int& init_fd);
// Child side, last: execveat of `init_fd` with argv {"boxcar-init", "--caps=HEX"} and an
// empty environment. Returns only when the exec failed.
Failure exec_init(int init_fd, uint64_t caps_mask);

}  // namespace boxcar::executors::native
