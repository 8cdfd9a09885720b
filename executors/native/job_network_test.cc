// The executor's side of job networks on real sandboxes: the agent's namespace is the one steps
// see, every process carries the step's net_cls class (daemons and prewarmed sandboxes too), and
// /etc/resolv.conf is the job's, read-only, for host and image roots and network = "none".
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "executors/native/cgroup.h"
#include "executors/native/image_root_fixture.h"
#include "executors/native/native_executor.h"
#include "executors/native/resolv_conf.h"
#include "testing/job_network_probe.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using boxcar::testing::Ran;

constexpr uint32_t kClass = 0xb0000007;
const std::string kResolv = "# the job's resolver\nnameserver 10.213.0.1\n";

// Polls `pred`, running `io` in between; 20 s bound a broken test.
bool eventually(boost::asio::io_context& io, const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

class NativeJobNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
    char tmpl[] = "/tmp/boxcar-jobnet-test-XXXXXX";
    workspace_ = ::mkdtemp(tmpl);
    netns_ = boxcar::testing::make_test_netns();
    ASSERT_TRUE(netns_);
    executor_ = make_native_executor(io_);
    auto job = executor_->prepare(JobSpec{"jobnet", workspace_, netns_.get(), kResolv});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    io_.restart();
    io_.run_for(50ms);
    if (!workspace_.empty()) fs::remove_all(workspace_);
  }

  std::unique_ptr<Sandbox> start(SandboxSpec spec) {
    auto s = job_->start(spec);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  Ran sh(Sandbox& sandbox, const std::string& script) {
    return boxcar::testing::run_in(io_, sandbox, ExecRequest{{"sh", "-c", script}, {"PATH=/usr/bin:/bin"}});
  }
  static SandboxSpec step(NetworkMode network = NetworkMode::job, uint32_t net_class = kClass) {
    SandboxSpec s;
    s.name = "step";
    s.network = network;
    s.net_class = net_class;
    return s;
  }

  // Daemonizes `sleep <unique>` in the sandbox and returns its host pid (0 when not found).
  pid_t daemon_in(Sandbox& sandbox) {
    std::string arg = std::to_string(::getpid()) + std::to_string(++daemons_);
    Ran r = sh(sandbox, "setsid sleep " + arg + " </dev/null >/dev/null 2>&1 & echo started");
    EXPECT_EQ(r.out, "started\n") << r.err;
    pid_t pid = 0;
    eventually(io_, [&] { return (pid = boxcar::testing::find_process("sleep", arg)) != 0; });
    return pid;
  }

  boost::asio::io_context io_;
  fs::path workspace_;
  unique_fd netns_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
  int daemons_ = 0;
};

TEST_F(NativeJobNetworkTest, StepsSeeTheAgentsNamespaceNotOneOfTheExecutors) {
  auto sb = start(step());
  Ran r = sh(*sb, "readlink /proc/self/ns/net");
  EXPECT_EQ(r.out, boxcar::testing::netns_name(netns_.get()) + "\n") << r.err;
  // Control: a job the agent gave no namespace gets one of the executor's own.
  auto own = executor_->prepare(JobSpec{"own", workspace_});
  ASSERT_TRUE(own.ok()) << own.error().message;
  auto other = (*own)->start(step(NetworkMode::job, 0));
  ASSERT_TRUE(other.ok());
  Ran o = boxcar::testing::run_in(io_, **other, ExecRequest{{"readlink", "/proc/self/ns/net"}, {"PATH=/usr/bin:/bin"}});
  EXPECT_TRUE(o.out.rfind("net:[", 0) == 0) << o.err;
  EXPECT_NE(o.out, r.out);
  (*other)->destroy();
  (*own)->destroy();
}

TEST_F(NativeJobNetworkTest, ANamespaceFdThatIsNotOneIsRefused) {
  unique_fd file(::open("/etc/hostname", O_RDONLY | O_CLOEXEC));
  auto job = executor_->prepare(JobSpec{"bad", workspace_, file.get(), kResolv});
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.error().message.find("not a network namespace"), std::string::npos) << job.error().message;
}

TEST_F(NativeJobNetworkTest, EveryProcessCarriesTheStepsClassAndTheCgroupGoesWithTheSandbox) {
  auto sb = start(step());
  pid_t daemon = daemon_in(*sb);
  ASSERT_NE(daemon, 0);
  EXPECT_EQ(boxcar::testing::net_class_of(daemon), std::to_string(kClass));
  pid_t init = boxcar::testing::parent_of(daemon);  // the daemon's shell exited: init adopted it
  EXPECT_EQ(boxcar::testing::net_class_of(init), std::to_string(kClass));
  std::string dir = boxcar::testing::net_cls_dir_of(daemon);
  ASSERT_FALSE(dir.empty());
  sb->destroy();
  EXPECT_TRUE(eventually(io_, [&] { return !fs::exists(dir); })) << dir;
  // Control: a step without a class carries none (the probe does not read a constant).
  auto plain = start(step(NetworkMode::job, 0));
  pid_t other = daemon_in(*plain);
  ASSERT_NE(other, 0);
  EXPECT_EQ(boxcar::testing::net_class_of(other), "0");
}

