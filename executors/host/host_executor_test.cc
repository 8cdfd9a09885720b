#include "executors/host/host_executor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "executors/host/process_tree.h"

namespace boxcar::executors {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Generous: these bound a broken test, they do not measure anything.
constexpr auto kSafety = 60s;

const std::vector<std::string> kEnv = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C"};

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Dead: no such process, or a zombie that its reaper (init, never this test) has not
// collected yet.
bool process_dead(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (stat.empty()) return true;
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

SandboxSpec spec(std::string name, std::string image = "host") {
  SandboxSpec s;
  s.name = std::move(name);
  s.image = std::move(image);
  return s;
}

struct Capture {
  std::string out, err;
  std::optional<Outcome> outcome;
  int exits = 0;
};

// Each test runs against both ways of tracking processes: cgroup v2 (when this test can write
// it) and the environment cookie.
class HostExecutorTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-host-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    workspace_ = tmpl;
    executor_ = make_host_executor(io_, HostOptions{.cgroups = GetParam()});
    auto job = executor_->prepare(JobSpec{"test-job", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
    auto sandbox = job_->start(spec("step"));
    ASSERT_TRUE(sandbox.ok()) << sandbox.error().message;
    sandbox_ = std::move(*sandbox);
  }

  void TearDown() override {
    sandbox_.reset();
    if (job_) job_->destroy();
    job_.reset();
    io_.restart();
    io_.run_for(5s);  // returns as soon as the cgroups of destroyed sandboxes are removed
    executor_.reset();
    std::error_code ec;
    fs::remove_all(workspace_, ec);
  }

  std::shared_ptr<Capture> start(std::vector<std::string> argv, std::vector<std::string> env = kEnv,
                                 std::string workdir = ".") {
    auto run = std::make_shared<Capture>();
    ExecHandlers handlers;
    handlers.on_output = [run](OutputStream s, std::string_view data) {
      (s == OutputStream::out ? run->out : run->err).append(data);
    };
    handlers.on_exit = [run](const Outcome& o) {
      run->outcome = o;
      ++run->exits;
    };
    Status started = sandbox_->exec(
        ExecRequest{std::move(argv), std::move(env), std::move(workdir)}, std::move(handlers));
    EXPECT_TRUE(started.ok()) << started.error().message;
    return run;
  }

  std::shared_ptr<Capture> sh(const std::string& script) { return start({"sh", "-c", script}); }

  // Runs the io_context until `done`; a broken test fails here instead of hanging.
  bool run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + kSafety;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "safety timeout: the awaited event never came";
        return false;
      }
      io_.restart();
      if (io_.run_for(20ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  bool finish(const std::shared_ptr<Capture>& run) {
    return run_until([&] { return run->outcome.has_value(); });
  }

  // The pid a step wrote to `file`, once it is there.
  pid_t wait_for_pid(const std::string& file) {
    fs::path path = workspace_ / file;
    pid_t pid = 0;
    run_until([&] {
      std::string text = read_text(path);
      if (text.empty() || text.back() != '\n') return false;
      pid = std::stoi(text);
      return true;
    });
    return pid;
  }

  // Waits for the process to die: it may still be inside exit() when its cgroup is empty.
  void expect_dead(pid_t pid) {
    ASSERT_GT(pid, 0);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!process_dead(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(process_dead(pid)) << "process " << pid << " survived its step";
  }

  boost::asio::io_context io_;
  fs::path workspace_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_P(HostExecutorTest, IsNotIsolated) {
  EXPECT_EQ(executor_->name(), "host");
  EXPECT_FALSE(executor_->isolated());
  EXPECT_EQ(job_->workspace_path(), workspace_.string());
}

TEST_P(HostExecutorTest, OutputArrivesOnItsStream) {
  auto run = sh("echo to-out; echo to-err >&2");
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->out, "to-out\n");
  EXPECT_EQ(run->err, "to-err\n");
  EXPECT_TRUE(run->outcome->ok());
  EXPECT_EQ(run->exits, 1);
}

TEST_P(HostExecutorTest, ExitCodeIsReported) {
  auto failed = sh("exit 3");
  auto succeeded = start({"true"});
  ASSERT_TRUE(finish(failed));
  ASSERT_TRUE(finish(succeeded));
  EXPECT_EQ(failed->outcome->kind, Outcome::Kind::failed);
  EXPECT_EQ(failed->outcome->exit_code, 3);
  EXPECT_EQ(succeeded->outcome->kind, Outcome::Kind::ok);
}

TEST_P(HostExecutorTest, EnvironmentIsExactlyTheRequest) {
  ::setenv("BOXCAR_TEST_AGENT_SECRET", "leaked", 1);
  auto run = start({"env"}, {"PATH=/usr/bin:/bin", "GREETING=hello world"});
  ASSERT_TRUE(finish(run));
  // Without cgroups the process tree is marked by this one extra variable.
  bool cookie = !GetParam() || !host::TreeRoot::open()->uses_cgroup();
  std::set<std::string> lines;
  std::istringstream in(run->out);
  for (std::string line; std::getline(in, line);) {
    if (cookie && line.starts_with("BOXCAR_SANDBOX_ID=")) continue;
    lines.insert(line);
  }
  EXPECT_EQ(lines, (std::set<std::string>{"PATH=/usr/bin:/bin", "GREETING=hello world"}))
      << run->out;
  ::unsetenv("BOXCAR_TEST_AGENT_SECRET");
}

TEST_P(HostExecutorTest, WorkdirIsTheWorkingDirectory) {
  fs::create_directories(workspace_ / "sub" / "dir");
  auto run = start({"pwd"}, kEnv, "sub/dir");
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->out, fs::canonical(workspace_ / "sub" / "dir").string() + "\n");
}

TEST_P(HostExecutorTest, WorkdirOutsideTheWorkspaceIsAnError) {
  fs::create_directories(workspace_ / "a");
  for (const char* workdir : {"/tmp", "..", "a/../..", "a/../a", "missing"}) {
    Status s = sandbox_->exec(ExecRequest{{"true"}, kEnv, workdir}, {});
    EXPECT_FALSE(s.ok()) << workdir;
  }
}

TEST_P(HostExecutorTest, StdinIsEmpty) {
  auto run = start({"cat"});
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->out, "");
  EXPECT_TRUE(run->outcome->ok());
}

TEST_P(HostExecutorTest, MissingProgramExits127) {
  auto run = start({"no-such-program-boxcar"});
  auto with_slash = start({"./no-such-program"});
  ASSERT_TRUE(finish(run));
  ASSERT_TRUE(finish(with_slash));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::failed);
  EXPECT_EQ(run->outcome->exit_code, 127);
  EXPECT_EQ(run->err, "boxcar: cannot run \"no-such-program-boxcar\": No such file or directory\n");
  EXPECT_EQ(with_slash->outcome->exit_code, 127);
}

TEST_P(HostExecutorTest, ProgramIsLookedUpInTheRequestPath) {
  fs::create_directories(workspace_ / "bin");
  std::ofstream(workspace_ / "bin" / "hello") << "#!/bin/sh\necho hello from $0\n";
  std::ofstream(workspace_ / "bin" / "noshebang") << "echo no shebang\n";
  fs::permissions(workspace_ / "bin" / "hello", fs::perms::owner_all);
  fs::permissions(workspace_ / "bin" / "noshebang", fs::perms::owner_all);
  std::string path = "PATH=" + (workspace_ / "bin").string() + ":/usr/bin:/bin";
  auto hello = start({"hello"}, {path});
  auto noshebang = start({"noshebang"}, {path});
  auto not_in_path = start({"hello"}, kEnv);
  ASSERT_TRUE(finish(hello));
  ASSERT_TRUE(finish(noshebang));
  ASSERT_TRUE(finish(not_in_path));
  EXPECT_EQ(hello->out, "hello from " + (workspace_ / "bin" / "hello").string() + "\n");
  EXPECT_EQ(noshebang->out, "no shebang\n");
  EXPECT_EQ(not_in_path->outcome->exit_code, 127);
}

TEST_P(HostExecutorTest, ProgramThatIsNotExecutableExits126) {
  std::ofstream(workspace_ / "plain") << "echo never\n";
  fs::permissions(workspace_ / "plain", fs::perms::owner_read | fs::perms::owner_write);
  auto run = start({"./plain"});
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->exit_code, 126);
  EXPECT_EQ(run->err, "boxcar: cannot run \"./plain\": Permission denied\n");
}

