#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/rfc3339.h"
#include "server/api.h"
#include "testing/test_client.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
using testing::TestResponse;

class ApiPreviewsTest : public testing::ServerFixture {
 protected:
  static json::object preview(const std::string& name, int port,
                              std::optional<UnixMillis> expires_at = std::nullopt) {
    json::object p{{"step", "web"},
                   {"name", name},
                   {"port", port},
                   {"url", "http://" + std::to_string(port) + "-1-tok.localhost:8081/"},
                   {"path_url", "http://127.0.0.1:8081/preview/tok-" + name + "/"}};
    if (expires_at) p["expires_at"] = *expires_at;
    return p;
  }
  TestResponse sync(int64_t id, const std::string& agent, json::array previews) {
    return agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/previews",
                      json::object{{"agent", agent}, {"previews", std::move(previews)}});
  }
  json::array listed(int64_t id) {
    TestResponse r = client->get("/api/v1/jobs/" + std::to_string(id) + "/previews");
    EXPECT_EQ(r.status, 200u) << r.body;
    json::value v = r.json();
    return v.is_object() && v.as_object().contains("previews") ? v.at("previews").as_array()
                                                               : json::array{};
  }
  TestResponse complete(int64_t id, const std::string& agent) {
    return agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/complete",
                      json::object{{"agent", agent}, {"state", "success"}});
  }
  TestResponse cancel(int64_t id) {
    return client->post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "");
  }
};

TEST_F(ApiPreviewsTest, ASyncedPreviewIsListedOpen) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  UnixMillis expires = now_ms() + 3'600'000;
  TestResponse r = sync(id, "a1", {preview("app", 8000, expires)});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json(), (json::value{{"close", false}}));

  json::array all = listed(id);
  ASSERT_EQ(all.size(), 1u);
  const json::object& p = all[0].as_object();
  EXPECT_EQ(p.at("step"), "web");
  EXPECT_EQ(p.at("name"), "app");
  EXPECT_EQ(p.at("port"), 8000);
  EXPECT_EQ(p.at("url"), "http://8000-1-tok.localhost:8081/");
  EXPECT_EQ(p.at("path_url"), "http://127.0.0.1:8081/preview/tok-app/");
  EXPECT_EQ(p.at("state"), "open");
  EXPECT_TRUE(p.at("opened_at").is_string());
  EXPECT_EQ(p.at("expires_at"), format_rfc3339(expires).c_str());
  EXPECT_TRUE(p.at("closed_at").is_null());
}

TEST_F(ApiPreviewsTest, ASyncFromAnotherAgentIs409AndWithoutTheToken401) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  TestResponse other = sync(id, "a2", {preview("app", 8000)});
  EXPECT_EQ(other.status, 409u) << other.body;
  EXPECT_TRUE(other.json().at("error").is_string());
  EXPECT_EQ(sync(id + 1000, "a1", {}).status, 409u);  // no such job: not this agent's either
  EXPECT_EQ(client->post("/api/v1/agent/jobs/" + std::to_string(id) + "/previews",
                         R"({"agent":"a1","previews":[]})")
                .status,
            401u);
  EXPECT_TRUE(listed(id).empty());
}

TEST_F(ApiPreviewsTest, AnUnknownJobIs404) {
  TestResponse missing = client->get("/api/v1/jobs/424242/previews");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_TRUE(missing.json().at("error").is_string());
  EXPECT_EQ(client->get("/api/v1/jobs/x/previews").status, 404u);
}

