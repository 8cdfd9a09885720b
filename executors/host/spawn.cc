#include "executors/host/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string_view>

namespace boxcar::executors::host {

namespace {

// What the child reports over the status pipe when a setup step fails before exec.
struct ChildFailure {
  int step;
  int err;
};
enum Step { kSetsid, kJoinCgroup, kStdin, kStdout, kStderr, kChdir, kCloseFds, kNumSteps };
constexpr const char* kStepNames[kNumSteps] = {
    "setsid", "join cgroup", "stdin", "stdout", "stderr", "chdir", "close descriptors"};

// Everything the child needs, built before the clone: between clone and exec the child may
// only make system calls (another thread may hold malloc's lock at the moment of the clone).
struct ChildPlan {
  std::vector<std::string> candidates;  // paths to try, in PATH order
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<char*> sh_argv;  // for ENOEXEC: {"/bin/sh", <candidate>, argv[1..]}
  std::string cwd;
  std::string not_found_prefix;  // `boxcar: cannot run "foo": `
  int dev_null = -1, out = -1, err = -1, status = -1, cgroup_procs = -1;
  unsigned max_fd = 0;
};

[[noreturn]] void fail(const ChildPlan& plan, Step step) {
  ChildFailure f{step, errno};
  (void)!::write(plan.status, &f, sizeof f);
  ::_exit(127);
}

// Runs in the child. No allocation, no locks: system calls and reads of `plan` only.
[[noreturn]] void child_main(ChildPlan& plan) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (::setsid() < 0) fail(plan, kSetsid);
  ::umask(022);  // as in a sandbox: a build's files are not private to the agent's umask 077
  if (plan.cgroup_procs >= 0 && ::write(plan.cgroup_procs, "0", 1) != 1) fail(plan, kJoinCgroup);
  if (::dup2(plan.dev_null, 0) < 0) fail(plan, kStdin);
  if (::dup2(plan.out, 1) < 0) fail(plan, kStdout);
  if (::dup2(plan.err, 2) < 0) fail(plan, kStderr);
  if (::chdir(plan.cwd.c_str()) < 0) fail(plan, kChdir);
  // Everything above 2 closes at exec; the status pipe stays open until then.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (unsigned fd = 3; fd < plan.max_fd; ++fd)
      ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  }

  // execvpe's search: keep going past ENOENT/ENOTDIR/EACCES, stop at anything else.
  int error = ENOENT;
  bool saw_eacces = false;
  for (const std::string& path : plan.candidates) {
    ::execve(path.c_str(), plan.argv.data(), plan.envp.data());
    error = errno;
    if (error == ENOEXEC) {
      plan.sh_argv[1] = const_cast<char*>(path.c_str());
      ::execve("/bin/sh", plan.sh_argv.data(), plan.envp.data());
      error = errno;
      break;
    }
    if (error == EACCES) {
      saw_eacces = true;
    } else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ENODEV &&
               error != ETIMEDOUT) {
      break;
    }
  }
  if (saw_eacces && (error == ENOENT || error == ENOTDIR)) error = EACCES;

  const char* text = ::strerrordesc_np(error);
  if (!text) text = "cannot execute";
  iovec iov[3] = {{const_cast<char*>(plan.not_found_prefix.data()), plan.not_found_prefix.size()},
                  {const_cast<char*>(text), ::strlen(text)},
                  {const_cast<char*>("\n"), 1}};
  (void)!::writev(2, iov, 3);
  ::_exit(error == ENOENT || error == ENOTDIR ? 127 : 126);
}

std::string_view path_of(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    if (entry.starts_with("PATH=")) return std::string_view(entry).substr(5);
  }
  return "/bin:/usr/bin";  // glibc's execvp default
}

std::vector<std::string> candidates(const std::string& program, std::string_view path) {
  if (program.find('/') != std::string::npos) return {program};
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t colon = path.find(':', pos);
    std::string_view dir =
        path.substr(pos, colon == std::string_view::npos ? path.npos : colon - pos);
    out.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + program);
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  return out;
}

// A descriptor numbered above 2, so that dup2 onto 0-2 in the child always copies it (dup2
// of a descriptor onto itself would keep its close-on-exec flag).
Result<unique_fd> above_stdio(unique_fd fd) {
  if (fd.get() > 2) return fd;
  unique_fd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!moved) return Error{std::string("fcntl: ") + ::strerror(errno), errno};
  return moved;
}

Result<std::pair<unique_fd, unique_fd>> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + ::strerror(errno), errno};
  unique_fd r(fds[0]), w(fds[1]);
  auto r2 = above_stdio(std::move(r));
  if (!r2) return r2.error();
  auto w2 = above_stdio(std::move(w));
  if (!w2) return w2.error();
  return std::make_pair(std::move(*r2), std::move(*w2));
}

