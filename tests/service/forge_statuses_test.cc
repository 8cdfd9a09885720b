// Commit statuses end to end: signed webhooks -> `boxcar serve` + its agent -> the outbox ->
// a stand-in forge API in this process, checked against GitHub's, Gitea's and GitLab's
// published request shapes; retries, a restart, a refused token, and a token the server must
// not send to a host a webhook names.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "tests/service/forge_stand_in.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

const char* kSecret = "s3cret";
const char* kGithubToken = "ghp-statuses-test-token-1";
const char* kGiteaToken = "gitea-statuses-test-token-2";
const char* kGitlabToken = "glpat-statuses-test-token-3";

// Fails on a branch named "bad": one pipeline gives a success and a failure.
const char* kPipeline = R"(version = 1
[[step]]
name = "check"
run = "test \"$BOXCAR_BRANCH\" != bad"
)";

struct Push {
  std::string forge, ref, sha, clone_url, web_url, delivery;
};

// A signed push delivery as each forge sends it, with the repository fields statuses use.
HttpResult send_push(const Server& server, const Push& p) {
  std::map<std::string, std::string> headers{{"Content-Type", "application/json"}};
  std::string body;
  if (p.forge == "gitlab") {
    body = json::serialize(json::object{
        {"object_kind", "push"},
        {"ref", p.ref},
        {"checkout_sha", p.sha},
        {"project", json::object{{"git_http_url", p.clone_url}, {"id", 42}, {"web_url", p.web_url}}}});
    headers["X-Gitlab-Token"] = kSecret;
    headers["X-Gitlab-Event"] = "Push Hook";
    headers["X-Gitlab-Event-UUID"] = p.delivery;
  } else {
    body = json::serialize(json::object{
        {"ref", p.ref},
        {"after", p.sha},
        {"repository",
         json::object{{"clone_url", p.clone_url}, {"full_name", "o/r"}, {"html_url", p.web_url}}}});
    std::string mac = hmac_sha256_hex(kSecret, body);
    if (p.forge == "github") {
      headers["X-Hub-Signature-256"] = "sha256=" + mac;
      headers["X-GitHub-Event"] = "push";
      headers["X-GitHub-Delivery"] = p.delivery;
    } else {
      headers["X-Gitea-Signature"] = mac;
      headers["X-Gitea-Event"] = "push";
      headers["X-Gitea-Delivery"] = p.delivery;
    }
  }
  return http_request(server.port(), "POST", "/hooks/" + p.forge, headers, body);
}

long queued(const HttpResult& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  return ec || !v.is_object() ? -1 : num(v.as_object(), "id");
}

// The job's statuses once the newest is settled (delivered or given up), else an empty array.
json::array settled_statuses(Server& server, long id) {
  auto job = server.job(id);
  if (!job || !is_final_state(str(*job, "state")) || !job->contains("statuses")) return {};
  const json::array& rows = job->at("statuses").as_array();
  if (rows.empty()) return {};
  std::string last = str(rows.back().as_object(), "result");
  return last == "delivered" || last == "failed" ? rows : json::array{};
}

std::vector<StandInForge::Request> requests_to(const StandInForge& forge, const std::string& path) {
  std::vector<StandInForge::Request> out;
  for (auto& r : forge.requests()) {
    if (r.target == path) out.push_back(r);
  }
  return out;
}

std::string body_field(const StandInForge::Request& r, const char* key) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  return ec || !v.is_object() ? "" : str(v.as_object(), key);
}

void write_tokens(TempDir& work) {
  write_file(work / "github.token", kGithubToken);
  write_file(work / "gitea.token", kGiteaToken);
  write_file(work / "gitlab.token", kGitlabToken);
}

