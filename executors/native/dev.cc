#include "executors/native/dev.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executors/native/mounts.h"

namespace boxcar::executors::native {

namespace {

constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};
constexpr const char* kLinks[][2] = {{"fd", "/proc/self/fd"},
                                     {"stdin", "/proc/self/fd/0"},
                                     {"stdout", "/proc/self/fd/1"},
                                     {"stderr", "/proc/self/fd/2"},
                                     {"ptmx", "pts/ptmx"}};

}  // namespace

Failure build_dev_template(const std::string& root) {
  std::string dev = root + "/dev";
  BOXCAR_TRY(mount_tmpfs(dev.c_str(), "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC, "tmpfs /dev"));
  // mknod is not allowed in a user namespace (nor wanted): device nodes are host binds.
  for (const char* name : kDevices) {
    std::string host = std::string("/dev/") + name;
    std::string target = dev + "/" + name;
    if (::access(host.c_str(), F_OK) != 0) continue;
    int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) return fail("/dev node");
    ::close(fd);
    if (::mount(host.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) return fail("/dev bind device");
  }
  for (const auto& link : kLinks) {
    if (::symlink(link[1], (dev + "/" + link[0]).c_str()) != 0) return fail("/dev symlink");
  }
  for (const char* dir : {"/shm", "/pts"}) {
    if (::mkdir((dev + dir).c_str(), 0755) != 0) return fail("/dev mkdir");
  }
  return set_attr(dev.c_str(), MOUNT_ATTR_RDONLY, false, "/dev read-only");
}

Failure mount_dev(const std::string& root, uint64_t shm_bytes) {
  std::string shm_opts = "mode=1777,size=" + std::to_string(shm_bytes);
  BOXCAR_TRY(mount_tmpfs((root + "/dev/shm").c_str(), shm_opts.c_str(), MS_NOSUID | MS_NODEV, "tmpfs /dev/shm"));
  // A private devpts; /dev/ptmx points into it. Optional: not every kernel allows it here.
  ::mount("devpts", (root + "/dev/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  return ok();
}

}  // namespace boxcar::executors::native
