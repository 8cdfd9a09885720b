// Overlay: an overlayfs mount made with the new mount API (fsopen + fsconfig + fsmount), shared by
// an image's root (image_root.h, on the agent's side) and a step's layered directories
// (layered_mounts.h, inside the sandbox's user namespace).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace boxcar::executors::native {

// How the lowers are given: "lowerdir+" per layer where the kernel has it (>= 6.8), else one
// colon-joined "lowerdir" (short /proc/self/fd names: about 15 layers fit). `classic` forces
// the second, which is how its path is tested on a kernel that has both.
enum class LowerdirOption { per_layer, classic };

struct OverlayOptions {
  std::string what = "overlay";  // what errors start with, e.g. "image root overlay"
  LowerdirOption lowerdir = LowerdirOption::per_layer;
  // Whiteouts and opaque directories as user.overlay.* xattrs: what an overlay mounted inside a
  // user namespace must use (trusted.* needs host root).
  bool userxattr = false;
};

// The overlay of `lowers` (HIGHEST first) under `upper` (with `work`, on the same filesystem) as
// a detached mount, nosuid and nodev; empty `upper` and `work`: a read-only overlay of the lowers
// (two at least). An Error naming the layer or the kernel's own message
// when overlayfs refuses; one saying what to do when the classic option cannot hold the lowers.
Result<unique_fd> mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                                const std::string& work, const OverlayOptions& options);

}  // namespace boxcar::executors::native
