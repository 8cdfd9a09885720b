// path_walk: resolving a path the sandbox controls, inside the sandbox, one component at a
// time, for the file helper (init_files.h). It does what openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) would, which the sandbox's seccomp filter denies (ENOSYS: the filter
// cannot read openat2's mode, see seccomp_filter.cc): every component is opened with
// O_NOFOLLOW relative to a directory fd already reached; a symlink's text is read and walked
// again from the root for an absolute one, `..` never climbs above the root, links are followed
// at most 40 times (ELOOP), and a symlink in procfs (/proc/1/root, /proc/self/fd/N: magic links
// to anything) is never followed (ELOOP). The helper runs in the sandbox's own mount namespace
// and root besides, so no path leads to the host.
#pragma once

#include <string>

namespace boxcar::executors::native {

class PathWalk {
 public:
  // `root`: an O_PATH fd of the sandbox's "/" (not owned).
  explicit PathWalk(int root) : root_(root) {}

  // Opens `path` with `flags` (O_NOFOLLOW and O_CLOEXEC are added; O_CREAT honours `mode`).
  // A final symlink is followed (inside) when `follow_last`; otherwise it is opened itself with
  // O_PATH, or fails with ELOOP. Returns the fd, or -1 with errno set.
  int open(const std::string& path, int flags, bool follow_last, unsigned mode = 0) const;
  // The directory holding `path`'s last component (links before it followed) as an O_PATH fd,
  // and that component in `name`. -1 with errno: EINVAL for "/" (it has no parent).
  int open_parent(const std::string& path, std::string& name) const;

 private:
  int walk(const std::string& path, bool to_parent, std::string& name, int flags, bool follow_last,
           unsigned mode) const;
  int root_;
};

}  // namespace boxcar::executors::native
