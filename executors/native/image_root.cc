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
#include "executors/native/rootfs.h"

namespace boxcar::executors::native {

namespace fs = std::filesystem;

namespace {

// fsconfig copies a string value of at most 255 bytes (strndup_user(value, 256)).
constexpr size_t kMaxOption = 255;

// What the kernel wrote into the filesystem context's log ("e overlay: ..."), if anything.
std::string kernel_log(int fsfd) {
  std::string log;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fsfd, buf, sizeof buf)) > 0) {
    if (!log.empty()) log += "; ";
    log.append(buf, static_cast<size_t>(n));
  }
  return log.empty() ? log : " (" + log + ")";
}

Error overlay_error(const std::string& what, int fsfd, int err) {
  return Error{"image root overlay: " + what + ": " + std::strerror(err) + kernel_log(fsfd), err};
}

Error too_long(const std::string& what, size_t size) {
  return Error{"image root overlay: " + what + " is " + std::to_string(size) + " bytes, more than the " +
                   std::to_string(kMaxOption) + " overlayfs takes in one option; use a shorter image cache " +
                   "or state directory path",
               ENAMETOOLONG};
}

int set_string(int fsfd, const char* key, const std::string& value) {
  return ::fsconfig(fsfd, FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0 ? 0 : errno;
}

// The classic option, for kernels before 6.8: one string, highest layer first, ':' separated.
// It must fit fsconfig's 255 bytes, which a store path (~100 bytes) fills after two layers: each
// layer is named by a short /proc/self/fd/N of an O_PATH descriptor held in `held` until the
// mount is created (overlayfs resolves the names then), so about 15 layers fit.
Result<std::string> joined_lowerdir(const std::vector<fs::path>& layers, std::vector<unique_fd>& held) {
  std::string joined;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    unique_fd fd(::open(it->c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Error{"image root overlay: layer " + it->string() + ": " + std::strerror(errno), errno};
    if (!joined.empty()) joined += ':';
    joined += "/proc/self/fd/" + std::to_string(fd.get());
    held.push_back(std::move(fd));
  }
  if (joined.size() > kMaxOption) {
    return too_long("the lowerdir of " + std::to_string(layers.size()) +
                        " layers (this kernel has no \"lowerdir+\", which takes one layer at a time: use a "
                        "kernel of 6.8 or later for images of this many layers)",
                    joined.size());
  }
  return joined;
}

Result<unique_fd> classic_lowers(const std::vector<fs::path>& layers, std::vector<unique_fd>& held) {
  auto joined = joined_lowerdir(layers, held);
  if (!joined) return joined.error();
  unique_fd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) return Error{std::string("image root overlay: fsopen: ") + std::strerror(errno), errno};
  if (int e = set_string(fsfd.get(), "lowerdir", *joined)) return overlay_error("lowerdir", fsfd.get(), e);
  return fsfd;
}

// overlayfs stacks its first lower on top of the next: the highest layer goes first.
Result<unique_fd> configure_lowers(const std::vector<fs::path>& layers, LowerdirOption option,
                                   std::vector<unique_fd>& held) {
  if (option == LowerdirOption::classic) return classic_lowers(layers, held);
  unique_fd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) return Error{std::string("image root overlay: fsopen: ") + std::strerror(errno), errno};
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    const std::string& layer = it->string();
    if (layer.size() > kMaxOption) return too_long("layer path " + layer, layer.size());
    int err = set_string(fsfd.get(), "lowerdir+", layer);
    if (err == 0) continue;
    if (err != EINVAL || it != layers.rbegin()) return overlay_error("layer " + layer, fsfd.get(), err);
    // Not a bad layer: a kernel before 6.8 does not know "lowerdir+". A fresh context (this
    // one logged the refusal) with the classic option.
    return classic_lowers(layers, held);
  }
  return fsfd;
}

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
  std::vector<unique_fd> held;  // the classic option's /proc/self/fd names, until the mount exists
  auto fsfd = configure_lowers(layers, option, held);
  if (!fsfd) return fsfd.error();
  for (const auto& [key, path] : {std::pair{"upperdir", upper.string()}, std::pair{"workdir", work.string()}}) {
    if (path.size() > kMaxOption) return too_long(std::string(key) + " " + path, path.size());
    if (int e = set_string(fsfd->get(), key, path)) return overlay_error(std::string(key) + " " + path, fsfd->get(), e);
  }
  if (::fsconfig(fsfd->get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return overlay_error("creating the mount", fsfd->get(), errno);
  }
  unique_fd mnt(::fsmount(fsfd->get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mnt) return overlay_error("fsmount", fsfd->get(), errno);
  return mnt;
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
