// Root filesystems of OCI bundles: for image "host" one shared directory of mount points and
// symlinks that runc covers with read-only binds of the host's system directories (as the
// native template shows them); for an image, native's image root (an overlay of its layers under
// a per-sandbox upper of native's UpperDirs, nosuid and nodev, its mount points repaired and
// /etc/hosts written), attached in the sandbox's private bundle directory before runc runs and
// unmounted by the sandbox's keeper.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

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

// The image root of a sandbox as a detached mount: the overlay of `layers` (lowest first) over
// `upper` and `work` as native::UpperDirs::create makes them (upper owned by uid/gid `owner`,
// the sandbox's root), nosuid and nodev,
// prepared as native's (native::prepare_image_root: the paths runc mounts on are real
// directories, /etc/hosts names localhost and `hostname`, /etc/resolv.conf is `resolv_conf`,
// or the host's when that is empty).
Result<unique_fd> make_image_root(const std::vector<std::filesystem::path>& layers, const std::filesystem::path& upper,
                                  const std::filesystem::path& work, uid_t owner, const std::string& hostname,
                                  const std::string& resolv_conf = {});

}  // namespace boxcar::executors::oci
