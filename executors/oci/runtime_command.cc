#include "executors/oci/runtime_command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace boxcar::executors::oci {

int run_command(const std::vector<std::string>& argv, int err_fd, int ctl) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(err_fd >= 0 ? err_fd : null, 2) < 0) ::_exit(126);
    if (ctl >= 0 && ::dup2(ctl, 3) < 0) ::_exit(126);
    ::close_range(ctl >= 0 ? 4 : 3, ~0U, 0);
    char* env[] = {const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};
    ::execve(args[0], args.data(), env);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace boxcar::executors::oci
