// The CI service end to end: forge webhooks -> server -> in-process agent -> job results.
#include <gtest/gtest.h>

#include <string>

#include "base/sha256.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

const char* kSecret = "s3cret";

const char* kTwoStepPipeline = R"(version = 1
[[step]]
name = "greet"
run = "echo hello-from-webhook on $BOXCAR_BRANCH"

[[step]]
name = "second"
needs = ["greet"]
run = "echo second-step-ran for $BOXCAR_EVENT"
)";

// A signed push delivery for `forge`, as that forge would send it.
struct Delivery {
  std::map<std::string, std::string> headers;
  std::string body;
};

Delivery push_delivery(const std::string& forge, const std::string& ref, const std::string& sha,
                       const std::string& clone_url, const std::string& delivery_id,
                       const std::string& secret = kSecret) {
  Delivery d;
  d.headers["Content-Type"] = "application/json";
  if (forge == "gitlab") {
    d.body = json::serialize(json::object{
        {"object_kind", "push"},
        {"ref", ref},
        {"checkout_sha", sha},
        {"project", json::object{{"git_http_url", clone_url}}}});
    d.headers["X-Gitlab-Token"] = secret;
    d.headers["X-Gitlab-Event"] = "Push Hook";
    d.headers["X-Gitlab-Event-UUID"] = delivery_id;
    return d;
  }
  d.body = json::serialize(json::object{
      {"ref", ref}, {"after", sha}, {"repository", json::object{{"clone_url", clone_url}}}});
  std::string mac = hmac_sha256_hex(secret, d.body);
  if (forge == "github") {
    d.headers["X-Hub-Signature-256"] = "sha256=" + mac;
    d.headers["X-GitHub-Event"] = "push";
    d.headers["X-GitHub-Delivery"] = delivery_id;
  } else {
    d.headers["X-Gitea-Signature"] = mac;
    d.headers["X-Gitea-Event"] = "push";
    d.headers["X-Gitea-Delivery"] = delivery_id;
  }
  return d;
}

HttpResult send(const Server& server, const std::string& forge, const Delivery& d) {
  return http_request(server.port(), "POST", "/hooks/" + forge, d.headers, d.body);
}

long queued_id(const HttpResult& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return -1;
  return num(v.as_object(), "id");
}

class PushRunsThePipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(PushRunsThePipeline, EveryStepSucceedsAndLogsAreKept) {
  const std::string forge = GetParam();
  TempDir work;
  std::string sha = make_git_repo(work / "repo", kTwoStepPipeline);
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok"});
  ASSERT_TRUE(server.ok());

  auto d = push_delivery(forge, "refs/heads/main", sha, (work / "repo").string(), "delivery-1");
  auto r = send(server, forge, d);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  long id = queued_id(r);
  ASSERT_GT(id, 0) << r.body;

  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
  EXPECT_EQ(str(*job, "commit"), sha);
  EXPECT_EQ(str(*job, "ref"), "refs/heads/main");
  EXPECT_EQ(num(*job, "attempt"), 1);
  const auto& steps = job->at("steps").as_array();
  ASSERT_EQ(steps.size(), 2u) << json::serialize(*job);
  for (const auto& s : steps) {
    EXPECT_EQ(str(s.as_object(), "state"), "success") << json::serialize(s);
    EXPECT_EQ(num(s.as_object(), "exit_code"), 0) << json::serialize(s);
  }
  std::string logs = server.logs(id);
  EXPECT_NE(logs.find("hello-from-webhook on main"), std::string::npos) << logs;
  EXPECT_NE(logs.find("second-step-ran for push"), std::string::npos) << logs;
  std::string greet = server.logs(id, "greet");
  EXPECT_NE(greet.find("hello-from-webhook"), std::string::npos) << greet;
  EXPECT_EQ(greet.find("second-step-ran"), std::string::npos) << "step filter ignored:\n" << greet;
}

INSTANTIATE_TEST_SUITE_P(Forges, PushRunsThePipeline,
                         ::testing::Values("github", "gitea", "gitlab"),
                         [](const auto& forge_info) { return forge_info.param; });