TEST_P(HostExecutorTest, OnlyStdioDescriptorsAreInherited) {
  // A descriptor the agent forgot to mark close-on-exec must still not reach the step.
  int leaked = ::fcntl(::open("/dev/null", O_RDONLY), F_DUPFD, 100);
  ASSERT_GE(leaked, 100);
  auto run = start({"ls", "/proc/self/fd"});
  ASSERT_TRUE(finish(run));
  ::close(leaked);
  std::set<std::string> fds;
  std::istringstream in(run->out);
  for (std::string fd; std::getline(in, fd);) fds.insert(fd);
  // 3 is ls's own handle on /proc/self/fd.
  EXPECT_TRUE(fds == (std::set<std::string>{"0", "1", "2"}) ||
              fds == (std::set<std::string>{"0", "1", "2", "3"}))
      << run->out;
}

TEST_P(HostExecutorTest, StepRunsInItsOwnSession) {
  auto run = sh("ps -o sid= -p $$; echo $$");
  ASSERT_TRUE(finish(run));
  std::istringstream in(run->out);
  int sid = 0, pid = -1;
  in >> sid >> pid;
  EXPECT_EQ(sid, pid) << run->out;
  EXPECT_NE(sid, ::getsid(0));
}

TEST_P(HostExecutorTest, StopWithTimeoutKillsSleep) {
  auto run = start({"sleep", "1000"});
  sandbox_->stop(Outcome::Kind::timeout, 100ms);
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::timeout);
}

