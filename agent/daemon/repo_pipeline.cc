#include "agent/daemon/repo_pipeline.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <new>
#include <vector>

#include "base/beneath.h"
#include "base/size.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

namespace fs = std::filesystem;

namespace {

// How the child says what became of its parse (a crash says it with a signal).
constexpr int kChildOutOfMemory = 86;
constexpr int kChildNoThread = 87;

// Runs `fn` on a thread of its own with a stack of `bytes` and waits for it: the same stack in
// the child and in the agent, whatever thread the caller is on. False: no thread was made.
bool run_on_stack(uint64_t bytes, const std::function<void()>& fn) {
  pthread_attr_t attr;
  if (::pthread_attr_init(&attr) != 0) return false;
  ::pthread_attr_setstacksize(&attr, static_cast<size_t>(bytes));
  pthread_t thread;
  int rc = ::pthread_create(
      &thread, &attr,
      [](void* f) -> void* {
        (*static_cast<const std::function<void()>*>(f))();
        return nullptr;
      },
      const_cast<std::function<void()>*>(&fn));
  ::pthread_attr_destroy(&attr);
  if (rc != 0) return false;
  ::pthread_join(thread, nullptr);
  return true;
}

// Writable private memory the process maps now (VmData), in bytes; 0 when unknown. Plain
// syscalls: it runs in the forked child, where a lock another thread of the agent held at
// the fork (iostreams and locales have some) would never be released.
uint64_t data_in_use() {
  unique_fd fd(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  char buf[4096];
  size_t got = 0;
  while (fd && got < sizeof buf - 1) {
    ssize_t n = ::read(fd.get(), buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  buf[got] = 0;
  const char* at = std::strstr(buf, "\nVmData:");
  return at ? std::strtoull(at + 9, nullptr, 10) * 1024 : 0;
}

// The forked child: a copy of the agent with one thread. It only sets its limits and parses;
// _exit, so nothing of the agent's (atexit handlers, buffers) runs twice.
[[noreturn]] void child_main(std::string_view text, const std::string& file,
                             const pipeline::Limits& limits, const ParserLimits& parser,
                             pid_t agent) {
  // Default actions, so a crash ends the child (the agent's handlers must not run here), and
  // no core file of what may be a whole server's memory.
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGXCPU, SIGTERM, SIGINT, SIGHUP,
                  SIGPIPE}) {
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != agent) ::_exit(1);
  // Nothing of the agent's stays open here: a step's pipe or a client's socket would not see
  // its end while the child lives.
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  rlimit cpu{static_cast<rlim_t>(parser.cpu_seconds), static_cast<rlim_t>(parser.cpu_seconds) + 1};
  ::setrlimit(RLIMIT_CPU, &cpu);
  // The budget counts from what the child maps now: the agent's memory, less the free heap
  // malloc_trim gives back. (Free heap it keeps mapped, the child may use on top.)
  ::malloc_trim(0);
  if (uint64_t data_base = data_in_use(); data_base > 0) {
    // The thread's stack is writable private memory too.
    rlim_t data = data_base + parser.memory_bytes + parser.stack_bytes;
    rlimit r{data, data};
    ::setrlimit(RLIMIT_DATA, &r);
  }
  int code = 0;
  bool ran = run_on_stack(parser.stack_bytes, [&] {
    try {
      (void)pipeline::parse_pipeline(text, file, limits);
    } catch (const std::bad_alloc&) {
      code = kChildOutOfMemory;
    }
  });
  ::_exit(ran ? code : kChildNoThread);
}

std::string limits_text(const ParserLimits& p) {
  return "it runs with a " + format_size(p.stack_bytes) + " stack, " +
         format_size(p.memory_bytes) + " of memory, " + std::to_string(p.cpu_seconds) +
         "s of CPU and " + format_duration(p.wall) + " in all";
}

// Waits for the child: true once it exited, false at the deadline or on `cancelled`.
bool wait_for_exit(pid_t pid, Millis wall, const std::atomic<bool>* cancelled) {
  auto deadline = std::chrono::steady_clock::now() + wall;
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  while (!(cancelled && *cancelled)) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    // Slices, so a cancel is seen within a tenth of a second.
    int slice = static_cast<int>(std::min<int64_t>(left.count(), 100));
    if (pidfd) {
      pollfd p{pidfd.get(), POLLIN, 0};
      if (::poll(&p, 1, slice) > 0) return true;
    } else {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        return true;
      }
      ::usleep(static_cast<useconds_t>(std::min(slice, 20)) * 1000);
    }
  }
  return false;
}

}  // namespace