TEST(WebhookRejections, BadSignatureReplayOversizeMalformedAndPing) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", kTwoStepPipeline);
  std::string url = (work / "repo").string();
  // No agents: whatever is queued stays visible in the job list.
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok", "--agents", "0"});
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server.jobs().empty());

  // Signed with another secret, then tampered with after signing.
  auto wrong = push_delivery("github", "refs/heads/main", sha, url, "d-wrong", "not-the-secret");
  EXPECT_EQ(send(server, "github", wrong).status, 401);
  auto tampered = push_delivery("github", "refs/heads/main", sha, url, "d-tampered");
  tampered.body.replace(tampered.body.find("main"), 4, "evil");
  EXPECT_EQ(send(server, "github", tampered).status, 401);
  auto unsigned_ = push_delivery("github", "refs/heads/main", sha, url, "d-unsigned");
  unsigned_.headers.erase("X-Hub-Signature-256");
  EXPECT_EQ(send(server, "github", unsigned_).status, 401);
  auto gitlab_wrong = push_delivery("gitlab", "refs/heads/main", sha, url, "d-gl", "nope");
  EXPECT_EQ(send(server, "gitlab", gitlab_wrong).status, 401);
  EXPECT_TRUE(server.jobs().empty()) << "a delivery with a bad signature queued a job";

  // Control: the same delivery, correctly signed, queues exactly one job...
  auto good = push_delivery("github", "refs/heads/main", sha, url, "d-1");
  auto first = send(server, "github", good);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_GT(queued_id(first), 0) << first.body;
  ASSERT_EQ(server.jobs().size(), 1u);
  // ...and replaying it (same delivery id) queues nothing more.
  auto replay = send(server, "github", good);
  EXPECT_LT(replay.status, 300) << replay.body;
  EXPECT_EQ(queued_id(replay), -1) << replay.body;
  EXPECT_EQ(server.jobs().size(), 1u) << "a replayed delivery queued a second job";
  // A new delivery id for the same push is a replay all the same: the same repository, ref and
  // commit within a day make no new job, at any endpoint the secret signs for.
  auto again = push_delivery("github", "refs/heads/main", sha, url, "d-2");
  auto again_r = send(server, "github", again);
  EXPECT_EQ(again_r.status, 200) << again_r.body;
  EXPECT_EQ(queued_id(again_r), -1) << again_r.body;
  auto as_gitea = push_delivery("gitea", "refs/heads/main", sha, url, "d-3");
  EXPECT_EQ(queued_id(send(server, "gitea", as_gitea)), -1);
  EXPECT_EQ(server.jobs().size(), 1u) << "a replay under a new delivery id queued a job";
  // GitHub's delivery, headers and all, at /hooks/gitea: refused.
  auto github_at_gitea = push_delivery("github", "refs/heads/other", sha, url, "d-4");
  EXPECT_EQ(send(server, "gitea", github_at_gitea).status, 401);
  // Control: the same commit pushed to another ref is a new push.
  auto other_ref = push_delivery("github", "refs/heads/release", sha, url, "d-5");
  EXPECT_GT(queued_id(send(server, "github", other_ref)), 0);
  EXPECT_EQ(server.jobs().size(), 2u);

  // 2 MiB, correctly signed: refused before anything is queued.
  auto big = push_delivery("github", "refs/heads/main", sha, url, "d-big");
  json::object big_body = json::parse(big.body).as_object();
  big_body["padding"] = std::string(2u << 20, 'x');
  big.body = json::serialize(big_body);
  big.headers["X-Hub-Signature-256"] = "sha256=" + hmac_sha256_hex(kSecret, big.body);
  auto too_large = send(server, "github", big);
  EXPECT_EQ(too_large.status, 413) << too_large.error << too_large.body;
  EXPECT_EQ(server.jobs().size(), 2u);

  // Malformed JSON, correctly signed.
  Delivery bad_json;
  bad_json.body = "{\"ref\": \"refs/heads/main\", \"after\": ";
  bad_json.headers = {{"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, bad_json.body)},
                      {"X-GitHub-Event", "push"},
                      {"X-GitHub-Delivery", "d-badjson"},
                      {"Content-Type", "application/json"}};
  auto malformed = send(server, "github", bad_json);
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_EQ(server.jobs().size(), 2u);

  // ping: answered, nothing queued.
  Delivery ping;
  ping.body = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  ping.headers = {{"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, ping.body)},
                  {"X-GitHub-Event", "ping"},
                  {"X-GitHub-Delivery", "d-ping"},
                  {"Content-Type", "application/json"}};
  auto pong = send(server, "github", ping);
  EXPECT_EQ(pong.status, 200) << pong.body;
  EXPECT_EQ(queued_id(pong), -1) << pong.body;
  EXPECT_EQ(server.jobs().size(), 2u) << "a ping queued a job";

  // The server is still healthy after all of this.
  EXPECT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
}

const char* kDeployPipeline = R"(version = 1
[[step]]
name = "build"
run = "echo branch=[$BOXCAR_BRANCH] pr=[$BOXCAR_PR_NUMBER] base=[$BOXCAR_PR_BASE] head=[$BOXCAR_PR_HEAD]"

[[step]]
name = "deploy"
when = { branch = ["main"] }
run = "echo DEPLOYED-FROM-$BOXCAR_COMMIT"
)";

