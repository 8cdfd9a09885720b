// The /workspace disk quota (sandboxes/disk_quota.h) in real sandboxes of 1 MiB: uploads past it
// are refused before anything lands, a command that writes past it is stopped by the check (run
// here by hand: check_disks, no timer waited on), the sandbox refuses new work until files are
// removed, and links planted in /workspace are never followed by the host's measure. /tmp is a
// tmpfs of its own size (resources.tmp_bytes) that the kernel enforces.
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <optional>
#include <filesystem>
#include <fstream>

#include <boost/json.hpp>

#include "sandboxes/api_sandbox.h"
#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

constexpr int64_t kQuota = 1 << 20;

class QuotaTest : public SandboxSuite {
 protected:
  static void SetUpTestSuite() {
    SandboxSuite::SetUpTestSuite();
    if (f_ == nullptr) return;
    protocol::SandboxCreate spec;
    spec.resources.disk_bytes = kQuota;
    spec.resources.tmp_bytes = kQuota;
    auto small = f_->create_sandbox("alice", spec);
    if (small) small_ = *small;
  }
  void SetUp() override {
    SandboxSuite::SetUp();
    if (!IsSkipped() && small_.empty()) GTEST_SKIP() << "no 1 MiB sandbox";
  }
  static HttpReply call(const std::string& method, const std::string& rest, const std::string& body = "") {
    return f_->call(method, HostFixture::path(small_, rest), body);
  }
  static HttpReply exec_small(const json::value& body) { return post("/exec", body, small_); }
  static std::string code(const HttpReply& r) {
    auto v = parse(r.body);
    return v.is_object() ? str(v.as_object(), "code") : "";
  }
  // What the periodic check does, once, driven here.
  static void check() {
    bool done = false;
    f_->host().check_disks([&] { done = true; });
    f_->run_until(done);
  }
  static DiskQuota& quota() { return f_->host().find(small_)->disk(); }
  static std::filesystem::path host_workspace() { return f_->host().find(small_)->workspace_dir(); }
  static std::vector<std::string> workspace_names() {
    std::vector<std::string> names;
    auto v = parse(call("GET", "/fs/list?path=/workspace").body);
    if (!v.is_object()) return names;
    for (const auto& e : v.at("entries").as_array()) names.emplace_back(e.at("name").as_string());
    return names;
  }
  static size_t spooled() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(f_->data_dir() / "sandbox-uploads")) ++n;
    return n;
  }
  static inline std::string small_;
};

TEST_F(QuotaTest, APutPastTheQuotaIs507AndLeavesNothingBehind) {
  HttpReply big = call("PUT", "/files/workspace/big", std::string(2 * kQuota, 'x'));
  EXPECT_EQ(big.status, 507u) << big.body;
  EXPECT_EQ(code(big), "quota_exceeded");
  EXPECT_NE(big.body.find("resources.disk_bytes"), std::string::npos) << "says how to go on: " << big.body;
  // Control: one under the quota lands.
  ASSERT_EQ(call("PUT", "/files/workspace/a", std::string(700 << 10, 'a')).status, 201u);
  // A second one fits the Content-Length check but not what /workspace holds already: refused
  // after the body was spooled, before anything was written into the sandbox.
  HttpReply second = call("PUT", "/files/workspace/b", std::string(700 << 10, 'b'));
  EXPECT_EQ(second.status, 507u) << second.body;
  EXPECT_EQ(code(second), "quota_exceeded");
  EXPECT_EQ(workspace_names(), std::vector<std::string>{"a"}) << "no temp file, no partial b";
  EXPECT_EQ(spooled(), 0u);
  EXPECT_EQ(call("DELETE", "/files/workspace/a").status, 204u);
  // The room is back (the file API counts what it removes by measuring again when short).
  EXPECT_EQ(call("PUT", "/files/workspace/b", std::string(700 << 10, 'b')).status, 201u);
  EXPECT_EQ(call("DELETE", "/files/workspace/b").status, 204u);
  // Only /workspace counts: /tmp has its own size.
  EXPECT_EQ(call("PUT", "/files/tmp/half", std::string(kQuota / 2, 't')).status, 201u);
  EXPECT_EQ(call("DELETE", "/files/tmp/half").status, 204u);
}

