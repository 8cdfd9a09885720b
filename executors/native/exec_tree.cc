#include "executors/native/exec_tree.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "executors/native/command_fork.h"

namespace boxcar::executors::native {

namespace {

int write_file(const std::string& path, std::string_view value) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) return errno;
  return 0;
}

Error tree_error(const std::string& what, int err) {
  return Error{"the command's cgroup: " + what + ": " + std::strerror(err), err};
}

}  // namespace

Result<ExecTree> ExecTree::create(const std::string& parent, const std::string& name, uid_t owner) {
  ExecTree t;
  t.path_ = parent + "/" + name;
  if (::mkdir(t.path_.c_str(), 0755) != 0) return tree_error("mkdir " + t.path_, errno);
  if (::chown((t.path_ + "/cgroup.procs").c_str(), owner, static_cast<gid_t>(-1)) != 0) {
    int e = errno;
    ::rmdir(t.path_.c_str());
    return tree_error("delegating " + t.path_, e);
  }
  t.dir_.reset(::open(t.path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!t.dir_) {
    int e = errno;
    ::rmdir(t.path_.c_str());
    return tree_error("open " + t.path_, e);
  }
  return t;
}

Status ExecTree::signal(int sig) const {
  if (sig == SIGKILL) return kill();
  unique_fd fd(::open((path_ + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return tree_error("reading " + path_, errno);
  // The list is one pid a line; the sandbox controls how long it is (bounded by its pids).
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc() && pid > 0) ::kill(pid, sig);
    p = next;
    while (p < end && *p == '\n') ++p;
    if (ec != std::errc()) break;
  }
  return {};
}

Status ExecTree::kill() const {
  if (int rc = write_file(path_ + "/cgroup.kill", "1")) return tree_error("cgroup.kill in " + path_, rc);
  return {};
}

bool ExecTree::remove() const { return path_.empty() || ::rmdir(path_.c_str()) == 0 || errno == ENOENT; }

std::string probe_exec_trees(const std::string& tree_root) {
  if (tree_root.empty()) return "no cgroup v2 hierarchy is mounted";
  if (::access((tree_root + "/cgroup.kill").c_str(), F_OK) != 0) {
    return "this kernel has no cgroup.kill (Linux 5.14 or newer has it)";
  }
  std::string probe = tree_root + "/probe";
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) {
    return "cgroup v2 is not writable here: mkdir " + probe + ": " + std::strerror(errno);
  }
  std::string why;
  {
    unique_fd dir(::open(probe.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    int pidfd = -1;
    pid_t pid = dir ? fork_command(dir.get(), pidfd) : -1;
    if (pid == 0) ::_exit(0);
    if (pid < 0) {
      why = std::string("clone3 CLONE_INTO_CGROUP failed (Linux 5.7 or newer has it): ") + std::strerror(errno);
    } else {
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (pidfd >= 0) ::close(pidfd);
  }
  ::rmdir(probe.c_str());
  return why;
}

}  // namespace boxcar::executors::native
