#include <chrono>
#include <future>
#include <thread>

#include <unistd.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "testing/loopback_client.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;
using namespace std::chrono;
using testing::TestClient;
using testing::TestResponse;

class ApiAgentTest : public testing::ServerFixture {
 protected:
  // A claim on its own connection and thread, so the test can act while it is held.
  std::future<TestResponse> claim_async(int wait_ms) {
    uint16_t p = port();
    testing::Headers headers = agent_headers("a1");
    return std::async(std::launch::async, [p, wait_ms, headers] {
      return TestClient::once(p, http::verb::post, "/api/v1/agent/claim",
                              json::serialize(json::object{{"wait_ms", wait_ms}}), headers);
    });
  }
  TestResponse register_as(const std::string& name, const std::string& token = kToken) {
    return client->post("/api/v1/agent/register", json::serialize(json::object{{"name", name}}),
                        {{"Authorization", "Bearer " + token}});
  }
  TestResponse admin_post(const std::string& target) {
    return client->post(target, "", {{"Authorization", std::string("Bearer ") + kAdminToken}});
  }
  // Waits until the server shows `n` claims held open (GET /metrics), so what the test does
  // next happens while they are held. The deadline only bounds a broken test.
  bool claims_waiting(size_t n) {
    std::string line = "\nboxcar_agent_claims_waiting " + std::to_string(n) + "\n";
    auto deadline = steady_clock::now() + seconds(10);
    while (client->get("/metrics").body.find(line) == std::string::npos) {
      if (steady_clock::now() > deadline) {
        ADD_FAILURE() << "the server never showed " << n << " claims waiting";
        return false;
      }
      std::this_thread::sleep_for(milliseconds(5));  // a poll interval, not a wait for the event
    }
    return true;
  }

  std::string job_path(int64_t id, const char* what) {
    return "/api/v1/agent/jobs/" + std::to_string(id) + "/" + what;
  }
};

TEST_F(ApiAgentTest, RequestsWithoutACredentialAre401) {
  EXPECT_EQ(client->post("/api/v1/agent/claim", R"({})").status, 401u);
  auto shared = client->post("/api/v1/agent/claim", R"({})",
                             {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(shared.status, 401u);  // the shared token only registers
  EXPECT_NE(shared.body.find("register"), std::string::npos) << shared.body;
  std::string forged = std::to_string(agent("a1").id) + "." + std::string(64, '0');
  auto wrong = client->post("/api/v1/agent/claim", R"({})", {{"Authorization", "Bearer " + forged}});
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_TRUE(wrong.json().at("error").is_string());
  EXPECT_EQ(client->post("/api/v1/agent/jobs/1/heartbeat", R"({})",
                         {{"Authorization", "Basic x"}}).status,
            401u);
  // The control: the registered agent's credential is accepted.
  EXPECT_EQ(agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 0}}, "a1").status, 204u);
}

TEST_F(ApiAgentTest, RegistrationNeedsTheSharedTokenAndHandsOutACredential) {
  EXPECT_EQ(client->post("/api/v1/agent/register", R"({"name":"x"})").status, 401u);
  EXPECT_EQ(register_as("x", "agent-token-0123456780").status, 401u);
  EXPECT_EQ(register_as("bad name").status, 400u);
  TestResponse r = register_as("builder-1");
  ASSERT_EQ(r.status, 201u) << r.body;
  int64_t id = r.json().at("agent_id").as_int64();
  std::string credential(r.json().at("credential").as_string());
  EXPECT_EQ(r.json().at("name"), "builder-1");
  // "<id>.<64 hex digits>", and only the secret's hash is stored.
  std::string prefix = std::to_string(id) + ".";
  ASSERT_EQ(credential.rfind(prefix, 0), 0u) << credential;
  std::string secret = credential.substr(prefix.size());
  EXPECT_EQ(secret.size(), 64u);
  EXPECT_EQ(secret.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto stored = store->agent(id);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->credential_hash, sha256_hex(secret));
  EXPECT_EQ((*stored)->credential_hash.find(secret), std::string::npos);
  // Two registrations never get the same secret.
  TestResponse other = register_as("builder-2");
  ASSERT_EQ(other.status, 201u);
  EXPECT_NE(std::string(other.json().at("credential").as_string()).substr(prefix.size()), secret);
}

TEST_F(ApiAgentTest, ATakenOrRevokedNameCannotBeRegisteredAgain) {
  ASSERT_EQ(register_as("builder").status, 201u);
  TestResponse taken = register_as("builder");
  EXPECT_EQ(taken.status, 409u);
  EXPECT_NE(taken.body.find("already registered"), std::string::npos) << taken.body;
  int64_t id = store->agent_named("builder")->value().id;
  std::string path = "/api/v1/agents/" + std::to_string(id);
  EXPECT_EQ(admin_post(path + "/forget").status, 409u);  // only a revoked agent is forgotten
  ASSERT_EQ(admin_post(path + "/revoke").status, 200u);
  TestResponse revoked = register_as("builder");
  EXPECT_EQ(revoked.status, 409u);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos) << revoked.body;
  ASSERT_EQ(admin_post(path + "/forget").status, 200u);
  EXPECT_EQ(register_as("builder").status, 201u);  // the documented way to reuse the name
}