TEST_F(QuotaTest, TmpIsATmpfsOfItsOwnSize) {
  HttpReply put = call("PUT", "/files/tmp/big", std::string(2 * kQuota, 'x'));
  EXPECT_EQ(put.status, 507u) << put.body;
  EXPECT_EQ(code(put), "quota_exceeded");
  // Within the Content-Length check, the kernel refuses: the second one does not fit the tmpfs,
  // and its temp file goes.
  ASSERT_EQ(call("PUT", "/files/tmp/one", std::string(700 << 10, '1')).status, 201u);
  HttpReply second = call("PUT", "/files/tmp/two", std::string(700 << 10, '2'));
  EXPECT_EQ(second.status, 507u) << second.body;
  EXPECT_EQ(code(second), "quota_exceeded");
  auto listed = parse(call("GET", "/fs/list?path=/tmp").body);
  ASSERT_TRUE(listed.is_object()) << "list /tmp";
  EXPECT_EQ(listed.at("entries").as_array().size(), 1u) << listed;
  EXPECT_EQ(call("DELETE", "/files/tmp/one").status, 204u);
  HttpReply dd = exec_small({{"command", "head -c 2M /dev/zero > /tmp/big"}});
  EXPECT_NE(parse(dd.body).at("exit_code"), 0) << dd.body;
  EXPECT_NE(str(parse(dd.body).as_object(), "stderr").find("No space left"), std::string::npos) << dd.body;
  HttpReply control = exec_small({{"command", "rm -f /tmp/big; head -c 512K /dev/zero > /tmp/ok && rm /tmp/ok"}});
  EXPECT_EQ(parse(control.body).at("exit_code"), 0) << control.body;
}

TEST_F(QuotaTest, AProcessWritingPastTheQuotaIsStoppedAndNewWorkRefusedUntilFilesGo) {
  HttpReply started = post("/processes", {{"command", "head -c 2M /dev/zero > /workspace/fill; echo written; exec sleep 600"},
                                          {"id", "filler"}}, small_);
  ASSERT_EQ(started.status, 201u) << started.body;
  HttpReply wrote = post("/processes/filler/wait", {{"for", "log"}, {"pattern", "written"}, {"timeout_ms", 30000}}, small_);
  ASSERT_EQ(parse(wrote.body).at("met"), true) << wrote.body;
  check();
  EXPECT_TRUE(quota().over());
  HttpReply ended = post("/processes/filler/wait", {{"for", "exit"}, {"timeout_ms", 30000}}, small_);
  EXPECT_EQ(parse(ended.body).at("met"), true) << ended.body;
  EXPECT_EQ(parse(call("GET", "/processes/filler").body).at("status"), "quota_exceeded");
  // New work is refused, with the code and the way out.
  HttpReply refused = exec_small({{"argv", {"true"}}});
  EXPECT_EQ(refused.status, 507u) << refused.body;
  EXPECT_EQ(code(refused), "quota_exceeded");
  EXPECT_EQ(code(post("/processes", {{"argv", {"true"}}}, small_)), "quota_exceeded");
  EXPECT_EQ(code(call("PUT", "/files/workspace/more", "x")), "quota_exceeded");
  EXPECT_EQ(code(post("/fs/copy", {{"from", "/workspace/fill"}, {"to", "/workspace/copy"}}, small_)), "quota_exceeded");
  // Looking and cleaning up still work, and removing the file lifts it at once.
  EXPECT_EQ(call("GET", "/fs/list?path=/workspace").status, 200u);
  EXPECT_EQ(call("HEAD", "/files/workspace/fill").status, 200u);
  EXPECT_EQ(call("DELETE", "/files/workspace/fill").status, 204u);
  EXPECT_FALSE(quota().over());
  HttpReply again = exec_small({{"argv", {"true"}}});
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(call("DELETE", "/processes/filler").status, 200u);
}

TEST_F(QuotaTest, ARunningExecIsAnsweredQuotaExceeded) {
  bool done = false;
  HttpReply answer;
  f_->send("POST", HostFixture::path(small_, "/exec"),
           R"({"command": "head -c 2M /dev/zero > /workspace/exec-fill; exec sleep 600", "timeout_ms": 600000})",
           [&](HttpReply r) {
             answer = std::move(r);
             done = true;
           });
  // The connection is the exec's until it ends: the host's own view tells when the file is
  // written (turns of the io_context, no assertion on time).
  const auto file = host_workspace() / "exec-fill";
  for (int turn = 0; turn < 3000; ++turn) {
    struct stat st;
    if (::stat(file.c_str(), &st) == 0 && st.st_size >= 2 * kQuota) break;
    f_->io().run_for(std::chrono::milliseconds(10));
  }
  check();
  f_->run_until(done);
  EXPECT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(str(parse(answer.body).as_object(), "outcome"), "quota_exceeded") << answer.body;
  EXPECT_EQ(call("DELETE", "/files/workspace/exec-fill").status, 204u);
  EXPECT_EQ(exec_small({{"argv", {"true"}}}).status, 200u);
}

