#include "server/metrics.h"

#include <gtest/gtest.h>

#include "testing/test_client.h"

namespace boxcar::server {
namespace {

TEST(MetricsTest, RendersEveryFamily) {
  Metrics m;
  m.count_http_response(200);
  m.count_http_response(200);
  m.count_webhook("github", "queued");
  m.observe_step_duration(2.5);
  std::string text = m.render({{"queued", 3}, {"running", 1}}, 2, 4);
  EXPECT_NE(text.find("boxcar_jobs{state=\"queued\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("boxcar_jobs{state=\"skipped\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("boxcar_queue_depth 3\n"), std::string::npos);
  EXPECT_NE(text.find("boxcar_webhook_deliveries_total{provider=\"github\",result=\"queued\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("boxcar_step_duration_seconds_bucket{le=\"5\"} 1"), std::string::npos);
  EXPECT_NE(text.find("boxcar_step_duration_seconds_bucket{le=\"1\"} 0"), std::string::npos);
  EXPECT_NE(text.find("boxcar_step_duration_seconds_sum 2.5"), std::string::npos);
  EXPECT_NE(text.find("boxcar_agent_claims_waiting 2\n"), std::string::npos);
  EXPECT_NE(text.find("boxcar_log_followers 4\n"), std::string::npos);
  EXPECT_NE(text.find("boxcar_http_requests_total{code=\"200\"} 2"), std::string::npos);
  EXPECT_NE(text.find("# TYPE boxcar_step_duration_seconds histogram"), std::string::npos);
}

TEST(MetricsTest, EgressRefusalsPerJobCountAResentUpdateOnceAndStayBounded) {
  Metrics m;
  m.set_egress_refused(7, "build", 3);
  m.set_egress_refused(7, "build", 3);  // the agent's outbox sent it again
  m.set_egress_refused(7, "test", 2);
  std::string text = m.render({}, 0);
  EXPECT_NE(text.find("boxcar_job_egress_refused_total{job=\"7\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("boxcar_egress_refused_total 5\n"), std::string::npos);
  for (size_t i = 0; i < Metrics::kEgressStepsPerJob + 10; ++i) m.set_egress_refused(8, "s" + std::to_string(i), 1);
  EXPECT_NE(m.render({}, 0).find("{job=\"8\"} " + std::to_string(Metrics::kEgressStepsPerJob + 10) + "\n"),
            std::string::npos);  // a rogue agent's step names cost at most kEgressStepsPerJob entries
  for (int64_t job = 100; job < 100 + static_cast<int64_t>(Metrics::kEgressJobs); ++job) m.set_egress_refused(job, "s", 1);
  text = m.render({}, 0);
  EXPECT_EQ(text.find("{job=\"7\"}"), std::string::npos);  // the oldest left the list...
  EXPECT_NE(text.find("boxcar_egress_refused_total " +
                      std::to_string(5 + Metrics::kEgressStepsPerJob + 10 + Metrics::kEgressJobs) + "\n"),
            std::string::npos);  // ...not the total
}

class MetricsEndpointTest : public testing::ServerFixture {};

TEST_F(MetricsEndpointTest, ExposesTheFamiliesOverHttp) {
  submit();
  client->get("/nope");
  auto r = client->get("/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  for (const char* family :
       {"boxcar_jobs{state=\"queued\"} 1", "boxcar_queue_depth 1",
        "# TYPE boxcar_webhook_deliveries_total counter", "boxcar_step_duration_seconds_bucket",
        "boxcar_agent_claims_waiting 0", "boxcar_http_requests_total{code=\"201\"} 1",
        "boxcar_http_requests_total{code=\"404\"} 1"}) {
    EXPECT_NE(r.body.find(family), std::string::npos) << family << "\n" << r.body;
  }
}

TEST_F(MetricsEndpointTest, HealthzChecksTheStore) {
  auto r = client->get("/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "ok\n");
}

}  // namespace
}  // namespace boxcar::server
