#include "testing/private_hosts_file.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "base/unique_fd.h"

namespace boxcar::testing {
namespace {

constexpr const char* kFile = "/tmp/boxcar-test-hosts-";

std::string& hosts_path() {
  static std::string path = kFile + std::to_string(::getpid());
  return path;
}

Status enter_namespace() {
  if (::unshare(CLONE_NEWNS) != 0) return Error("unshare(CLONE_NEWNS) for a private /etc/hosts", errno);
  // Private propagation first: the bind mount must not leak back into the machine's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Error("mount --make-rprivate /", errno);
  unique_fd fd(::open(hosts_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error("create " + hosts_path(), errno);
  if (::mount(hosts_path().c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr) != 0)
    return Error("bind-mount " + hosts_path() + " on /etc/hosts", errno);
  // The file stays reachable through the mount; its name can go now.
  ::unlink(hosts_path().c_str());
  return {};
}

}  // namespace

Status set_private_hosts(const std::string& content) {
  static Status entered = enter_namespace();
  if (!entered) return entered;
  unique_fd fd(::open("/etc/hosts", O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) return Error("open the private /etc/hosts", errno);
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) return Error("write the private /etc/hosts", errno);
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace boxcar::testing
