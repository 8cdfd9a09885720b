// The user API's and web UI's authentication against a real Server: every attack beside a
// control showing the same request works with the right credentials.
#include "server/auth.h"

#include <regex>

#include <gtest/gtest.h>

#include "base/sha256.h"

#include "testing/test_client.h"

namespace boxcar::server {
namespace {

using testing::Headers;
using testing::ServerFixture;
using testing::TestClient;
using testing::TestResponse;
namespace http = boost::beast::http;

constexpr const char* kReader = "reader-token-0123456789";
constexpr const char* kWriter = "writer-token-0123456789";

class AuthTest : public ServerFixture {
 protected:
  void SetUp() override {
    options.api_tokens = {admin_token("admin", kApiToken),
                          ApiToken{"reader", sha256_hex(kReader), static_cast<unsigned>(Scope::read), std::nullopt},
                          ApiToken{"writer", sha256_hex(kWriter), static_cast<unsigned>(Scope::write), std::nullopt}};
    configure();
    ServerFixture::SetUp();
    anon = std::make_unique<TestClient>(port());
  }
  virtual void configure() {}

  TestResponse as(const char* token, http::verb method, const std::string& target,
                  const std::string& body = "", Headers headers = {}) {
    headers.emplace("Authorization", std::string("Bearer ") + token);
    return anon->request(method, target, body, headers);
  }
  size_t job_count() {
    return client->get("/api/v1/jobs").json().at("jobs").as_array().size();
  }