TEST_F(ApiAgentTest, AdminRoutesListAndRevokeAgents) {
  int64_t job = submit();
  ASSERT_EQ(claim("a1"), job);
  (void)agent("a2");
  TestClient anon(port());  // no token (`client` sends the admin token by default)
  EXPECT_EQ(anon.get("/api/v1/agents").status, 401u);
  EXPECT_EQ(anon.request(http::verb::get, "/api/v1/agents", "",
                            {{"Authorization", std::string("Bearer ") + kToken}}).status,
            401u);  // the agent registration token is no admin token
  TestResponse list = client->request(http::verb::get, "/api/v1/agents", "",
                                      {{"Authorization", std::string("Bearer ") + kAdminToken}});
  ASSERT_EQ(list.status, 200u) << list.body;
  json::value listed = list.json();
  const auto& all = listed.at("agents").as_array();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].at("name"), "a1");
  EXPECT_EQ(all[0].at("state"), "active");
  EXPECT_TRUE(all[0].at("last_seen_at").is_string());
  EXPECT_FALSE(all[0].as_object().contains("credential_hash"));

  std::string revoke = "/api/v1/agents/" + std::to_string(agent("a1").id) + "/revoke";
  EXPECT_EQ(anon.post(revoke, "").status, 401u);
  EXPECT_EQ(admin_post("/api/v1/agents/999/revoke").status, 404u);
  TestResponse r = admin_post(revoke);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("state"), "revoked");
  // At once: its credential is refused, and its running job is queued again for another agent.
  EXPECT_EQ(agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 0}}, "a1").status, 401u);
  EXPECT_EQ(agent_post(job_path(job, "heartbeat"), json::object{}, "a1").status, 401u);
  auto requeued = client->get("/api/v1/jobs/" + std::to_string(job)).json();
  EXPECT_EQ(requeued.at("state"), "queued");
  EXPECT_EQ(requeued.at("attempt"), 2);
  EXPECT_EQ(claim("a2"), job);
}

TEST_F(ApiAgentTest, ClaimHandsOutTheJobSpec) {
  int64_t id = submit("https://example.com/r.git");
  auto r = agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 0}}, "a1");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto job = r.json().at("job");
  EXPECT_EQ(job.at("id").as_int64(), id);
  EXPECT_EQ(job.at("repo"), "https://example.com/r.git");
  EXPECT_EQ(job.at("attempt"), 1);
  EXPECT_EQ(job.at("lease_ms"), 60000);
  std::string lease(job.at("lease_token").as_string());
  EXPECT_EQ(lease.size(), 64u);
  EXPECT_EQ(store->job(id)->value().agent, "a1");
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id)).json().at("state"), "running");
}

TEST_F(ApiAgentTest, ClaimWithNothingQueuedAnswers204AtTheDeadline) {
  auto r = agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 300}}, "a1");
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(ApiAgentTest, HeldClaimGetsAJobEnqueuedDuringTheWait) {
  auto pending = claim_async(20'000);
  ASSERT_TRUE(claims_waiting(1));
  int64_t id = submit();
  // The claim answers with the job (well before its 20 s deadline; the future bounds the wait).
  ASSERT_EQ(pending.wait_for(seconds(10)), std::future_status::ready);
  TestResponse r = pending.get();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("job").at("id").as_int64(), id);
}

TEST_F(ApiAgentTest, HeldClaimSeesJobsEnqueuedBehindTheServersBack) {
  // Another replica writes straight into the shared store: no in-process wake-up.
  auto pending = claim_async(20'000);
  ASSERT_TRUE(claims_waiting(1));
  NewJob job;
  job.repo = "https://example.com/other.git";
  auto id = store->enqueue(job);
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(pending.wait_for(seconds(10)), std::future_status::ready);
  TestResponse r = pending.get();
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("job").at("id").as_int64(), *id);
}

TEST_F(ApiAgentTest, ClaimWhoseAgentHungUpTakesNoJob) {
  // A claim on a raw connection, so the test itself hangs up while the server holds it.
  int fd = boxcar::testing::connect_from("127.0.0.1", port());
  ASSERT_GE(fd, 0);
  std::string body = R"({"wait_ms": 20000})";
  std::string request = "POST /api/v1/agent/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n";
  for (const auto& [name, value] : agent_headers("gone")) request += name + ": " + value + "\r\n";
  request += "\r\n" + body;
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(claims_waiting(1));
  ::close(fd);
  // The server noticed: the claim is no longer held. A job enqueued now stays for a live agent.
  ASSERT_TRUE(claims_waiting(0));
  int64_t id = submit();
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id)).json().at("state"), "queued");
  EXPECT_EQ(claim("a2"), id);
}

