#include "executors/native/rootfs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <mutex>

#include "base/unique_fd.h"
#include "executors/native/dev.h"
#include "executors/native/mounts.h"

namespace boxcar::executors::native {

namespace {

constexpr const char* kSystemDirs[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt"};

// The template is complete once its root is read-only: that is the last step of building it.
bool template_complete(const std::string& root) {
  struct stat here{}, parent{};
  struct statvfs vfs{};
  if (::stat(root.c_str(), &here) != 0 || ::stat((root + "/..").c_str(), &parent) != 0) return false;
  if (here.st_dev == parent.st_dev) return false;  // nothing mounted
  return ::statvfs(root.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) && ::access((root + "/usr").c_str(), F_OK) == 0;
}

Failure build_template(const std::string& root) {
  BOXCAR_TRY(mount_tmpfs(root.c_str(), "mode=0755,size=1m,nr_inodes=1024", MS_NOSUID | MS_NODEV, "rootfs tmpfs"));
  if (::mount(nullptr, root.c_str(), nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) return fail("rootfs private");
  for (const char* name : kSystemDirs) {
    std::string host = std::string("/") + name;
    std::string target = root + host;
    struct stat st{};
    if (::lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char link[PATH_MAX];
      ssize_t n = ::readlink(host.c_str(), link, sizeof link - 1);
      if (n < 0) return fail("rootfs readlink");
      link[n] = 0;
      if (::symlink(link, target.c_str()) != 0) return fail("rootfs symlink");
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdir(target.c_str(), 0755) != 0) return fail("rootfs mkdir");
      BOXCAR_TRY(bind_read_only(host.c_str(), target.c_str(), "rootfs bind system directory"));
    }
  }
  for (const char* dir : {"/tmp", "/proc", "/dev", "/workspace"}) {
    if (::mkdir((root + dir).c_str(), 0755) != 0) return fail("rootfs mkdir");
  }
  BOXCAR_TRY(build_dev_template(root));
  return set_attr(root.c_str(), MOUNT_ATTR_RDONLY, false, "rootfs read-only");
}

}  // namespace

Status prepare_root_template(const std::string& root) {
  static std::mutex mu;  // executors of one process share the template
  std::lock_guard lock(mu);
  unique_fd lock_fd(::open((root + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock_fd) ::flock(lock_fd.get(), LOCK_EX);  // and so do agents on one host
  if (template_complete(root)) return {};
  // A dead agent's half-built template: take it away (lazily, sandboxes may still use it).
  while (::umount2(root.c_str(), MNT_DETACH) == 0) {
  }
  if (Failure f = build_template(root)) {
    int err = f.err;
    ::umount2(root.c_str(), MNT_DETACH);
    return Error{std::string("root filesystem template: ") + f.facility + ": " + std::strerror(err), err};
  }
  return {};
}

Failure enter_root_template(const std::string& root, uint64_t tmp_bytes) {
  // Every mount copied into a less privileged mount namespace is locked, and pivot_root
  // refuses a locked new root; a bind of it is a new, unlocked mount.
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return fail("rootfs bind");
  return mount_tmp(root, tmp_bytes);
}

Failure mount_tmp(const std::string& root, uint64_t tmp_bytes) {
  std::string tmp_opts = "mode=1777,size=" + std::to_string(tmp_bytes);
  return mount_tmpfs((root + "/tmp").c_str(), tmp_opts.c_str(), MS_NOSUID | MS_NODEV, "tmpfs /tmp");
}

Failure pivot_into(const std::string& root) {
  if (::chdir(root.c_str()) != 0) return fail("pivot_root chdir");
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
  // removes it without needing a directory for it inside the new root.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return fail("pivot_root");
  if (::umount2(".", MNT_DETACH) != 0) return fail("pivot_root detach old root");
  if (::chdir("/") != 0) return fail("pivot_root chdir /");
  return ok();
}

std::vector<std::string> system_dir_names() { return {std::begin(kSystemDirs), std::end(kSystemDirs)}; }

}  // namespace boxcar::executors::native
