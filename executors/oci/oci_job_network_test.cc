// The oci executor's side of job networks on real runc containers: the agent's namespace, the
// step's net_cls class on every process (runc joins the cgroup native's code made), and the
// job's /etc/resolv.conf for host and image roots and network = "none".
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "executors/native/resolv_conf.h"
#include "executors/oci/oci_executor.h"
#include "testing/job_network_probe.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using boxcar::testing::Ran;

constexpr uint32_t kClass = 0xb0000007;
const std::string kResolv = "# the job's resolver\nnameserver 10.213.0.1\n";

class OciJobNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = oci_available("runc"); !s) GTEST_SKIP() << s.error().message;
    char ws[] = "/tmp/boxcar-oci-jobnet-ws-XXXXXX", st[] = "/tmp/boxcar-oci-jobnet-state-XXXXXX";
    workspace_ = ::mkdtemp(ws);
    state_ = ::mkdtemp(st);
    netns_ = boxcar::testing::make_test_netns();
    ASSERT_TRUE(netns_);
    OciOptions o;
    o.state_dir = state_;
    o.uppers_dir = state_ / "uppers";
    o.max_image_write = 0;
    executor_ = make_oci_executor(io_, o);
    auto job = executor_->prepare(JobSpec{"jobnet", workspace_, netns_.get(), kResolv});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    job_.reset();
    io_.restart();
    io_.run_for(20ms);
    executor_.reset();  // waits for the keepers' teardown
    std::error_code ec;
    if (!state_.empty()) fs::remove_all(state_, ec);
    if (!workspace_.empty()) fs::remove_all(workspace_, ec);
  }

  Ran sh(Sandbox& sandbox, const std::string& script) {
    return boxcar::testing::run_in(io_, sandbox, ExecRequest{{"sh", "-c", script}, {"PATH=/usr/bin:/bin"}});
  }
  std::unique_ptr<Sandbox> start(NetworkMode network, uint32_t net_class, std::vector<fs::path> layers = {}) {
    SandboxSpec s;
    s.name = "step";
    s.network = network;
    s.net_class = net_class;
    if (!layers.empty()) {
      s.image = "test/busybox:1";
      s.layers = std::move(layers);
    }
    auto sb = job_->start(s);
    EXPECT_TRUE(sb.ok()) << sb.error().message;
    return sb.ok() ? std::move(*sb) : nullptr;
  }
  bool eventually(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(20ms);
    }
    return true;
  }

  boost::asio::io_context io_;
  fs::path workspace_, state_;
  unique_fd netns_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
};

TEST_F(OciJobNetworkTest, TheAgentsNamespaceAndTheStepsClassOnEveryProcess) {
  auto sb = start(NetworkMode::job, kClass);
  Ran ns = sh(*sb, "readlink /proc/self/ns/net");
  EXPECT_EQ(ns.out, boxcar::testing::netns_name(netns_.get()) + "\n") << ns.err;
  std::string arg = std::to_string(::getpid()) + "77";
  EXPECT_EQ(sh(*sb, "setsid sleep " + arg + " </dev/null >/dev/null 2>&1 & echo started").out, "started\n");
  pid_t daemon = 0;
  ASSERT_TRUE(eventually([&] { return (daemon = boxcar::testing::find_process("sleep", arg)) != 0; }));
  EXPECT_EQ(boxcar::testing::net_class_of(daemon), std::to_string(kClass));
  EXPECT_EQ(boxcar::testing::net_class_of(boxcar::testing::parent_of(daemon)), std::to_string(kClass));
  std::string dir = boxcar::testing::net_cls_dir_of(daemon);
  sb->destroy();
  EXPECT_TRUE(eventually([&] { return !fs::exists(dir); })) << dir;
}

TEST_F(OciJobNetworkTest, HostRootGetsTheJobsResolvConfReadOnlyAndNoneSaysItHasNoNetwork) {
  struct stat st{};
  if (::lstat("/etc/resolv.conf", &st) != 0 || !S_ISREG(st.st_mode)) {
    // This host's is a link: the oci executor refuses clearly instead (oci_executor.cc).
    SandboxSpec s;
    s.name = "step";
    auto sb = job_->start(s);
    ASSERT_TRUE(sb.ok());
    Ran r = sh(**sb, "true");
    EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_error);
    EXPECT_NE(r.outcome.message.find("resolv.conf"), std::string::npos) << r.outcome.message;
    return;
  }
  std::string host_before = boxcar::testing::read_text("/etc/resolv.conf");
  auto sb = start(NetworkMode::job, kClass);
  Ran w = sh(*sb, "echo 'nameserver 192.0.2.66' > /etc/resolv.conf || echo refused; cat /etc/resolv.conf");
  EXPECT_EQ(w.out, "refused\n" + kResolv) << w.err;
  EXPECT_EQ(boxcar::testing::read_text("/etc/resolv.conf"), host_before);
  EXPECT_EQ(sh(*sb, "echo x > /tmp/f && cat /tmp/f").out, "x\n");  // control: it can write elsewhere
  auto none = start(NetworkMode::none, 0);
  EXPECT_EQ(sh(*none, "cat /etc/resolv.conf").out, native::no_network_resolv_conf());
}

TEST_F(OciJobNetworkTest, AnImageRootGetsTheJobsResolvConf) {
  fs::path layer = state_ / "layer";
  fs::create_directories(layer / "bin");
  fs::copy_file("/usr/bin/busybox", layer / "bin" / "busybox");
  for (const char* tool : {"sh", "cat"}) fs::create_symlink("busybox", layer / "bin" / tool);
  auto sb = start(NetworkMode::job, kClass, {layer});
  Ran r = boxcar::testing::run_in(io_, *sb, ExecRequest{{"cat", "/etc/resolv.conf"}, {"PATH=/bin"}});
  EXPECT_EQ(r.out, kResolv) << describe(r.outcome) << r.err;
}

}  // namespace
}  // namespace boxcar::executors
