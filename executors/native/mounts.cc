#include "executors/native/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>

#include <cstring>
#include <string>

namespace boxcar::executors::native {

Result<unique_fd> idmapped_mount(const std::filesystem::path& dir, int userns) {
  unique_fd tree(::open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (!tree) {
    int e = errno;
    return Error{"workspace open_tree " + dir.string() + ": " + std::strerror(e), e};
  }
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = static_cast<uint64_t>(userns);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    int e = errno;
    return Error{"workspace idmapped mount (mount_setattr MOUNT_ATTR_IDMAP) of " + dir.string() +
                     ": " + std::strerror(e) + "; this filesystem may not support idmapped mounts",
                 e};
  }
  return tree;
}

Failure make_mounts_private(const char* facility) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return fail(facility);
  return ok();
}

Failure bind_read_only(const char* source, const char* target, const char* facility) {
  if (::mount(source, target, nullptr, MS_BIND | MS_REC, nullptr) != 0) return fail(facility);
  return set_attr(target, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, true, facility);
}

Failure mount_tmpfs(const char* target, const char* options, unsigned long flags, const char* facility) {
  if (::mount("tmpfs", target, "tmpfs", flags, options) != 0) return fail(facility);
  return ok();
}

Failure attach(int fd, const char* target, const char* facility) {
  if (::move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) return fail(facility);
  return ok();
}

Failure set_attr(const char* path, uint64_t attr_set, bool recursive, const char* facility) {
  mount_attr attr{};
  attr.attr_set = attr_set;
  if (::mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr) != 0) {
    return fail(facility);
  }
  return ok();
}

}  // namespace boxcar::executors::native
