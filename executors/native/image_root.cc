#include "executors/native/image_root.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "base/beneath.h"
#include "executors/native/mounts.h"
#include "executors/native/overlay.h"
#include "executors/native/rootfs.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

Error root_error(const std::string& what, const std::string& path, int err) {
  return Error{"image root: " + what + " /" + path + ": " + std::strerror(err), err};
}

// `name` in directory `dir` (one component, never followed) becomes a directory owned by
// `owner`: an existing directory stays, anything else is removed first.
Status ensure_directory(int dir, const std::string& name, uid_t owner, const std::string& shown) {
  struct stat st{};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    if (::unlinkat(dir, name.c_str(), 0) != 0) return root_error("replacing", shown, errno);
  } else if (errno != ENOENT) {
    return root_error("checking", shown, errno);
  }
  if (::mkdirat(dir, name.c_str(), 0755) != 0) return root_error("creating", shown, errno);
  // Explicit mode: mkdirat's went through the agent's umask.
  if (::fchownat(dir, name.c_str(), owner, owner, AT_SYMLINK_NOFOLLOW) != 0 ||
      ::fchmodat(dir, name.c_str(), 0755, 0) != 0) {
    return root_error("setting up", shown, errno);
  }
  return {};
}

// A new regular file `name` in `dir` holding `content`, whatever was at that name.
Status write_fresh(int dir, const std::string& name, const std::string& content, uid_t owner,
                   const std::string& shown) {
  struct stat st{};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
      ::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0) {
    return root_error("replacing the directory", shown, errno);
  }
  unique_fd fd = create_fresh(dir, name, 0644);
  if (!fd) return root_error("writing", shown, errno);
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fchown(fd.get(), owner, owner) != 0 || ::fchmod(fd.get(), 0644) != 0) {
    return root_error("writing", shown, errno);
  }
  return {};
}

}  // namespace

Result<unique_fd> mount_image_layers(const std::vector<fs::path>& layers, const fs::path& upper,
                                     const fs::path& work, LowerdirOption option) {
  if (layers.empty()) return Error{"image root overlay: the image has no layers", EINVAL};
  std::vector<std::string> highest_first(layers.rbegin(), layers.rend());
  return mount_overlay(highest_first, upper.string(), work.string(),
                       OverlayOptions{.what = "image root overlay", .lowerdir = option});
}

Status prepare_image_root(int root, uid_t owner, const std::string& hostname, const std::string& resolv_conf) {
  for (const char* name : {"tmp", "proc", "dev", "workspace", "etc"}) {
    if (Status s = ensure_directory(root, name, owner, name); !s) return s;
  }
  if (Status s = name_image_host(root, owner, hostname); !s) return s;
  unique_fd etc = open_beneath(root, "etc", O_RDONLY | O_DIRECTORY);
  if (!etc) return root_error("opening", "etc", errno);
  if (!resolv_conf.empty()) return write_fresh(etc.get(), "resolv.conf", resolv_conf, owner, "etc/resolv.conf");
  // Names resolve as in a "host" sandbox, whose /etc is the host's.
  std::ifstream host_resolv("/etc/resolv.conf");
  if (host_resolv) {
    std::stringstream resolv;
    resolv << host_resolv.rdbuf();
    if (Status s = write_fresh(etc.get(), "resolv.conf", resolv.str(), owner, "etc/resolv.conf"); !s) return s;
  }
  return {};
}

Status name_image_host(int root, uid_t owner, const std::string& hostname) {
  unique_fd etc = open_beneath(root, "etc", O_RDONLY | O_DIRECTORY);
  if (!etc) return root_error("opening", "etc", errno);
  std::string hosts = "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost " + hostname + "\n";
  return write_fresh(etc.get(), "hosts", hosts, owner, "etc/hosts");
}

Failure enter_image_root(int root, const std::string& mount_point, const std::string& template_root,
                         uint64_t tmp_bytes) {
  BOXCAR_TRY(attach(root, mount_point.c_str(), "image root mount"));
  // The template's /dev is already built (device binds, links, read-only): share it.
  std::string dev = template_root + "/dev";
  if (::mount(dev.c_str(), (mount_point + "/dev").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return fail("image root /dev");
  }
  return mount_tmp(mount_point, tmp_bytes);
}

}  // namespace boxcar::executors::native
