// The warm pool (--sandbox-warm): a default create takes a ready sandbox that is then wholly the
// create's (id, hostname, env, labels, an empty /workspace), the pool refills off the create's
// path, a create with other resources goes cold, and two sandboxes of the pool share nothing.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/host_fixture.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;

constexpr size_t kWarm = 2;

class WarmPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SandboxHostOptions o;
    o.warm = kWarm;
    // The host logs each create, with " (warm)" when it took a warm sandbox.
    o.log = [](std::string_view line) { taken_ += line.find(" ms (warm)") != std::string_view::npos; };
    auto f = HostFixture::make(std::move(o));
    if (!f) {
      skip_ = f.error().message;
      return;
    }
    f_ = std::move(*f).release();
  }
  static void TearDownTestSuite() {
    delete f_;
    f_ = nullptr;
  }
  void SetUp() override {
    if (f_ == nullptr) GTEST_SKIP() << skip_;
    fill();
  }

  // Runs the posted refills until the pool is full (each handler sets up one sandbox).
  static void fill() {
    for (int i = 0; i < 100 && f_->host().warm_ready() < kWarm; ++i) {
      f_->io().restart();
      f_->io().poll_one();
    }
    ASSERT_EQ(f_->host().warm_ready(), kWarm);
  }
  static json::object exec(const std::string& id, const std::string& command) {
    HttpReply r = f_->call_json("POST", HostFixture::path(id, "/exec"), json::object{{"command", command}});
    EXPECT_EQ(r.status, 200u) << r.body;
    auto v = protocol::parse_json(r.body);
    return v && v->is_object() ? v->as_object() : json::object{};
  }
  static std::string out(const std::string& id, const std::string& command) {
    auto r = exec(id, command);
    auto* s = r.if_contains("stdout");
    return s && s->is_string() ? std::string(s->as_string()) : std::string();
  }

  static uint64_t warm_taken() { return taken_; }

  static inline HostFixture* f_ = nullptr;
  static inline std::string skip_;
  static inline uint64_t taken_ = 0;
};

TEST_F(WarmPoolTest, ADefaultCreateTakesAWarmSandboxAndMakesItItsOwn) {
  protocol::SandboxCreate spec;
  spec.env = {{"GREETING", "hello"}};
  spec.labels = {{"team", "blue"}};
  uint64_t taken = warm_taken();
  auto id = f_->create_sandbox("alice", spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(warm_taken(), taken + 1);
  ApiSandbox* sb = f_->host().find(*id);
  ASSERT_NE(sb, nullptr);
  EXPECT_TRUE(sb->running());
  EXPECT_EQ(sb->spec().labels.at("team"), "blue");
  EXPECT_EQ(out(*id, "hostname; echo $GREETING $BOXCAR_SANDBOX; ls -A /workspace | wc -l"),
            *id + "\nhello " + *id + "\n0\n");
  // Its directory carries its id: files written in /workspace are where the API serves them.
  EXPECT_EQ(out(*id, "echo x > /workspace/f; echo ok"), "ok\n");
  EXPECT_TRUE(std::filesystem::exists(f_->data_dir() / "sandboxes" / *id / "workspace" / "f"));
  fill();  // and the pool refills (here while the fixture waited for the answer, on the same io)
  EXPECT_TRUE(f_->remove_sandbox(*id));
}

TEST_F(WarmPoolTest, ACreateWithOtherResourcesGoesCold) {
  uint64_t taken = warm_taken();
  protocol::SandboxCreate spec;
  spec.resources.memory_bytes = 512ll << 20;
  auto id = f_->create_sandbox("alice", spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(out(*id, "hostname"), *id + "\n");
  protocol::SandboxCreate none;
  none.network = "none";
  auto id2 = f_->create_sandbox("alice", none);
  ASSERT_TRUE(id2.ok()) << id2.error().message;
  EXPECT_EQ(warm_taken(), taken);  // nothing taken
  EXPECT_EQ(f_->host().warm_ready(), kWarm);
  EXPECT_TRUE(f_->remove_sandbox(*id));
  EXPECT_TRUE(f_->remove_sandbox(*id2));
}

// Attack: the first taker leaves files in /tmp and /workspace for whoever gets the next warm
// sandbox. Control: the first sees its own files.
TEST_F(WarmPoolTest, TwoSandboxesFromThePoolShareNothing) {
  uint64_t taken = warm_taken();
  auto a = f_->create_sandbox("alice");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(out(*a, "echo secret > /tmp/left; echo secret > /workspace/left; cat /tmp/left /workspace/left"),
            "secret\nsecret\n");  // control
  auto b = f_->create_sandbox("mallory");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(warm_taken(), taken + 2);  // both came from the pool
  HttpReply r = f_->call_json("POST", HostFixture::path(*b, "/exec"),
                              json::object{{"command", "ls -A /tmp /workspace; cat /tmp/left /workspace/left 2>&1; hostname"}},
                              "mallory");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body.find("secret"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(*b), std::string::npos) << r.body;
  EXPECT_TRUE(f_->remove_sandbox(*a));
  EXPECT_TRUE(f_->remove_sandbox(*b));
}

}  // namespace
}  // namespace boxcar::sandboxes