TEST(ForgeStatuses, PendingThenFinalOnGithubGiteaAndGitlabAndNoTokenForAnUnlistedHost) {
  TempDir work;
  StandInForge forge;
  write_tokens(work);
  Server server(work.path(),
                {"--webhook-secret", kSecret, "--agent-token", "tok", "--public-url",
                 "https://ci.example.com", "--github-token-file", (work / "github.token").string(),
                 "--github-api-url", forge.url(), "--gitea-token-file",
                 (work / "gitea.token").string(), "--gitea-url", forge.url(),
                 "--gitlab-token-file", (work / "gitlab.token").string(), "--gitlab-url",
                 forge.url()});
  ASSERT_TRUE(server.ok());
  struct Case {
    Push push;
    std::string path, final_state, auth_header, auth_value;
    long id = -1;
  };
  std::vector<Case> cases;
  for (const char* name : {"github", "gitea", "gitlab", "attack"}) {
    std::string f = std::string(name) == "attack" ? "gitea" : name;
    // A file of its own: the same tree committed in the same second would be the same commit.
    // Under o/r: a status goes only to the repository the job clones (its path ends in full_name).
    fs::path repo = work / name / "o" / "r";
    std::string sha = make_git_repo(repo, kPipeline, {{"name", name}}, f == "gitea" ? "bad" : "main");
    Case c;
    c.push = {f, f == "gitea" ? "refs/heads/bad" : "refs/heads/main", sha,
              repo.string(), forge.url() + "/o/r", std::string("d-") + name};
    if (f == "github") c = {c.push, "/repos/o/r/statuses/" + sha, "success", "authorization", std::string("Bearer ") + kGithubToken};
    if (f == "gitea") c = {c.push, "/api/v1/repos/o/r/statuses/" + sha, "failure", "authorization", std::string("token ") + kGiteaToken};
    if (f == "gitlab") {
      c.push.web_url = forge.url() + "/g/r";
      c = {c.push, "/api/v4/projects/42/statuses/" + sha, "success", "private-token", kGitlabToken};
    }
    // Attack: a signed webhook names its API at another origin than --gitea-url (localhost is
    // this machine too, so only the allow-list stands between the token and that host).
    if (std::string(name) == "attack") c.push.web_url = "http://localhost:" + std::to_string(forge.port()) + "/o/r";
    auto r = send_push(server, c.push);
    ASSERT_EQ(r.status, 200) << r.body;
    c.id = queued(r);
    ASSERT_GT(c.id, 0) << r.body;
    cases.push_back(c);
  }
  for (auto& c : cases) {
    json::array rows;
    ASSERT_TRUE(wait_until([&] { return !(rows = settled_statuses(server, c.id)).empty(); }, 120s,
                           "the statuses of job " + std::to_string(c.id) + " to settle"))
        << json::serialize(*server.job(c.id));
    std::string job_json = json::serialize(*server.job(c.id));
    if (&c == &cases.back()) {
      // The attack's job ran all the same; its statuses went nowhere, and it says why.
      EXPECT_EQ(str(*server.job(c.id), "state"), "failed") << job_json;
      EXPECT_EQ(str(rows.back().as_object(), "result"), "failed") << job_json;
      EXPECT_NE(str(rows.back().as_object(), "last_error").find("not in this server's --gitea-url"),
                std::string::npos) << job_json;
      EXPECT_TRUE(requests_to(forge, c.path).empty()) << "a status went to the unlisted host";
      continue;
    }
    EXPECT_EQ(str(rows.back().as_object(), "result"), "delivered") << job_json;
    auto sent = requests_to(forge, c.path);
    ASSERT_FALSE(sent.empty()) << c.path;
    // Pending first (queued or running), the final state last, and nothing after it.
    EXPECT_TRUE(body_field(sent.front(), "state") == "pending" || body_field(sent.front(), "state") == "running")
        << sent.front().body;
    EXPECT_EQ(body_field(sent.back(), "state"), c.final_state) << sent.back().body;
    for (const auto& r : sent) {
      EXPECT_EQ(r.method, "POST");
      EXPECT_EQ(r.headers.at(c.auth_header), c.auth_value);
      EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "", "application/json");
      EXPECT_EQ(body_field(r, "target_url"), "https://ci.example.com/jobs/" + std::to_string(c.id)) << r.body;
      EXPECT_EQ(body_field(r, c.push.forge == "gitlab" ? "name" : "context"), "boxcar") << r.body;
      EXPECT_FALSE(body_field(r, "description").empty()) << r.body;
    }
    if (c.push.forge == "github") {
      EXPECT_EQ(sent.back().headers.at("accept"), "application/vnd.github+json");
      EXPECT_EQ(sent.back().headers.at("x-github-api-version"), "2022-11-28");
      EXPECT_FALSE(sent.back().headers.at("user-agent").empty());
    }
    // The token stays out of what users see.
    for (const char* token : {kGithubToken, kGiteaToken, kGitlabToken}) {
      EXPECT_EQ(job_json.find(token), std::string::npos) << job_json;
      EXPECT_EQ(server.logs(c.id).find(token), std::string::npos);
    }
  }
  for (const char* token : {kGithubToken, kGiteaToken, kGitlabToken}) {
    EXPECT_EQ(server.process().out().find(token), std::string::npos);
    EXPECT_EQ(server.process().err().find(token), std::string::npos);
  }
  auto metrics = server.api("GET", "/metrics");
  EXPECT_NE(metrics.body.find("boxcar_forge_status_deliveries_total{forge=\"github\",result=\"delivered\"}"),
            std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("boxcar_forge_statuses_undelivered 0"), std::string::npos) << metrics.body;
}

