#include "executors/native/init_executable.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "executors/native/init.h"

// boxcar-init's bytes, from init_blob.S (.incbin of the static program at build time).
extern "C" const unsigned char boxcar_init_start[];
extern "C" const unsigned char boxcar_init_end[];

namespace boxcar::executors::native {

namespace {

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

Error memfd_error(const std::string& what, int err) {
  return Error{"sandbox init: " + what + ": " + std::strerror(err), err};
}

}  // namespace

Result<unique_fd> make_init_memfd() {
  // MFD_EXEC: kernels since 6.3 warn about (or, with vm.memfd_noexec = 2, refuse) executable
  // memfds that do not say so; older kernels do not know the flag.
  unique_fd fd(::memfd_create(kInitName, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (!fd && errno == EINVAL) fd.reset(::memfd_create(kInitName, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return memfd_error("memfd_create", errno);
  const unsigned char* p = boxcar_init_start;
  while (p < boxcar_init_end) {
    ssize_t n = ::write(fd.get(), p, static_cast<size_t>(boxcar_init_end - p));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return memfd_error("writing the memfd", n < 0 ? errno : EIO);
    p += n;
  }
  if (::fchmod(fd.get(), 0555) != 0) return memfd_error("fchmod", errno);
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return memfd_error("sealing the memfd", errno);
  }
  // Keep only a read-only descriptor: exec refuses a file that is open for writing on some
  // kernels, and the seals already make writing pointless.
  std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  unique_fd ro(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ro) return memfd_error("reopening the memfd read-only", errno);
  return ro;
}

Failure init_descriptors(int& ctl, int& init_fd) {
  // Copies above the fds to be set, so that no dup3 below lands on one of them.
  int ctl_copy = ::fcntl(ctl, F_DUPFD_CLOEXEC, kInitControlFd + 1);
  int init_copy = ::fcntl(init_fd, F_DUPFD_CLOEXEC, kInitControlFd + 1);
  if (ctl_copy < 0 || init_copy < 0) return fail("init descriptors");
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return fail("init /dev/null");
  for (int fd = 0; fd < 3; ++fd) {
    if (fd == null ? ::fcntl(fd, F_SETFD, 0) != 0 : ::dup3(null, fd, 0) < 0) return fail("init stdio");
  }
  if (::dup3(ctl_copy, kInitControlFd, 0) < 0) return fail("init control channel");
  ctl = kInitControlFd;
  init_fd = init_copy;
  // Only 0-2, the channel and the program (close-on-exec) stay.
  if (init_fd > kInitControlFd + 1) ::close_range(kInitControlFd + 1, static_cast<unsigned>(init_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(init_fd) + 1, ~0U, 0);
  return ok();
}

Failure exec_init(int init_fd, uint64_t caps_mask) {
  char caps[32];
  std::snprintf(caps, sizeof caps, "--caps=%llx", static_cast<unsigned long long>(caps_mask));
  char* const argv[] = {const_cast<char*>(kInitName), caps, nullptr};
  char* const envp[] = {nullptr};
  ::syscall(SYS_execveat, init_fd, "", argv, envp, AT_EMPTY_PATH);
  return fail("init exec");
}

}  // namespace boxcar::executors::native
