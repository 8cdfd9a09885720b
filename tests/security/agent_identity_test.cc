// Agent identity attacked over the real agent protocol (a real server on loopback, SQLite):
// each forged report beside a control where the rightful agent's same request is taken.
// DESIGN.md section 6: the shared agent token only registers; agents report with their own
// credential and, per job, the lease token of their claim.
#include <filesystem>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Headers;
using testing::TestResponse;

class AgentIdentityAttackTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-agent-identity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    artifacts = tmpl;
    options.artifact_dir = artifacts / "artifacts";
    if (options.lease_ms == 60'000) options.lease_ms = lease_ms;
    ServerFixture::SetUp();
  }
  void TearDown() override {
    ServerFixture::TearDown();
    std::error_code ec;
    fs::remove_all(artifacts, ec);
  }

  static std::string path(int64_t id, const std::string& what) {
    return "/api/v1/agent/jobs/" + std::to_string(id) + "/" + what;
  }
  static json::object log_body(const std::string& data) {
    return {{"chunks", json::array{json::object{{"step", "build"}, {"seq", 0}, {"data", data}}}}};
  }
  static json::object step_body() {
    return {{"name", "build"}, {"state", "success"}, {"exit_code", 0}};
  }
  static json::object preview_body() {
    return {{"previews", json::array{json::object{{"step", "web"}, {"name", "app"}, {"port", 8000},
                                                  {"url", "http://evil/"}, {"path_url", "http://evil/p/"}}}}};
  }

  // Every per-job report, sent with `headers`: the statuses, in the order
  // heartbeat, logs, steps, artifacts, previews, complete.
  std::vector<unsigned> report_all(int64_t id, const Headers& headers) {
    std::vector<unsigned> out;
    auto post = [&](const std::string& what, const json::value& body) {
      TestResponse r = client->post(path(id, what), json::serialize(body), headers);
      out.push_back(what == "heartbeat" && r.status == 200 && r.json().at("lost") == true ? 409 : r.status);
    };
    post("heartbeat", json::object{});
    post("logs", log_body("forged\n"));
    post("steps", step_body());
    TestResponse a = client->post(path(id, "artifacts?path=x.txt&step=build&sha256=" + sha256_hex("x")),
                                  "x", headers);
    out.push_back(a.status);
    post("previews", preview_body());
    post("complete", json::object{{"state", "success"}});
    return out;
  }

  // Nothing of the reports above reached the job.
  void expect_untouched(int64_t id) {
    auto job = store->job(id);
    ASSERT_TRUE(job && *job);
    EXPECT_EQ((*job)->state, "running");
    EXPECT_TRUE((*job)->steps.empty());
    // The log holds at most the server's own notes (attempt 0: an attempt lost to expiry).
    auto logs = store->logs(id, "", 0, 0);
    ASSERT_TRUE(logs) << logs.error().message;
    for (const auto& chunk : *logs) {
      EXPECT_EQ(chunk.attempt, 0) << chunk.data;
      EXPECT_EQ(chunk.data.find("forged"), std::string::npos) << chunk.data;
    }
    EXPECT_TRUE(store->artifacts(id)->empty());
    EXPECT_TRUE(store->previews(id)->empty());
  }

  Headers with_lease(Headers h, const std::string& lease) {
    h["X-Boxcar-Lease"] = lease;
    return h;
  }

  int64_t lease_ms = 60'000;
  fs::path artifacts;
};

const std::vector<unsigned> kAllTaken = {200, 200, 200, 200, 200, 200};

TEST_F(AgentIdentityAttackTest, TheSharedTokenAloneCanNeitherClaimNorReport) {
  int64_t id = submit();
  Headers shared{{"Authorization", std::string("Bearer ") + kToken}};
  EXPECT_EQ(client->post("/api/v1/agent/claim", R"({"wait_ms":0})", shared).status, 401u);
  EXPECT_EQ(store->job(id)->value().state, "queued");
  // The control: a registered agent claims it; then the shared token cannot report for it,
  // even with the claim's lease token.
  ASSERT_EQ(claim("a1"), id);
  Headers stolen = with_lease(shared, leases[{"a1", id}]);
  EXPECT_EQ(report_all(id, stolen), std::vector<unsigned>(6, 401));
  expect_untouched(id);
  EXPECT_EQ(report_all(id, agent_headers("a1", id)), kAllTaken);
  EXPECT_EQ(store->job(id)->value().state, "success");
}

