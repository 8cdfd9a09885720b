#include "server/webhooks.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "base/hmac.h"
#include "testing/test_client.h"
#include "server/webhook_signature.h"

namespace boxcar::server {
namespace {

namespace json = boost::json;
using testing::Headers;
using testing::TestResponse;

const char* kSha = "0123456789abcdef0123456789abcdef01234567";

std::string github_push(const std::string& ref = "refs/heads/main", const std::string& after = kSha) {
  return json::serialize(json::object{
      {"ref", ref}, {"before", "1111111111111111111111111111111111111111"}, {"after", after},
      {"repository", json::object{{"full_name", "o/r"}, {"clone_url", "https://github.com/o/r.git"}}}});
}

TEST(WebhookSignatureTest, HmacMatchesAKnownVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_TRUE(hmac_signature_valid("Jefe", "what do ya want for nothing?",
                                   "sha256=5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"));
  EXPECT_FALSE(hmac_signature_valid("Jefe", "what do ya want for nothing!",
                                    "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

TEST(WebhookInterpretTest, GithubTagPushIsATagEvent) {
  auto out = interpret_webhook(Forge::github, "push", json::parse(github_push("refs/tags/v1.0")));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->action, WebhookOutcome::queue);
  EXPECT_EQ(out->job.event, "tag");
  EXPECT_EQ(out->job.ref, "refs/tags/v1.0");
}

TEST(WebhookInterpretTest, BranchDeletionIsIgnored) {
  auto out = interpret_webhook(Forge::github, "push",
                               json::parse(github_push("refs/heads/x", std::string(40, '0'))));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->action, WebhookOutcome::ignore);
}

TEST(WebhookInterpretTest, PullRequestUsesTheHeadRepository) {
  json::value pr = json::parse(R"({"action": "synchronize", "number": 3, "pull_request": {
      "head": {"sha": "feedface", "ref": "feature", "repo": {"clone_url": "https://github.com/f/r.git"}},
      "base": {"ref": "main", "repo": {"clone_url": "https://github.com/o/r.git"}}}})");
  auto out = interpret_webhook(Forge::github, "pull_request", pr);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->action, WebhookOutcome::queue);
  EXPECT_EQ(out->job.repo, "https://github.com/f/r.git");
  EXPECT_EQ(out->job.commit, "feedface");
  EXPECT_EQ(out->job.ref, "feature");
  EXPECT_EQ(out->job.event, "pull_request");
  EXPECT_EQ(out->job.env.at("BOXCAR_PR_BASE"), "main");
  EXPECT_EQ(out->job.env.at("BOXCAR_PR_HEAD"), "feature");
  EXPECT_EQ(out->job.env.at("BOXCAR_PR_NUMBER"), "3");
  EXPECT_TRUE(out->job.fork);  // head and base are different repositories: no secrets
  pr.as_object()["pull_request"].as_object()["head"].as_object()["repo"] = pr.at("pull_request").at("base").at("repo");
  EXPECT_FALSE(interpret_webhook(Forge::github, "pull_request", pr)->job.fork);
  pr.as_object()["action"] = "closed";
  EXPECT_EQ(interpret_webhook(Forge::github, "pull_request", pr)->action, WebhookOutcome::ignore);
}

TEST(WebhookInterpretTest, GitlabMergeRequest) {
  json::value mr = json::parse(R"({"object_kind": "merge_request", "object_attributes": {
      "action": "open", "source_branch": "feat", "target_branch": "main",
      "source": {"git_http_url": "https://gitlab.com/f/r.git"}, "last_commit": {"id": "c0ffee"}}})");
  auto out = interpret_webhook(Forge::gitlab, "Merge Request Hook", mr);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->job.repo, "https://gitlab.com/f/r.git");
  EXPECT_EQ(out->job.commit, "c0ffee");
  EXPECT_EQ(out->job.ref, "feat");
  EXPECT_EQ(out->job.event, "pull_request");
  EXPECT_EQ(out->job.env.at("BOXCAR_PR_BASE"), "main");
  EXPECT_EQ(out->job.env.at("BOXCAR_PR_HEAD"), "feat");
  EXPECT_TRUE(out->job.fork);  // no project ids: counted as a fork (no secrets)
  auto& attrs = mr.as_object()["object_attributes"].as_object();
  attrs["source_project_id"] = 7;
  attrs["target_project_id"] = 7;
  EXPECT_FALSE(interpret_webhook(Forge::gitlab, "Merge Request Hook", mr)->job.fork);
  attrs["source_project_id"] = 8;
  EXPECT_TRUE(interpret_webhook(Forge::gitlab, "Merge Request Hook", mr)->job.fork);
}

