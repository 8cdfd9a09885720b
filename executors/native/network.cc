#include "executors/native/network.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace boxcar::executors::native {

namespace {

int bring_lo_up() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = 0;
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    rc = errno;
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) rc = errno;
  }
  ::close(s);
  return rc;
}

void write_sysctl(const char* path, const char* value) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, value, std::strlen(value));
  ::close(fd);
}

}  // namespace

Result<unique_fd> make_job_netns() {
  // setns/unshare of the network namespace act on the calling thread only, so the agent's
  // thread can step into a new namespace, configure it and step back without a fork.
  unique_fd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return Error{std::string("network namespace: ") + std::strerror(errno), errno};
  if (::unshare(CLONE_NEWNET) != 0) {
    int e = errno;
    return Error{std::string("network namespace: unshare: ") + std::strerror(e), e};
  }
  int lo = bring_lo_up();
  write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
  write_sysctl("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
  unique_fd ns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  int open_err = errno;
  if (::setns(original.get(), CLONE_NEWNET) != 0) {
    int e = errno;
    return Error{std::string("network namespace: returning to the host's: ") + std::strerror(e), e};
  }
  if (lo != 0) return Error{std::string("network namespace: loopback up: ") + std::strerror(lo), lo};
  if (!ns) return Error{std::string("network namespace: ") + std::strerror(open_err), open_err};
  return ns;
}

Result<unique_fd> adopt_job_netns(int netns_fd) {
  int type = ::ioctl(netns_fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    int e = type < 0 ? errno : EINVAL;
    return Error{"the job's network namespace (fd " + std::to_string(netns_fd) + ") is not a network namespace" +
                     (type < 0 ? std::string(": ") + std::strerror(e) : std::string()),
                 e};
  }
  unique_fd dup(::fcntl(netns_fd, F_DUPFD_CLOEXEC, 3));
  if (!dup) return Error{std::string("the job's network namespace: dup: ") + std::strerror(errno), errno};
  return dup;
}

Failure enter_job_network(NetworkMode mode, int netns_fd) {
  if (mode != NetworkMode::job) return ok();
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return fail("network namespace join");
  return ok();
}

Failure loopback_up() {
  if (int rc = bring_lo_up()) return fail("network loopback", rc);
  return ok();
}

}  // namespace boxcar::executors::native
