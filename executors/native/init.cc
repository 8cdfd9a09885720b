#include "executors/native/init.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "executors/native/caps.h"
#include "executors/native/command_filter.h"
#include "executors/native/command_fork.h"
#include "executors/native/control_channel.h"
#include "executors/native/exec_user.h"
#include "executors/native/init_files.h"
#include "executors/native/init_watch.h"

namespace boxcar::executors::native {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void report_and_exit(int err_fd, const std::string& what, int err, int code) {
  std::string line = "boxcar: " + what + ": " + std::strerror(err) + "\n";
  (void)!::write(err_fd, line.data(), line.size());
  ::_exit(code);
}

// Like execvpe, but looks the program up in the PATH of the command's own environment.
[[noreturn]] void exec_in_path(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string path = kDefaultPath;
  for (const auto& e : env) {
    envp.push_back(const_cast<char*>(e.c_str()));
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  envp.push_back(nullptr);
  const std::string& prog = argv[0];
  int err = ENOENT;
  if (prog.find('/') != std::string::npos) {
    ::execve(prog.c_str(), args.data(), envp.data());
    err = errno;
  } else {
    size_t start = 0;
    bool eacces = false;
    for (;;) {
      size_t end = path.find(':', start);
      std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
      std::string candidate = (dir.empty() ? "." : dir) + "/" + prog;
      ::execve(candidate.c_str(), args.data(), envp.data());
      if (errno == EACCES) eacces = true;
      else if (errno != ENOENT && errno != ENOTDIR) {
        err = errno;
        break;
      }
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (err == ENOENT && eacces) err = EACCES;
  }
  report_and_exit(2, prog, err, err == ENOENT ? 127 : 126);
  ::_exit(127);
}

[[noreturn]] void report_message_and_exit(int err_fd, const std::string& message, int code) {
  std::string line = "boxcar: " + message + "\n";
  (void)!::write(err_fd, line.data(), line.size());
  ::_exit(code);
}

// ExecRequest::user: looked up in the sandbox's own files, then taken on. A user that is not
// there fails like a missing program (127).
void switch_user(const std::string& spec, std::vector<std::string>& env) {
  ExecUser user;
  std::string error = resolve_user(spec, read_etc_file("/etc/passwd"), read_etc_file("/etc/group"), user);
  if (!error.empty()) report_message_and_exit(2, error, 127);
  if (Failure f = become_user(user)) {
    std::string hint = f.err == EINVAL ? " (that id is outside the sandbox's user namespace)" : "";
    report_message_and_exit(2, "user \"" + spec + "\": " + f.facility + ": " + std::strerror(f.err) + hint, 126);
  }
  for (const auto& e : env) {
    if (e.rfind("HOME=", 0) == 0) return;
  }
  env.push_back("HOME=" + user.home);
}

// `in`: the command's stdin (ExecRequest::stdin_pipe), or -1 for /dev/null.
[[noreturn]] void run_command(const std::vector<std::string>& argv, std::vector<std::string> env,
                              const std::string& workdir, const std::string& user, int in, int out, int err,
                              const CapSet& caps) {
  if (Failure f = deny_clone3()) report_and_exit(err, f.facility, f.err, 126);
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  ::setsid();
  // What a build expects, whatever the agent runs under (boxcar serve keeps umask 077 for
  // its own data directory).
  ::umask(022);
  if (in < 0) in = ::open("/dev/null", O_RDONLY);
  if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
  ::close_range(3, ~0U, 0);
  if (argv.empty()) report_and_exit(2, "exec", EINVAL, 127);
  std::string dir = workdir.empty() || workdir[0] != '/' ? "/workspace/" + workdir : workdir;
  if (::chdir(dir.c_str()) != 0) report_and_exit(2, "workdir " + dir, errno, 126);
  if (Failure f = drop_capabilities(caps)) report_and_exit(2, f.facility, f.err, 126);
  if (!user.empty()) switch_user(user, env);
  exec_in_path(argv, env);
}

void send_done(int ctl, uint64_t id, int status) {
  send_message(ctl, Writer(Msg::done).u64(id).u64(static_cast<uint32_t>(status)).data());
}

// Forks the command of Msg::exec `id` (into its own cgroup when the agent passed one) and
// reports its pid and pidfd before it runs; 0 when it could not be started (reported as done).
pid_t start_command(int ctl, uint64_t id, const std::vector<std::string>& args, std::vector<std::string> env,
                    const std::string& workdir, const std::string& user, uint64_t flags,
                    const std::vector<int>& fds, const CapSet& caps) {
  size_t want = 2 + ((flags & exec_stdin) ? 1 : 0) + ((flags & exec_tree) ? 1 : 0);
  if (fds.size() != want) {
    send_done(ctl, id, 127 << 8);
    return 0;
  }
  int in = (flags & exec_stdin) ? fds[2] : -1;
  int tree = (flags & exec_tree) ? fds.back() : -1;
  int pidfd = -1;
  pid_t pid = fork_command(tree, pidfd);
  if (pid == 0) run_command(args, std::move(env), workdir, user, in, fds[0], fds[1], caps);
  if (pid < 0) {
    std::string line = std::string("boxcar: starting the command") + (tree >= 0 ? " in its own cgroup" : "") +
                       ": " + std::strerror(errno) + "\n";
    (void)!::write(fds[1], line.data(), line.size());
    send_done(ctl, id, 126 << 8);
    return 0;
  }
  std::string started = Writer(Msg::started).u64(id).u64(static_cast<uint64_t>(pid)).data();
  send_message(ctl, started, &pidfd, pidfd >= 0 ? 1 : 0);
  if (pidfd >= 0) ::close(pidfd);
  return pid;
}

[[noreturn]] void start_failed(int ctl, const char* facility, int err) {
  send_message(ctl, Writer(Msg::failed).str(facility).u64(static_cast<uint64_t>(err)).data());
  ::_exit(1);
}

// `--caps=HEX` into `mask`; false when the arguments are anything else.
bool parse_caps(int argc, char** argv, uint64_t& mask) {
  if (argc != 2 || std::strncmp(argv[1], "--caps=", 7) != 0) return false;
  char* end = nullptr;
  errno = 0;
  mask = std::strtoull(argv[1] + 7, &end, 16);
  return errno == 0 && end != argv[1] + 7 && *end == 0;
}

}  // namespace

int init_main(int argc, char** argv) {
  const int ctl = kInitControlFd;
  // First: exec made this process dumpable again, and steps are root in its user namespace.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) start_failed(ctl, "init dumpable", errno);
  // exec from a memfd names the process after the fd number (or the memfd) otherwise.
  ::prctl(PR_SET_NAME, kInitName, 0, 0, 0);
  ::fcntl(ctl, F_SETFD, FD_CLOEXEC);
  ::close_range(kInitControlFd + 1, ~0U, 0);  // nothing else was passed on purpose
  // Ignored signals survive exec, and commands would inherit them (SIGPIPE ignored breaks
  // pipelines). pid 1 gets no default action from inside its namespace anyway.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  uint64_t mask = 0;
  if (!parse_caps(argc, argv, mask)) start_failed(ctl, "init arguments", EINVAL);
  const CapSet caps = CapSet::from_mask(mask);
  send_message(ctl, Writer(Msg::ready).data());

  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) ::_exit(1);

  std::unordered_map<pid_t, uint64_t> running;
  std::string body;
  std::vector<int> fds;
  for (;;) {
    pollfd p[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    if (p[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) == sizeof info) {
        // Forwarded only from outside: a sender in an ancestor pid namespace shows as pid 0.
        if (info.ssi_signo != SIGCHLD && info.ssi_pid == 0) ::kill(-1, SIGTERM);
      }
      int status;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = running.find(pid);
        if (it == running.end()) continue;  // an orphan, reaped
        send_done(ctl, it->second, status);
        running.erase(it);
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      fds.clear();
      int rc = recv_message(ctl, body, fds, MSG_DONTWAIT);
      if (rc == EAGAIN) continue;
      if (rc != 0) ::_exit(0);  // the agent is gone: dying takes the whole sandbox with it
      Msg type = static_cast<Msg>(body[0]);
      if (type == Msg::terminate) {
        ::kill(-1, SIGTERM);
      } else if (type == Msg::helper) {
        start_file_helper(body, fds, caps);
      } else if (type == Msg::watch) {
        start_watch_helper(body, fds, caps);
      } else if (type == Msg::configure) {
        Reader r(body);
        std::string hostname = r.str();
        if (r.ok()) ::sethostname(hostname.data(), hostname.size());
      } else if (type == Msg::exec) {
        Reader r(body);
        uint64_t id = r.u64();
        auto args = r.strs();
        auto env = r.strs();
        std::string workdir = r.str();
        std::string user = r.str();
        uint64_t flags = r.u64();
        if (!r.ok()) {
          send_done(ctl, id, 127 << 8);
        } else if (pid_t pid = start_command(ctl, id, args, std::move(env), workdir, user, flags, fds, caps)) {
          running[pid] = id;
        }
      }
      for (int fd : fds) ::close(fd);
    }
  }
}

}  // namespace boxcar::executors::native
