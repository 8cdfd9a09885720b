#include <chrono>
#include <future>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "server/test_client.h"

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
    return std::async(std::launch::async, [p, wait_ms] {
      return TestClient::once(p, http::verb::post, "/api/v1/agent/claim",
                              json::serialize(json::object{{"agent", "a1"}, {"wait_ms", wait_ms}}),
                              {{"Authorization", std::string("Bearer ") + kToken}});
    });
  }
  // Waits until a claim is held in the server (it has read the request).
  void settle() { std::this_thread::sleep_for(milliseconds(150)); }

  std::string job_path(int64_t id, const char* what) {
    return "/api/v1/agent/jobs/" + std::to_string(id) + "/" + what;
  }
};

TEST_F(ApiAgentTest, RequestsWithoutTheTokenAre401) {
  EXPECT_EQ(client->post("/api/v1/agent/claim", R"({"agent":"a"})").status, 401u);
  auto wrong = client->post("/api/v1/agent/claim", R"({"agent":"a"})",
                            {{"Authorization", "Bearer agent-token-0123456780"}});
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_TRUE(wrong.json().at("error").is_string());
  EXPECT_EQ(client->post("/api/v1/agent/jobs/1/heartbeat", R"({"agent":"a"})",
                         {{"Authorization", "Basic x"}}).status,
            401u);
}

TEST_F(ApiAgentTest, ClaimHandsOutTheJobSpec) {
  int64_t id = submit("https://example.com/r.git");
  auto r = agent_post("/api/v1/agent/claim", json::object{{"agent", "a1"}, {"wait_ms", 0}});
  ASSERT_EQ(r.status, 200u) << r.body;
  auto job = r.json().at("job");
  EXPECT_EQ(job.at("id").as_int64(), id);
  EXPECT_EQ(job.at("repo"), "https://example.com/r.git");
  EXPECT_EQ(job.at("attempt"), 1);
  EXPECT_EQ(job.at("lease_ms"), 60000);
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id)).json().at("state"), "running");
}

TEST_F(ApiAgentTest, ClaimWithNothingQueuedAnswers204AtTheDeadline) {
  auto r = agent_post("/api/v1/agent/claim", json::object{{"agent", "a1"}, {"wait_ms", 300}});
  EXPECT_EQ(r.status, 204u);
  EXPECT_TRUE(r.body.empty());
}

TEST_F(ApiAgentTest, HeldClaimGetsAJobEnqueuedDuringTheWait) {
  auto pending = claim_async(20'000);
  settle();
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
  settle();
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
  // The client gives up after 200 ms and closes its connection while the claim is held.
  auto gone = TestClient::once(port(), http::verb::post, "/api/v1/agent/claim",
                               R"({"agent": "gone", "wait_ms": 20000})",
                               {{"Authorization", std::string("Bearer ") + kToken}},
                               milliseconds(200));
  EXPECT_EQ(gone.status, 0u);
  settle();
  int64_t id = submit();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id)).json().at("state"), "queued");
  EXPECT_EQ(claim("a2"), id);
}

TEST_F(ApiAgentTest, ClaimBodyErrorsAre400) {
  auto r = agent_post("/api/v1/agent/claim", json::object{{"labels", json::array{}}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("agent"), std::string::npos);
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
  auto other = agent_post(job_path(id, "heartbeat"), json::object{{"agent", "a2"}});
  EXPECT_EQ(other.json().at("lost"), true);
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
  auto r = agent_post("/api/v1/agent/claim", json::object{{"agent", "a2"}, {"wait_ms", 5000}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("job").at("id").as_int64(), id);
  EXPECT_EQ(r.json().at("job").at("attempt"), 2);
}

}  // namespace
}  // namespace boxcar::server