TEST_F(ApiAgentTest, ClaimBodyErrorsAre400) {
  auto r = agent_post("/api/v1/agent/claim", json::object{{"labels", 3}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("labels"), std::string::npos);
}

TEST_F(ApiAgentTest, HeartbeatDeliversCancelAndLostLeases) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  auto beat = agent_post(job_path(id, "heartbeat"), json::object{{"agent", "a1"}});
  ASSERT_EQ(beat.status, 200u);
  EXPECT_EQ(beat.json().at("cancel"), false);
  EXPECT_EQ(beat.json().at("lost"), false);
  ASSERT_EQ(client->post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "").status, 202u);
  beat = agent_post(job_path(id, "heartbeat"), json::object{{"agent", "a1"}});
  EXPECT_EQ(beat.json().at("cancel"), true);
  // Another agent, even with the lease token of a1's claim, does not hold the lease.
  testing::Headers stolen = agent_headers("a2");
  stolen["X-Boxcar-Lease"] = leases[{"a1", id}];
  auto other = client->post(job_path(id, "heartbeat"), "{}", stolen);
  EXPECT_EQ(other.json().at("lost"), true);
  // a1 without its lease token: 409.
  testing::Headers bare = agent_headers("a1");
  bare.erase("X-Boxcar-Lease");
  EXPECT_EQ(client->post(job_path(id, "heartbeat"), "{}", bare).status, 409u);
}

TEST_F(ApiAgentTest, LogUploadsAreIdempotentAndReadableAsText) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  json::object upload{{"agent", "a1"},
                      {"chunks", json::array{json::object{{"step", "build"}, {"seq", 0},
                                                          {"data", "hello\n"}},
                                             json::object{{"step", "build"}, {"seq", 1},
                                                          {"data", "world\n"}}}}};
  auto first = agent_post(job_path(id, "logs"), upload);
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(first.json().at("stored"), 2);
  auto again = agent_post(job_path(id, "logs"), upload);
  ASSERT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(again.json().at("stored"), 0);

  auto text = client->get("/api/v1/jobs/" + std::to_string(id) + "/logs");
  ASSERT_EQ(text.status, 200u);
  EXPECT_EQ(text.body, "hello\nworld\n");
  EXPECT_EQ(text.header("x-boxcar-offset"), "12");
  auto tail = client->get("/api/v1/jobs/" + std::to_string(id) + "/logs?offset=6");
  EXPECT_EQ(tail.body, "world\n");
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id) + "/logs?step=test").body, "");
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id) + "/logs?offset=x").status, 400u);
}

TEST_F(ApiAgentTest, StepsAndCompleteNeedTheLease) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  json::object step{{"agent", "a1"},       {"name", "build"},       {"state", "success"},
                    {"exit_code", 0},      {"started_at", 1000},    {"finished_at", 3500}};
  ASSERT_EQ(agent_post(job_path(id, "steps"), step).status, 200u);
  step["agent"] = "a2";
  EXPECT_EQ(agent_post(job_path(id, "steps"), step).status, 409u);
  json::object logs{{"agent", "a2"}, {"chunks", json::array{json::object{
                                                    {"step", "b"}, {"seq", 0}, {"data", "x"}}}}};
  EXPECT_EQ(agent_post(job_path(id, "logs"), logs).status, 409u);
  EXPECT_EQ(agent_post(job_path(id, "complete"), json::object{{"agent", "a2"}, {"state", "success"}})
                .status,
            409u);
  auto done = agent_post(job_path(id, "complete"), json::object{{"agent", "a1"}, {"state", "success"}});
  ASSERT_EQ(done.status, 200u) << done.body;
  auto job = client->get("/api/v1/jobs/" + std::to_string(id)).json();
  EXPECT_EQ(job.at("state"), "success");
  ASSERT_EQ(job.at("steps").as_array().size(), 1u);
  EXPECT_EQ(job.at("steps").at(0).at("exit_code"), 0);
  EXPECT_EQ(std::string(job.at("steps").at(0).at("finished_at").as_string()), "1970-01-01T00:00:03.500Z");
  EXPECT_NE(client->get("/metrics").body.find("boxcar_step_duration_seconds_bucket{le=\"5\"} 1"),
            std::string::npos);
  EXPECT_EQ(agent_post(job_path(id, "complete"), json::object{{"agent", "a1"}, {"state", "running"}})
                .status,
            400u);
}

class LeaseSweeperTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    options.lease_ms = 200;
    ServerFixture::SetUp();
  }
};

TEST_F(LeaseSweeperTest, ExpiredLeaseIsRequeuedWithTheNextAttempt) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  // No heartbeat: the sweeper (every lease_ms/4) re-queues it; a held claim then gets it back.
  auto r = agent_post("/api/v1/agent/claim", json::object{{"wait_ms", 5000}}, "a2");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("job").at("id").as_int64(), id);
  EXPECT_EQ(r.json().at("job").at("attempt"), 2);
  // The first holder's late reports are refused.
  EXPECT_EQ(agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/complete",
                       json::object{{"state", "success"}}, "a1")
                .status,
            409u);
}

}  // namespace
}  // namespace boxcar::server
