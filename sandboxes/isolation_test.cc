// Two sandboxes of the API must not see each other's /tmp, processes, hostname or network; a
// restarted host adopts a sandbox as stopped and the next request starts it with /workspace
// intact; sandboxes created and removed leave no mount, cgroup or network namespace behind.
#include <dirent.h>
#include <unistd.h>

#include <fstream>

#include <boost/json.hpp>

#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_suite.h"
#include "testing/step_cgroup_value.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

class IsolationTest : public SandboxSuite {
 protected:
  static void SetUpTestSuite() {
    SandboxSuite::SetUpTestSuite();
    if (f_ == nullptr) return;
    auto other = f_->create_sandbox("alice");
    if (other) other_ = *other;
  }
  static inline std::string other_;
};

TEST_F(IsolationTest, TmpIsTheSandboxesOwn) {
  EXPECT_EQ(exec({{"command", "echo a > /tmp/only-in-a"}})["exit_code"], 0);
  EXPECT_EQ(exec({{"argv", {"cat", "/tmp/only-in-a"}}})["stdout"], "a\n");  // control
  auto b = exec({{"argv", {"test", "-e", "/tmp/only-in-a"}}}, other_);
  EXPECT_EQ(b["exit_code"], 1);
}

TEST_F(IsolationTest, ProcessesAreTheSandboxesOwn) {
  exec({{"command", "sleep 4242 >/dev/null 2>&1 </dev/null &"}, {"session", nullptr}});
  std::string list = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done";
  EXPECT_NE(str(exec({{"command", list}}), "stdout").find("sleep 4242"), std::string::npos);  // control
  EXPECT_EQ(str(exec({{"command", list}}, other_), "stdout").find("sleep 4242"), std::string::npos);
}

TEST_F(IsolationTest, HostnamesDiffer) {
  EXPECT_EQ(str(exec({{"argv", {"hostname"}}}), "stdout"), id_ + "\n");
  EXPECT_EQ(str(exec({{"argv", {"hostname"}}}, other_), "stdout"), other_ + "\n");
}

TEST_F(IsolationTest, LoopbackIsTheSandboxesOwn) {
  exec({{"command", "python3 -m http.server 18765 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &"}, {"session", nullptr}});
  // Waits (bounded by attempts, not time) until the server listens: the control that the probe works.
  auto a = exec({{"command", "for i in $(seq 200); do (echo > /dev/tcp/127.0.0.1/18765) 2>/dev/null && exit 0; "
                             "sleep 0.05; done; exit 1"}});
  ASSERT_EQ(a["exit_code"], 0) << a;
  auto b = exec({{"command", "(echo > /dev/tcp/127.0.0.1/18765) 2>/dev/null"}}, other_);
  EXPECT_EQ(b["exit_code"], 1) << b;
}

std::vector<std::string> mounts_now() {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Network namespaces this process holds open (the executor keeps each sandbox's by an fd).
size_t netns_fds() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    char target[256];
    ssize_t len = ::readlink(e.path().c_str(), target, sizeof target - 1);
    if (len > 0 && std::string_view(target, len).rfind("net:[", 0) == 0) ++n;
  }
  return n;
}

TEST_F(IsolationTest, FiftySandboxesLeaveNothingBehind) {
  auto mounts = mounts_now();
  size_t netns = netns_fds();
  size_t memory = boxcar::testing::step_cgroups("memory").size();
  size_t pids = boxcar::testing::step_cgroups("pids").size();
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto id = f_->create_sandbox("bob");
    ASSERT_TRUE(id.ok()) << id.error().message;
    ids.push_back(*id);
  }
  EXPECT_GT(netns_fds() + boxcar::testing::step_cgroups("pids").size(), netns + pids);  // control: they exist
  for (const auto& id : ids) EXPECT_TRUE(f_->remove_sandbox(id));
  f_->io().restart();
  f_->io().run_for(std::chrono::milliseconds(100));  // reaps and cgroup removal, as the executor's tests do
  EXPECT_EQ(mounts_now(), mounts);
  EXPECT_EQ(netns_fds(), netns);
  EXPECT_EQ(boxcar::testing::step_cgroups("memory").size(), memory);
  EXPECT_EQ(boxcar::testing::step_cgroups("pids").size(), pids);
  for (const auto& id : ids) EXPECT_FALSE(std::filesystem::exists(f_->data_dir() / "sandboxes" / id));
}

TEST(AdoptionTest, ARestartedHostAdoptsStoppedAndRestartsOnTheNextExec) {
  auto made = HostFixture::make();
  if (!made) GTEST_SKIP() << made.error().message;
  HostFixture& f = **made;
  auto id = f.create_sandbox();
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::string body = R"({"command": "echo kept > /workspace/keep.txt; echo gone > /tmp/gone"})";
  ASSERT_EQ(f.call("POST", HostFixture::path(*id, "/exec"), body).status, 200u);
  ASSERT_TRUE(f.restart_host().ok());
  ApiSandbox* sb = f.host().find(*id);
  ASSERT_NE(sb, nullptr);
  EXPECT_FALSE(sb->running());
  EXPECT_EQ(f.host().reports().at(0).state, "stopped");
  HttpReply r = f.call("POST", HostFixture::path(*id, "/exec"),
                       R"({"command": "cat /workspace/keep.txt; test -e /tmp/gone && echo tmp-survived; hostname"})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto v = protocol::parse_json(r.body);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(std::string(v->at("stdout").as_string()), "kept\n" + *id + "\n");
  EXPECT_EQ(f.host().reports().at(0).state, "running");
  HttpReply other = f.call("POST", HostFixture::path(*id, "/exec"), body, "mallory");
  EXPECT_EQ(other.status, 404u);  // the owner came back from meta.json
}

}  // namespace
}  // namespace boxcar::sandboxes