TEST_F(QuotaTest, LinksPlantedInTheWorkspaceAreNotFollowedNorCountedTwice) {
  // Attack: links to the biggest trees there are (as the host sees them: / and /usr), and a hard
  // link to a file of 600 KiB. Followed, any of them would put the sandbox past 1 MiB.
  HttpReply plant = exec_small({{"command", "ln -s / /workspace/root && ln -s /usr /workspace/usr && ln -s ../.. /workspace/up && "
                                            "head -c 600K /dev/urandom > /workspace/one && ln /workspace/one /workspace/two"}});
  ASSERT_EQ(parse(plant.body).at("exit_code"), 0) << plant.body;
  check();
  EXPECT_FALSE(quota().over()) << quota().used();
  EXPECT_LT(quota().used(), uint64_t{kQuota});
  EXPECT_EQ(exec_small({{"argv", {"true"}}}).status, 200u);
  // Control: a real second copy of the same bytes is counted, and puts it over.
  ASSERT_EQ(parse(exec_small({{"command", "cp /workspace/one /workspace/three"}}).body).at("exit_code"), 0);
  check();
  EXPECT_TRUE(quota().over()) << quota().used();
  for (const char* name : {"three", "two", "one", "up", "usr", "root"}) {
    EXPECT_EQ(call("DELETE", std::string("/files/workspace/") + name).status, 204u) << name;
  }
  EXPECT_FALSE(quota().over());
}

TEST_F(QuotaTest, ALinkIntoTheWorkspaceDoesNotBypassTheQuota) {
  // Attack: /tmp/ws -> /workspace. The path is under /tmp, the bytes land in /workspace.
  HttpReply plant = exec_small({{"command", "ln -s /workspace /tmp/ws && head -c 700K /dev/zero > /workspace/a"}});
  ASSERT_EQ(parse(plant.body).at("exit_code"), 0) << plant.body;
  check();
  ASSERT_FALSE(quota().over()) << quota().used();
  // Short of room (700 KiB of 1 MiB held): refused through the link as through the real path.
  HttpReply linked = call("PUT", "/files/tmp/ws/b", std::string(700 << 10, 'b'));
  EXPECT_EQ(linked.status, 507u) << linked.body;
  EXPECT_EQ(code(linked), "quota_exceeded");
  HttpReply direct = call("PUT", "/files/workspace/b", std::string(700 << 10, 'b'));
  EXPECT_EQ(code(direct), "quota_exceeded") << "control: the real path";
  EXPECT_EQ(workspace_names(), std::vector<std::string>{"a"}) << "no temp file, no partial b";
  // Control: the same bytes to a real /tmp path land (the tmpfs is not the quota's).
  EXPECT_EQ(call("PUT", "/files/tmp/b", std::string(700 << 10, 'b')).status, 201u);
  EXPECT_EQ(call("DELETE", "/files/tmp/b").status, 204u);
  // Past the quota: every write through the link is refused, the PUT and the copy.
  ASSERT_EQ(parse(exec_small({{"command", "head -c 1M /dev/zero > /workspace/fill"}}).body).at("exit_code"), 0);
  check();
  ASSERT_TRUE(quota().over());
  EXPECT_EQ(code(call("PUT", "/files/tmp/ws/c", "x")), "quota_exceeded");
  EXPECT_EQ(code(call("PUT", "/files/workspace/c", "x")), "quota_exceeded") << "control: the real path";
  EXPECT_EQ(code(post("/fs/copy", {{"from", "/workspace/a"}, {"to", "/tmp/ws/copy"}}, small_)), "quota_exceeded");
  EXPECT_EQ(call("PUT", "/files/tmp/c", "x").status, 201u) << "control: /tmp itself still takes a PUT";
  for (const char* gone : {"/files/tmp/c", "/files/workspace/fill"}) {
    EXPECT_EQ(call("DELETE", gone).status, 204u) << gone;
  }
  ASSERT_FALSE(quota().over());
  // Under the quota again, a copy through the link that passes it is measured and undone.
  HttpReply copied = post("/fs/copy", {{"from", "/workspace/a"}, {"to", "/tmp/ws/a2"}}, small_);
  EXPECT_EQ(copied.status, 507u) << copied.body;
  EXPECT_EQ(workspace_names(), std::vector<std::string>{"a"});
  for (const char* gone : {"/files/tmp/ws", "/files/workspace/a"}) {
    EXPECT_EQ(call("DELETE", gone).status, 204u) << gone;
  }
  EXPECT_FALSE(quota().over());
}

