// boxcar-keeper's entry point (see keeper.h); a static program embedded in the agent.
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/tree_walk.h"
#include "executors/native/control_channel.h"
#include "executors/oci/keeper.h"
#include "executors/oci/runtime_command.h"

namespace {

using namespace boxcar::executors;
using native::Msg;
using native::Writer;

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

// Moves `fd` above the fds run_command() sets up for its child (0-3).
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const std::string runtime = argv[1], root = argv[2], bundle = argv[3], id = argv[4];
  const std::vector<std::string> unmount(argv + 5, argv + argc);
  // Its own session: a Ctrl-C for `boxcar run` must not kill the keeper before it cleaned up.
  ::setsid();
  // Ignored signals survive exec (the agent ignores SIGPIPE); runc should get the defaults.
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
  int sfd = high(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  int ctl = high(oci::kKeeperControlFd);
  int life = high(oci::kKeeperLifeFd);
  int log = high(::open((bundle + "/runtime.log").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));

  std::string pid_file = bundle + "/init.pid";
  int status = oci::run_command({runtime, "--root", root, "run", "--detach", "--bundle", bundle, "--pid-file",
                                 pid_file, "--preserve-fds", "1", id},
                                log, ctl);
  long pid = status == 0 ? std::atol(read_all(pid_file).c_str()) : 0;
  if (pid > 0) {
    native::send_message(ctl, Writer(Msg::unshared).u64(static_cast<uint64_t>(pid)).data());
  } else {
    std::string what = std::filesystem::path(runtime).filename().string() + " run: " +
                       runtime_message(read_all(bundle + "/runtime.log"));
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
  oci::run_command({runtime, "--root", root, "delete", "--force", id});
  for (const auto& path : unmount) ::umount2(path.c_str(), MNT_DETACH);
  // Not through a mount the unmount left (the workspace mount shows the job's checkout).
  std::atomic<bool> never{false};
  boxcar::remove_tree(bundle, never);
  reap_children();
  return 0;
}
