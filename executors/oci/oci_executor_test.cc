// The Executor contract on real runc containers: output, exit codes, stop and timeouts,
// OOM, limits, the network, the workspace, image roots, and nothing left behind.
#include "executors/oci/oci_executor.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <boost/asio/io_context.hpp>

#include "base/tree_walk.h"
#include "executors/oci/keeper.h"
#include "testing/sandbox_run.h"
#include "testing/step_cgroup_value.h"
#include "testing/upper_disk_use.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;

using boxcar::testing::Ran;

const std::vector<std::string> kPath = {"PATH=/usr/bin:/bin"};

fs::path temp_dir(const char* prefix, const char* in = "/tmp") {
  std::string tmpl = std::string(in) + "/" + prefix + "-XXXXXX";
  return ::mkdtemp(tmpl.data());
}

// Any process whose command line starts with (or, with `anywhere`, holds) `marker`.
bool process_alive(const std::string& marker, bool anywhere = false) {
  for (const auto& p : fs::directory_iterator("/proc")) {
    std::ifstream cmd(p.path() / "cmdline");
    std::string s;
    std::getline(cmd, s);
    if (anywhere ? s.find(marker) != std::string::npos : s.rfind(marker, 0) == 0) return true;
  }
  return false;
}

bool dir_empty(const fs::path& dir) {
  std::error_code ec;
  return fs::is_empty(dir, ec) || ec;
}

// A busybox image root the test makes, one layer, at `layer`.
void make_busybox_layer(const fs::path& layer) {
  fs::create_directories(layer / "bin");
  fs::copy_file("/usr/bin/busybox", layer / "bin" / "busybox");
  for (const char* tool : {"sh", "cat", "echo", "ls", "touch", "test", "hostname", "dd", "rm"}) {
    fs::create_symlink("busybox", layer / "bin" / tool);
  }
}

// Runs `probe` in a child as host user nobody (65534) and returns its exit code.
int as_nobody(const std::function<int()>& probe) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(100);
    }
    ::_exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 101;
}

std::string mountinfo_text() {
  std::ifstream in("/proc/self/mountinfo");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class OciExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = oci_available("runc"); !s) GTEST_SKIP() << s.error().message;
    workspace_ = temp_dir("boxcar-oci-ws");
    state_ = temp_dir("boxcar-oci-state");
    uppers_ = temp_dir("boxcar-oci-uppers", "/var/tmp");  // on disk, as /var/lib/boxcar/uppers
    executor_ = make_oci_executor(io_, options());
    auto job = executor_->prepare(JobSpec{"test", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    job_.reset();
    io_.restart();
    io_.run_for(std::chrono::milliseconds(20));
    executor_.reset();  // waits for the keepers' teardown
    if (!state_.empty()) {
      // Nothing is left: only the shared host root directory remains.
      for (const auto& e : fs::directory_iterator(state_)) EXPECT_EQ(e.path().filename(), "host-root") << e.path();
      fs::remove_all(state_);
    }
    if (!workspace_.empty()) fs::remove_all(workspace_);
    // Sandboxes still held by the io_context's handlers keep the executor's upper filesystems.
    std::error_code ec;
    for (const auto& inst : fs::directory_iterator(uppers_, ec)) {
      for (const auto& f : fs::directory_iterator(inst.path(), ec)) ::umount2(f.path().c_str(), MNT_DETACH);
    }
    if (!uppers_.empty()) fs::remove_all(uppers_, ec);
  }

  virtual OciOptions options() {
    OciOptions o;
    o.state_dir = state_;
    o.uppers_dir = uppers_;
    return o;
  }

  std::unique_ptr<Sandbox> start(SandboxSpec spec = {}) {
    if (spec.name.empty()) spec.name = "step";
    auto s = job_->start(spec);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  Ran run(Sandbox& sandbox, std::vector<std::string> argv, std::vector<std::string> env = kPath,
          std::string workdir = ".") {
    return boxcar::testing::run_in(io_, sandbox, ExecRequest{std::move(argv), std::move(env), std::move(workdir)});
  }

  // Polls `pred`, running the io_context in between; 20 s bound a broken test.
  bool eventually(const std::function<bool()>& pred) {
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!pred() && std::chrono::steady_clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(10));
    return pred();
  }

  boost::asio::io_context io_;
  fs::path workspace_, state_, uppers_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
};

