// Files inside a directory that something untrusted can also write (a step's workspace, the run
// directory kept in it): opened relative to a directory fd, never following a symlink or `..`
// out of it, and created fresh instead of truncating whatever a step left at that name.
#pragma once

#include <string>

#include "base/unique_fd.h"

namespace boxcar {

// Opens `rel` ("" or "." for `root` itself) beneath directory fd `root` with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a symlink anywhere on
// the path, or a `..` leaving `root`, fails (ELOOP / EXDEV). O_CLOEXEC and O_NOFOLLOW are added.
// An invalid fd with errno set on failure.
unique_fd open_beneath(int root, const std::string& rel, int flags, unsigned mode = 0);

// Creates `name` (one path component) in directory fd `dir` as a new, empty file for writing:
// whatever is at that name first (a file, or a symlink a step planted to redirect the write)
// is unlinked, and the file is then created with O_CREAT | O_EXCL | O_NOFOLLOW, so the write can
// never land in another inode. An invalid fd with errno set on failure.
unique_fd create_fresh(int dir, const std::string& name, unsigned mode = 0644);

}  // namespace boxcar
