// resolv.conf: the /etc/resolv.conf a job's steps see (JobSpec::resolv_conf: the resolver the
// agent serves on the job's gateway). An image root gets it written into its own /etc, like
// /etc/hosts (image_root.h); the host root's /etc is the host's, read-only, so a read-only bind
// of the job's file is mounted over /etc/resolv.conf there, onto the path itself: the host's
// may be a symlink (systemd-resolved's, absolute, dangling) and is never followed.
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executors/native/facility.h"
#include "executors/spec.h"

namespace boxcar::executors::native {

// What a step with network = "none" finds in /etc/resolv.conf on a job network: only a comment.
std::string no_network_resolv_conf();

// The resolv.conf of a step with `mode` in a job whose steps get `job_resolv_conf`: that text
// (job), the comment above (none), or "" for the root's own (host, or no text for the job).
std::string resolv_conf_for(NetworkMode mode, const std::string& job_resolv_conf);

// One job's files (the job network's and the "none" one), written when the job is prepared into
// <dir>/<instance>-<n>.conf and <dir>/<instance>-<n>-none.conf (0444, n unique in the process),
// removed with the object. `dir` is made 0711: a sandbox's root (a mapped uid) must reach the
// files to bind them.
class ResolvFiles {
 public:
  ResolvFiles() = default;
  // Moves own the files: the moved-from object removes nothing, and assigning over an object
  // removes the files it had (a defaulted move would forget them on the disk).
  ResolvFiles(ResolvFiles&& other) noexcept { *this = std::move(other); }
  ResolvFiles& operator=(ResolvFiles&& other) noexcept;
  ~ResolvFiles() { remove(); }
  static Result<ResolvFiles> write(const std::filesystem::path& dir, const std::string& instance,
                                   const std::string& job_resolv_conf);
  // The file a step with `mode` gets mounted, or "" for the root's own.
  std::filesystem::path file_for(NetworkMode mode) const;

 private:
  void remove();

  std::filesystem::path job_, none_;
};

// Removes the files below `dir` of dead agents: files are named after their executor's instance
// ("<pid>-<start time>-<n>", CgroupRoot::instance_name), dead when that process is gone.
void remove_stale_resolv_files(const std::filesystem::path& dir);

// Agent side: a detached, read-only bind of `file` (open_tree), for mount_resolv_conf.
Result<unique_fd> resolv_conf_mount(const std::filesystem::path& file);

// Child side, before pivoting into `root`: attaches `mount_fd` on `root`/etc/resolv.conf without
// following a symlink there (move_mount, no MOVE_MOUNT_T_SYMLINKS). Fails (ENOENT) when the root
// has no /etc/resolv.conf at all to mount on.
Failure mount_resolv_conf(int mount_fd, const std::string& root);

}  // namespace boxcar::executors::native
