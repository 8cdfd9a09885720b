// LoopFs: a filesystem of a fixed size for one image sandbox's writable layer: an ext4 in a
// sparse file on the agent's disk, attached to a loop device and mounted at a directory.
//
// Why this and not another bound on what a step writes to its root (--max-image-write):
// - ext4/XFS project quotas would bound a directory of the agent's own filesystem, but this
//   kind of host has neither project quotas on its root nor the kernel's quota format (ext4
//   refuses the "quota" feature without CONFIG_QFMT_V2), so a quota'd filesystem of our own is
//   out too;
// - a tmpfs upper (size=) is exact but puts the root's writes in memory, charged to the step's
//   cgroup: a step installing a toolchain would run out of memory, not disk;
// - a watchdog polling the upper's size has a window (a step writes GB/s between two polls)
//   and must walk hard links, sparse files and millions of inodes to be right.
// A filesystem whose size is the limit has none of these holes: sparse files, hard links,
// xattrs (their blocks), directories, deleted-and-rewritten data, renames and many small
// files (its inode count is fixed) all come out of the same blocks, the kernel answers ENOSPC
// at the limit, and the sparse file on the agent's disk never holds more than its size.
// The cost (a loop device and a mount, 10-60 ms) is paid ahead of the step: see UpperDirs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/result.h"

namespace boxcar::executors::native {

// Makes `image`, a sparse file of `bytes` holding an empty ext4 (mke2fs: 4 KiB blocks, one
// inode per 16 KiB, no journal, nothing reserved): the template each sandbox's copy starts
// from. An Error says what failed (mke2fs missing: install e2fsprogs).
Status make_loop_fs_template(const std::filesystem::path& image, uint64_t bytes);

// Copies `template_image` to `image` (sparse), attaches it to a free loop device that detaches
// itself when unmounted, and mounts it at the existing directory `mount_point` (nosuid, nodev,
// noatime); the filesystem's root becomes 0700 root. An Error names the step that failed.
Status mount_loop_fs(const std::filesystem::path& template_image, const std::filesystem::path& image,
                     const std::filesystem::path& mount_point);

// Detaches the filesystem at `mount_point` (its loop device goes once nothing uses it) and
// removes the mount point and `image`. Never follows a link.
void unmount_loop_fs(const std::filesystem::path& image, const std::filesystem::path& mount_point);

// Whether the filesystem at `mount_point` is (nearly) full: less than 1 MiB of blocks or no
// inode left. nullopt when it cannot be asked.
std::optional<bool> loop_fs_full(const std::filesystem::path& mount_point);

}  // namespace boxcar::executors::native
