// /dev: a minimal device tree (null, zero, full, random, urandom, tty bound from the host and
// the usual symlinks), read-only, built once in the root template; each sandbox adds its own
// /dev/shm tmpfs and a private /dev/pts.
#pragma once

#include <cstdint>
#include <string>

#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Agent side, while building the root template at `root`.
Failure build_dev_template(const std::string& root);
// Child side, on the sandbox's copy of the template.
Failure mount_dev(const std::string& root, uint64_t shm_bytes);

}  // namespace boxcar::executors::native
