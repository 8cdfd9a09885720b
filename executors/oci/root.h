// Root filesystems of OCI bundles: for image "host" one shared directory of mount points and
// symlinks that runc covers with read-only binds of the host's system directories (as the
// native template shows them); for an image, an overlay of its layers under a per-sandbox
// upper, mounted on the host before runc runs and unmounted by the sandbox's keeper.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"

namespace boxcar::executors::oci {

struct HostRoot {
  std::string path;                      // the directory runc takes as root (read-only)
  std::vector<std::string> system_dirs;  // "/usr", ...: to bind read-only at themselves
};

// Makes (or completes) `dir`: for each host system directory a directory to mount on or the
// same symlink (/bin -> usr/bin), plus /proc, /dev, /tmp, /workspace and the init's file.
Result<HostRoot> prepare_host_root(const std::filesystem::path& dir, const std::string& init_inside);

// boxcar-init (the embedded one, native/init_executable.h) as a read-only file at `path`.
Status write_init_file(const std::filesystem::path& path);

// Mounts at `root` the overlay of `layers` (lowest first) over a fresh `upper` and `work`,
// the upper owned by uid/gid `owner` (the sandbox's root).
Status mount_image_root(const std::vector<std::filesystem::path>& layers, const std::filesystem::path& root,
                        const std::filesystem::path& upper, const std::filesystem::path& work, uid_t owner);

}  // namespace boxcar::executors::oci