std::string pull_request_body(int number, const std::string& head_ref, const std::string& head_sha,
                              const std::string& head_url, const std::string& base_ref,
                              const std::string& base_url) {
  return json::serialize(json::object{
      {"action", "opened"},
      {"number", number},
      {"pull_request",
       json::object{{"head", json::object{{"ref", head_ref}, {"sha", head_sha},
                                          {"repo", json::object{{"clone_url", head_url}}}}},
                    {"base", json::object{{"ref", base_ref},
                                          {"repo", json::object{{"clone_url", base_url}}}}}}}});
}

HttpResult send_pull_request(const Server& server, const std::string& body, const std::string& id) {
  return http_request(server.port(), "POST", "/hooks/github",
                      {{"X-GitHub-Event", "pull_request"},
                       {"X-GitHub-Delivery", id},
                       {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, body)},
                       {"Content-Type", "application/json"}},
                      body);
}

std::string step_field(const json::object& job, const std::string& step, const char* key) {
  for (const auto& s : job.at("steps").as_array()) {
    if (str(s.as_object(), "name") == step) return str(s.as_object(), key);
  }
  return "(no step " + step + ")";
}

// A fork names its branch "main" and proposes it into dev: the job's branch is dev, the base,
// so the `when.branch = ["main"]` deploy step is skipped. A pull request into main runs it.
TEST(PullRequests, ForkBranchNamedMainDoesNotRunMainOnlySteps) {
  TempDir work;
  std::string base_sha = make_git_repo(work / "upstream", kDeployPipeline);
  std::string fork_sha = make_git_repo(work / "fork", kDeployPipeline + std::string("# fork\n"));
  std::string upstream = (work / "upstream").string(), fork = (work / "fork").string();
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());

  auto attack = send_pull_request(server, pull_request_body(7, "main", fork_sha, fork, "dev", upstream), "pr-7");
  ASSERT_EQ(attack.status, 200) << attack.body;
  long attack_id = queued_id(attack);
  ASSERT_GT(attack_id, 0) << attack.body;
  auto attacked = server.wait_final(attack_id);
  ASSERT_TRUE(attacked);
  std::string logs = server.logs(attack_id);
  EXPECT_EQ(str(*attacked, "state"), "success") << json::serialize(*attacked) << logs;
  EXPECT_EQ(step_field(*attacked, "deploy", "state"), "skipped") << json::serialize(*attacked);
  EXPECT_NE(step_field(*attacked, "deploy", "reason").find("\"dev\""), std::string::npos)
      << json::serialize(*attacked);
  EXPECT_EQ(logs.find("DEPLOYED-FROM"), std::string::npos) << logs;
  EXPECT_NE(logs.find("branch=[dev] pr=[7] base=[dev] head=[main]"), std::string::npos) << logs;

  // Control: a pull request into main runs the main-only step.
  auto control = send_pull_request(server, pull_request_body(8, "feature", fork_sha, fork, "main", upstream), "pr-8");
  ASSERT_EQ(control.status, 200) << control.body;
  long control_id = queued_id(control);
  ASSERT_GT(control_id, 0) << control.body;
  auto ran = server.wait_final(control_id);
  ASSERT_TRUE(ran);
  EXPECT_EQ(step_field(*ran, "deploy", "state"), "success") << json::serialize(*ran) << server.logs(control_id);
  EXPECT_NE(server.logs(control_id).find("branch=[main] pr=[8] base=[main] head=[feature]"),
            std::string::npos) << server.logs(control_id);
  (void)base_sha;
}

const char* kSecretsPipeline = R"(version = 1
[[step]]
name = "uses"
secrets = ["DEPLOY_KEY"]
run = """
echo "key=[$DEPLOY_KEY]"
printf '%s' "$DEPLOY_KEY" | sha256sum | sed 's/ .*//; s/^/key-sha=/'
"""

[[step]]
name = "snoops"
run = """
echo "snoop env=[${DEPLOY_KEY:-none}]"
if grep -qs DEPLOY_KEY= /proc/*/environ; then echo SNOOP-FOUND-IT; else echo SNOOP-CLEAN; fi
"""

[[step]]
name = "unset"
secrets = ["NEVER_SET_ANYWHERE"]
run = "echo UNSET-STEP-SCRIPT-RAN"
)";

