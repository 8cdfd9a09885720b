// Mounts: the few mount operations the sandbox's filesystem is built from, and the idmapped
// workspace (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount).
#pragma once

#include <cstdint>
#include <filesystem>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"

namespace boxcar::executors::native {

// Agent side: a detached copy of `dir` whose ids are mapped through `userns` (so uid 0 inside
// the sandbox owns what host uid 0 owns). Fails naming the facility when the filesystem
// cannot be idmapped.
Result<unique_fd> idmapped_mount(const std::filesystem::path& dir, int userns);

// Child side. Each returns the failure under `facility`.
Failure make_mounts_private(const char* facility);
// Bind `source` (recursively) onto `target`, then make the whole tree read-only, nosuid.
Failure bind_read_only(const char* source, const char* target, const char* facility);
// A fresh tmpfs on `target` with `options` (e.g. "size=1048576,mode=1777").
Failure mount_tmpfs(const char* target, const char* options, unsigned long flags, const char* facility);
// Attaches the detached mount `fd` at `target`.
Failure attach(int fd, const char* target, const char* facility);
// Sets attributes (MOUNT_ATTR_*) on the mount at `path`, recursively when `recursive`.
Failure set_attr(const char* path, uint64_t attr_set, bool recursive, const char* facility);

}  // namespace boxcar::executors::native