TEST_F(ApiPreviewsTest, ABadBodyIs400NamingTheField) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  json::object no_port = preview("app", 8000);
  no_port.erase("port");
  TestResponse r = sync(id, "a1", {preview("ok", 8001), no_port});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("previews[1].port"), std::string::npos) << r.body;
  r = agent_post("/api/v1/agent/jobs/" + std::to_string(id) + "/previews",
                 json::object{{"agent", "a1"}, {"previews", "all"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("previews"), std::string::npos) << r.body;
  EXPECT_TRUE(listed(id).empty());  // nothing of a refused body was kept
}

TEST_F(ApiPreviewsTest, APreviewPastItsExpiryShowsClosed) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(sync(id, "a1", {preview("old", 8000, now_ms() - 1'000), preview("new", 8001)}).status,
            200u);
  json::array all = listed(id);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].at("name"), "new");
  EXPECT_EQ(all[0].at("state"), "open");
  EXPECT_EQ(all[1].at("name"), "old");
  EXPECT_EQ(all[1].at("state"), "closed");
  EXPECT_TRUE(all[1].at("closed_at").is_null());  // closed by time, not by the agent
}

TEST_F(ApiPreviewsTest, AnEmptyListClosesThemAll) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(sync(id, "a1", {preview("app", 8000), preview("docs", 8001)}).status, 200u);
  ASSERT_EQ(sync(id, "a1", {}).status, 200u);
  json::array all = listed(id);
  ASSERT_EQ(all.size(), 2u);
  for (const auto& p : all) {
    EXPECT_EQ(p.at("state"), "closed");
    EXPECT_TRUE(p.at("closed_at").is_string());
  }
}

TEST_F(ApiPreviewsTest, CancelOfACompletedJobClosesItsPreviewsThroughTheNextSync) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(sync(id, "a1", {preview("app", 8000)}).status, 200u);
  ASSERT_EQ(complete(id, "a1").status, 200u);
  TestResponse after = sync(id, "a1", {preview("app", 8000, now_ms() + 60'000)});
  ASSERT_EQ(after.status, 200u) << after.body;  // its agent still serves them
  EXPECT_EQ(after.json().at("close"), false);

  TestResponse r = cancel(id);
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.json().at("state"), "success");
  EXPECT_EQ(r.json().at("previews_closing"), true);
  TestResponse next = sync(id, "a1", {preview("app", 8000)});
  ASSERT_EQ(next.status, 200u) << next.body;
  EXPECT_EQ(next.json().at("close"), true);
  EXPECT_EQ(sync(id, "a2", {}).status, 409u);
}

TEST_F(ApiPreviewsTest, CancelOfACompletedJobWithoutPreviewsChangesNothing) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  ASSERT_EQ(complete(id, "a1").status, 200u);
  TestResponse r = cancel(id);
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.json().at("previews_closing"), false);
  EXPECT_EQ(r.json().at("cancel_requested"), false);
  EXPECT_EQ(sync(id, "a1", {preview("app", 8000)}).status, 409u);
}

TEST_F(ApiPreviewsTest, PreviewsOfAFinalJobWhoseAgentWentSilentShowClosed) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  PreviewRecord p;
  p.step = "web";
  p.name = "app";
  p.port = 8000;
  // Last heard from a minute ago: open while the job runs (its lease speaks for the agent)...
  ASSERT_TRUE(store->sync_previews(id, lease_holder("a1", id), {p}, now_ms() - 60'000)->accepted);
  EXPECT_EQ(listed(id)[0].at("state"), "open");
  ASSERT_EQ(complete(id, "a1").status, 200u);
  // ...closed once the job is final and the agent stopped re-sending it.
  EXPECT_EQ(listed(id)[0].at("state"), "closed");
}

TEST_F(ApiPreviewsTest, TheJobPageLinksItsOpenPreviewsEscaped) {
  int64_t id = submit();
  ASSERT_EQ(claim("a1"), id);
  json::object odd = preview("a<b>", 8000);
  odd["url"] = "http://8000-1-tok.localhost:8081/?q=\"<x>\"";
  odd["path_url"] = "javascript:alert(1)";
  ASSERT_EQ(sync(id, "a1", {odd, preview("gone", 8001, now_ms() - 1'000)}).status, 200u);
  TestResponse page = web_get("/jobs/" + std::to_string(id));
  ASSERT_EQ(page.status, 200u);
  EXPECT_NE(page.body.find("<h2>Previews</h2>"), std::string::npos);
  EXPECT_NE(page.body.find("a&lt;b&gt;"), std::string::npos);
  EXPECT_NE(page.body.find("<a href=\"http://8000-1-tok.localhost:8081/?q=&quot;&lt;x&gt;&quot;\" rel="),
            std::string::npos)
      << page.body;
  EXPECT_EQ(page.body.find("href=\"javascript:"), std::string::npos);
  EXPECT_EQ(page.body.find("gone"), std::string::npos);  // closed previews are not listed
}

}  // namespace
}  // namespace boxcar::server