// Secrets kept by the server, end to end: set with the CLI (stdin and --from-file), listed
// without values, given to the declaring step of a same-repository pull request (the
// repository's value over the server-wide one) and masked; never to a sibling step, never to
// a fork's pull request; a secret set nowhere fails its step before its script runs while
// the others run; no value is anywhere in the data directory.
TEST(ServerSecrets, FromTheCliToTheDeclaringStepOnlyAndNeverToAFork) {
  TempDir work;
  std::string sha = make_git_repo(work / "upstream", kSecretsPipeline);
  std::string fork_sha = make_git_repo(work / "fork", kSecretsPipeline + std::string("# fork\n"));
  std::string other_sha = make_git_repo(work / "other", kSecretsPipeline + std::string("# other\n"));
  std::string upstream = (work / "upstream").string(), fork = (work / "fork").string();
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  std::string global_value = "global-" + sha.substr(0, 20);
  std::string repo_value = "repo-" + fork_sha.substr(0, 20);
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin() + 2, {"--server", server.url()});
    return server.cli(args, work.path());
  };

  write_file(work / "value", global_value);
  auto set_global = cli({"secret", "set", "DEPLOY_KEY", "--from-file", (work / "value").string()});
  ASSERT_EQ(set_global.exit_code, 0) << set_global.err;
  fs::remove(work / "value");
  auto piped = run_command({"/bin/sh", "-c", "printf '%s\\n' \"$1\" | \"$0\" secret set DEPLOY_KEY --repo \"$2\"",
                            boxcar_binary(), repo_value, upstream},
                           work.path(),
                           child_env(work.path(), {"BOXCAR_API_TOKEN=" + server.token(),
                                                   "BOXCAR_SERVER=" + server.url()}));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.out.find("secret DEPLOY_KEY set for " + upstream), std::string::npos) << piped.out;
  // A value never goes on the command line.
  auto argument = cli({"secret", "set", "DEPLOY_KEY", "value-on-argv"});
  EXPECT_EQ(argument.exit_code, 2);
  EXPECT_NE(argument.err.find("never on the command line"), std::string::npos) << argument.err;
  // Bad input over the API: a name no step could declare, a value over 64 KiB.
  EXPECT_EQ(server.api("PUT", "/api/v1/secrets/lower-case", "v").status, 400);
  EXPECT_EQ(server.api("PUT", "/api/v1/secrets/BIG", std::string((64 << 10) + 1, 'x')).status, 413);
  for (const std::vector<std::string>& ls : {std::vector<std::string>{"secret", "ls"},
                                             {"secret", "ls", "--repo", upstream},
                                             {"secret", "ls", "--json"}}) {
    auto listed = cli(ls);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_NE(listed.out.find("DEPLOY_KEY"), std::string::npos) << listed.out;
    EXPECT_EQ(listed.out.find(global_value), std::string::npos) << listed.out;
    EXPECT_EQ(listed.out.find(repo_value), std::string::npos) << listed.out;
  }

  // A same-repository pull request: the repository's own value, masked.
  auto same = send_pull_request(server, pull_request_body(3, "feature", sha, upstream, "main", upstream), "pr-3");
  ASSERT_EQ(same.status, 200) << same.body;
  auto ran = server.wait_final(queued_id(same));
  ASSERT_TRUE(ran);
  std::string logs = server.logs(queued_id(same));
  EXPECT_EQ(str(*ran, "state"), "failed") << logs;  // the unset step
  EXPECT_EQ(step_field(*ran, "uses", "state"), "success") << logs;
  EXPECT_EQ(step_field(*ran, "snoops", "state"), "success") << logs;
  EXPECT_NE(logs.find("key-sha=" + sha256_hex(repo_value)), std::string::npos) << logs;
  EXPECT_NE(logs.find("key=[***]"), std::string::npos) << logs;
  EXPECT_NE(logs.find("secrets from the server: DEPLOY_KEY"), std::string::npos) << logs;
  // Attack: the sibling that does not declare it cannot find it (control: "uses" above can).
  EXPECT_NE(logs.find("snoop env=[none]"), std::string::npos) << logs;
  EXPECT_NE(logs.find("SNOOP-CLEAN"), std::string::npos) << logs;
  // A secret set nowhere fails its step before the script, naming it and the fix.
  EXPECT_NE(step_field(*ran, "unset", "state"), "success") << json::serialize(*ran);
  EXPECT_EQ(logs.find("UNSET-STEP-SCRIPT-RAN"), std::string::npos) << logs;
  EXPECT_NE(step_field(*ran, "unset", "reason").find("boxcar secret set NEVER_SET_ANYWHERE --repo URL"),
            std::string::npos) << json::serialize(*ran);

  // Attack: a fork's pull request into the same base gets none: its step fails for want of it.
  auto from_fork = send_pull_request(server, pull_request_body(4, "main", fork_sha, fork, "main", upstream), "pr-4");
  ASSERT_EQ(from_fork.status, 200) << from_fork.body;
  auto forked = server.wait_final(queued_id(from_fork));
  ASSERT_TRUE(forked);
  std::string fork_logs = server.logs(queued_id(from_fork));
  EXPECT_NE(fork_logs.find("(a fork): its steps get no secrets"), std::string::npos) << fork_logs;
  EXPECT_NE(step_field(*forked, "uses", "state"), "success") << fork_logs;
  EXPECT_EQ(fork_logs.find("key-sha="), std::string::npos) << fork_logs;
  EXPECT_EQ(step_field(*forked, "snoops", "state"), "success") << fork_logs;

  // A repository without its own gets the server-wide value.
  long other = server.submit({{"repo", (work / "other").string()}, {"commit", other_sha}});
  auto other_job = server.wait_final(other);
  ASSERT_TRUE(other_job);
  EXPECT_NE(server.logs(other).find("key-sha=" + sha256_hex(global_value)), std::string::npos)
      << server.logs(other);

  // No value is anywhere in the data directory (database, WAL, logs, workspaces).
  for (const auto& entry : fs::recursive_directory_iterator(server.data_dir())) {
    if (!entry.is_regular_file()) continue;
    std::string bytes = read_file(entry.path());
    EXPECT_EQ(bytes.find(global_value), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find(repo_value), std::string::npos) << entry.path();
  }
  auto removed = cli({"secret", "rm", "DEPLOY_KEY", "--repo", upstream});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  auto again = cli({"secret", "rm", "DEPLOY_KEY", "--repo", upstream});
  EXPECT_EQ(again.exit_code, 2) << again.err;
}

