#include "executors/native/user_ns.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace boxcar::executors::native {

namespace {

int write_proc(pid_t pid, const char* file, const std::string& value) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size()) ? 0 : errno;
  ::close(fd);
  return rc;
}

}  // namespace

Status write_id_maps(pid_t pid, IdRange ids) {
  std::string map = "0 " + std::to_string(ids.base) + " " + std::to_string(ids.count) + "\n";
  for (const char* file : {"uid_map", "gid_map"}) {
    if (int rc = write_proc(pid, file, map)) {
      return Error{std::string("user namespace: writing ") + file + ": " + std::strerror(rc), rc};
    }
  }
  return {};
}

Result<unique_fd> make_idmap_userns(IdRange ids) {
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
    return Error{std::string("user namespace: socketpair: ") + std::strerror(errno), errno};
  }
  unique_fd ours(sp[0]), theirs_end(sp[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error{std::string("user namespace: fork: ") + std::strerror(errno), errno};
  if (pid == 0) {
    // Only our end of the socket: a copy of another thread's fds held here could keep
    // that thread waiting for an end of file.
    if (sp[1] > 3) ::close_range(3, static_cast<unsigned>(sp[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(sp[1]) + 1, ~0U, 0);
    char c = ::unshare(CLONE_NEWUSER) == 0 ? 'U' : 'F';
    (void)!::write(sp[1], &c, 1);
    (void)!::read(sp[1], &c, 1);  // holds the namespace until the agent has opened it
    ::_exit(0);
  }
  theirs_end.reset();
  char c = 0;
  (void)!::read(ours.get(), &c, 1);
  std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
  Status maps = c == 'U' ? write_id_maps(pid, ids) : Status(Error{"user namespace: unshare failed", EPERM});
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  int open_err = errno;
  ours.reset();
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!maps) return maps.error();
  if (!fd) return Error{"user namespace: opening " + path + ": " + std::strerror(open_err), open_err};
  return fd;
}

Failure become_root() {
  if (::setgroups(0, nullptr) != 0) return fail("user namespace setgroups");
  if (::setresgid(0, 0, 0) != 0) return fail("user namespace setresgid");
  if (::setresuid(0, 0, 0) != 0) return fail("user namespace setresuid");
  return ok();
}

}  // namespace boxcar::executors::native
