#include "executors/native/native_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "testing/sandbox_run.h"
#include "executors/native/uts.h"
#include "testing/step_cgroup_value.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;

using boxcar::testing::Ran;

class NativeExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
    char tmpl[] = "/tmp/boxcar-native-test-XXXXXX";
    workspace_ = ::mkdtemp(tmpl);
    executor_ = make_native_executor(io_);
    auto job = executor_->prepare(JobSpec{"test", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    io_.restart();
    io_.run_for(std::chrono::milliseconds(50));  // reaps and cgroup removal
    if (!workspace_.empty()) fs::remove_all(workspace_);
  }

  std::unique_ptr<Sandbox> start(SandboxSpec spec = {}) {
    if (spec.name.empty()) spec.name = "step";
    auto s = job_->start(spec);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  Ran run(Sandbox& sandbox, std::vector<std::string> argv, std::vector<std::string> env = {"PATH=/usr/bin:/bin"},
          std::string workdir = ".") {
    return boxcar::testing::run_in(io_, sandbox, ExecRequest{std::move(argv), std::move(env), std::move(workdir)});
  }

  boost::asio::io_context io_;
  fs::path workspace_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
};

TEST_F(NativeExecutorTest, ExecEcho) {
  auto sb = start();
  Ran r = run(*sb, {"echo", "hello"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
  EXPECT_EQ(r.out, "hello\n");
}

TEST_F(NativeExecutorTest, ExitCodes) {
  auto sb = start();
  Ran r = run(*sb, {"sh", "-c", "echo oops >&2; exit 3"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::failed);
  EXPECT_EQ(r.outcome.exit_code, 3);
  EXPECT_EQ(r.err, "oops\n");
  Ran missing = run(*sb, {"no-such-program-xyz"});
  EXPECT_EQ(missing.outcome.kind, Outcome::Kind::failed);
  EXPECT_EQ(missing.outcome.exit_code, 127);
  EXPECT_NE(missing.err.find("no-such-program-xyz"), std::string::npos);
  Ran killed = run(*sb, {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.outcome.kind, Outcome::Kind::signaled);
  EXPECT_EQ(killed.outcome.signal, SIGKILL);
}

TEST_F(NativeExecutorTest, EnvironmentIsExactly) {
  ::setenv("BOXCAR_AGENT_ONLY", "leak", 1);
  auto sb = start();
  Ran r = run(*sb, {"/usr/bin/env"}, {"A=1", "PATH=/usr/bin:/bin", "B=two words"});
  EXPECT_EQ(r.out, "A=1\nPATH=/usr/bin:/bin\nB=two words\n");
}

TEST_F(NativeExecutorTest, OnlyStandardFdsReachTheCommand) {
  auto sb = start();
  Ran r = run(*sb, {"sh", "-c", "ls /proc/$$/fd"});
  EXPECT_EQ(r.out, "0\n1\n2\n") << r.err;
}

TEST_F(NativeExecutorTest, LargeArgumentsAndEnvironment) {
  // 1 MB in one request (one argument or variable may not exceed 128 KiB: MAX_ARG_STRLEN).
  auto sb = start();
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  std::vector<std::string> argv = {"sh", "-c", "echo $#", "sh"};
  for (int i = 0; i < 5; ++i) {
    env.push_back("V" + std::to_string(i) + "=" + std::string(100000, 'x'));
    argv.push_back(std::string(100000, 'y'));
  }
  EXPECT_EQ(run(*sb, argv, env).out, "5\n");
  Ran r = run(*sb, {"env"}, env);
  EXPECT_EQ(r.out.size(), 5u * 100004 + 19) << r.err;
}

TEST_F(NativeExecutorTest, Workdir) {
  fs::create_directories(workspace_ / "sub" / "dir");
  auto sb = start();
  Ran r = run(*sb, {"pwd"}, {"PATH=/usr/bin:/bin"}, "sub/dir");
  EXPECT_EQ(r.out, "/workspace/sub/dir\n");
  Ran bad = run(*sb, {"pwd"}, {"PATH=/usr/bin:/bin"}, "missing");
  EXPECT_FALSE(bad.outcome.ok());
}

TEST_F(NativeExecutorTest, WorkspaceIsSharedAndOwnedByRootInside) {
  auto sb = start();
  Ran r = run(*sb, {"sh", "-c", "echo data > /workspace/file && stat -c %u /workspace/file && id -u"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << r.err;
  EXPECT_EQ(r.out, "0\n0\n");
  struct stat st{};
  ASSERT_EQ(::stat((workspace_ / "file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::getuid());  // the host owner outside
}

TEST_F(NativeExecutorTest, ManyExecsInOneSandbox) {
  auto sb = start();
  for (int i = 0; i < 20; ++i) {
    Ran r = run(*sb, {"sh", "-c", "echo $0", std::to_string(i)});
    EXPECT_EQ(r.out, std::to_string(i) + "\n");
  }
  // Concurrent ones too.
  std::array<Ran, 5> ran;
  std::array<bool, 5> done{};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(boxcar::testing::start_in(
                    *sb, ExecRequest{{"sh", "-c", "sleep 0.05; echo $0", std::to_string(i)}, {"PATH=/usr/bin:/bin"}},
                    ran[i], done[i])
                    .ok());
  }
  for (int i = 0; i < 5; ++i) {
    boxcar::testing::run_until(io_, done[i]);
    EXPECT_TRUE(ran[i].outcome.ok()) << describe(ran[i].outcome);
    EXPECT_EQ(ran[i].out, std::to_string(i) + "\n");
  }
}

TEST_F(NativeExecutorTest, StopKillsADaemonizingStep) {
  auto sb = start();
  std::string marker = "boxcar-daemon-marker-" + std::to_string(::getpid());
  Outcome outcome;
  bool done = false;
  // bash for the daemon: dash's exec has no -a, and without it no daemon would carry the marker.
  ASSERT_TRUE(sb->exec(ExecRequest{{"sh", "-c",
                                    "setsid bash -c 'trap \"\" TERM; exec -a " + marker +
                                        " sleep 1000' </dev/null >/dev/null 2>&1 & "
                                        "trap '' TERM; sleep 1000; echo never"},
                                   {"PATH=/usr/bin:/bin"}},
                       ExecHandlers{nullptr,
                                    [&](const Outcome& o) {
                                      outcome = o;
                                      done = true;
                                    }})
                  .ok());
  // Any process whose command line holds the marker; with `daemon`, only the daemon itself
  // (exec -a made the marker its argv[0]), not the shell whose script names it.
  auto marker_alive = [&](bool daemon) {
    for (const auto& p : fs::directory_iterator("/proc")) {
      std::ifstream cmd(p.path() / "cmdline");
      std::string s;
      std::getline(cmd, s);
      if (daemon ? s.rfind(marker, 0) == 0 : s.find(marker) != std::string::npos) return true;
    }
    return false;
  };
  // Polls `pred`, running the io_context between polls; 10 s bound a broken test.
  auto eventually = [&](const std::function<bool()>& pred) {
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(10));
    }
    return pred();
  };
  // The attack needs the daemon running before the stop: wait for it, not for a guessed time.
  ASSERT_TRUE(eventually([&] { return marker_alive(true); })) << "the daemon never started";
  sb->stop(Outcome::Kind::cancelled, Millis(100));
  while (!done) io_.run_one();
  EXPECT_EQ(outcome.kind, Outcome::Kind::cancelled);
  sb->destroy();
  // Nothing with the marker survives.
  EXPECT_TRUE(eventually([&] { return !marker_alive(false); })) << "the daemon survived the stop";
}

TEST_F(NativeExecutorTest, TimeoutIsReported) {
  auto sb = start();
  bool done = false;
  Outcome outcome;
  ASSERT_TRUE(sb->exec(ExecRequest{{"sleep", "100"}, {"PATH=/usr/bin:/bin"}},
                       ExecHandlers{nullptr, [&](const Outcome& o) {
                                      outcome = o;
                                      done = true;
                                    }})
                  .ok());
  sb->stop(Outcome::Kind::timeout, Millis(1000));
  io_.restart();
  while (!done) io_.run_one();
  EXPECT_EQ(outcome.kind, Outcome::Kind::timeout);
  EXPECT_FALSE(sb->exec(ExecRequest{{"true"}, {}}, {}).ok());
}

TEST_F(NativeExecutorTest, OomIsReported) {
  SandboxSpec spec;
  spec.name = "oom";
  spec.memory_bytes = 32ull << 20;
  auto sb = start(spec);
  Ran r = run(*sb, {"python3", "-c", "x = bytearray(256 << 20); print('survived')"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::oom) << describe(r.outcome) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(NativeExecutorTest, InvalidSpecIsRefusedBeforeAnythingIsCreated) {
  SandboxSpec spec;
  spec.name = "bad";
  spec.memory_bytes = 1024;
  auto sb = job_->start(spec);
  EXPECT_FALSE(sb.ok());
}

TEST_F(NativeExecutorTest, HostNetworkNeedsPermission) {
  SandboxSpec spec;
  spec.name = "net";
  spec.network = NetworkMode::host;
  EXPECT_FALSE(job_->start(spec).ok());
}

TEST_F(NativeExecutorTest, NetworkNoneHasOnlyLoopback) {
  SandboxSpec spec;
  spec.name = "none";
  spec.network = NetworkMode::none;
  auto sb = start(spec);
  Ran r = run(*sb, {"sh", "-c", "ls /proc/sys/net/ipv4/conf"});
  EXPECT_EQ(r.out, "all\ndefault\nlo\n");
}

TEST_F(NativeExecutorTest, HostnameIsTheStepName) {
  SandboxSpec spec;
  spec.name = "Build (cc=gcc)";
  auto sb = start(spec);
  Ran r = run(*sb, {"hostname"});
  EXPECT_EQ(r.out, "build-cc-gcc\n");
}

TEST_F(NativeExecutorTest, LimitsReachTheCgroups) {
  SandboxSpec spec;
  spec.name = "limits";
  spec.memory_bytes = 64ull << 20;
  spec.pids = 100;
  spec.cpus = 0.5;
  auto sb = start(spec);
  Ran r = run(*sb, {"sh", "-c", "echo started"});
  ASSERT_EQ(r.out, "started\n") << r.err;
  // The step's cgroups, seen from the host (v1 on this kind of host).
  if (!fs::exists("/sys/fs/cgroup/pids/boxcar")) GTEST_SKIP() << "not a cgroup v1 host";
  EXPECT_EQ(boxcar::testing::step_cgroup_value("pids", "pids.max"), "100");
  EXPECT_EQ(boxcar::testing::step_cgroup_value("memory", "memory.limit_in_bytes"), std::to_string(64 << 20));
  EXPECT_EQ(boxcar::testing::step_cgroup_value("cpu", "cpu.cfs_quota_us"), "50000");
}

// Sandboxes are prepared ahead like the last step: one made for a step with other limits must
// not be handed out, and one made for the same limits must carry them.
TEST_F(NativeExecutorTest, APrewarmedSandboxHasTheLimitsOfTheStepThatTakesIt) {
  job_->expect(3);
  auto sized = [](uint64_t mib) {
    SandboxSpec s;
    s.name = "step";
    s.memory_bytes = mib << 20;
    s.pids = 64;
    return s;
  };
  const std::vector<std::string> hog = {"python3", "-c", "x = bytearray(48 << 20); print('fits')"};
  {
    auto first = start(sized(256));
    EXPECT_EQ(run(*first, hog).out, "fits\n");  // control: 48 MiB fit in 256
  }
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));  // the refill, made like the step above
  {
    auto smaller = start(sized(32));
    Ran r = run(*smaller, hog);
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::oom) << describe(r.outcome) << r.out;
  }
  io_.restart();
  io_.run_for(std::chrono::milliseconds(50));
  {
    auto same = start(sized(32));
    Ran r = run(*same, hog);
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::oom) << "the warm sandbox made for 32 MiB lost its limit: "
                                                  << describe(r.outcome) << r.out;
  }
}

TEST(NativeExecutorCrashSafety, LeftoversOfADeadAgentAreRemoved) {
  if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
  if (!fs::exists("/sys/fs/cgroup/pids")) GTEST_SKIP() << "not a cgroup v1 host";
  // A dead agent's step cgroup with a process still in it.
  boost::asio::io_context io;
  { auto first = make_native_executor(io); }  // creates the parent cgroup
  fs::path stale = "/sys/fs/cgroup/pids/boxcar/999999999-1/s1";
  fs::create_directories(stale);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", "sleep", "100", nullptr);
    ::_exit(127);
  }
  std::ofstream(stale / "cgroup.procs") << pid;
  auto executor = make_native_executor(io);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_FALSE(fs::exists(stale.parent_path()));
}

}  // namespace
}  // namespace boxcar::executors

namespace boxcar::executors {
namespace {

// A layered /workspace (SandboxSpec::layered): the step writes to its layer, owned on the host as
// the workspace's files are; a stack deeper than the limit fails to set up, saying so.
TEST_F(NativeExecutorTest, LayeredWorkspaceWritesToItsLayerAndTooManyLowersFail) {
  fs::path layer = workspace_.string() + ".layer";
  fs::create_directories(layer);
  std::ofstream(workspace_ / "seen.txt") << "checkout\n";
  SandboxSpec spec;
  spec.name = "layered";
  spec.layered = {LayeredDir{"/workspace", layer, {workspace_}}};
  {
    auto sb = start(spec);
    ASSERT_TRUE(sb);
    Ran r = run(*sb, {"sh", "-c", "cat seen.txt; echo new > new.txt; rm seen.txt; stat -c %u new.txt"});
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
    EXPECT_EQ(r.out, "checkout\n0\n");
  }
  EXPECT_TRUE(fs::exists(workspace_ / "seen.txt"));  // the checkout is untouched
  EXPECT_FALSE(fs::exists(workspace_ / "new.txt"));
  struct stat st{};
  ASSERT_EQ(::stat((layer / "upper/new.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);  // the step's root writes as host uid 0, as in the workspace
  ASSERT_EQ(::lstat((layer / "upper/seen.txt").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == 0) << "a deletion is a 0/0 whiteout";

  fs::path deep = workspace_.string() + ".deep";
  fs::create_directories(deep);
  spec.layered = {LayeredDir{"/workspace", deep, std::vector<fs::path>(129, workspace_)}};
  auto sb = start(spec);
  ASSERT_TRUE(sb);
  Ran r = run(*sb, {"true"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_error);
  EXPECT_NE(r.outcome.message.find("129 lower layers, more than the 128"), std::string::npos) << r.outcome.message;
  fs::remove_all(layer);
  fs::remove_all(deep);
}

// A layered step takes a sandbox prepared ahead (made like the step before it, all but the
// layers, which pid 1 gets when the step takes it): it sees its own layer over the checkout and
// nothing of the layered step the sandbox was made like.
TEST_F(NativeExecutorTest, APrewarmedSandboxGetsTheLayersOfTheStepThatTakesIt) {
  if (!fs::exists("/sys/fs/cgroup/pids")) GTEST_SKIP() << "not a cgroup v1 host";
  std::ofstream(workspace_ / "seen.txt") << "checkout\n";
  auto layered = [&](const std::string& name) {
    fs::path layer = workspace_.string() + ".layer-" + name;
    fs::create_directories(layer);
    SandboxSpec spec;
    spec.name = name;
    spec.layered = {LayeredDir{"/workspace", layer, {workspace_}}};
    return std::pair{spec, layer};
  };
  auto [first_spec, first_layer] = layered("first");
  {
    auto first = start(first_spec);
    ASSERT_TRUE(first);
    EXPECT_EQ(run(*first, {"sh", "-c", "echo mine > first.txt"}).outcome.kind, Outcome::Kind::ok);
  }
  io_.restart();
  io_.poll();  // the warm one is set up by now, waiting for its layers
  size_t before = boxcar::testing::step_cgroups("pids").size();
  auto [second_spec, second_layer] = layered("second");
  auto second = start(second_spec);
  ASSERT_TRUE(second);
  EXPECT_EQ(boxcar::testing::step_cgroups("pids").size(), before) << "the second step should take the warm sandbox";
  Ran r = run(*second, {"sh", "-c", "ls -A; cat seen.txt; echo own > second.txt; hostname; ls -A /tmp"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
  // Control: the checkout is there; attack: the first step's file is not (nor the staging of the layers).
  EXPECT_EQ(r.out, "seen.txt\ncheckout\n" + native::hostname_for("second") + "\n");
  EXPECT_TRUE(fs::exists(second_layer / "upper/second.txt"));
  EXPECT_FALSE(fs::exists(first_layer / "upper/second.txt"));
  EXPECT_FALSE(fs::exists(workspace_ / "second.txt"));
  second.reset();
  fs::remove_all(first_layer);
  fs::remove_all(second_layer);
}

}  // namespace
}  // namespace boxcar::executors