// The key: serve refuses a key file others may read (naming the fix); a secret stored under
// one key and read under another fails its step cleanly, naming it, while the server and the
// job's other steps go on (control: the same secret under its own key reached the step).
TEST(ServerSecrets, AnotherKeyOrAnOpenKeyFileFailsCleanly) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", kSecretsPipeline);
  std::string repo = (work / "repo").string();
  write_file(work / "other.key", std::string(64, 'a') + "\n");
  fs::permissions(work / "other.key", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                          fs::perms::others_read);
  auto refused = run_boxcar({"serve", "--data", (work / "data").string(), "--secrets-key-file",
                             (work / "other.key").string()}, work.path());
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("chmod 600"), std::string::npos) << refused.err;
  fs::permissions(work / "other.key", fs::perms::owner_read | fs::perms::owner_write);
  {
    Server first(work.path(), {"--agent-token", "tok"});
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.api("PUT", "/api/v1/secrets/DEPLOY_KEY?repo=" + repo, "first-key-value").status, 201);
    long id = first.submit({{"repo", repo}, {"commit", sha}});
    ASSERT_TRUE(first.wait_final(id));
    EXPECT_NE(first.logs(id).find("key-sha=" + sha256_hex("first-key-value")), std::string::npos) << first.logs(id);
  }
  Server second(work.path(), {"--agent-token", "tok", "--secrets-key-file", (work / "other.key").string()});
  ASSERT_TRUE(second.ok());
  long id = second.submit({{"repo", repo}, {"commit", sha}});
  auto job = second.wait_final(id);
  ASSERT_TRUE(job);
  std::string logs = second.logs(id);
  EXPECT_NE(logs.find("secret DEPLOY_KEY of " + repo + " does not decrypt with this server's secrets key"),
            std::string::npos) << logs;
  EXPECT_EQ(logs.find("key-sha="), std::string::npos) << logs;
  EXPECT_EQ(step_field(*job, "uses", "state"), "failed") << json::serialize(*job);
  EXPECT_EQ(step_field(*job, "snoops", "state"), "success") << json::serialize(*job);
  EXPECT_EQ(second.api("GET", "/api/v1/secrets?repo=" + repo).status, 200);
}

// A submitted commit is checked against its ref: one that is not on it gets no branch, so the
// main-only step is skipped and says why. The tip of main, submitted the same way, runs it.
TEST(SubmittedCommits, CommitNotOnItsRefHasNoBranch) {
  TempDir work;
  fs::path repo = work / "repo";
  std::string main_sha = make_git_repo(repo, kDeployPipeline);
  auto git = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    auto r = run_command(args, repo);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  git({"checkout", "-q", "-b", "side"});
  std::string side_sha = make_git_repo(repo, kDeployPipeline + std::string("# side\n"));
  git({"checkout", "-q", "main"});
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());

  long attack = server.submit({{"repo", repo.string()}, {"ref", "main"}, {"commit", side_sha}});
  long control = server.submit({{"repo", repo.string()}, {"ref", "main"}, {"commit", main_sha}});
  ASSERT_GT(attack, 0);
  ASSERT_GT(control, 0);
  auto off = server.wait_final(attack);
  ASSERT_TRUE(off);
  std::string logs = server.logs(attack);
  EXPECT_EQ(str(*off, "state"), "success") << json::serialize(*off) << logs;
  EXPECT_EQ(step_field(*off, "deploy", "state"), "skipped") << json::serialize(*off);
  EXPECT_NE(step_field(*off, "deploy", "reason").find("is not on refs/heads/main"), std::string::npos)
      << json::serialize(*off);
  EXPECT_EQ(logs.find("DEPLOYED-FROM"), std::string::npos) << logs;
  EXPECT_NE(logs.find("branch=[]"), std::string::npos) << logs;

  auto on = server.wait_final(control);
  ASSERT_TRUE(on);
  EXPECT_EQ(step_field(*on, "deploy", "state"), "success") << json::serialize(*on) << server.logs(control);
  EXPECT_NE(server.logs(control).find("branch=[main]"), std::string::npos) << server.logs(control);
}