TEST_F(AgentIdentityAttackTest, AnotherAgentCannotReportForAJob) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  // b has its own valid credential: without a lease, with a lease of its own guessing, and
  // with a1's real lease token, every report is refused.
  EXPECT_EQ(report_all(id, agent_headers("b", id)), std::vector<unsigned>(6, 409));
  EXPECT_EQ(report_all(id, with_lease(agent_headers("b", id), std::string(64, 'a'))),
            std::vector<unsigned>(6, 409));
  EXPECT_EQ(report_all(id, with_lease(agent_headers("b", id), leases[{"a1", id}])),
            std::vector<unsigned>(6, 409));
  expect_untouched(id);
  EXPECT_EQ(report_all(id, agent_headers("a1", id)), kAllTaken);  // the control
  EXPECT_EQ(store->job(id)->value().state, "success");
}

TEST_F(AgentIdentityAttackTest, AnAgentNameInABodyIsIgnored) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  // b claims to be a1 in the bodies: refused, it is b.
  json::object forged_step = step_body();
  forged_step["agent"] = "a1";
  EXPECT_EQ(agent_post(path(id, "steps"), forged_step, "b").status, 409u);
  EXPECT_EQ(agent_post(path(id, "complete"), json::object{{"agent", "a1"}, {"state", "success"}}, "b").status,
            409u);
  // a1 names "evil" in its bodies: taken, as a1's.
  json::object renamed = step_body();
  renamed["agent"] = "evil";
  EXPECT_EQ(agent_post(path(id, "steps"), renamed, "a1").status, 200u);
  EXPECT_EQ(store->job(id)->value().agent, "a1");
  EXPECT_EQ(agent_post(path(id, "complete"), json::object{{"agent", "evil"}, {"state", "failed"}}, "a1").status,
            200u);
  EXPECT_EQ(store->job(id)->value().state, "failed");
}

TEST_F(AgentIdentityAttackTest, RegisteringATakenNameTakesNothingOver) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  TestResponse r = client->post("/api/v1/agent/register", R"({"name":"a1"})",
                                {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(r.status, 409u);
  EXPECT_FALSE(r.json().as_object().contains("credential"));
  // Under a new name it is just another agent: a1's job is not its.
  EXPECT_EQ(report_all(id, with_lease(agent_headers("a1-copy", id), leases[{"a1", id}])),
            std::vector<unsigned>(6, 409));
  expect_untouched(id);
  EXPECT_EQ(agent_post(path(id, "complete"), json::object{{"state", "success"}}, "a1").status, 200u);
}

TEST_F(AgentIdentityAttackTest, ARevokedCredentialIsRefusedAtOnce) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  EXPECT_EQ(agent_post(path(id, "heartbeat"), json::object{}, "a1").status, 200u);  // control
  TestResponse revoked =
      client->post("/api/v1/agents/" + std::to_string(agent("a1").id) + "/revoke", "",
                   {{"Authorization", std::string("Bearer ") + kAdminToken}});
  ASSERT_EQ(revoked.status, 200u) << revoked.body;
  EXPECT_EQ(report_all(id, agent_headers("a1", id)), std::vector<unsigned>(6, 401));
  EXPECT_EQ(agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 0}}, "a1").status, 401u);
  EXPECT_EQ(store->job(id)->value().state, "queued");  // released for another agent
}

class StaleLeaseAttackTest : public AgentIdentityAttackTest {
 protected:
  void SetUp() override {
    lease_ms = 300;
    AgentIdentityAttackTest::SetUp();
  }
};

TEST_F(StaleLeaseAttackTest, TheLeaseTokenOfAnEarlierClaimIsRefused) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  std::string stale = leases[{"a1", id}];
  // No heartbeat: the lease expires and the job is queued again; a1 itself claims it again.
  ASSERT_EQ(claim("a1", 5'000), id);
  std::string fresh = leases[{"a1", id}];
  ASSERT_NE(stale, fresh);
  EXPECT_EQ(store->job(id)->value().attempt, 2);
  EXPECT_EQ(report_all(id, with_lease(agent_headers("a1"), stale)), std::vector<unsigned>(6, 409));
  expect_untouched(id);
  EXPECT_EQ(report_all(id, with_lease(agent_headers("a1"), fresh)), kAllTaken);  // the control
}

}  // namespace
}  // namespace boxcar::server