TEST_P(HostExecutorTest, StopIsIdempotentAndEndsTheSandbox) {
  auto run = start({"sleep", "1000"});
  sandbox_->stop(Outcome::Kind::cancelled, 0ms);
  sandbox_->stop(Outcome::Kind::timeout, 0ms);
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::cancelled);
  EXPECT_FALSE(sandbox_->exec(ExecRequest{{"true"}, kEnv}, {}).ok());
  io_.restart();
  io_.run_for(50ms);
  EXPECT_EQ(run->exits, 1);
}

TEST_P(HostExecutorTest, TermIgnoringProcessIsKilledAfterTheGrace) {
  auto run = sh("trap '' TERM; echo ready; sleep 1000; echo survived");
  ASSERT_TRUE(run_until([&] { return run->out == "ready\n"; }));
  sandbox_->stop(Outcome::Kind::timeout, 200ms);
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::timeout);
  EXPECT_EQ(run->out, "ready\n");
}

TEST_P(HostExecutorTest, StopGivesTheWholeTreeItsGrace) {
  // The main shell dies at SIGTERM at once; its child takes a moment to clean up, and gets it.
  auto run =
      sh("sh -c 'trap \"echo cleaned > cleanup.txt; exit 0\" TERM; echo $$ > child.pid;"
         " while :; do sleep 0.01; done' & wait");
  pid_t child = wait_for_pid("child.pid");
  sandbox_->stop(Outcome::Kind::cancelled, 10s);
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::cancelled);
  EXPECT_EQ(read_text(workspace_ / "cleanup.txt"), "cleaned\n");
  expect_dead(child);
}

TEST_P(HostExecutorTest, KillingSignalIsReported) {
  auto run = sh("kill -USR1 $$");
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::signaled);
  EXPECT_EQ(run->outcome->signal, SIGUSR1);
}

TEST_P(HostExecutorTest, SessionDaemonDiesWithItsStep) {
  auto run =
      sh("setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &"
         "while [ ! -s daemon.pid ]; do sleep 0.01; done; echo parent done");
  ASSERT_TRUE(finish(run));
  EXPECT_TRUE(run->outcome->ok()) << describe(*run->outcome);
  EXPECT_EQ(run->out, "parent done\n");
  expect_dead(wait_for_pid("daemon.pid"));
}