  std::unique_ptr<TestClient> anon;  // no token, no default headers
};

struct Probe {
  http::verb method;
  std::string target;
  std::string body;
};

std::vector<Probe> user_routes(int64_t id) {
  std::string job = "/api/v1/jobs/" + std::to_string(id);
  return {{http::verb::get, "/api/v1/jobs", ""},
          {http::verb::post, "/api/v1/jobs", R"({"repo": "https://example.com/x.git"})"},
          {http::verb::get, job, ""},
          {http::verb::get, job + "/logs", ""},
          {http::verb::get, job + "/logs?follow=1", ""},
          {http::verb::get, job + "/artifacts", ""},
          {http::verb::get, job + "/artifacts/out.txt", ""},
          {http::verb::get, job + "/previews", ""},
          {http::verb::post, job + "/cancel", ""},
          {http::verb::get, "/metrics", ""}};
}

TEST_F(AuthTest, EveryUserRouteRefusesAnonymousCallersAndAnswersTheToken) {
  int64_t id = submit();
  size_t before = job_count();
  for (const Probe& p : user_routes(id)) {
    Headers json = {{"Content-Type", "application/json"}};
    TestResponse r = anon->request(p.method, p.target, p.body, json);
    EXPECT_EQ(r.status, 401u) << p.target;
    EXPECT_EQ(r.header("www-authenticate"), "Bearer") << p.target;
    EXPECT_NE(r.body.find("Authorization: Bearer"), std::string::npos) << r.body;
    TestResponse wrong = as("not-a-token", p.method, p.target, p.body, json);
    EXPECT_EQ(wrong.status, 401u) << p.target;
    // Control: the admin token gets through (404: the job has no such artifact).
    if (p.target.find("follow=1") != std::string::npos) continue;  // streams until the job ends
    TestResponse ok = as(kApiToken, p.method, p.target, p.body, json);
    EXPECT_TRUE(ok.status == 200 || ok.status == 201 || ok.status == 202 ||
                (ok.status == 404 && p.target.ends_with("out.txt")))
        << p.target << " " << ok.status << " " << ok.body;
  }
  EXPECT_EQ(job_count(), before + 1);  // only the admin's submit
}

TEST_F(AuthTest, AReadTokenReadsButCannotSubmitOrCancel) {
  int64_t id = submit();
  std::string job = "/api/v1/jobs/" + std::to_string(id);
  Headers json = {{"Content-Type", "application/json"}};
  EXPECT_EQ(as(kReader, http::verb::get, job).status, 200u);
  EXPECT_EQ(as(kReader, http::verb::get, job + "/logs").status, 200u);
  EXPECT_EQ(as(kReader, http::verb::get, job + "/previews").status, 200u);
  EXPECT_EQ(as(kReader, http::verb::get, "/metrics").status, 200u);
  TestResponse submit_r = as(kReader, http::verb::post, "/api/v1/jobs", R"({"repo": "r"})", json);
  EXPECT_EQ(submit_r.status, 403u);
  EXPECT_NE(submit_r.body.find("lacks the \\\"write\\\" scope"), std::string::npos) << submit_r.body;
  EXPECT_EQ(as(kReader, http::verb::post, job + "/cancel").status, 403u);
  EXPECT_FALSE(client->get(job).json().at("cancel_requested").as_bool());
  // Control: a write token submits, cancels and reads what it submitted.
  EXPECT_EQ(as(kWriter, http::verb::post, "/api/v1/jobs", R"({"repo": "r"})", json).status, 201u);
  EXPECT_EQ(as(kWriter, http::verb::post, job + "/cancel").status, 202u);
  EXPECT_EQ(as(kWriter, http::verb::get, job).status, 200u);
}

TEST_F(AuthTest, StateChangingRequestsTakeJsonOnly) {
  size_t before = job_count();
  // What a form on another origin can send without a preflight: text/plain, urlencoded.
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}) {
    TestResponse r = as(kApiToken, http::verb::post, "/api/v1/jobs", R"({"repo": "r"})",
                        {{"Content-Type", type}});
    EXPECT_EQ(r.status, 415u) << type;
  }
  EXPECT_EQ(as(kApiToken, http::verb::post, "/api/v1/jobs", R"({"repo": "r"})").status, 415u);
  EXPECT_EQ(job_count(), before);
  // Control: the same body as JSON; a bodiless cancel needs no type.
  TestResponse ok = as(kApiToken, http::verb::post, "/api/v1/jobs", R"({"repo": "r"})",
                       {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(ok.status, 201u) << ok.body;
  EXPECT_EQ(as(kApiToken, http::verb::post, "/api/v1/jobs/1/cancel").status, 202u);
}

TEST_F(AuthTest, AForeignHostIsRefusedOnEveryRouteButHealth) {
  std::string port_text = std::to_string(port());
  Headers evil = {{"Host", "rebind.evil.example:" + port_text},
                  {"Authorization", std::string("Bearer ") + kApiToken}};
  for (const char* target : {"/api/v1/jobs", "/", "/metrics", "/login"}) {
    TestResponse r = anon->request(http::verb::get, target, "", evil);
    EXPECT_EQ(r.status, 421u) << target;
    EXPECT_NE(r.body.find("--public-url"), std::string::npos) << r.body;
  }
  EXPECT_EQ(anon->request(http::verb::post, "/hooks/github", "{}", evil).status, 421u);
  EXPECT_EQ(anon->request(http::verb::post, "/api/v1/agent/claim", "{}", evil).status, 421u);
  EXPECT_EQ(anon->request(http::verb::get, "/healthz", "", evil).status, 200u);
  // Control: the listen address, localhost and a bare IP pass.
  for (std::string host : {"127.0.0.1:" + port_text, "localhost:" + port_text, std::string("LOCALHOST"), "[::1]:" + port_text}) {
    TestResponse r = anon->request(http::verb::get, "/api/v1/jobs", "",
                                   {{"Host", host}, {"Authorization", std::string("Bearer ") + kApiToken}});
    EXPECT_EQ(r.status, 200u) << host;
  }
}

class PublicUrlTest : public AuthTest {
  void configure() override { options.public_url = "https://ci.example.com"; }
};

TEST_F(PublicUrlTest, ThePublicUrlsHostPassesAndCookiesAreSecure) {
  Headers h = {{"Host", "ci.example.com"}, {"Authorization", std::string("Bearer ") + kApiToken}};
  EXPECT_EQ(anon->request(http::verb::get, "/api/v1/jobs", "", h).status, 200u);
  EXPECT_EQ(anon->request(http::verb::get, "/api/v1/jobs", "", {{"Host", "ci.example.com.evil"}}).status, 421u);
  TestResponse login = anon->post("/login", std::string("token=") + kApiToken,
                                  {{"Content-Type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(login.status, 303u) << login.body;
  EXPECT_NE(login.header("set-cookie").find("; Secure"), std::string::npos) << login.header("set-cookie");
}

class PublicReadTest : public AuthTest {
  void configure() override { options.public_read = true; }
};

TEST_F(PublicReadTest, AnonymousReadsJobsLogsAndArtifactsButNotPreviewsOrMetrics) {
  int64_t id = submit();
  std::string job = "/api/v1/jobs/" + std::to_string(id);
  EXPECT_EQ(anon->get("/api/v1/jobs").status, 200u);
  EXPECT_EQ(anon->get(job).status, 200u);
  EXPECT_EQ(anon->get(job + "/logs").status, 200u);
  EXPECT_EQ(anon->get(job + "/artifacts").status, 200u);
  EXPECT_EQ(anon->get("/").status, 200u);
  EXPECT_EQ(anon->get("/jobs/" + std::to_string(id)).status, 200u);
  // Preview URLs carry their tokens; metrics are for the operator.
  EXPECT_EQ(anon->get(job + "/previews").status, 401u);
  EXPECT_EQ(anon->get("/metrics").status, 401u);
  EXPECT_EQ(anon->post("/api/v1/jobs", R"({"repo": "r"})", {{"Content-Type", "application/json"}}).status, 401u);
  EXPECT_EQ(anon->post(job + "/cancel", "").status, 401u);
  // A wrong token is not downgraded to anonymous: it is an error the caller should see.
  EXPECT_EQ(as("wrong", http::verb::get, "/api/v1/jobs").status, 401u);
  // Control: a reader sees the previews.
  EXPECT_EQ(as(kReader, http::verb::get, job + "/previews").status, 200u);
}

std::string csrf_of(const std::string& page) {
  std::smatch m;
  if (std::regex_search(page, m, std::regex("name=\"csrf\" value=\"([0-9a-f]+)\""))) return m[1];
  return "";
}

TEST_F(AuthTest, TheWebUiNeedsALoginWhoseCookieIsHttpOnlyAndSameSiteStrict) {
  int64_t id = submit();
  std::string page = "/jobs/" + std::to_string(id);
  TestResponse before = anon->get(page);
  EXPECT_EQ(before.status, 303u);
  EXPECT_EQ(before.header("location"), "/login?next=" + page);
  EXPECT_EQ(anon->get("/").status, 303u);
  EXPECT_EQ(anon->get(page + "/log").status, 303u);
  EXPECT_EQ(anon->get("/login").status, 200u);

  Headers form = {{"Content-Type", "application/x-www-form-urlencoded"}};
  TestResponse wrong = anon->post("/login", "token=nope&next=" + page, form);
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_TRUE(wrong.header("set-cookie").empty());
  Headers cross = form;
  cross.emplace("Sec-Fetch-Site", "cross-site");
  EXPECT_EQ(anon->post("/login", std::string("token=") + kApiToken, cross).status, 403u);

  TestResponse login = anon->post("/login", std::string("token=") + kApiToken + "&next=" + page, form);
  ASSERT_EQ(login.status, 303u) << login.body;
  EXPECT_EQ(login.header("location"), page);
  std::string cookie = login.header("set-cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << cookie;  // plain http here
  std::string session = cookie.substr(0, cookie.find(';'));
  EXPECT_EQ(session.find(kApiToken), std::string::npos);  // the cookie is not the token

  TestResponse shown = anon->request(http::verb::get, page, "", {{"Cookie", session}});
  ASSERT_EQ(shown.status, 200u);
  EXPECT_NE(shown.body.find("signed in as admin"), std::string::npos);
  EXPECT_EQ(anon->request(http::verb::get, page + "/log", "", {{"Cookie", session}}).status, 200u);
  // The cookie never authenticates the API: a page on another origin could make it be sent.
  EXPECT_EQ(anon->request(http::verb::get, "/api/v1/jobs", "", {{"Cookie", session}}).status, 401u);
  // An open redirect is not on offer.
  TestResponse away = anon->post("/login", std::string("token=") + kApiToken + "&next=//evil.example/", form);
  EXPECT_EQ(away.header("location"), "/");
}

TEST_F(AuthTest, TheCancelFormNeedsItsCsrfToken) {
  int64_t id = submit();
  std::string page = "/jobs/" + std::to_string(id);
  Headers form = {{"Content-Type", "application/x-www-form-urlencoded"}};
  TestResponse login = anon->post("/login", std::string("token=") + kApiToken, form);
  std::string cookie = login.header("set-cookie");
  Headers with_cookie = form;
  with_cookie.emplace("Cookie", cookie.substr(0, cookie.find(';')));
  std::string csrf = csrf_of(anon->request(http::verb::get, page, "", with_cookie).body);
  ASSERT_EQ(csrf.size(), 64u);

  EXPECT_EQ(anon->post(page + "/cancel", "", with_cookie).status, 403u);
  EXPECT_EQ(anon->post(page + "/cancel", "csrf=" + std::string(64, '0'), with_cookie).status, 403u);
  EXPECT_EQ(client->get("/api/v1" + page).json().at("state"), "queued");
  // Control: the form as the page renders it.
  TestResponse ok = anon->post(page + "/cancel", "csrf=" + csrf, with_cookie);
  EXPECT_EQ(ok.status, 303u) << ok.body;
  EXPECT_EQ(client->get("/api/v1" + page).json().at("state"), "cancelled");

  // Logging out needs the token too, and ends the session.
  EXPECT_EQ(anon->post("/logout", "", with_cookie).status, 403u);
  TestResponse out = anon->post("/logout", "csrf=" + csrf, with_cookie);
  EXPECT_EQ(out.status, 303u);
  EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(anon->request(http::verb::get, page, "", with_cookie).status, 303u);
}

TEST_F(AuthTest, AReadSessionSeesNoCancelFormAndCannotPostIt) {
  int64_t id = submit();
  std::string page = "/jobs/" + std::to_string(id);
  Headers form = {{"Content-Type", "application/x-www-form-urlencoded"}};
  std::string cookie = anon->post("/login", std::string("token=") + kReader, form).header("set-cookie");
  Headers with_cookie = form;
  with_cookie.emplace("Cookie", cookie.substr(0, cookie.find(';')));
  std::string body = anon->request(http::verb::get, page, "", with_cookie).body;
  EXPECT_EQ(body.find("/cancel\""), std::string::npos);
  EXPECT_EQ(anon->post(page + "/cancel", "csrf=" + csrf_of(body), with_cookie).status, 403u);
}

}  // namespace
}  // namespace boxcar::server