TEST(WebhookInterpretTest, ForgeLinksNameWhereStatusesGo) {
  json::value push = json::parse(R"({"ref": "refs/heads/main", "after": "feedface",
      "repository": {"full_name": "o/r", "clone_url": "https://git.example.com:3000/o/r.git",
                     "html_url": "https://git.example.com:3000/o/r", "default_branch": "trunk"}})");
  auto gitea = interpret_webhook(Forge::gitea, "push", push);
  ASSERT_TRUE(gitea.ok()) << gitea.error().message;
  EXPECT_EQ(gitea->job.forge.forge, "gitea");
  EXPECT_EQ(gitea->job.forge.repo, "o/r");
  EXPECT_EQ(gitea->job.forge.api, "https://git.example.com:3000/api/v1");
  EXPECT_EQ(gitea->job.default_branch, "trunk");
  EXPECT_TRUE(gitea->job.forge.can_post_status());
  EXPECT_EQ(gitea->job.forge.commit_url("feedface"), "https://git.example.com:3000/o/r/commit/feedface");
  auto github = interpret_webhook(Forge::github, "push", push);
  ASSERT_TRUE(github.ok());
  EXPECT_EQ(github->job.forge.api, "");  // the server's --github-api-url
  EXPECT_TRUE(github->job.forge.can_post_status());

  json::value lab = json::parse(R"({"ref": "refs/heads/main", "after": "feedface", "checkout_sha": "feedface",
      "project": {"id": 42, "git_http_url": "https://lab.example.com/g/p.git",
                  "web_url": "https://lab.example.com/g/p", "default_branch": "main"}})");
  auto gitlab = interpret_webhook(Forge::gitlab, "Push Hook", lab);
  ASSERT_TRUE(gitlab.ok()) << gitlab.error().message;
  EXPECT_EQ(gitlab->job.forge.repo, "42");
  EXPECT_EQ(gitlab->job.forge.api, "https://lab.example.com/api/v4");
  EXPECT_EQ(gitlab->job.forge.commit_url("feedface"), "https://lab.example.com/g/p/-/commit/feedface");
}

TEST(WebhookInterpretTest, AStatusGoesOnlyToTheRepositoryTheJobClones) {
  auto job_for = [](const std::string& full_name, const std::string& html_url) {
    json::value push = json::object{
        {"ref", "refs/heads/main"}, {"after", "feedface"},
        {"repository", json::object{{"full_name", full_name},
                                    {"clone_url", "https://git.example.com/mine/app.git"},
                                    {"html_url", html_url}}}};
    auto out = interpret_webhook(Forge::gitea, "push", push);
    EXPECT_TRUE(out.ok());
    return out->job;
  };
  // Control: the name and page of the repository cloned.
  NewJob own = job_for("mine/app", "https://git.example.com/mine/app");
  EXPECT_TRUE(own.forge.can_post_status());
  EXPECT_EQ(own.forge.repo, "mine/app");
  // Attacks: another repository's name, a name that climbs the API's path, a page (and so an
  // API root) on another host than the clone.
  EXPECT_FALSE(job_for("victim/app", "https://git.example.com/victim/app").forge.can_post_status());
  EXPECT_FALSE(job_for("../..", "https://git.example.com/mine/app").forge.can_post_status());
  EXPECT_FALSE(job_for("mine/app?x=", "https://git.example.com/mine/app").forge.can_post_status());
  NewJob elsewhere = job_for("mine/app", "https://evil.example/mine/app");
  EXPECT_FALSE(elsewhere.forge.can_post_status());
  EXPECT_EQ(elsewhere.forge.web_url, "");
}

