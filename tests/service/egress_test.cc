// A server's in-process agent runs jobs on job networks: what a step's egress policy refused ends
// its log and is counted per job in /metrics; a job that refused nothing is not listed.
#include <gtest/gtest.h>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

TEST(ServeEgress, RefusedConnectionsEndTheStepsLogAndAreCountedPerJob) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for job networks";
  TempDir work;
  Server server(work.path(), {"--agents", "1"});
  ASSERT_TRUE(server.ok());
  make_git_repo(work / "refused", R"(version = 1
[[step]]
name = "probe"
run = "curl -sS -m 5 http://10.9.9.9/ || curl -sS -m 5 http://10.9.9.9/ || echo refused-twice"
)");
  make_git_repo(work / "quiet", "version = 1\n[[step]]\nname = \"quiet\"\nrun = \"true\"\n");
  long refused = server.submit({{"repo", (work / "refused").string()}});
  long quiet = server.submit({{"repo", (work / "quiet").string()}});
  ASSERT_GT(refused, 0);
  ASSERT_GT(quiet, 0);
  auto job = server.wait_final(refused);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.logs(refused);
  ASSERT_TRUE(server.wait_final(quiet));
  std::string log = server.logs(refused, "probe");
  EXPECT_NE(log.find("refused-twice"), std::string::npos) << log;
  EXPECT_NE(log.find("boxcar: egress refused: 2 connections to 10.9.9.9:80 (private address (RFC 1918))"),
            std::string::npos) << log;
  auto metrics = server.api("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("boxcar_job_egress_refused_total{job=\"" + std::to_string(refused) + "\"} 2\n"),
            std::string::npos) << metrics.body;
  EXPECT_EQ(metrics.body.find("{job=\"" + std::to_string(quiet) + "\"}"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("boxcar_egress_refused_total 2\n"), std::string::npos) << metrics.body;
}

}  // namespace
}  // namespace boxcar::service_test