TEST(ForgeStatuses, RetriedAfter500GivenUpAfter401AndKeptAcrossARestart) {
  TempDir work;
  StandInForge forge;
  write_tokens(work);
  std::string retry_sha = make_git_repo(work / "retry" / "o" / "r", kPipeline, {{"name", "retry"}});
  std::string denied_sha = make_git_repo(work / "denied" / "o" / "r", kPipeline, {{"name", "denied"}});
  std::string down_sha = make_git_repo(work / "down" / "o" / "r", kPipeline, {{"name", "down"}});
  std::atomic<bool> down = true;
  std::atomic<int> retry_seen = 0;
  forge.answer([&](const StandInForge::Request& r) {
    if (r.target.find(retry_sha) != std::string::npos) return ++retry_seen == 1 ? 500 : 201;
    if (r.target.find(denied_sha) != std::string::npos) return 401;
    if (r.target.find(down_sha) != std::string::npos && down) return 503;
    return 201;
  });
  std::vector<std::string> args = {"--webhook-secret", kSecret, "--agent-token", "tok",
                                   "--github-token-file", (work / "github.token").string(),
                                   "--github-api-url", forge.url()};
  auto server = std::make_unique<Server>(work.path(), args);
  ASSERT_TRUE(server->ok());
  std::map<std::string, long> ids;
  for (const auto& [name, sha] : {std::pair{"retry", retry_sha}, std::pair{"denied", denied_sha},
                                  std::pair{"down", down_sha}}) {
    auto r = send_push(*server, {"github", "refs/heads/main", sha, (work / name / "o" / "r").string(),
                                 "https://github.com/o/r", std::string("d-") + name});
    ids[name] = queued(r);
    ASSERT_GT(ids[name], 0) << r.body;
  }
  // 500 then 201: retried, and the final status delivered once.
  json::array rows;
  ASSERT_TRUE(wait_until([&] { return !(rows = settled_statuses(*server, ids["retry"])).empty(); },
                         120s, "the retried status"));
  EXPECT_EQ(str(rows.back().as_object(), "result"), "delivered");
  auto sent = requests_to(forge, "/repos/o/r/statuses/" + retry_sha);
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent.front().answered, 500);
  int final_delivered = 0;
  for (const auto& r : sent) final_delivered += r.answered == 201 && body_field(r, "state") == "success";
  EXPECT_EQ(final_delivered, 1);

  // 401: given up at once, the reason in the job's JSON, never retried.
  ASSERT_TRUE(wait_until([&] { return !(rows = settled_statuses(*server, ids["denied"])).empty(); },
                         120s, "the refused status"));
  const json::object& last = rows.back().as_object();
  EXPECT_EQ(str(last, "result"), "failed") << json::serialize(rows);
  EXPECT_EQ(num(last, "last_http_status"), 401);
  EXPECT_EQ(num(last, "attempts"), 1);
  EXPECT_NE(str(last, "last_error").find("refused the token"), std::string::npos) << json::serialize(rows);
  EXPECT_NE(str(last, "last_error").find("Bad credentials"), std::string::npos) << json::serialize(rows);
  EXPECT_EQ(json::serialize(rows).find(kGithubToken), std::string::npos);
  // Control: a job of the same server whose forge answers is unaffected (the retried one above).

  // Down: the final status waits in the outbox while the server is stopped, and goes once the
  // server is back and the forge answers.
  ASSERT_TRUE(wait_until([&] {
    auto job = server->job(ids["down"]);
    if (!job || !is_final_state(str(*job, "state"))) return false;
    const json::array& r = job->at("statuses").as_array();
    return !r.empty() && num(r.back().as_object(), "attempts") >= 1 &&
           str(r.back().as_object(), "result") == "queued";
  }, 120s, "the down forge's status to be tried"));
  server->process().signal(SIGTERM);
  ASSERT_TRUE(server->process().wait(60s));
  server.reset();
  down = false;
  server = std::make_unique<Server>(work.path(), args);
  ASSERT_TRUE(server->ok());
  ASSERT_TRUE(wait_until([&] { return !(rows = settled_statuses(*server, ids["down"])).empty(); },
                         120s, "the status kept across the restart"));
  EXPECT_EQ(str(rows.back().as_object(), "result"), "delivered") << json::serialize(rows);
  auto after = requests_to(forge, "/repos/o/r/statuses/" + down_sha);
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back().answered, 201);
  EXPECT_EQ(body_field(after.back(), "state"), "success");
}

}  // namespace
}  // namespace boxcar::service_test
