#include "executors/native/helper_prelude.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executors/native/command_filter.h"
#include "executors/native/control_channel.h"

namespace boxcar::executors::native {

namespace {
// Where a helper keeps its socket (init's control channel was there).
constexpr int kHelperSocketFd = 3;
}  // namespace

int enter_helper(int sock, const CapSet& caps, const char* name) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  if (::dup2(sock, kHelperSocketFd) < 0) ::_exit(1);
  ::close_range(kHelperSocketFd + 1, ~0U, 0);  // the control channel (fd 3) went with the dup2
  if (drop_capabilities(caps)) ::_exit(1);
  if (deny_clone3()) ::_exit(1);  // the commands' filter exactly (command_filter.h)
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::prctl(PR_SET_NAME, name, 0, 0, 0);
  ::umask(0);  // the mode asked for is the mode made
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (pidfd < 0 || send_message(kHelperSocketFd, "P", &pidfd, 1) != 0) ::_exit(1);
  ::close(pidfd);
  return kHelperSocketFd;
}

}  // namespace boxcar::executors::native