TEST(OnFiltersSkipAJob, PushToAnotherBranchIsSkipped) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", R"(version = 1
[on]
push = { branches = ["main"] }

[[step]]
name = "build"
run = "echo built-on-$BOXCAR_BRANCH"
)");
  std::string url = (work / "repo").string();
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());

  // Control: a push to main runs the step.
  auto main_push = send(server, "github", push_delivery("github", "refs/heads/main", sha, url, "m1"));
  ASSERT_EQ(main_push.status, 200) << main_push.body;
  long main_id = queued_id(main_push);
  auto ran = server.wait_final(main_id);
  ASSERT_TRUE(ran);
  EXPECT_EQ(str(*ran, "state"), "success") << json::serialize(*ran) << server.logs(main_id);
  EXPECT_NE(server.logs(main_id).find("built-on-main"), std::string::npos);

  auto feature = send(server, "github", push_delivery("github", "refs/heads/feature", sha, url, "f1"));
  ASSERT_EQ(feature.status, 200) << feature.body;
  long skipped_id = queued_id(feature);
  ASSERT_GT(skipped_id, 0) << feature.body;
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = server.job(skipped_id);
        return j && is_final_state(str(*j, "state"));
      },
      120s, "the filtered-out job is final"))
      << server.process().describe();
  auto skipped = server.job(skipped_id);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(str(*skipped, "state"), "skipped") << json::serialize(*skipped);
  EXPECT_NE(str(*skipped, "reason").find("[on]"), std::string::npos) << json::serialize(*skipped);
  EXPECT_EQ(server.logs(skipped_id).find("built-on-"), std::string::npos) << "the step ran anyway";
}

TEST(BadRepositoryEndsAsError, EachCauseIsNamedInTheReason) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"a\"\nrun = \"echo ok\"\n");
  std::string no_pipeline_sha = make_git_repo(work / "bare-code", "", {{"README", "no pipeline here\n"}});
  std::string invalid_sha = make_git_repo(
      work / "invalid", "version = 1\n[[step]]\nname = \"a\"\nrun = \"echo ok\"\nneds = [\"b\"]\n");
  // A repository whose pipeline file is reached through a symlink to a host directory: the
  // agent must not read /etc/passwd and quote it in the job's log as a pipeline error.
  fs::create_directories(work / "linked");
  fs::create_directory_symlink("/etc", work / "linked" / "conf");
  make_git_repo(work / "linked", "", {{"README", "links\n"}});
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());

  struct Case {
    const char* what;
    json::object body;
    std::vector<std::string> reason_mentions;  // any one of them
  };
  std::string missing_repo = (work / "no-such-repo").string();
  std::string missing_sha = "0123456789abcdef0123456789abcdef01234567";
  std::string dead_url = "http://127.0.0.1:" + std::to_string(free_port()) + "/nobody/here.git";
  std::vector<Case> cases = {
      {"a repository that does not exist", {{"repo", missing_repo}}, {missing_repo}},
      {"a clone URL nobody answers", {{"repo", dead_url}}, {dead_url}},
      {"a commit that does not exist",
       {{"repo", (work / "repo").string()}, {"commit", missing_sha}},
       {missing_sha, missing_sha.substr(0, 12), missing_sha.substr(0, 7)}},
      {"a commit without a pipeline file", {{"repo", (work / "bare-code").string()}}, {".boxcar.toml"}},
      {"an invalid pipeline file", {{"repo", (work / "invalid").string()}}, {"neds"}},
      {"a pipeline file behind a symlink out of the repository",
       {{"repo", (work / "linked").string()}, {"file", "conf/passwd"}}, {"conf/passwd"}},
  };
  std::vector<long> ids;
  for (auto& c : cases) ids.push_back(server.submit(c.body));
  // Control: the good repository runs on the same server.
  long good = server.submit({{"repo", (work / "repo").string()}, {"commit", sha}});

  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].what);
    ASSERT_GT(ids[i], 0);
    auto job = server.wait_final(ids[i]);
    ASSERT_TRUE(job);
    EXPECT_EQ(str(*job, "state"), "error") << json::serialize(*job);
    std::string reason = str(*job, "reason");
    bool named = false;
    for (const auto& m : cases[i].reason_mentions) named = named || reason.find(m) != std::string::npos;
    EXPECT_TRUE(named) << "reason \"" << reason << "\" does not name the cause (expected "
                       << cases[i].reason_mentions[0] << ")";
    EXPECT_EQ(server.logs(ids[i]).find("root:x:0:0"), std::string::npos) << "a host file leaked";
    EXPECT_EQ(reason.find("root:x:0:0"), std::string::npos) << "a host file leaked";
  }
  auto ok = server.wait_final(good);
  ASSERT_TRUE(ok);
  EXPECT_EQ(str(*ok, "state"), "success") << json::serialize(*ok) << server.logs(good);
}