TEST_P(HostExecutorTest, DoubleForkedDaemonDiesWithItsStep) {
  auto run =
      sh("(sh -c 'sleep 1000 & echo $! > daemon.pid' &);"
         "while [ ! -s daemon.pid ]; do sleep 0.01; done");
  ASSERT_TRUE(finish(run));
  EXPECT_TRUE(run->outcome->ok()) << describe(*run->outcome);
  expect_dead(wait_for_pid("daemon.pid"));
}

TEST_P(HostExecutorTest, BackgroundProcessHoldingTheOutputDoesNotHangTheStep) {
  auto run = sh("sleep 1000 & echo $! > background.pid; echo started");
  ASSERT_TRUE(finish(run));
  EXPECT_TRUE(run->outcome->ok());
  EXPECT_EQ(run->out, "started\n");
  expect_dead(wait_for_pid("background.pid"));
}

TEST_P(HostExecutorTest, DaemonsDieWhenTheStepIsStopped) {
  auto run =
      sh("setsid sh -c 'echo $$ > session.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &"
         "(sh -c 'sleep 1000 & echo $! > forked.pid' &);"
         "sleep 1000");
  pid_t session = wait_for_pid("session.pid");
  pid_t forked = wait_for_pid("forked.pid");
  sandbox_->stop(Outcome::Kind::cancelled, 5s);
  ASSERT_TRUE(finish(run));
  EXPECT_EQ(run->outcome->kind, Outcome::Kind::cancelled);
  expect_dead(session);
  expect_dead(forked);
}

TEST_P(HostExecutorTest, LargeOutputArrivesCompletely) {
  constexpr size_t kBytes = 50'000'000;
  size_t received = 0;
  bool all_zero = true;
  std::optional<Outcome> outcome;
  ExecHandlers handlers;
  handlers.on_output = [&](OutputStream s, std::string_view data) {
    if (s != OutputStream::out) return;
    received += data.size();
    all_zero = all_zero && std::all_of(data.begin(), data.end(), [](char c) { return c == 0; });
  };
  handlers.on_exit = [&](const Outcome& o) { outcome = o; };
  ASSERT_TRUE(sandbox_
                  ->exec(ExecRequest{{"head", "-c", std::to_string(kBytes), "/dev/zero"}, kEnv},
                         std::move(handlers))
                  .ok());
  ASSERT_TRUE(run_until([&] { return outcome.has_value(); }));
  EXPECT_TRUE(outcome->ok());
  EXPECT_EQ(received, kBytes);
  EXPECT_TRUE(all_zero);
}

TEST_P(HostExecutorTest, ManyConcurrentCommandsAllComplete) {
  constexpr int kCommands = 50;
  std::vector<std::shared_ptr<Capture>> runs;
  for (int i = 0; i < kCommands; ++i) {
    runs.push_back(
        start({"sh", "-c", "sleep 0.0$1; echo $1; exit $(($1 % 3))", "sh", std::to_string(i)}));
  }
  ASSERT_TRUE(run_until([&] {
    return std::all_of(runs.begin(), runs.end(),
                       [](const auto& r) { return r->outcome.has_value(); });
  }));
  for (int i = 0; i < kCommands; ++i) {
    EXPECT_EQ(runs[i]->out, std::to_string(i) + "\n");
    EXPECT_EQ(runs[i]->outcome->exit_code, i % 3);
    EXPECT_EQ(runs[i]->exits, 1);
  }
}

TEST_P(HostExecutorTest, OneCommandEndingLeavesTheOthersRunning) {
  auto service = sh("echo up; sleep 1000");
  ASSERT_TRUE(run_until([&] { return service->out == "up\n"; }));
  auto quick = start({"true"});
  ASSERT_TRUE(finish(quick));
  auto after = start({"echo", "still"});
  ASSERT_TRUE(finish(after));
  EXPECT_FALSE(service->outcome.has_value());
  sandbox_->stop(Outcome::Kind::cancelled, 0ms);
  ASSERT_TRUE(finish(service));
  EXPECT_EQ(service->outcome->kind, Outcome::Kind::cancelled);
}

