#include "executors/native/overlay.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace boxcar::executors::native {

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

Error overlay_error(const OverlayOptions& o, const std::string& what, int fsfd, int err) {
  return Error{o.what + ": " + what + ": " + std::strerror(err) + kernel_log(fsfd), err};
}

Error too_long(const OverlayOptions& o, const std::string& what, size_t size) {
  return Error{o.what + ": " + what + " is " + std::to_string(size) + " bytes, more than the " +
                   std::to_string(kMaxOption) + " overlayfs takes in one option; use a shorter image cache " +
                   "or state directory path",
               ENAMETOOLONG};
}

int set_string(int fsfd, const char* key, const std::string& value) {
  return ::fsconfig(fsfd, FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0 ? 0 : errno;
}

Result<unique_fd> open_context(const OverlayOptions& o) {
  unique_fd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) return Error{o.what + ": fsopen: " + std::strerror(errno), errno};
  if (o.userxattr && ::fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0) {
    return overlay_error(o, "userxattr", fsfd.get(), errno);
  }
  return fsfd;
}

// The classic option, for kernels before 6.8: one string, highest layer first, ':' separated.
// It must fit fsconfig's 255 bytes, which a store path (~100 bytes) fills after two layers: each
// layer is named by a short /proc/self/fd/N of an O_PATH descriptor held in `held` until the
// mount is created (overlayfs resolves the names then), so about 15 layers fit.
Result<unique_fd> classic_lowers(const std::vector<std::string>& lowers, const OverlayOptions& o,
                                 std::vector<unique_fd>& held) {
  std::string joined;
  for (const std::string& lower : lowers) {
    unique_fd fd(::open(lower.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Error{o.what + ": layer " + lower + ": " + std::strerror(errno), errno};
    if (!joined.empty()) joined += ':';
    joined += "/proc/self/fd/" + std::to_string(fd.get());
    held.push_back(std::move(fd));
  }
  if (joined.size() > kMaxOption) {
    return too_long(o,
                    "the lowerdir of " + std::to_string(lowers.size()) +
                        " layers (this kernel has no \"lowerdir+\", which takes one layer at a time: use a "
                        "kernel of 6.8 or later for images of this many layers)",
                    joined.size());
  }
  auto fsfd = open_context(o);
  if (!fsfd) return fsfd.error();
  if (int e = set_string(fsfd->get(), "lowerdir", joined)) return overlay_error(o, "lowerdir", fsfd->get(), e);
  return fsfd;
}

// overlayfs stacks its first lower on top of the next: the highest layer goes first.
Result<unique_fd> configure_lowers(const std::vector<std::string>& lowers, const OverlayOptions& o,
                                   std::vector<unique_fd>& held) {
  if (o.lowerdir == LowerdirOption::classic) return classic_lowers(lowers, o, held);
  auto fsfd = open_context(o);
  if (!fsfd) return fsfd.error();
  for (size_t i = 0; i < lowers.size(); ++i) {
    const std::string& layer = lowers[i];
    if (layer.size() > kMaxOption) return too_long(o, "layer path " + layer, layer.size());
    int err = set_string(fsfd->get(), "lowerdir+", layer);
    if (err == 0) continue;
    if (err != EINVAL || i != 0) return overlay_error(o, "layer " + layer, fsfd->get(), err);
    // Not a bad layer: a kernel before 6.8 does not know "lowerdir+". A fresh context (this
    // one logged the refusal) with the classic option.
    return classic_lowers(lowers, o, held);
  }
  return fsfd;
}

}  // namespace

Result<unique_fd> mount_overlay(const std::vector<std::string>& lowers, const std::string& upper,
                                const std::string& work, const OverlayOptions& o) {
  if (lowers.empty()) return Error{o.what + ": no lower layers", EINVAL};
  std::vector<unique_fd> held;  // the classic option's /proc/self/fd names, until the mount exists
  auto fsfd = configure_lowers(lowers, o, held);
  if (!fsfd) return fsfd.error();
  for (const auto& [key, path] : {std::pair{"upperdir", upper}, std::pair{"workdir", work}}) {
    if (path.empty()) continue;  // read-only: lowers only
    if (path.size() > kMaxOption) return too_long(o, std::string(key) + " " + path, path.size());
    if (int e = set_string(fsfd->get(), key, path)) {
      return overlay_error(o, std::string(key) + " " + path, fsfd->get(), e);
    }
  }
  if (::fsconfig(fsfd->get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return overlay_error(o, "creating the mount", fsfd->get(), errno);
  }
  unique_fd mnt(::fsmount(fsfd->get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mnt) return overlay_error(o, "fsmount", fsfd->get(), errno);
  return mnt;
}

}  // namespace boxcar::executors::native