// A job names its repository: an agent without --allow-local-repos must not check out a
// repository (or a private mirror) of its own host into a job's workspace.
// A step whose sandbox cannot be set up (here `network = "host"`, which the agent does not
// allow) fails its job; it once crashed boxcar serve, and the re-queued job crashed it again.
// The control: a normal job on the same server afterwards succeeds.
TEST(BadRepositoryEndsAsError, AStepThatCannotBeSetUpFailsTheJobAndTheServerStays) {
  TempDir work;
  make_git_repo(work / "hostnet", "version = 1\n[[step]]\nname = \"h\"\nnetwork = \"host\"\nrun = \"echo hi\"\n");
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"a\"\nrun = \"echo fine\"\n");
  Server server(work.path(), {"--agent-token", "tok"});  // the native executor: host network refused
  ASSERT_TRUE(server.ok());
  long attack = server.submit({{"repo", (work / "hostnet").string()}});
  auto failed = server.wait_final(attack);
  ASSERT_TRUE(failed) << server.process().describe();
  EXPECT_EQ(str(*failed, "state"), "failed") << server.logs(attack);
  // The step's reason names the cause.
  EXPECT_NE(json::serialize(*failed).find("is not allowed by this agent"), std::string::npos)
      << json::serialize(*failed);
  ASSERT_TRUE(server.process().running()) << server.process().describe();
  long control = server.submit({{"repo", (work / "repo").string()}});
  auto fine = server.wait_final(control);
  ASSERT_TRUE(fine) << server.process().describe();
  EXPECT_EQ(str(*fine, "state"), "success") << server.logs(control);
}

TEST(BadRepositoryEndsAsError, LocalRepositoryWithoutAllowLocalRepos) {
  TempDir work;
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"a\"\nrun = \"echo ok\"\n");
  Server server(work.path(), {"--agent-token", "tok", "--agents", "0"});
  ASSERT_TRUE(server.ok());
  auto agent = start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--executor",
                             "host", "--data", (work / "agent").string()},
                            work.path(), "agent");
  std::string path = (work / "repo").string();
  for (const std::string& repo : {path, "file://" + path}) {
    SCOPED_TRACE(repo);
    long id = server.submit({{"repo", repo}});
    ASSERT_GT(id, 0);
    auto job = server.wait_final(id);
    ASSERT_TRUE(job);
    EXPECT_EQ(str(*job, "state"), "error") << json::serialize(*job);
    std::string reason = str(*job, "reason");
    EXPECT_NE(reason.find(repo), std::string::npos) << reason;
    EXPECT_NE(reason.find("--allow-local-repos"), std::string::npos) << reason;
    EXPECT_EQ(job->at("steps").as_array().size(), 0u) << json::serialize(*job);
  }
}

}  // namespace
}  // namespace boxcar::service_test

