#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;

class ApiJobsTest : public testing::ServerFixture {};

TEST_F(ApiJobsTest, CreateThenGetShowsTheContractFields) {
  auto created = client->post("/api/v1/jobs", R"({"repo": "https://example.com/a.git",
      "ref": "main", "commit": "abc123", "file": "ci.toml", "env": {"A": "1"}})");
  ASSERT_EQ(created.status, 201u) << created.body;
  int64_t id = created.json().at("id").as_int64();
  EXPECT_EQ(created.header("location"), "/api/v1/jobs/" + std::to_string(id));

  auto got = client->get("/api/v1/jobs/" + std::to_string(id));
  ASSERT_EQ(got.status, 200u);
  json::object job = got.json().as_object();
  for (const char* field : {"id", "state", "repo", "ref", "commit", "attempt", "created_at",
                            "started_at", "finished_at", "steps", "reason", "event",
                            "cancel_requested"}) {
    EXPECT_TRUE(job.contains(field)) << field;
  }
  EXPECT_EQ(job["state"], "queued");
  EXPECT_EQ(job["repo"], "https://example.com/a.git");
  EXPECT_EQ(job["ref"], "main");
  EXPECT_EQ(job["commit"], "abc123");
  EXPECT_EQ(job["event"], "manual");
  EXPECT_EQ(job["attempt"], 1);
  EXPECT_TRUE(job["started_at"].is_null());
  EXPECT_TRUE(job["steps"].as_array().empty());
  std::string created_at(job["created_at"].as_string());
  EXPECT_EQ(created_at.size(), 24u) << created_at;  // 2024-05-01T12:00:00.250Z
  EXPECT_EQ(created_at.back(), 'Z');
}

// A token in a repository URL stays with the agent that clones it: the API and the web UI,
// which anyone who reaches the server can read, show the URL without it.
TEST_F(ApiJobsTest, CredentialsInTheRepositoryUrlAreNotShown) {
  auto created = client->post("/api/v1/jobs", R"({"repo": "https://ci:s3cr3t-token@example.com/a.git"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  std::string id = std::to_string(created.json().at("id").as_int64());
  auto got = client->get("/api/v1/jobs/" + id);
  EXPECT_EQ(got.json().at("repo"), "https://example.com/a.git");
  EXPECT_EQ(client->get("/api/v1/jobs").body.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(client->get("/jobs/" + id).body.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(client->get("/").body.find("s3cr3t"), std::string::npos);
}

TEST_F(ApiJobsTest, ListsNewestFirstAndFiltersByState) {
  int64_t a = submit("https://example.com/a.git");
  int64_t b = submit("https://example.com/b.git");
  ASSERT_EQ(client->post("/api/v1/jobs/" + std::to_string(a) + "/cancel", "").status, 202u);
  auto all = client->get("/api/v1/jobs");
  ASSERT_EQ(all.status, 200u);
  auto jobs = all.json().at("jobs").as_array();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].at("id").as_int64(), b);
  auto queued = client->get("/api/v1/jobs?state=queued&limit=10").json().at("jobs").as_array();
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].at("id").as_int64(), b);
  auto cancelled = client->get("/api/v1/jobs?state=cancelled").json().at("jobs").as_array();
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].at("state"), "cancelled");
  EXPECT_EQ(client->get("/api/v1/jobs?limit=1").json().at("jobs").as_array().size(), 1u);
  // Repository and paging filters (the store's own test covers refs on both backends).
  auto of_a = client->get("/api/v1/jobs?repo=https%3A%2F%2Fexample.com%2Fa.git").json().at("jobs").as_array();
  ASSERT_EQ(of_a.size(), 1u);
  EXPECT_EQ(of_a[0].at("id").as_int64(), a);
  auto older = client->get("/api/v1/jobs?before=" + std::to_string(b)).json().at("jobs").as_array();
  ASSERT_EQ(older.size(), 1u);
  EXPECT_EQ(older[0].at("id").as_int64(), a);
  EXPECT_EQ(client->get("/api/v1/jobs?ref=main").json().at("jobs").as_array().size(), 0u);
  auto bad = client->get("/api/v1/jobs?before=abc");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("before"), std::string::npos) << bad.body;
}

TEST_F(ApiJobsTest, ValidationErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({})", "\"repo\""},
      {R"({"repo": 5})", "\"repo\""},
      {R"({"repo": ""})", "\"repo\""},
      {R"({"repo": "r", "ref": ["main"]})", "\"ref\""},
      {R"({"repo": "r", "env": {"A": 1}})", "\"env.A\""},
      {R"({"repo": "r", "env": "A=1"})", "\"env\""},
      {R"({"repo": )", "malformed JSON"},
      {R"([1])", "JSON object"},
  };
  for (const auto& c : cases) {
    auto r = client->post("/api/v1/jobs", c.body);
    EXPECT_EQ(r.status, 400u) << c.body;
    ASSERT_TRUE(r.json().is_object()) << r.body;
    std::string error(r.json().at("error").as_string());
    EXPECT_NE(error.find(c.field), std::string::npos) << c.body << " -> " << error;
  }
  EXPECT_EQ(client->get("/api/v1/jobs?state=done").status, 400u);
  EXPECT_EQ(client->get("/api/v1/jobs?limit=0").status, 400u);
  EXPECT_EQ(client->get("/api/v1/jobs").json().at("jobs").as_array().size(), 0u);
}

TEST_F(ApiJobsTest, CancelQueuedJobIsImmediate) {
  int64_t id = submit();
  auto r = client->post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "");
  EXPECT_EQ(r.status, 202u);
  EXPECT_EQ(r.json().at("state"), "cancelled");
  EXPECT_EQ(client->get("/api/v1/jobs/" + std::to_string(id)).json().at("state"), "cancelled");
}

TEST_F(ApiJobsTest, CancelRunningJobIsRequested) {
  int64_t id = submit();
  ASSERT_EQ(claim("agent-1"), id);
  auto r = client->post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "");
  EXPECT_EQ(r.status, 202u);
  auto job = client->get("/api/v1/jobs/" + std::to_string(id)).json();
  EXPECT_EQ(job.at("state"), "running");
  EXPECT_EQ(job.at("cancel_requested"), true);
}

TEST_F(ApiJobsTest, UnknownJobsAre404) {
  EXPECT_EQ(client->get("/api/v1/jobs/999").status, 404u);
  EXPECT_EQ(client->get("/api/v1/jobs/abc").status, 404u);
  EXPECT_EQ(client->post("/api/v1/jobs/999/cancel", "").status, 404u);
  EXPECT_EQ(client->get("/api/v1/nothing").status, 404u);
  EXPECT_EQ(client->request(http::verb::delete_, "/api/v1/jobs").status, 405u);
}

TEST_F(ApiJobsTest, WebPageListsJobsEscaped) {
  int64_t id = submit("https://example.com/<script>.git");
  EXPECT_EQ(client->get("/").status, 303u);  // to the login page
  auto page = web_get("/");
  ASSERT_EQ(page.status, 200u);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("/jobs/" + std::to_string(id)), std::string::npos);
  EXPECT_NE(page.body.find("&lt;script&gt;"), std::string::npos);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  auto job_page = web_get("/jobs/" + std::to_string(id));
  EXPECT_EQ(job_page.status, 200u);
  EXPECT_NE(job_page.body.find("queued"), std::string::npos);
  EXPECT_EQ(web_get("/jobs/12345").status, 404u);
}

}  // namespace
}  // namespace boxcar::server