// A sandbox that renames directories while its workspace is walked makes the walk fail (ESTALE):
// failing must not leave it unchecked.
TEST(DiskQuota, TwoFailedMeasuresInARowCountAsOverTheQuota) {
  DiskQuota q(kQuota);
  q.measured(4096, false);
  q.unmeasured("the tree changed while it was walked");
  EXPECT_FALSE(q.over()) << "control: one failure may be a file removed at the wrong moment";
  q.measured(4096, false);
  q.unmeasured("the tree changed while it was walked");
  EXPECT_FALSE(q.over()) << "control: a success between failures starts the count again";
  q.unmeasured("the tree changed while it was walked");
  ASSERT_TRUE(q.over());
  auto refused = q.gate("exec");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 507u);
  EXPECT_NE(refused->body.find("could not be measured 2 times in a row"), std::string::npos) << refused->body;
  EXPECT_FALSE(q.fits(1));
  q.unmeasured("again");
  EXPECT_TRUE(q.over()) << "still over while measures keep failing";
  q.measured(4096, false);
  EXPECT_FALSE(q.over()) << "a measure that succeeds lifts it";
}

TEST_F(QuotaTest, AWorkspaceThatCannotBeMeasuredRefusesNewWork) {
  // The walk made to fail from the host's side (no timing needed): the workspace's directory is
  // moved away and a file put in its place (ENOTDIR; a missing one measures as empty). The
  // sandbox's bind mount of it is unaffected.
  const std::filesystem::path ws = host_workspace(), away = ws.string() + ".away";
  std::filesystem::rename(ws, away);
  { std::ofstream(ws) << "not a directory"; }
  check();
  EXPECT_FALSE(quota().over()) << "one failure is not enough";
  check();
  EXPECT_TRUE(quota().over());
  HttpReply refused = exec_small({{"argv", {"true"}}});
  std::filesystem::remove(ws);
  std::filesystem::rename(away, ws);
  EXPECT_EQ(refused.status, 507u) << refused.body;
  EXPECT_NE(refused.body.find("could not be measured"), std::string::npos) << refused.body;
  check();
  EXPECT_FALSE(quota().over()) << "control: measured again, under the quota";
  EXPECT_EQ(exec_small({{"argv", {"true"}}}).status, 200u);
}

TEST_F(QuotaTest, SpammedMetricsShareOneWalkAndAllAreAnswered) {
  // Control: one /metrics when nothing is measuring walks the workspace once (the count works).
  const uint64_t before = f_->host().disk_walks();
  ASSERT_EQ(call("GET", "/metrics").status, 200u);
  ASSERT_EQ(f_->host().disk_walks(), before + 1);
  // Attack: many at once while the meter is busy (held here: no race on how fast a walk is).
  // Each used to queue a walk of its own on the one thread every sandbox's check shares.
  std::promise<void> release;
  struct Release {
    std::promise<void>& p;
    ~Release() { p.set_value(); }  // never leave the meter's thread held (its join would hang)
  };
  std::optional<Release> held(std::in_place, release);
  f_->host().disk_meter().hold(release.get_future().share());
  constexpr int kCalls = 30;
  int answered = 0, ok = 0;
  bool most = false, all = false;
  for (int i = 0; i < kCalls; ++i) {
    f_->send("GET", HostFixture::path(small_, "/metrics"), "", [&](HttpReply r) {
      ok += r.status == 200 && parse(r.body).as_object().contains("disk_bytes");
      ++answered;
      most = answered == kCalls - 1;
      all = answered == kCalls;
    });
  }
  // All but the first are answered with the figure held, while its walk waits.
  f_->run_until(most);
  EXPECT_EQ(f_->host().disk_walks(), before + 2) << "one walk queued for 30 calls";
  // The file routes' callers coalesce too: those that come during a walk share the next one.
  bool a = false, b = false;
  f_->host().measure_disk(small_, [&] { a = true; });
  f_->host().measure_disk(small_, [&] { b = true; });
  held.reset();
  f_->run_until(all);
  f_->run_until(b);
  EXPECT_TRUE(a);
  EXPECT_EQ(ok, kCalls);
  EXPECT_EQ(f_->host().disk_walks(), before + 3) << "the /metrics walk, then one shared by both";
}

}  // namespace
}  // namespace boxcar::sandboxes