TEST(WebhookInterpretTest, AWebUrlThatIsNotHttpIsNeitherALinkNorAnApi) {
  json::value push = json::parse(R"({"ref": "refs/heads/main", "after": "feedface",
      "repository": {"full_name": "o/r", "clone_url": "https://git.example.com/o/r.git",
                     "html_url": "javascript:alert(1)//"}})");
  auto out = interpret_webhook(Forge::gitea, "push", push);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->action, WebhookOutcome::queue);  // the job still runs, without statuses
  EXPECT_EQ(out->job.forge.web_url, "");
  EXPECT_FALSE(out->job.forge.can_post_status());
  EXPECT_EQ(out->job.forge.commit_url("feedface"), "");
  // Control: the same push with an https page has both.
  push.as_object()["repository"].as_object()["html_url"] = "https://git.example.com/o/r";
  EXPECT_TRUE(interpret_webhook(Forge::gitea, "push", push)->job.forge.can_post_status());
}

TEST(WebhookInterpretTest, PullRequestWithoutABaseIsAnError) {
  // The base decides the job's branch: a payload without one is refused, never run as the head.
  json::value pr = json::parse(R"({"action": "opened", "number": 4, "pull_request": {
      "head": {"sha": "feedface", "ref": "main", "repo": {"clone_url": "https://github.com/f/r.git"}}}})");
  auto out = interpret_webhook(Forge::github, "pull_request", pr);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("pull_request.base"), std::string::npos) << out.error().message;
}

HeaderLookup headers_of(const std::map<std::string, std::string>& h) {
  return [h](const char* name) {
    auto it = h.find(name);
    return it == h.end() ? std::string() : it->second;
  };
}

TEST(WebhookForgeTest, EachEndpointRefusesAnotherForgesDelivery) {
  std::map<std::string, std::string> github{{"X-GitHub-Event", "push"}};
  // Gitea sends its own headers and, for compatibility, GitHub's event header too.
  std::map<std::string, std::string> gitea{
      {"X-Gitea-Event", "push"}, {"X-Gogs-Event", "push"}, {"X-GitHub-Event", "push"}};
  std::map<std::string, std::string> gitlab{{"X-Gitlab-Event", "Push Hook"}};
  // Controls: each forge's own deliveries at its own endpoint.
  EXPECT_EQ(foreign_delivery(Forge::github, headers_of(github)), "");
  EXPECT_EQ(foreign_delivery(Forge::gitea, headers_of(gitea)), "");
  EXPECT_EQ(foreign_delivery(Forge::gitlab, headers_of(gitlab)), "");
  // Attacks: a delivery replayed, headers and all, to another forge's endpoint.
  EXPECT_NE(foreign_delivery(Forge::gitea, headers_of(github)).find("/hooks/github"), std::string::npos);
  EXPECT_NE(foreign_delivery(Forge::github, headers_of(gitea)).find("/hooks/gitea"), std::string::npos);
  EXPECT_NE(foreign_delivery(Forge::gitlab, headers_of(github)), "");
  EXPECT_NE(foreign_delivery(Forge::github, headers_of(gitlab)), "");
  EXPECT_NE(foreign_delivery(Forge::gitea, headers_of(gitlab)), "");
  EXPECT_NE(foreign_delivery(Forge::gitea, headers_of({{"X-Gitea-Event", "push"},
                                                       {"X-GitHub-Event", "pull_request"}})), "");
}

TEST(WebhookForgeTest, GiteaSignaturesAreBareHexAndGithubsArePrefixed) {
  std::string body = "{}";
  std::string mac = hmac_sha256_hex("k", body);
  EXPECT_TRUE(webhook_authentic(Forge::github, "k", "sha256=" + mac, body));
  EXPECT_TRUE(webhook_authentic(Forge::gitea, "k", mac, body));
  EXPECT_FALSE(webhook_authentic(Forge::github, "k", mac, body));
  EXPECT_FALSE(webhook_authentic(Forge::gitea, "k", "sha256=" + mac, body));  // GitHub's form
}

