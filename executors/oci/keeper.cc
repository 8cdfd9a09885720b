#include "executors/oci/keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "executors/native/control_channel.h"

namespace boxcar::executors::oci {

namespace {

using native::Msg;
using native::Writer;

// Runs `argv` and waits for it: stdin and stdout /dev/null, stderr `err_fd` (or /dev/null),
// and `ctl` as fd 3 when given. Returns the wait status, or -1.
int run(const std::vector<std::string>& argv, int err_fd, int ctl) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    // Every fd here is >= 10 (see keeper_main), so these dup2s overwrite nothing we need.
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

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// runc logs as logfmt (`time=".." level=error msg="..."`): the last msg, unquoted; else the
// last line as it is.
std::string runtime_message(const std::string& log) {
  std::string last;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto at = line.find("msg=\"");
    if (at == std::string::npos) {
      last = line;
      continue;
    }
    std::string msg;
    for (size_t i = at + 5; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      msg += line[i];
    }
    last = msg;
  }
  if (last.size() > 600) last = last.substr(0, 600) + "...";
  return last.empty() ? "exited without saying why" : last;
}

int high(int fd) {
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return moved;
}

void reap_children() {
  int status;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

void teardown(const KeeperConfig& c) {
  run({c.runtime, "--root", c.runtime_root, "delete", "--force", c.id}, -1, -1);
  for (const auto& path : c.unmount) ::umount2(path.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(c.bundle, ec);
  reap_children();
}

[[noreturn]] void keeper_main(const KeeperConfig& c, int ctl, int life) {
  // Its own session: a Ctrl-C for `boxcar run` must not kill the keeper before it cleaned up.
  ::setsid();
  ::prctl(PR_SET_NAME, "boxcar-keeper", 0, 0, 0);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  // The container's init is started by runc, which exits: init comes to us to be reaped,
  // instead of to the machine's pid 1 (which in a container may never reap it).
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  sfd = high(sfd);
  ctl = high(ctl);
  life = high(life);
  int log = high(::open((c.bundle + "/runtime.log").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));

  std::string pid_file = c.bundle + "/init.pid";
  int status = run({c.runtime, "--root", c.runtime_root, "run", "--detach", "--bundle", c.bundle, "--pid-file",
                    pid_file, "--preserve-fds", "1", c.id},
                   log, ctl);
  long pid = 0;
  if (status == 0) pid = std::atol(read_all(pid_file).c_str());
  if (pid > 0) {
    native::send_message(ctl, Writer(Msg::unshared).u64(static_cast<uint64_t>(pid)).data());
  } else {
    std::string what = std::filesystem::path(c.runtime).filename().string() + " run: " +
                       runtime_message(read_all(c.bundle + "/runtime.log"));
    native::send_message(ctl, Writer(Msg::failed).str(what).u64(0).data());
  }
  ::close(ctl);
  ::close(log);

  for (;;) {
    pollfd p[2] = {{life, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) == sizeof info) {
      }
      reap_children();
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) break;  // the agent let go, or died
  }
  teardown(c);
  ::_exit(0);
}

}  // namespace

Result<Keeper> spawn_keeper(const KeeperConfig& config) {
  int pipe[2];
  if (::pipe2(pipe, O_CLOEXEC) != 0) return Error{"keeper pipe", errno};
  unique_fd life_read(pipe[0]), life_write(pipe[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error{"fork", errno};
  if (pid == 0) {
    int keep[] = {config.ctl, life_read.get()};
    std::sort(std::begin(keep), std::end(keep));
    unsigned next = 3;
    for (int fd : keep) {
      if (static_cast<unsigned>(fd) > next) ::close_range(next, static_cast<unsigned>(fd) - 1, 0);
      next = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(next, ~0U, 0);
    keeper_main(config, config.ctl, life_read.get());
  }
  Keeper k;
  k.pid = pid;
  k.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!k.pidfd) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error{"pidfd_open", e};
  }
  k.life = std::move(life_write);
  return k;
}

void remove_leftovers(const std::string& runtime, const std::string& runtime_root, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runtime_root, ec)) {
    run({runtime, "--root", runtime_root, "delete", "--force", entry.path().filename().string()}, -1, -1);
  }
  // Deepest first: a sandbox's .git binds sit on its workspace mount.
  std::vector<std::string> mounts;
  std::istringstream info(read_all("/proc/self/mountinfo"));
  for (std::string line; std::getline(info, line);) {
    std::istringstream f(line);
    std::string id, parent, devs, root, point;
    f >> id >> parent >> devs >> root >> point;
    if (point == dir || point.rfind(dir + "/", 0) == 0) mounts.push_back(point);
  }
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
  fs::remove_all(dir, ec);
}

}  // namespace boxcar::executors::oci