TEST_F(OciExecutorTest, OutputExitCodesMissingProgramAndSignals) {
  auto sb = start();
  Ran echo = run(*sb, {"echo", "hello"});
  EXPECT_EQ(echo.outcome.kind, Outcome::Kind::ok) << describe(echo.outcome) << echo.err;
  EXPECT_EQ(echo.out, "hello\n");
  Ran r = run(*sb, {"sh", "-c", "echo oops >&2; exit 3"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::failed);
  EXPECT_EQ(r.outcome.exit_code, 3);
  EXPECT_EQ(r.err, "oops\n");
  Ran missing = run(*sb, {"no-such-program-xyz"});
  EXPECT_EQ(missing.outcome.exit_code, 127);
  EXPECT_NE(missing.err.find("no-such-program-xyz"), std::string::npos);
  Ran killed = run(*sb, {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.outcome.kind, Outcome::Kind::signaled);
  EXPECT_EQ(killed.outcome.signal, SIGKILL);
}

TEST_F(OciExecutorTest, EnvironmentFdsAndPid1AreNativesOnes) {
  auto sb = start();
  Ran env = run(*sb, {"/usr/bin/env"}, {"A=1", "PATH=/usr/bin:/bin"});
  EXPECT_EQ(env.out, "A=1\nPATH=/usr/bin:/bin\n");
  EXPECT_EQ(run(*sb, {"sh", "-c", "ls /proc/$$/fd"}).out, "0\n1\n2\n");
  EXPECT_EQ(run(*sb, {"cat", "/proc/1/comm"}).out, "boxcar-init\n");
  // The same capability set as native: no CAP_SYS_ADMIN, no_new_privs, seccomp filter on.
  Ran status = run(*sb, {"grep", "-E", "^(NoNewPrivs|Seccomp|CapEff):", "/proc/self/status"});
  EXPECT_NE(status.out.find("NoNewPrivs:\t1"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("Seccomp:\t2"), std::string::npos) << status.out;
  EXPECT_EQ(status.out.find("CapEff:\t000001ffffffffff"), std::string::npos) << status.out;
}

TEST_F(OciExecutorTest, ManyExecsInOneSandboxAndConcurrentOnes) {
  auto sb = start();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run(*sb, {"sh", "-c", "echo $0", std::to_string(i)}).out, std::to_string(i) + "\n");
  std::array<Ran, 3> ran;
  std::array<bool, 3> done{};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(boxcar::testing::start_in(*sb, ExecRequest{{"sh", "-c", "sleep 0.05; echo $0", std::to_string(i)}, kPath},
                                          ran[i], done[i])
                    .ok());
  }
  for (int i = 0; i < 3; ++i) {
    boxcar::testing::run_until(io_, done[i]);
    EXPECT_TRUE(ran[i].outcome.ok()) << describe(ran[i].outcome);
    EXPECT_EQ(ran[i].out, std::to_string(i) + "\n");
  }
}

TEST_F(OciExecutorTest, WorkspaceIsSharedBetweenStepsAndOwnedByRootInside) {
  fs::create_directories(workspace_ / "sub");
  auto first = start();
  Ran w = run(*first, {"sh", "-c", "echo data > /workspace/file && stat -c %u /workspace/file && id -u && pwd"}, kPath,
              "sub");
  EXPECT_EQ(w.out, "0\n0\n/workspace/sub\n") << w.err;
  struct stat st{};
  ASSERT_EQ(::stat((workspace_ / "file").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::getuid());  // the host owner outside
  auto second = start();
  EXPECT_EQ(run(*second, {"cat", "/workspace/file"}).out, "data\n");
}

TEST_F(OciExecutorTest, GitMetadataIsReadOnlyAndTheRootToo) {
  fs::create_directories(workspace_ / ".git");
  std::ofstream(workspace_ / ".git" / "config") << "[core]\n";
  auto sb = start();
  // Attack: rewrite the git config the host's git will read; and write into /usr.
  Ran git = run(*sb, {"sh", "-c", "echo '[core] fsmonitor = evil' >> /workspace/.git/config"});
  EXPECT_FALSE(git.outcome.ok());
  Ran usr = run(*sb, {"touch", "/usr/boxcar-oci-probe"});
  EXPECT_FALSE(usr.outcome.ok());
  // Control: the rest of the workspace and /tmp are writable.
  EXPECT_TRUE(run(*sb, {"sh", "-c", "echo x > /workspace/ok && echo y > /tmp/ok"}).outcome.ok());
}

TEST_F(OciExecutorTest, SeccompDeniesNamespacesAndSetuidBitsLikeNative) {
  auto sb = start();
  // Attack: a new user namespace; a setuid file in the workspace.
  Ran unshare = run(*sb, {"unshare", "-U", "true"});
  EXPECT_FALSE(unshare.outcome.ok());
  EXPECT_NE(unshare.err.find("Operation not permitted"), std::string::npos) << unshare.err;
  Ran setuid = run(*sb, {"sh", "-c", "touch /workspace/s && chmod u+s /workspace/s"});
  EXPECT_FALSE(setuid.outcome.ok());
  // fchmodat2 (452), which chmod does not use yet: its rules must reach runc's profile too.
  auto fchmodat2 = [&](const char* mode) {
    return run(*sb, {"python3", "-c",
                     std::string("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
                                 "r = libc.syscall(452, -100, b'/workspace/s', ") + mode +
                         ", 0); print(r, ctypes.get_errno())"})
        .out;
  };
  EXPECT_EQ(fchmodat2("0o4755"), "-1 1\n");  // EPERM
  // Control: the same calls without the denied flags and bits work.
  EXPECT_EQ(fchmodat2("0o755"), "0 0\n");
  EXPECT_TRUE(run(*sb, {"chmod", "0755", "/workspace/s"}).outcome.ok());
  EXPECT_TRUE(run(*sb, {"unshare", "--help"}).outcome.ok());
}

TEST_F(OciExecutorTest, StopKillsADaemonAndTimeoutIsReported) {
  auto sb = start();
  std::string marker = "boxcar-oci-daemon-" + std::to_string(::getpid());
  Outcome outcome;
  bool done = false;
  ASSERT_TRUE(sb->exec(ExecRequest{{"sh", "-c",
                                    "setsid bash -c 'trap \"\" TERM; exec -a " + marker +
                                        " sleep 1000' </dev/null >/dev/null 2>&1 & trap '' TERM; sleep 1000"},
                                   kPath},
                       ExecHandlers{nullptr,
                                    [&](const Outcome& o) {
                                      outcome = o;
                                      done = true;
                                    }})
                  .ok());
  ASSERT_TRUE(eventually([&] { return process_alive(marker); })) << "the daemon never started";
  sb->stop(Outcome::Kind::timeout, Millis(100));
  while (!done) io_.run_one();
  EXPECT_EQ(outcome.kind, Outcome::Kind::timeout);
  EXPECT_FALSE(sb->exec(ExecRequest{{"true"}, {}}, {}).ok());
  sb->destroy();
  EXPECT_TRUE(eventually([&] { return !process_alive(marker, true); })) << "the daemon survived the stop";
}

TEST_F(OciExecutorTest, OomIsReportedAndTheLimitsReachTheCgroup) {
  SandboxSpec spec;
  spec.name = "oom";
  spec.memory_bytes = 32ull << 20;
  spec.pids = 64;
  spec.cpus = 0.5;
  auto sb = start(spec);
  // Control: a small allocation fits; the cgroup the step sees carries the limits.
  Ran fits = run(*sb, {"python3", "-c", "x = bytearray(4 << 20); print('fits')"});
  EXPECT_EQ(fits.out, "fits\n") << fits.err;
  // The step's cgroups, seen from the host (v1 on this kind of host): runc joined the ones
  // the executor made, below the test process's own.
  if (fs::exists("/sys/fs/cgroup/pids/boxcar")) {
    EXPECT_EQ(boxcar::testing::step_cgroup_value("pids", "pids.max"), "64");
    EXPECT_EQ(boxcar::testing::step_cgroup_value("memory", "memory.limit_in_bytes"), std::to_string(32 << 20));
    EXPECT_EQ(boxcar::testing::step_cgroup_value("cpu", "cpu.cfs_quota_us"), "50000");
  }
  Ran r = run(*sb, {"python3", "-c", "x = bytearray(256 << 20); print('survived')"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::oom) << describe(r.outcome) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(OciExecutorTest, PidsLimitStopsAForkBomb) {
  SandboxSpec spec;
  spec.name = "pids";
  spec.pids = 16;
  auto sb = start(spec);
  // Control: 4 children are fine. Attack: 40 at once stop at the limit.
  Ran few = run(*sb, {"sh", "-c", "for i in 1 2 3 4; do sleep 0.01 & done; wait; echo ok"});
  EXPECT_EQ(few.out, "ok\n") << few.err;
  Ran many = run(*sb, {"sh", "-c", "for i in $(seq 40); do sleep 0.2 & done; wait"});
  EXPECT_NE(many.err.find("fork"), std::string::npos) << many.err;
}

TEST_F(OciExecutorTest, ConnectTcpReachesAServerInsideAndStepsShareTheJobNetwork) {
  auto server = start();
  std::string out;
  bool exited = false;
  ASSERT_TRUE(server
                  ->exec(ExecRequest{{"python3", "-c",
                                      "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 18081))\n"
                                      "s.listen(4)\nprint('up', flush=True)\n"
                                      "while True:\n  c, _ = s.accept(); c.sendall(b'hi\\n'); c.close()\n"},
                                     kPath},
                         ExecHandlers{[&](OutputStream, std::string_view d) { out.append(d); },
                                      [&](const Outcome&) { exited = true; }})
                  .ok());
  while (out.find("up") == std::string::npos && !exited) io_.run_one();
  ASSERT_FALSE(exited);
  auto fd = server->connect_tcp(18081);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  pollfd p{fd->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20000), 1);
  char buf[8] = {};
  EXPECT_EQ(::read(fd->get(), buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "hi\n");
  // Nothing listens there: refused at once or, as the kernel answers after connect()
  // returned, through SO_ERROR.
  auto refused = server->connect_tcp(18082);
  int err = refused.ok() ? 0 : refused.error().err;
  if (refused.ok()) {
    pollfd w{refused->get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&w, 1, 20000), 1);
    socklen_t len = sizeof err;
    ::getsockopt(refused->get(), SOL_SOCKET, SO_ERROR, &err, &len);
  }
  EXPECT_EQ(err, ECONNREFUSED);
  // Another step of the job reaches it on its own loopback; a network = none step does not.
  auto client = start();
  EXPECT_EQ(run(*client, {"python3", "-c", "import socket; print(socket.create_connection(('127.0.0.1', 18081)).recv(8).decode(), end='')"}).out,
            "hi\n");
  SandboxSpec none;
  none.name = "none";
  none.network = NetworkMode::none;
  auto isolated = start(none);
  Ran r = run(*isolated, {"sh", "-c", "ls /proc/sys/net/ipv4/conf; python3 -c \"import socket; socket.create_connection(('127.0.0.1', 18081))\""});
  EXPECT_EQ(r.out, "all\ndefault\nlo\n");
  EXPECT_NE(r.err.find("ConnectionRefused"), std::string::npos) << r.err;
  server->destroy();
}

TEST_F(OciExecutorTest, HostnameHostNetworkAndInvalidSpecs) {
  SandboxSpec spec;
  spec.name = "Build (cc=gcc)";
  auto sb = start(spec);
  EXPECT_EQ(run(*sb, {"hostname"}).out, "build-cc-gcc\n");
  SandboxSpec host;
  host.name = "net";
  host.network = NetworkMode::host;
  EXPECT_FALSE(job_->start(host).ok());
  SandboxSpec bad;
  bad.name = "bad";
  bad.memory_bytes = 1024;
  EXPECT_FALSE(job_->start(bad).ok());
}

TEST_F(OciExecutorTest, ImageLayersAreTheRootLowestFirstWithAWritableUpper) {
  // Two layers the test makes: busybox below, a file that shadows the lower one's above.
  fs::path layers = temp_dir("boxcar-oci-layers");
  fs::create_directories(layers / "1" / "bin");
  fs::create_directories(layers / "1" / "etc");
  fs::create_directories(layers / "2" / "etc");
  fs::copy_file("/usr/bin/busybox", layers / "1" / "bin" / "busybox");
  for (const char* tool : {"sh", "cat", "echo", "ls", "touch"}) fs::create_symlink("busybox", layers / "1" / "bin" / tool);
  std::ofstream(layers / "1" / "etc" / "release") << "lower\n";
  std::ofstream(layers / "2" / "etc" / "release") << "upper\n";
  SandboxSpec spec;
  spec.name = "image";
  spec.image = "test/busybox:1";
  spec.layers = {layers / "1", layers / "2"};
  {
    auto sb = start(spec);
    Ran r = run(*sb, {"sh", "-c", "cat /etc/release; ls /usr 2>&1; touch /new && echo wrote"}, {"PATH=/bin"});
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
    EXPECT_EQ(r.out, "upper\nls: /usr: No such file or directory\nwrote\n");  // nothing of the host's root
    // Control: the layers themselves are untouched.
    EXPECT_FALSE(fs::exists(layers / "2" / "new"));
    EXPECT_FALSE(fs::exists(layers / "1" / "new"));
  }
  {
    auto again = start(spec);  // a fresh upper: the last step's write is gone
    EXPECT_EQ(run(*again, {"sh", "-c", "ls /new 2>&1"}, {"PATH=/bin"}).outcome.exit_code, 1);
  }
  fs::remove_all(layers);
}

// --max-image-write as under native (executors/native/image_write_limit_test.cc tries each way
// of writing more): the writable layer is native's LoopFs on disk, not in state_dir's memory.
class OciImageWriteLimitTest : public OciExecutorTest {
 protected:
  static constexpr uint64_t kLimit = 32ull << 20;

  void SetUp() override {
    OciExecutorTest::SetUp();
    layers_ = temp_dir("boxcar-oci-layers");
    make_busybox_layer(layers_ / "1");
  }
  void TearDown() override {
    OciExecutorTest::TearDown();
    if (!layers_.empty()) fs::remove_all(layers_);
  }
  OciOptions options() override {
    OciOptions o = OciExecutorTest::options();
    o.max_image_write = kLimit;
    return o;
  }

  SandboxSpec image_spec() {
    SandboxSpec spec;
    spec.name = "image-step";
    spec.image = "test/busybox:1";
    spec.layers = {layers_ / "1"};
    return spec;
  }
  Ran sh(Sandbox& sb, const std::string& script) { return run(sb, {"sh", "-c", script}, {"PATH=/bin"}); }

  // Bytes the agent's disk holds for the upper in which the step wrote `marker`.
  uint64_t disk_use(const std::string& marker) {
    auto used = boxcar::testing::loop_upper_disk_use(uppers_, marker);
    EXPECT_TRUE(used) << "no upper below " << uppers_ << " holds " << marker;
    return used.value_or(0);
  }

  fs::path layers_;
};

TEST_F(OciImageWriteLimitTest, WritingPastTheLimitGetsEnospcAndTheDiskHoldsNoMore) {
  auto sb = start(image_spec());
  ASSERT_TRUE(sb);
  // Control: 8 MiB fits, and the measure from the host sees it (in uppers_dir, on disk).
  Ran small = sh(*sb, "dd if=/dev/zero of=/small bs=1M count=8 2>/dev/null && echo ok");
  EXPECT_EQ(small.out, "ok\n") << small.err;
  EXPECT_GE(disk_use("small"), 8ull << 20);
  // The attack: as fast as dd writes.
  Ran big = sh(*sb, "dd if=/dev/zero of=/big bs=1M count=64");
  EXPECT_EQ(big.outcome.kind, Outcome::Kind::failed) << describe(big.outcome);
  EXPECT_NE(big.err.find("No space left on device"), std::string::npos) << big.err;
  EXPECT_NE(big.outcome.message.find("filled its image root: it may write 32.0 MiB there (--max-image-write)"),
            std::string::npos)
      << big.outcome.message;
  EXPECT_LE(disk_use("small"), kLimit);
  // Control, same executor: a step in a fresh sandbox still writes under the limit.
  auto next = start(image_spec());
  ASSERT_TRUE(next);
  Ran ok = sh(*next, "dd if=/dev/zero of=/ok bs=1M count=8 2>/dev/null && echo ok");
  EXPECT_EQ(ok.out, "ok\n") << ok.err;
  EXPECT_TRUE(ok.outcome.message.empty()) << ok.outcome.message;
}

TEST_F(OciImageWriteLimitTest, TheUpperIsGoneAfterDestroy) {
  auto sb = start(image_spec());
  ASSERT_TRUE(sb);
  EXPECT_EQ(sh(*sb, "touch /marker && echo ok").out, "ok\n");
  fs::path upper = boxcar::testing::loop_upper_holding(uppers_, "marker");
  ASSERT_FALSE(upper.empty()) << "control: the step's upper is found from the host";
  ASSERT_NE(mountinfo_text().find(" " + upper.string() + " "), std::string::npos) << "control: it is a mount";
  sb->destroy();
  EXPECT_TRUE(eventually([&] {
    return !fs::exists(upper) && !fs::exists(upper.string() + ".img") &&
           mountinfo_text().find(" " + upper.string() + " ") == std::string::npos;
  })) << upper << " is still there";
}

TEST_F(OciExecutorTest, ADestroyedSandboxLeavesNoContainerMountOrBundle) {
  {
    auto sb = start();
    EXPECT_TRUE(run(*sb, {"true"}).outcome.ok());
  }
  fs::path bundles;
  for (const auto& e : fs::directory_iterator(state_)) {
    if (fs::exists(e.path() / "bundles")) bundles = e.path() / "bundles";
  }
  ASSERT_FALSE(bundles.empty());
  EXPECT_TRUE(eventually([&] { return dir_empty(bundles); })) << "the bundle is still there";
  std::ifstream mounts("/proc/self/mountinfo");
  std::string all((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_EQ(all.find(bundles.string()), std::string::npos) << "a mount is left";
}

// A running sandbox's bundle holds its image root (the overlay) and its workspace mount on the
// host, at a predictable path: no local user may read the checkout or plant files through it.
TEST_F(OciExecutorTest, ARunningSandboxsRootAndWorkspaceAreHiddenFromLocalUsers) {
  fs::path layers = temp_dir("boxcar-oci-layers");
  make_busybox_layer(layers / "1");
  ::chmod(workspace_.c_str(), 0755);  // only the bundle may stand in the way
  std::ofstream(workspace_ / "secret") << "token\n";
  ::chmod((workspace_ / "secret").c_str(), 0644);
  SandboxSpec spec;
  spec.name = "private";
  spec.layers = {layers / "1"};
  auto sb = start(spec);
  ASSERT_TRUE(sb);
  EXPECT_TRUE(run(*sb, {"cat", "/workspace/secret"}, {"PATH=/bin"}).outcome.ok());
  fs::path bundle;
  for (const auto& inst : fs::directory_iterator(state_)) {
    std::error_code ec;
    for (const auto& b : fs::directory_iterator(inst.path() / "bundles", ec)) bundle = b.path();
  }
  ASSERT_FALSE(bundle.empty());
  std::string rootfs = (bundle / "rootfs").string(), secret = (bundle / "workspace" / "secret").string(),
              planted = (bundle / "rootfs" / "tmp" / "planted").string();
  // Control: root reaches both, so the paths are right and the mounts are there.
  EXPECT_TRUE(fs::exists(fs::path(rootfs) / "bin" / "busybox"));
  std::string read;
  std::getline(std::ifstream(secret), read);
  EXPECT_EQ(read, "token");
  // Attack, as nobody: the bundle is found (its parent is searchable), but not entered.
  int denied = as_nobody([&] {
    struct stat st{};
    if (::stat(bundle.c_str(), &st) != 0) return 1;  // control: the probe reaches the bundle
    if (DIR* d = ::opendir(rootfs.c_str())) {
      ::closedir(d);
      return 2;
    }
    if (errno != EACCES) return 3;
    if (::open(secret.c_str(), O_RDONLY) >= 0 || errno != EACCES) return 4;
    if (::open(planted.c_str(), O_WRONLY | O_CREAT, 0644) >= 0 || errno != EACCES) return 5;
    return 0;
  });
  EXPECT_EQ(denied, 0) << "1: bundle unreachable, 2: root listed, 4: secret read, 5: file planted";
  EXPECT_FALSE(fs::exists(planted));
  // The overlay is nosuid and nodev, as native's.
  std::istringstream lines(mountinfo_text());
  bool found = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" " + rootfs + " ") == std::string::npos) continue;
    found = true;
    EXPECT_NE(line.find("nosuid"), std::string::npos) << line;
    EXPECT_NE(line.find("nodev"), std::string::npos) << line;
  }
  EXPECT_TRUE(found) << "no mount at " << rootfs;
  sb.reset();
  fs::remove_all(layers);
}

// An image is untrusted: its /dev may point at the host's /, its /etc elsewhere on the host.
// The paths runc mounts on become real directories inside the image root, and /etc/hosts
// names localhost and the sandbox's hostname, as under native.
TEST_F(OciExecutorTest, AHostileImageGetsRealMountPointsAndAnEtcHosts) {
  fs::path layers = temp_dir("boxcar-oci-layers"), elsewhere = temp_dir("boxcar-oci-elsewhere");
  make_busybox_layer(layers / "1");
  fs::create_symlink("/", layers / "1" / "dev");
  fs::create_symlink(elsewhere, layers / "1" / "etc");
  fs::create_symlink("/", layers / "1" / "proc");
  SandboxSpec spec;
  spec.name = "Hostile Image";
  spec.layers = {layers / "1"};
  auto sb = start(spec);
  ASSERT_TRUE(sb);
  Ran r = run(*sb, {"sh", "-c", "test -d /etc -a ! -L /etc -a ! -L /dev && test -c /dev/null && cat /etc/hosts && hostname"},
              {"PATH=/bin"});
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
  EXPECT_NE(r.out.find("127.0.0.1\tlocalhost hostile-image\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nhostile-image\n"), std::string::npos) << r.out;
  // Control: nothing was written through the image's symlink onto the host.
  EXPECT_TRUE(dir_empty(elsewhere));
  EXPECT_TRUE(fs::is_symlink(layers / "1" / "etc"));  // the layer itself is untouched
  sb.reset();
  fs::remove_all(layers);
  fs::remove_all(elsewhere);
}

// The cleanup of what a dead agent left: mountinfo writes a space in the state directory's
// path as "\040"; the mount below it must still be found and detached, and whatever mount is
// left is never deleted through.
TEST(OciExecutorCleanup, LeftoversWithASpaceInTheirPathAreUnmountedNotDeletedThrough) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  fs::path base = temp_dir("boxcar-oci-clean"), source = temp_dir("boxcar-oci-checkout");
  std::ofstream(source / "checkout.txt") << "keep\n";
  fs::path dir = base / "state dir" / "123-456-1";
  fs::path mount_point = dir / "bundles" / "s1" / "workspace";
  fs::create_directories(mount_point);
  std::ofstream(dir / "bundles" / "s1" / "config.json") << "{}";
  ASSERT_EQ(::mount(source.c_str(), mount_point.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
  ASSERT_NE(mountinfo_text().find("state\\040dir"), std::string::npos) << "control: mountinfo escapes the space";
  oci::remove_leftovers("/bin/true", (dir / "runc").string(), dir.string());
  EXPECT_EQ(mountinfo_text().find(base.string()), std::string::npos) << "the mount was not detached";
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(source / "checkout.txt")) << "the checkout was deleted through the mount";

  // A mount nothing detached (here: not below the directory named to remove_leftovers, as
  // when an unmount failed): the removal goes around it, and only it stays.
  fs::path tree = base / "state dir" / "tree";
  fs::create_directories(tree / "a" / "mounted");
  fs::create_directories(tree / "b");
  std::ofstream(tree / "b" / "file") << "x";
  ASSERT_EQ(::mount(source.c_str(), (tree / "a" / "mounted").c_str(), nullptr, MS_BIND, nullptr), 0);
  std::atomic<bool> never{false};
  EXPECT_FALSE(remove_tree(tree, never));  // cannot be whole: the mount is in the way
  EXPECT_TRUE(fs::exists(source / "checkout.txt")) << "deleted through a bind of the same filesystem";
  EXPECT_TRUE(fs::exists(tree / "a" / "mounted" / "checkout.txt"));
  EXPECT_FALSE(fs::exists(tree / "b")) << "control: the rest of the tree is removed";
  ::umount2((tree / "a" / "mounted").c_str(), MNT_DETACH);
  EXPECT_TRUE(remove_tree(tree, never));
  fs::remove_all(base);
  fs::remove_all(source);
}

TEST(OciExecutorSetup, AnUnknownRuntimeIsAClearError) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Status s = oci_available("no-such-runtime-xyz");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no-such-runtime-xyz"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("not found"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().subject, "oci_runtime");
  EXPECT_TRUE(oci_available("/usr/sbin/runc").ok() || !fs::exists("/usr/sbin/runc"));
}

// A dead agent: its keepers tear its sandboxes down; and where a keeper died too, the next
// executor on the same state directory removes the container, its mounts and its bundle.
TEST(OciExecutorCrashSafety, WhatADeadAgentLeftIsRemoved) {
  if (Status s = oci_available("runc"); !s) GTEST_SKIP() << s.error().message;
  fs::path workspace = temp_dir("boxcar-oci-ws"), state = temp_dir("boxcar-oci-state"),
           uppers = temp_dir("boxcar-oci-uppers", "/var/tmp");
  std::string marker = "boxcar-oci-orphan-" + std::to_string(::getpid());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t agent = ::fork();
  if (agent == 0) {
    // The "agent": starts a sandbox with a long-running process, says so, and waits to die.
    boost::asio::io_context io;
    OciOptions options;
    options.state_dir = state;
    options.uppers_dir = uppers;
    auto executor = make_oci_executor(io, options);
    auto job = executor->prepare(JobSpec{"crash", workspace});
    if (!job) ::_exit(2);
    SandboxSpec spec;
    spec.name = "orphan";
    auto sb = (*job)->start(spec);
    if (!sb) ::_exit(3);
    (void)(*sb)->exec(ExecRequest{{"bash", "-c", "exec -a " + marker + " sleep 1000"}, kPath}, {});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!process_alive(marker) && std::chrono::steady_clock::now() < until) io.run_one_for(std::chrono::milliseconds(10));
    (void)!::write(ready[1], "r", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the agent could not start its sandbox";
  ::close(ready[0]);
  // Kill the keeper first (the agent's child named boxcar-keeper), then the agent.
  for (const auto& p : fs::directory_iterator("/proc")) {
    std::ifstream stat(p.path() / "stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos || line.find("(boxcar-keeper)") == std::string::npos) continue;
    if (std::atoi(line.substr(close + 4).c_str()) == agent) ::kill(std::stoi(p.path().filename()), SIGKILL);
  }
  ::kill(agent, SIGKILL);
  ::waitpid(agent, nullptr, 0);
  // Control: the dead agent's sandbox is still on the host (its init goes when the control
  // channel closes, but nobody deleted the container, unmounted or removed the bundle).
  auto mounted_below = [&](const fs::path& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.find(dir.string() + "/") != std::string::npos;
  };
  fs::path dead;
  for (const auto& e : fs::directory_iterator(state)) {
    if (fs::exists(e.path() / "bundles")) dead = e.path();
  }
  ASSERT_FALSE(dead.empty()) << "control: the dead agent's state is there";
  ASSERT_TRUE(mounted_below(state)) << "control: the dead agent's workspace mount is there";
  std::vector<fs::path> dead_uppers;  // its instance directory and lock
  for (const auto& e : fs::directory_iterator(uppers)) dead_uppers.push_back(e.path());
  ASSERT_EQ(dead_uppers.size(), 2u) << "control: the dead agent's upper directories are there";
  boost::asio::io_context io;
  OciOptions options;
  options.state_dir = state;
  options.uppers_dir = uppers;
  auto next = make_oci_executor(io, options);
  EXPECT_FALSE(mounted_below(state)) << "a dead agent's mount survived";
  EXPECT_FALSE(fs::exists(dead)) << "a dead agent's bundles survived";
  for (const auto& p : dead_uppers) EXPECT_FALSE(fs::exists(p)) << "a dead agent's upper directory survived";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (process_alive(marker, true) && std::chrono::steady_clock::now() < deadline) ::usleep(10000);
  EXPECT_FALSE(process_alive(marker, true)) << "the dead agent's container survived";
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/devices/boxcar/" + std::to_string(agent) + "-"));
  next.reset();
  for (const auto& e : fs::directory_iterator(state)) EXPECT_EQ(e.path().filename(), "host-root") << e.path();
  EXPECT_TRUE(dir_empty(uppers)) << "the next executor's upper directories survived it";
  fs::remove_all(state);
  fs::remove_all(workspace);
  fs::remove_all(uppers);
}

}  // namespace
}  // namespace boxcar::executors