TEST(WebhookForgeTest, ContentKeyIgnoresTheForgeButNotTheCommitOrEvent) {
  NewJob a;
  a.repo = "https://github.com/o/r.git";
  a.ref = "refs/heads/main";
  a.commit = kSha;
  a.event = "push";
  NewJob b = a;
  EXPECT_EQ(webhook_content_key(a), webhook_content_key(b));
  b.commit = std::string(40, 'f');
  EXPECT_NE(webhook_content_key(a), webhook_content_key(b));
  b = a;
  b.event = "pull_request";
  EXPECT_NE(webhook_content_key(a), webhook_content_key(b));
  NewJob pr_dev = b, pr_main = b;
  pr_dev.env["BOXCAR_PR_BASE"] = "dev";
  pr_main.env["BOXCAR_PR_BASE"] = "main";
  EXPECT_NE(webhook_content_key(pr_dev), webhook_content_key(pr_main));
}

TEST(WebhookInterpretTest, MissingPayloadFieldsAreNamed) {
  auto out = interpret_webhook(Forge::github, "push", json::parse(R"({"ref": "refs/heads/m"})"));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("repository"), std::string::npos);
  out = interpret_webhook(Forge::gitea, "push",
                          json::parse(R"({"ref": "r", "after": "a", "repository": {}})"));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("repository.clone_url"), std::string::npos);
}

class WebhooksTest : public testing::ServerFixture {
 protected:
  TestResponse github(const std::string& body, const std::string& event = "push",
                      const std::string& delivery = "d-1", const std::string& secret = kSecret) {
    return client->post("/hooks/github", body,
                        {{"X-GitHub-Event", event},
                         {"X-GitHub-Delivery", delivery},
                         {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(secret, body)},
                         {"Content-Type", "application/json"}});
  }
  json::array jobs() { return client->get("/api/v1/jobs").json().at("jobs").as_array(); }
  uint64_t count(const char* provider, const char* result) {
    return server->metrics().webhook_count(provider, result);
  }
};

TEST_F(WebhooksTest, GithubPushQueuesAJob) {
  auto r = github(github_push());
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json().at("queued"), true);
  auto all = jobs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("repo"), "https://github.com/o/r.git");
  EXPECT_EQ(all[0].at("commit"), kSha);
  EXPECT_EQ(all[0].at("ref"), "refs/heads/main");
  EXPECT_EQ(all[0].at("event"), "push");
  EXPECT_EQ(all[0].at("state"), "queued");
  EXPECT_EQ(count("github", "queued"), 1u);
}

TEST_F(WebhooksTest, GiteaPushQueuesAJob) {
  std::string body = json::serialize(json::object{
      {"ref", "refs/heads/dev"}, {"after", kSha},
      {"repository", json::object{{"clone_url", "https://gitea.example/o/r.git"}}}});
  auto r = client->post("/hooks/gitea", body,
                        {{"X-Gitea-Event", "push"},
                         {"X-Gitea-Delivery", "g-1"},
                         {"X-Gitea-Signature", hmac_sha256_hex(kSecret, body)}});
  ASSERT_EQ(r.status, 200u) << r.body;
  auto all = jobs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("repo"), "https://gitea.example/o/r.git");
  EXPECT_EQ(all[0].at("ref"), "refs/heads/dev");
  EXPECT_EQ(all[0].at("commit"), kSha);
}

TEST_F(WebhooksTest, GitlabPushQueuesAJobAndDedupesByBodyWithoutUuid) {
  std::string body = json::serialize(json::object{
      {"object_kind", "push"}, {"ref", "refs/heads/main"}, {"after", kSha}, {"checkout_sha", kSha},
      {"project", json::object{{"git_http_url", "https://gitlab.example/o/r.git"}}}});
  Headers headers{{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}};
  auto r = client->post("/hooks/gitlab", body, headers);
  ASSERT_EQ(r.status, 200u) << r.body;
  auto all = jobs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].at("repo"), "https://gitlab.example/o/r.git");
  EXPECT_EQ(all[0].at("commit"), kSha);
  EXPECT_EQ(all[0].at("event"), "push");
  auto replay = client->post("/hooks/gitlab", body, headers);
  EXPECT_EQ(replay.json().at("duplicate"), true);
  headers["X-Gitlab-Token"] = "wrong";
  EXPECT_EQ(client->post("/hooks/gitlab", body, headers).status, 401u);
  EXPECT_EQ(jobs().size(), 1u);
}

