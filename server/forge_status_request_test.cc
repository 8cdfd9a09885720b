// The requests commit statuses become, checked against the forges' published API shapes, and
// what each kind of answer leads to.
#include "server/forge_status_request.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "server/web_forge_statuses.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;

JobRecord job_of(const std::string& forge) {
  JobRecord job;
  job.id = 7;
  job.commit = std::string(40, 'a');
  job.status_context = "boxcar/ci";
  job.forge.forge = forge;
  job.forge.repo = forge == "gitlab" ? "42" : "octo/app";
  if (forge == "gitea") job.forge.api = "https://git.example.com/api/v1";
  if (forge == "gitlab") job.forge.api = "https://lab.example.com/api/v4";
  return job;
}

ServerConfig config_with_tokens() {
  ServerConfig config;
  config.github_token = "gh-tok";
  config.gitea_token = "gt-tok";
  config.gitlab_token = "gl-tok";
  config.gitea_urls = {"https://git.example.com"};
  config.gitlab_urls = {"https://lab.example.com"};
  config.public_url = "https://ci.example.com";
  return config;
}

ForgeStatusRecord pending() {
  ForgeStatusRecord s;
  s.state = "pending";
  s.description = "Queued";
  return s;
}

std::string header(const StatusRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(ForgeStatusRequest, GithubGiteaAndGitlabShapes) {
  auto config = config_with_tokens();
  auto hub = status_request(job_of("github"), pending(), config);
  ASSERT_TRUE(hub) << hub.error().message;
  EXPECT_EQ(hub->api_root, "https://api.github.com");
  EXPECT_EQ(hub->path, "/repos/octo/app/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(header(*hub, "Authorization"), "Bearer gh-tok");
  EXPECT_EQ(header(*hub, "Accept"), "application/vnd.github+json");
  EXPECT_EQ(header(*hub, "X-GitHub-Api-Version"), "2022-11-28");
  EXPECT_EQ(json::parse(hub->body),
            json::parse(R"({"state":"pending","description":"Queued","context":"boxcar/ci",)"
                        R"("target_url":"https://ci.example.com/jobs/7"})"));

  auto tea = status_request(job_of("gitea"), pending(), config);
  ASSERT_TRUE(tea) << tea.error().message;
  EXPECT_EQ(tea->api_root, "https://git.example.com/api/v1");
  EXPECT_EQ(tea->path, "/repos/octo/app/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(header(*tea, "Authorization"), "token gt-tok");

  auto lab = status_request(job_of("gitlab"), pending(), config);
  ASSERT_TRUE(lab) << lab.error().message;
  EXPECT_EQ(lab->path, "/projects/42/statuses/" + std::string(40, 'a'));
  EXPECT_EQ(header(*lab, "PRIVATE-TOKEN"), "gl-tok");
  EXPECT_EQ(json::parse(lab->body),
            json::parse(R"({"state":"pending","description":"Queued","name":"boxcar/ci",)"
                        R"("target_url":"https://ci.example.com/jobs/7"})"));

  // Without --public-url there is no link to give.
  config.public_url.clear();
  auto bare = status_request(job_of("github"), pending(), config);
  ASSERT_TRUE(bare);
  EXPECT_FALSE(json::parse(bare->body).as_object().contains("target_url"));
}

TEST(ForgeStatusRequest, NoTokenAForeignApiRootOrPlainHttpSendNothing) {
  auto config = config_with_tokens();
  config.gitea_token.clear();
  auto none = status_request(job_of("gitea"), pending(), config);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no --gitea-token"), std::string::npos) << none.error().message;

  // Attack: a signed webhook names an API root elsewhere than --gitlab-url.
  config.gitlab_urls = {"https://lab.example.com"};
  auto job = job_of("gitlab");
  job.forge.api = "https://evil.example/api/v4";
  auto foreign = status_request(job, pending(), config);
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("not in this server's --gitlab-url"), std::string::npos)
      << foreign.error().message;
  EXPECT_EQ(foreign.error().message.find("gl-tok"), std::string::npos);
  // Control: the listed origin (a default port written out still matches).
  config.gitlab_urls = {"https://LAB.example.com:443/"};
  EXPECT_TRUE(status_request(job_of("gitlab"), pending(), config));

  // Attack: no --gitlab-url at all sends the token nowhere (fail closed), not anywhere.
  config.gitlab_urls.clear();
  auto unlisted = status_request(job_of("gitlab"), pending(), config);
  ASSERT_FALSE(unlisted);
  EXPECT_NE(unlisted.error().message.find("(none is set)"), std::string::npos) << unlisted.error().message;

  // A token never goes over plain http to another machine.
  job = job_of("gitlab");
  config.gitlab_urls = {"http://lab.example.com"};
  job.forge.api = "http://lab.example.com/api/v4";
  EXPECT_FALSE(status_request(job, pending(), config));
}

TEST(ForgeStatusRequest, AnswersAreDeliveredRetriedOrGivenUp) {
  using K = ForgeStatusOutcome;
  EXPECT_EQ(classify_status_reply("github", "", 201, "", "").kind, K::delivered);
  EXPECT_EQ(classify_status_reply("github", "connection refused", 0, "", "").kind, K::retry);
  EXPECT_EQ(classify_status_reply("gitea", "", 500, "", "").kind, K::retry);
  EXPECT_EQ(classify_status_reply("gitlab", "", 429, "", "").kind, K::retry);
  EXPECT_EQ(classify_status_reply("github", "", 403, "0", "rate limit").kind, K::retry);
  auto denied = classify_status_reply("github", "", 401, "", "Bad credentials");
  EXPECT_EQ(denied.kind, K::failed);
  EXPECT_NE(denied.why.find("--github-token"), std::string::npos) << denied.why;
  EXPECT_NE(denied.why.find("Bad credentials"), std::string::npos) << denied.why;
  EXPECT_EQ(classify_status_reply("gitea", "", 404, "", "").kind, K::failed);
  EXPECT_EQ(classify_status_reply("github", "", 422, "", "").kind, K::failed);
}

TEST(ForgeStatusRequest, BackoffGrowsIsCappedAndJittered) {
  EXPECT_EQ(status_backoff(1, 1.0).count(), 1'000);
  EXPECT_EQ(status_backoff(2, 1.0).count(), 2'000);
  EXPECT_EQ(status_backoff(1, 0.5).count(), 500);
  EXPECT_EQ(status_backoff(40, 1.0).count(), 600'000);
}

TEST(ForgeStatusRequest, ForgeMessagesAreCutAndNeverEchoTheToken) {
  EXPECT_EQ(forge_error_message(R"({"message":"Bad credentials for tok-123"})", "tok-123"),
            "Bad credentials for ***");
  EXPECT_EQ(forge_error_message("<html>oops</html>", "x"), "");
  EXPECT_EQ(forge_error_message(R"({"message":")" + std::string(300, 'm') + R"("})", "x").size(), 203u);
  EXPECT_EQ(status_context("ci", "x.toml"), "boxcar/ci");
  EXPECT_EQ(status_context("", "x.toml"), "boxcar/x.toml");
  EXPECT_EQ(status_context("", ""), "boxcar");
}

TEST(ForgeStatusesHtml, ATableWhoseValuesStayText) {
  EXPECT_EQ(forge_statuses_html({}), "");
  ForgeStatusRecord s = pending();
  s.description = "<script>alert(1)</script>";
  s.result = "failed";
  s.last_http_status = 401;
  s.last_error = "the forge refused the token (401): \"x\" & <b>";
  std::string html = forge_statuses_html({s});
  EXPECT_NE(html.find("<h2>Commit statuses</h2>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<b>"), std::string::npos) << html;
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << html;
  EXPECT_NE(html.find("401 the forge refused the token (401): &quot;x&quot; &amp; &lt;b&gt;"),
            std::string::npos) << html;
  auto rows = forge_statuses_json({s});
  EXPECT_EQ(rows.as_array().at(0).as_object().at("last_http_status").as_int64(), 401);
  EXPECT_TRUE(rows.as_array().at(0).as_object().at("delivered_at").is_null());
}

}  // namespace
}  // namespace boxcar::server
