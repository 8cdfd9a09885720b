// Root filesystem for image "host": a tmpfs holding read-only binds of the host's system
// directories (and a template /dev, see dev.h) and nothing else of the host. The agent builds
// it once, as a template; each sandbox binds a copy, adds its own /tmp, /proc, /dev/shm,
// /dev/pts and /workspace on top, and pivots into it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Agent side, in the host's mount namespace: builds the template at `root` (an empty
// directory) unless a complete one is already there, e.g. left by a dead agent. /usr, /bin,
// /sbin, /lib*, /etc, /opt read-only (symlinks such as /bin -> usr/bin stay symlinks),
// empty /tmp, /proc, /dev, /workspace to mount on; read-only as a whole.
Status prepare_root_template(const std::string& root);
// Child side: a private copy of the template at `root` (the copy, unlike the template, may be
// pivoted into) and a fresh tmpfs /tmp of `tmp_bytes`.
Failure enter_root_template(const std::string& root, uint64_t tmp_bytes);
// Child side: a fresh tmpfs of `tmp_bytes` on `root`/tmp (any root: template copy or image).
Failure mount_tmp(const std::string& root, uint64_t tmp_bytes);
// pivot_root into `root` and detach the old root.
Failure pivot_into(const std::string& root);
// The host's system directories the template shows (names below "/", some absent or
// symlinks on a given host): the OCI executor shows the same ones.
std::vector<std::string> system_dir_names();

}  // namespace boxcar::executors::native