Error start_error(const SpawnRequest& request, const std::string& what, int err) {
  return Error{"cannot start \"" + request.argv[0] + "\": " + what + ": " + ::strerror(err), err};
}

}  // namespace

Result<Child> spawn(const SpawnRequest& request) {
  if (request.argv.empty() || request.argv[0].empty()) return Error{"empty command", EINVAL};

  auto out = make_pipe();
  if (!out) return out.error();
  auto err = make_pipe();
  if (!err) return err.error();
  auto status = make_pipe();
  if (!status) return status.error();
  unique_fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd) return start_error(request, "open /dev/null", errno);
  auto dev_null = above_stdio(std::move(null_fd));
  if (!dev_null) return dev_null.error();
  // A 1 MiB stdout pipe takes log capture from about 1 to 1.5 GB/s here. Only for root: an
  // unprivileged user past fs.pipe-user-pages-soft would get 4 KiB pipes everywhere after.
  if (::geteuid() == 0) ::fcntl(out->second.get(), F_SETPIPE_SZ, 1 << 20);

  ChildPlan plan;
  plan.candidates = candidates(request.argv[0], path_of(request.env));
  for (const std::string& a : request.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const std::string& e : request.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  plan.sh_argv = {const_cast<char*>("/bin/sh"), nullptr};
  plan.sh_argv.insert(plan.sh_argv.end(), plan.argv.begin() + 1, plan.argv.end());
  plan.cwd = request.cwd;
  plan.not_found_prefix = "boxcar: cannot run \"" + request.argv[0] + "\": ";
  plan.dev_null = dev_null->get();
  plan.out = out->second.get();
  plan.err = err->second.get();
  plan.status = status->second.get();
  rlimit nofile{};
  plan.max_fd = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
                    ? static_cast<unsigned>(nofile.rlim_cur)
                    : 1u << 16;

  // Signals stay blocked from the clone until the child has reset their handlers: a handler
  // of the agent must never run in the child.
  sigset_t all, saved;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);

  // The child joins its cgroup itself (one write before exec), which lets it be started the
  // way posix_spawn starts children: sharing our memory (CLONE_VM) on a stack of its own while
  // we wait (CLONE_VFORK) until it has exec'd. Copying the agent's page tables for a child that
  // execs at once, and the copy-on-write faults after, cost more than the rest of a spawn.
  unique_fd procs;
  if (request.cgroup_fd >= 0) {
    procs.reset(::openat(request.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!procs) {
      int e = errno;
      ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
      return start_error(request, "open cgroup.procs", e);
    }
    plan.cgroup_procs = procs.get();
  }
  int pidfd = -1;
  // The child runs on this buffer of our frame while we are suspended in clone().
  alignas(64) char child_stack[32 * 1024];
  // No exit signal: nobody else's waitpid(-1) can reap it (waitid needs __WALL), and no
  // SIGCHLD reaches the agent.
  long pid = ::clone(
      [](void* p) -> int { child_main(*static_cast<ChildPlan*>(p)); }, child_stack + sizeof child_stack,
      CLONE_VM | CLONE_VFORK | CLONE_PIDFD, &plan, &pidfd);
  if (pid < 0 && (errno == ENOSYS || errno == EINVAL)) {
    pidfd = -1;
    pid = ::fork();
    if (pid == 0) child_main(plan);
  }
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) return start_error(request, "clone", clone_errno);

  Child child;
  child.pid = static_cast<pid_t>(pid);
  // glibc 2.36 declares pidfd_open without C linkage in C++: call the kernel directly.
  if (pidfd < 0) pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child.pid, 0));
  if (pidfd < 0) {
    int e = errno;
    ::kill(child.pid, SIGKILL);
    siginfo_t info{};
    ::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | __WALL);
    return start_error(request, "pidfd_open", e);
  }
  child.pidfd.reset(pidfd);
  status->second.reset();
  out->second.reset();
  err->second.reset();

  // EOF: the exec succeeded (the pipe is close-on-exec) or the program was not found.
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status->first.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.pidfd.get()), &info,
             WEXITED | __WALL);
    int step = failure.step >= 0 && failure.step < kNumSteps ? failure.step : 0;
    return start_error(request, kStepNames[step], failure.err);
  }

  ::fcntl(out->first.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err->first.get(), F_SETFL, O_NONBLOCK);
  child.out = std::move(out->first);
  child.err = std::move(err->first);
  return child;
}

}  // namespace boxcar::executors::host