Result<pipeline::LoadResult> parse_in_child(std::string_view text, const std::string& file,
                                            const pipeline::Limits& limits,
                                            const ParserLimits& parser,
                                            const std::atomic<bool>* cancelled) {
  pid_t agent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Error{std::string("cannot start the pipeline parser: fork: ") + std::strerror(errno)};
  if (pid == 0) child_main(text, file, limits, parser, agent);

  bool exited = wait_for_exit(pid, parser.wall, cancelled);
  if (!exited) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!exited && cancelled && *cancelled) return Error{"cancelled while parsing " + file};
  if (!exited) {
    return Error{"the pipeline parser took longer than " + format_duration(parser.wall) +
                 " on " + file + " and was killed (" + limits_text(parser) + ")"};
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGXCPU || sig == SIGKILL) {
      return Error{"the pipeline parser was stopped on " + file + " (SIG" +
                   std::string(sig == SIGXCPU ? "XCPU" : "KILL") + ": out of CPU time or memory; " +
                   limits_text(parser) + ")"};
    }
    const char* abbrev = ::sigabbrev_np(sig);
    std::string name = abbrev ? abbrev : std::to_string(sig);
    return Error{"the pipeline parser crashed on " + file + ": SIG" + name +
                 (sig == SIGSEGV ? " (a stack overflow or a bug in the parser; " : " (") +
                 limits_text(parser) + "); the agent is unharmed and the file is refused"};
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == kChildOutOfMemory) {
    return Error{"the pipeline parser ran out of memory on " + file + " (" + limits_text(parser) + ")"};
  }
  if (code != 0) {
    return Error{"the pipeline parser failed on " + file + " (exit code " + std::to_string(code) +
                 (code == kChildNoThread ? ": it could not start its thread" : "") + ")"};
  }

  // It finished there, so it finishes here: the same text, limits and stack size.
  pipeline::LoadResult result;
  bool out_of_memory = false;
  bool ran = run_on_stack(parser.stack_bytes, [&] {
    try {
      result = pipeline::parse_pipeline(text, file, limits);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    }
  });
  if (!ran || out_of_memory) return Error{"the agent is out of memory parsing " + file};
  return result;
}

Result<RepoPipeline> load_repo_pipeline(const fs::path& ws, const std::string& file,
                                        const std::string& commit,
                                        const pipeline::Limits& limits,
                                        const ParserLimits& parser,
                                        const std::atomic<bool>* cancelled) {
  std::vector<std::string> names;
  if (!file.empty()) {
    fs::path rel = fs::path(file).lexically_normal();
    if (rel.is_absolute() || rel.empty() || *rel.begin() == "..") {
      return Error{"pipeline file \"" + file + "\" must be a path inside the repository"};
    }
    names = {rel.string()};
  } else {
    names = {".boxcar.toml", "boxcar.toml"};
  }
  // The repository is untrusted: a symlink anywhere on the path (`file = "sub/x"` with `sub`
  // pointing at /etc) must not make the agent read, and then quote in the job log, a host file.
  unique_fd root(::open(ws.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (const auto& n : names) {
    unique_fd fd = open_beneath(root.get(), n, O_RDONLY);
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<uint64_t>(st.st_size) > limits.file_bytes) {
      return Error{"pipeline file " + n + " is " + format_size(static_cast<uint64_t>(st.st_size)) +
                   ", larger than " + format_size(limits.file_bytes) +
                   " (the limit for a pipeline file): keep long scripts in the repository and "
                   "call them from \"run\""};
    }
    RepoPipeline out;
    out.name = n;
    out.text.assign(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < out.text.size()) {
      ssize_t r = ::read(fd.get(), out.text.data() + got, out.text.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    out.text.resize(got);
    auto loaded = parse_in_child(out.text, out.name, limits, parser, cancelled);
    if (!loaded.ok()) return loaded.error();
    out.loaded = std::move(*loaded);
    return out;
  }
  std::string at = "at the root of commit " + commit.substr(0, 12);
  if (!file.empty()) return Error{"no pipeline file: " + file + " is not in commit " + commit.substr(0, 12)};
  return Error{"no pipeline file: neither .boxcar.toml nor boxcar.toml " + at};
}

}  // namespace boxcar::agent