namespace boxcar::service_test {
namespace {

// A new commit on `branch` of the repository at `dir` (made if missing); its sha.
std::string commit_on(const fs::path& dir, const std::string& branch) {
  auto r = run_command({"/usr/bin/git", "checkout", "-q", "-B", branch}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return make_git_repo(dir, "");
}

// A signed GitHub push whose repository names its default branch.
Delivery push_to(const fs::path& repo, const std::string& branch, const std::string& sha,
                 const std::string& id) {
  Delivery d = push_delivery("github", "refs/heads/" + branch, sha, repo.string(), id);
  json::object body = json::parse(d.body).as_object();
  body["repository"].as_object()["default_branch"] = "main";
  d.body = json::serialize(body);
  d.headers["X-Hub-Signature-256"] = "sha256=" + hmac_sha256_hex(kSecret, d.body);
  return d;
}

std::string state_of(Server& server, long id) {
  auto job = server.job(id);
  return job ? str(*job, "state") : "";
}

// Superseded pushes (issue 15): every job's first step waits until the test releases its commit,
// so the older push is still running when the newer one arrives.
TEST(SupersededPushes, ANewerPushCancelsTheOlderJobOfItsRefOnly) {
  TempDir work;
  fs::path go = work / "go";
  fs::create_directories(go);
  std::string wait = "while [ ! -e '" + go.string() + "/'$BOXCAR_COMMIT ]; do sleep 0.05; done";
  const std::string steps = "[[step]]\nname = \"wait\"\nrun = \"" + wait + "\"\n"
                            "[[step]]\nname = \"after\"\nneeds = [\"wait\"]\nrun = \"echo after\"\n";
  fs::path repo = work / "repo", keep = work / "keep";
  make_git_repo(repo, "version = 1\nname = \"supersede-ci\"\n" + steps);
  make_git_repo(keep, "version = 1\n[on]\ncancel_superseded = false\n" + steps);
  Server server(work.path(), {"--webhook-secret", kSecret, "--agent-token", "tok", "--executor",
                              "host", "--agents", "4", "--keep-superseded-on-default",
                              // a heartbeat every 2 s: the running job learns of its cancel soon
                              "--lease", "6s"});
  ASSERT_TRUE(server.ok());
  auto release = [&](const std::string& sha) { write_file(go / sha, ""); };
  auto running = [&](long id) {
    return wait_until([&] { return state_of(server, id) == "running"; }, 60s,
                      "job " + std::to_string(id) + " running");
  };
  auto push = [&](const fs::path& r, const std::string& branch, const std::string& sha,
                  json::array* superseded = nullptr) {
    auto reply = send(server, "github", push_to(r, branch, sha, "d-" + sha));
    EXPECT_EQ(reply.status, 200) << reply.body;
    auto v = json::parse(reply.body).as_object();
    if (superseded) *superseded = v["superseded"].as_array();
    return num(v, "id");
  };

  // A manual job of the same repository and ref is neither superseded nor superseding.
  std::string manual_sha = commit_on(repo, "feature");
  long manual = server.submit({{"repo", repo.string()}, {"ref", "refs/heads/feature"}, {"commit", manual_sha}});
  std::string first_sha = commit_on(repo, "feature");
  long first = push(repo, "feature", first_sha);
  ASSERT_TRUE(running(first));
  ASSERT_TRUE(wait_until([&] { return str(*server.job(first), "pipeline") == "supersede-ci"; }, 60s,
                         "the agent's pipeline report"));
  std::string second_sha = commit_on(repo, "feature");
  json::array superseded;
  long second = push(repo, "feature", second_sha, &superseded);
  EXPECT_EQ(json::value(superseded), json::value(json::array{first}));
  auto cancelled = server.wait_final(first);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(str(*cancelled, "state"), "cancelled") << json::serialize(*cancelled);
  EXPECT_EQ(num(*cancelled, "superseded_by"), second);
  EXPECT_EQ(str(*cancelled, "reason"), "superseded by job #" + std::to_string(second) +
                                           " (push of " + second_sha.substr(0, 7) + ")");
  EXPECT_NE(server.logs(first).find("boxcar: superseded by job #"), std::string::npos)
      << server.logs(first);
  ASSERT_TRUE(running(second));

  // Controls: a push to another branch leaves the newer job alone; the manual job is untouched.
  std::string other_sha = commit_on(repo, "other");
  json::array none;
  long other = push(repo, "other", other_sha, &none);
  EXPECT_TRUE(none.empty()) << json::serialize(none);
  EXPECT_EQ(state_of(server, second), "running");
  EXPECT_FALSE(is_final_state(state_of(server, manual)));

  // [on] cancel_superseded = false keeps the older job, once its agent reported it.
  std::string kept_sha = commit_on(keep, "feature");
  long kept = push(keep, "feature", kept_sha);
  ASSERT_TRUE(running(kept));
  ASSERT_TRUE(wait_until([&] { auto v = server.job(kept)->at("cancel_superseded");
                           return v.is_bool() && !v.as_bool(); }, 60s,
                         "cancel_superseded = false reported"));
  std::string keep_newer_sha = commit_on(keep, "feature");
  long keep_newer = push(keep, "feature", keep_newer_sha, &none);
  EXPECT_TRUE(none.empty()) << json::serialize(none);

  // --keep-superseded-on-default: the default branch keeps its older job.
  std::string main_sha = commit_on(repo, "main");
  long on_main = push(repo, "main", main_sha);
  std::string main_newer_sha = commit_on(repo, "main");
  long main_newer = push(repo, "main", main_newer_sha, &none);
  EXPECT_TRUE(none.empty()) << json::serialize(none);

  for (const auto& sha : {manual_sha, second_sha, other_sha, kept_sha, keep_newer_sha, main_sha,
                          main_newer_sha}) {
    release(sha);
  }
  for (long id : {manual, second, other, kept, keep_newer, on_main, main_newer}) {
    auto job = server.wait_final(id);
    ASSERT_TRUE(job);
    EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
    EXPECT_TRUE(job->at("superseded_by").is_null()) << json::serialize(*job);
  }
  // What the agent reported: the pipeline's name and each step's needs.
  auto done = server.job(second);
  EXPECT_EQ(str(*done, "pipeline"), "supersede-ci");
  EXPECT_TRUE(done->at("cancel_superseded").is_bool() && done->at("cancel_superseded").as_bool());
  for (const auto& s : done->at("steps").as_array()) {
    const auto& step = s.as_object();
    json::value want = str(step, "name") == "after" ? json::array{"wait"} : json::array{};
    EXPECT_EQ(step.at("needs"), want)
        << json::serialize(step);
  }
}

}  // namespace
}  // namespace boxcar::service_test