TEST_P(HostExecutorTest, DestroyKillsAndCallsNoHandler) {
  auto run =
      sh("echo $$ > main.pid; setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > bg.pid; "
         "exec sleep 1000");
  pid_t main_pid = wait_for_pid("main.pid");
  pid_t bg = wait_for_pid("bg.pid");
  sandbox_->destroy();
  io_.restart();
  io_.run_for(100ms);
  EXPECT_EQ(run->exits, 0);
  // The main process was this test's child: destroy() reaped it.
  EXPECT_EQ(::kill(main_pid, 0), -1) << read_text("/proc/" + std::to_string(main_pid) + "/stat");
  expect_dead(bg);
  EXPECT_FALSE(sandbox_->exec(ExecRequest{{"true"}, kEnv}, {}).ok());
}

TEST_P(HostExecutorTest, HandlerMayDestroyTheSandbox) {
  bool destroyed = false;
  bool exited = false;
  ExecHandlers handlers;
  handlers.on_output = [&](OutputStream, std::string_view) {
    sandbox_->destroy();
    destroyed = true;
  };
  handlers.on_exit = [&](const Outcome&) { exited = true; };
  ASSERT_TRUE(
      sandbox_->exec(ExecRequest{{"sh", "-c", "echo x; sleep 1000"}, kEnv}, std::move(handlers))
          .ok());
  ASSERT_TRUE(run_until([&] { return destroyed; }));
  io_.restart();
  io_.run_for(50ms);
  EXPECT_FALSE(exited);
  EXPECT_FALSE(sandbox_->exec(ExecRequest{{"true"}, kEnv}, {}).ok());
}

TEST_P(HostExecutorTest, JobDestroyEndsItsSandboxes) {
  auto run = start({"sleep", "1000"});
  job_->destroy();
  EXPECT_FALSE(sandbox_->exec(ExecRequest{{"true"}, kEnv}, {}).ok());
  EXPECT_FALSE(job_->start(spec("again")).ok());
  io_.restart();
  io_.run_for(50ms);
  EXPECT_EQ(run->exits, 0);
}

// <cgroup2>/boxcar.host/<pid>-<start time>: where this process's sandboxes live.
fs::path own_cgroups() {
  std::string stat = read_text("/proc/self/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  return host::TreeRoot::find_cgroup2(read_text("/proc/self/mountinfo")) / "boxcar.host" /
         (std::to_string(::getpid()) + "-" + field);
}

TEST_P(HostExecutorTest, NoCgroupIsLeftBehind) {
  fs::path owner = own_cgroups();
  if (!GetParam() || !fs::exists(owner)) GTEST_SKIP() << "not tracking with cgroups";
  auto quick = start({"true"});
  ASSERT_TRUE(finish(quick));
  auto daemon = sh("setsid sleep 1000 </dev/null >/dev/null 2>&1 & exit 0");
  ASSERT_TRUE(finish(daemon));
  auto sleeping = start({"sleep", "1000"});
  auto count_dirs = [&] {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(owner, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      n += it->is_directory(ec);
    }
    return n;
  };
  EXPECT_EQ(count_dirs(), 2u);  // the sandbox and the sleeping command; finished ones are gone
  sandbox_->destroy();
  ASSERT_TRUE(run_until([&] { return count_dirs() == 0; }));
}

TEST_P(HostExecutorTest, PrepareChecksTheWorkspace) {
  EXPECT_FALSE(executor_->prepare(JobSpec{"j", workspace_ / "missing"}).ok());
  std::ofstream(workspace_ / "file") << "x";
  EXPECT_FALSE(executor_->prepare(JobSpec{"j", workspace_ / "file"}).ok());
}

TEST_P(HostExecutorTest, StartRejectsInvalidSpecsAndImages) {
  EXPECT_FALSE(job_->start(spec("")).ok());
  EXPECT_FALSE(job_->start(spec("x", "debian:12")).ok());
}

INSTANTIATE_TEST_SUITE_P(Tracking, HostExecutorTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "cgroup" : "cookie";
                         });

}  // namespace
}  // namespace boxcar::executors