TEST_F(WebhooksTest, BadSignatureIs401AndQueuesNothing) {
  EXPECT_EQ(github(github_push(), "push", "d-1", "not-the-secret").status, 401u);
  EXPECT_EQ(client->post("/hooks/github", github_push(), {{"X-GitHub-Event", "push"}}).status,
            401u);
  std::string body = github_push();
  auto gitea = client->post("/hooks/gitea", body,
                            {{"X-Gitea-Event", "push"},
                             {"X-Gitea-Signature", hmac_sha256_hex(kSecret, body + " ")}});
  EXPECT_EQ(gitea.status, 401u);
  EXPECT_TRUE(jobs().empty());
  EXPECT_EQ(count("github", "bad_signature"), 2u);
  EXPECT_EQ(count("gitea", "bad_signature"), 1u);
}

TEST_F(WebhooksTest, ReplayedDeliveryIsADuplicate) {
  ASSERT_EQ(github(github_push(), "push", "same").status, 200u);
  auto replay = github(github_push(), "push", "same");
  EXPECT_EQ(replay.status, 200u);
  EXPECT_EQ(replay.json().at("duplicate"), true);
  EXPECT_EQ(jobs().size(), 1u);
  EXPECT_EQ(count("github", "duplicate"), 1u);
}

TEST_F(WebhooksTest, SamePushUnderANewDeliveryIdIsADuplicate) {
  ASSERT_EQ(github(github_push(), "push", "first").status, 200u);
  auto replay = github(github_push(), "push", "second");
  EXPECT_EQ(replay.status, 200u) << replay.body;
  EXPECT_EQ(replay.json().at("duplicate"), true) << replay.body;
  EXPECT_EQ(jobs().size(), 1u) << "a replay under a new delivery id queued a job";
  // Control: another commit of the same ref is a new push.
  auto next = github(github_push("refs/heads/main", std::string(40, 'a')), "push", "third");
  EXPECT_EQ(next.json().at("queued"), true) << next.body;
  EXPECT_EQ(jobs().size(), 2u);
  EXPECT_EQ(count("github", "duplicate"), 1u);
}

TEST_F(WebhooksTest, GithubSignedBodyAtTheGiteaEndpointIsRefused) {
  std::string body = github_push();
  std::string mac = hmac_sha256_hex(kSecret, body);
  // Replayed as GitHub sent it: GitHub's headers at /hooks/gitea.
  auto as_sent = client->post("/hooks/gitea", body,
                              {{"X-GitHub-Event", "push"},
                               {"X-GitHub-Delivery", "gh-1"},
                               {"X-Hub-Signature-256", "sha256=" + mac}});
  EXPECT_EQ(as_sent.status, 401u) << as_sent.body;
  EXPECT_NE(as_sent.body.find("/hooks/github"), std::string::npos) << as_sent.body;
  // The signature moved into Gitea's header with GitHub's prefix: not Gitea's form either.
  auto prefixed = client->post("/hooks/gitea", body,
                               {{"X-Gitea-Event", "push"},
                                {"X-Gitea-Delivery", "gh-2"},
                                {"X-Gitea-Signature", "sha256=" + mac}});
  EXPECT_EQ(prefixed.status, 401u) << prefixed.body;
  EXPECT_TRUE(jobs().empty());
  // Control: the push at its own endpoint queues; the same push rewritten as Gitea's (headers are
  // not signed) is then a duplicate, not a second job.
  ASSERT_EQ(github(body, "push", "gh-3").status, 200u);
  auto rewritten = client->post("/hooks/gitea", body,
                                {{"X-Gitea-Event", "push"},
                                 {"X-Gitea-Delivery", "gh-4"},
                                 {"X-Gitea-Signature", mac}});
  EXPECT_EQ(rewritten.status, 200u) << rewritten.body;
  EXPECT_EQ(rewritten.json().at("duplicate"), true) << rewritten.body;
  EXPECT_EQ(jobs().size(), 1u);
}