TEST_F(NativeJobNetworkTest, APrewarmedSandboxTakesTheClassOfTheStepThatTakesIt) {
  job_->expect(3);
  { auto first = start(step(NetworkMode::job, 0xb0000001)); EXPECT_EQ(sh(*first, "echo ok").out, "ok\n"); }
  io_.restart();
  io_.run_for(100ms);  // the refill, made like the step above (class 0xb0000001)
  auto taken = start(step(NetworkMode::job, kClass));
  pid_t daemon = daemon_in(*taken);
  ASSERT_NE(daemon, 0);
  EXPECT_EQ(boxcar::testing::net_class_of(daemon), std::to_string(kClass));
  EXPECT_EQ(boxcar::testing::net_class_of(boxcar::testing::parent_of(daemon)), std::to_string(kClass));
}

TEST(NativeNetClsFailsClosed, AStepWhoseClassCannotBeSetIsRefused) {
  native::CgroupRoot none;  // no controllers found at all
  SandboxSpec spec;
  spec.name = "step";
  spec.net_class = kClass;
  auto cg = native::StepCgroup::create(none, "s1", spec);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().message.find("net_cls"), std::string::npos) << cg.error().message;
  spec.net_class = 0;  // control: without a class nothing is needed
  EXPECT_TRUE(native::StepCgroup::create(none, "s1", spec).ok());
}

TEST_F(NativeJobNetworkTest, HostRootGetsTheJobsResolvConfReadOnly) {
  std::string host_before = boxcar::testing::read_text("/etc/resolv.conf");
  auto sb = start(step());
  Ran r = sh(*sb, "cat /etc/resolv.conf");
  EXPECT_EQ(r.out, kResolv) << r.err;
  // Attack: write the host's file through the sandbox's view of it, or remove the bind.
  Ran w = sh(*sb, "echo 'nameserver 192.0.2.66' > /etc/resolv.conf || echo refused; umount /etc/resolv.conf 2>/dev/null; "
                  "cat /etc/resolv.conf");
  EXPECT_EQ(w.out, "refused\n" + kResolv) << w.err;
  EXPECT_EQ(boxcar::testing::read_text("/etc/resolv.conf"), host_before);
  // Control: the same step can write where it may.
  EXPECT_EQ(sh(*sb, "echo x > /tmp/f && cat /tmp/f").out, "x\n");
}

TEST_F(NativeJobNetworkTest, NetworkNoneGetsAResolvConfSayingSo) {
  auto sb = start(step(NetworkMode::none, 0));
  Ran r = sh(*sb, "cat /etc/resolv.conf");
  EXPECT_EQ(r.out, native::no_network_resolv_conf()) << r.err;
}

// The host's /etc/resolv.conf may be a symlink (absolute, relative, dangling): the job's file
// goes onto the link itself, and nothing it points at is touched.
TEST(NativeResolvConfMount, ALinkIsMountedOverNeverFollowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/boxcar-resolv-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  std::ofstream(dir / "job.conf") << kResolv;
  std::ofstream(dir / "outside.conf") << "outside\n";
  for (const char* kind : {"absolute", "relative", "dangling"}) {
    fs::path root = dir / kind;
    fs::create_directories(root / "etc");
    if (std::string(kind) == "absolute") fs::create_symlink(dir / "outside.conf", root / "etc/resolv.conf");
    if (std::string(kind) == "relative") fs::create_symlink("../../outside.conf", root / "etc/resolv.conf");
    if (std::string(kind) == "dangling") fs::create_symlink("/nowhere/resolv.conf", root / "etc/resolv.conf");
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(10);
      auto m = native::resolv_conf_mount(dir / "job.conf");
      if (!m.ok()) _exit(11);
      if (native::mount_resolv_conf(m->get(), root.string())) _exit(12);
      if (boxcar::testing::read_text(root / "etc/resolv.conf") != kResolv) _exit(13);
      if (boxcar::testing::read_text(dir / "outside.conf") != "outside\n") _exit(14);
      std::ofstream attempt(root / "etc/resolv.conf");
      _exit(attempt.is_open() ? 15 : 0);  // read-only
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << kind << ": " << WEXITSTATUS(status);
  }
  EXPECT_EQ(boxcar::testing::read_text(dir / "outside.conf"), "outside\n");
  fs::remove_all(dir);
}

class ImageRootResolvTest : public image_root_testing::ImageRootTest {};

TEST_F(ImageRootResolvTest, AnImageRootGetsTheJobsResolvConf) {
  auto job = executor_->prepare(JobSpec{"image-resolv", workspace_, -1, kResolv});
  ASSERT_TRUE(job.ok()) << job.error().message;
  SandboxSpec spec = image_spec();
  auto sb = (*job)->start(spec);
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(run(**sb, "cat /etc/resolv.conf").out, kResolv);
  spec.network = NetworkMode::none;
  auto none = (*job)->start(spec);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(run(**none, "cat /etc/resolv.conf").out, native::no_network_resolv_conf());
  // Control: a job without one keeps the host's, as before.
  auto plain = start(image_spec());
  EXPECT_EQ(run(*plain, "cat /etc/resolv.conf").out, boxcar::testing::read_text("/etc/resolv.conf"));
  (*sb)->destroy();
  (*none)->destroy();
  (*job)->destroy();
}

}  // namespace
}  // namespace boxcar::executors
