// SandboxHost and POST/DELETE /agent/v1/sandboxes over real HTTP with real native sandboxes.
#include <gtest/gtest.h>

#include <fstream>

#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "sandboxes/api_sandbox.h"
#include "sandboxes/host_fixture.h"

namespace boxcar::sandboxes {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

class LifecycleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = HostFixture::make();
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
  }
  static json::value parse(const std::string& body) {
    auto v = protocol::parse_json(body);
    return v ? *v : json::value();
  }
  static protocol::SandboxCreate spec_with_id(std::string id) {
    protocol::SandboxCreate spec;
    spec.id = std::move(id);
    spec.owner = "alice";
    return spec;
  }

  static inline HostFixture* f_ = nullptr;
  static inline std::string skip_;
};

TEST_F(LifecycleTest, CreateAnswersRunningAndLaysOutTheDirectory) {
  auto id = f_->create_sandbox();
  ASSERT_TRUE(id.ok()) << id.error().message;
  ApiSandbox* sb = f_->host().find(*id);
  ASSERT_NE(sb, nullptr);
  EXPECT_TRUE(sb->running());
  fs::path dir = f_->data_dir() / "sandboxes" / *id;
  EXPECT_TRUE(fs::is_directory(dir / "workspace"));
  EXPECT_TRUE(fs::is_directory(dir / "logs"));
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(dir / "logs").permissions() & fs::perms::all, fs::perms::owner_all);
  std::ifstream meta(dir / "meta.json");
  std::string text((std::istreambuf_iterator<char>(meta)), {});
  auto spec = protocol::sandbox_create_from_json(parse(text));
  ASSERT_TRUE(spec.ok()) << text;
  EXPECT_EQ(spec->owner, "alice");
  auto reports = f_->host().reports();
  auto it = std::find_if(reports.begin(), reports.end(), [&](const auto& r) { return r.id == *id; });
  ASSERT_NE(it, reports.end());
  EXPECT_EQ(it->state, "running");
  EXPECT_TRUE(f_->remove_sandbox(*id));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(f_->host().find(*id), nullptr);
}

TEST_F(LifecycleTest, TheAnswerIsAReportWithCreateMs) {
  auto spec = spec_with_id(HostFixture::new_id());
  HttpReply r = f_->call_json("POST", "/agent/v1/sandboxes", protocol::to_json(spec), "");
  ASSERT_EQ(r.status, 201u) << r.body;
  auto report = protocol::sandbox_report_from_json(parse(r.body));
  ASSERT_TRUE(report.ok()) << r.body;
  EXPECT_EQ(report->id, spec.id);
  EXPECT_EQ(report->state, "running");
  EXPECT_GE(report->create_ms, 0);
  EXPECT_GT(report->last_active_at, 0);
  EXPECT_TRUE(f_->remove_sandbox(spec.id));
}

TEST_F(LifecycleTest, TheLifecycleRoutesNeedTheKey) {
  auto spec = spec_with_id(HostFixture::new_id());
  std::string body = json::serialize(protocol::to_json(spec));
  HttpReply none = f_->call("POST", "/agent/v1/sandboxes", body, "", {{"Authorization", ""}});
  EXPECT_EQ(none.status, 401u) << none.body;
  HttpReply wrong = f_->call("POST", "/agent/v1/sandboxes", body, "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status, 401u) << wrong.body;
  EXPECT_EQ(parse(wrong.body).at("code"), "unauthorized");
  EXPECT_EQ(f_->host().find(spec.id), nullptr);
  HttpReply del = f_->call("DELETE", "/agent/v1/sandboxes/" + spec.id, "", "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(del.status, 401u);
  HttpReply ok = f_->call("POST", "/agent/v1/sandboxes", body, "");  // control: with the key
  EXPECT_EQ(ok.status, 201u) << ok.body;
  EXPECT_TRUE(f_->remove_sandbox(spec.id));
}

TEST_F(LifecycleTest, BadCreateBodiesAre400) {
  HttpReply not_json = f_->call("POST", "/agent/v1/sandboxes", "{", "");
  EXPECT_EQ(not_json.status, 400u);
  EXPECT_EQ(parse(not_json.body).at("code"), "bad_request");
  auto spec = spec_with_id("NOT-AN-ID");
  HttpReply bad_id = f_->call_json("POST", "/agent/v1/sandboxes", protocol::to_json(spec), "");
  EXPECT_EQ(bad_id.status, 400u);
  EXPECT_NE(bad_id.body.find("id"), std::string::npos) << bad_id.body;
  auto image = spec_with_id(HostFixture::new_id());
  image.image = "debian:12";
  HttpReply bad_image = f_->call_json("POST", "/agent/v1/sandboxes", protocol::to_json(image), "");
  EXPECT_EQ(bad_image.status, 400u) << bad_image.body;
  EXPECT_EQ(parse(bad_image.body).at("field"), "image");
  EXPECT_FALSE(fs::exists(f_->data_dir() / "sandboxes" / image.id));
}

TEST_F(LifecycleTest, TheSameIdTwiceIs409AndDeleteTwiceIs404) {
  auto id = f_->create_sandbox();
  ASSERT_TRUE(id.ok()) << id.error().message;
  HttpReply again = f_->call_json("POST", "/agent/v1/sandboxes", protocol::to_json(spec_with_id(*id)), "");
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(parse(again.body).at("code"), "exists");
  EXPECT_EQ(f_->call("DELETE", "/agent/v1/sandboxes/" + *id, "", "").status, 204u);
  HttpReply gone = f_->call("DELETE", "/agent/v1/sandboxes/" + *id, "", "");
  EXPECT_EQ(gone.status, 404u);
  EXPECT_EQ(parse(gone.body).at("code"), "sandbox_not_found");
}

TEST_F(LifecycleTest, NoFreeSlotIs429) {
  SandboxHostOptions options;
  options.slots = 1;
  auto small = HostFixture::make(options);
  ASSERT_TRUE(small.ok()) << small.error().message;
  auto first = (*small)->create_sandbox();
  ASSERT_TRUE(first.ok()) << first.error().message;  // control: the one slot
  EXPECT_EQ((*small)->host().free_slots(), 0u);
  auto spec = spec_with_id(HostFixture::new_id());
  HttpReply r = (*small)->call_json("POST", "/agent/v1/sandboxes", protocol::to_json(spec), "");
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(parse(r.body).at("code"), "limit_reached");
  EXPECT_TRUE((*small)->remove_sandbox(*first));
  EXPECT_EQ((*small)->host().free_slots(), 1u);
}

TEST_F(LifecycleTest, MemoryFreeCountsRunningSandboxes) {
  int64_t before = f_->host().memory_free_bytes();
  protocol::SandboxCreate spec;
  spec.resources.memory_bytes = 64ll << 20;
  auto id = f_->create_sandbox("alice", spec);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(f_->host().memory_free_bytes(), std::max<int64_t>(0, before - (64ll << 20)));
  EXPECT_TRUE(f_->remove_sandbox(*id));
  EXPECT_EQ(f_->host().memory_free_bytes(), before);
}

}  // namespace
}  // namespace boxcar::sandboxes