class GitlabTokenTest : public WebhooksTest {
 protected:
  void SetUp() override {
    options.gitlab_webhook_token = "gitlab-only-token";
    WebhooksTest::SetUp();
  }
};

TEST_F(GitlabTokenTest, GitlabTokenIsSeparateFromTheHmacSecret) {
  std::string body = json::serialize(json::object{
      {"object_kind", "push"}, {"ref", "refs/heads/main"}, {"after", kSha}, {"checkout_sha", kSha},
      {"project", json::object{{"git_http_url", "https://gitlab.example/o/r.git"}}}});
  // The HMAC secret is not the GitLab token any more.
  auto with_secret = client->post("/hooks/gitlab", body,
                                  {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}});
  EXPECT_EQ(with_secret.status, 401u) << with_secret.body;
  EXPECT_NE(with_secret.body.find("--gitlab-webhook-token"), std::string::npos) << with_secret.body;
  EXPECT_TRUE(jobs().empty());
  // A leaked GitLab token signs nothing for GitHub.
  auto forged = github(github_push(), "push", "d-1", "gitlab-only-token");
  EXPECT_EQ(forged.status, 401u);
  // Controls: the GitLab token at /hooks/gitlab, the secret at /hooks/github.
  auto ok = client->post("/hooks/gitlab", body,
                         {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "gitlab-only-token"}});
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(ok.json().at("queued"), true) << ok.body;
  EXPECT_EQ(github(github_push("refs/heads/main", std::string(40, 'b')), "push", "d-2").status, 200u);
  EXPECT_EQ(jobs().size(), 2u);
}

TEST_F(WebhooksTest, OversizedBodyIs413AndQueuesNothing) {
  std::string big(1 << 20, ' ');
  big = github_push() + big;  // valid JSON, just over the 1 MiB cap
  auto r = github(big);
  EXPECT_EQ(r.status, 413u);
  EXPECT_TRUE(jobs().empty());
  EXPECT_EQ(count("github", "too_large"), 1u);
}

TEST_F(WebhooksTest, MalformedJsonIs400) {
  auto r = github("{\"ref\": ");
  EXPECT_EQ(r.status, 400u);
  EXPECT_TRUE(r.json().at("error").is_string());
  EXPECT_EQ(github(R"({"ref": "refs/heads/main"})", "push", "d-2").status, 400u);
  EXPECT_TRUE(jobs().empty());
}

TEST_F(WebhooksTest, PingAndOtherEventsQueueNothing) {
  auto ping = github(R"({"zen": "Keep it logically awesome.", "hook_id": 1})", "ping");
  EXPECT_EQ(ping.status, 200u);
  EXPECT_EQ(count("github", "ping"), 1u);
  auto issue = github(R"({"action": "opened"})", "issues", "d-3");
  EXPECT_EQ(issue.status, 200u);
  EXPECT_TRUE(issue.json().at("ignored").is_string());
  auto deletion = github(github_push("refs/heads/gone", std::string(40, '0')), "push", "d-4");
  EXPECT_EQ(deletion.status, 200u);
  EXPECT_TRUE(jobs().empty());
}

TEST_F(WebhooksTest, NoSecretConfiguredRefusesEverything) {
  server->stop();
  options.webhook_secret = "";
  Server open_server(*store, [&] {
    ServerConfig o = options;
    o.webhook_secret.clear();
    return o;
  }());
  // The fixture defaults an empty secret; this server keeps it empty.
  ASSERT_TRUE(open_server.start().ok());
  testing::TestClient c(open_server.port());
  std::string body = github_push();
  auto r = c.post("/hooks/github", body,
                  {{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex("", body)}});
  EXPECT_EQ(r.status, 401u);
  EXPECT_NE(r.body.find("--webhook-secret"), std::string::npos);
}

}  // namespace
}  // namespace boxcar::server
