// Image root: a sandbox's root filesystem made of an image's layers (SandboxSpec::layers). The
// agent composes the layers with overlayfs under the sandbox's own upper directory into a
// detached mount, makes the paths the sandbox mounts on into real directories (an image is
// untrusted: its /dev may be a symlink to /, its /proc a file) and writes /etc/hosts; pid 1
// attaches that mount, puts the root template's /dev and a fresh /tmp on it and, after the
// same /proc, /dev/shm, /dev/pts, workspace and .git steps as for "host", pivots into it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"
#include "executors/native/overlay.h"

namespace boxcar::executors::native {

// Agent side: the overlay of `layers` (lowest first) under `upper` (with `work`, on the same
// filesystem) as a detached mount, nosuid and nodev (fsopen + fsconfig + fsmount). An Error
// naming the layer or the kernel's own message when overlayfs refuses.
Result<unique_fd> mount_image_layers(const std::vector<std::filesystem::path>& layers,
                                     const std::filesystem::path& upper, const std::filesystem::path& work,
                                     LowerdirOption option = LowerdirOption::per_layer);

// Agent side, on the detached mount `root` before any process uses it: /tmp, /proc, /dev,
// /workspace and /etc become directories (whatever else the image has there is replaced),
// /etc/hosts names localhost and `hostname`, /etc/resolv.conf is `resolv_conf` (the job's, see
// resolv_conf.h) or, when that is empty, the host's; what is created belongs to `owner` (root
// inside). Nothing is resolved through a symlink or out of `root`.
Status prepare_image_root(int root, uid_t owner, const std::string& hostname, const std::string& resolv_conf = {});

// Agent side: (re)writes `root`'s /etc/hosts for `hostname`, as prepare_image_root does. For a
// sandbox prepared ahead under a placeholder name, before anything has run in it.
Status name_image_host(int root, uid_t owner, const std::string& hostname);

// Child side, in the sandbox's mount namespace: attaches `root` at `mount_point`, binds the
// root template's /dev (`template_root`/dev) onto its /dev and mounts a fresh tmpfs /tmp of
// `tmp_bytes`.
Failure enter_image_root(int root, const std::string& mount_point, const std::string& template_root,
                         uint64_t tmp_bytes);

}  // namespace boxcar::executors::native
