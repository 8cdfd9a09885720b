#include "executors/native/net_cls.h"

#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/mountinfo.h"

namespace boxcar::executors::native {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Ours, else the machine's under /sys/fs/cgroup: a mount elsewhere may be someone's passing one
// (a test's temporary directory), unmounted under the steps' cgroups at any time.
std::string find_mount() {
  std::string system;
  for (const MountInfo& m : parse_mountinfo(read_file("/proc/self/mountinfo"))) {
    if (m.type != "cgroup" || ("," + m.super_options + ",").find(",net_cls,") == std::string::npos) continue;
    if (m.root != "/") continue;  // a bind of a sub-cgroup shows only part of the hierarchy
    if (m.mount_point == kNetClsMountPoint) return m.mount_point;
    if (system.empty() && m.mount_point.rfind("/sys/fs/cgroup/", 0) == 0) system = m.mount_point;
  }
  return system;
}

}  // namespace

Result<std::string> net_cls_mount() {
  if (std::string found = find_mount(); !found.empty()) return found;
  std::error_code ec;
  std::filesystem::create_directories(kNetClsMountPoint, ec);
  if (ec) {
    return Error{std::string("net_cls: creating ") + kNetClsMountPoint + ": " + ec.message(), ec.value()};
  }
  // Mounting a v1 hierarchy that already exists elsewhere (another mount namespace) joins it,
  // and only the controllers named may be asked for: net_cls alone, as the kernel has it.
  if (::mount("cgroup", kNetClsMountPoint, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "net_cls") != 0) {
    int e = errno;
    // Another boxcar process mounted it meanwhile.
    if (std::string found = find_mount(); !found.empty()) return found;
    return Error{std::string("net_cls: mounting the cgroup v1 net_cls controller on ") + kNetClsMountPoint + ": " +
                     std::strerror(e) +
                     (e == EBUSY ? " (it is mounted together with other controllers in a hierarchy this "
                                   "mount namespace does not show)"
                                 : " (is CONFIG_CGROUP_NET_CLASSID off, or cgroup_no_v1 set?)"),
                 e};
  }
  return std::string(kNetClsMountPoint);
}

}  // namespace boxcar::executors::native
