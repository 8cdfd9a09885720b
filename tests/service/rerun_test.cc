// Re-runs through the service (docs/api.md "Re-runs"): `boxcar rerun JOB [--failed]` and
// POST /api/v1/jobs/{id}/rerun with a real server and agent (native sandboxes, so each step has
// its own layer of the workspace); and an agent that asks for another job's artifacts.
#include <gtest/gtest.h>

#include <string>

#include "base/sha256.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

// build writes a file saying which job built it; test fails in job 1 (the first job of a fresh
// server) and, elsewhere, reads build's file from its workspace.
constexpr const char* kPipeline =
    "version = 1\n"
    "[[step]]\n"
    "name = \"build\"\n"
    "run = \"echo building in job $BOXCAR_JOB_ID && mkdir -p out && echo built in job $BOXCAR_JOB_ID > out/app.txt && "
    "ln -s app.txt out/latest.txt\"\n"
    "artifacts = [\"out/app.txt\", \"out/latest.txt\"]\n"
    "[[step]]\n"
    "name = \"test\"\n"
    "needs = [\"build\"]\n"
    "run = \"echo testing with: $(cat out/latest.txt) && test $BOXCAR_JOB_ID != 1\"\n";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

const json::object* step_of(const json::object& job, const std::string& name) {
  for (const auto& s : job.at("steps").as_array()) {
    if (s.as_object().at("name").as_string() == name) return &s.as_object();
  }
  return nullptr;
}

TEST(Rerun, FailedStepsOnlyReusesTheRestAndAWholeRerunRunsEverything) {
  TempDir work;
  std::string sha = make_git_repo(work / "repo", kPipeline);
  write_file(work / "tokens.toml", "[[token]]\nname = \"dashboard\"\nsha256 = \"" + sha256_hex("reader-secret") +
                                       "\"\nscopes = [\"read\"]\n");
  Server server(work.path(), {"--api-token", "admin-secret", "--api-tokens", (work / "tokens.toml").string()});
  ASSERT_TRUE(server.ok());
  std::string repo = (work / "repo").string();
  long first = server.submit({{"repo", repo}, {"commit", sha}, {"env", json::object{{"FLAVOUR", "x"}}}});
  ASSERT_EQ(first, 1);
  auto job = server.wait_final(first);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "failed") << server.logs(first);

  // Auth: none (401), a read token (403); control: the write token's re-run below.
  EXPECT_EQ(http_request(server.port(), "POST", "/api/v1/jobs/1/rerun").status, 401);
  auto reader = http_request(server.port(), "POST", "/api/v1/jobs/1/rerun?failed=1",
                             {{"Authorization", "Bearer reader-secret"}});
  EXPECT_EQ(reader.status, 403) << reader.body;
  EXPECT_EQ(server.api("POST", "/api/v1/jobs/999/rerun").status, 404);
  EXPECT_EQ(server.api("POST", "/api/v1/jobs/1/rerun?failed=maybe").status, 400);
  EXPECT_EQ(server.jobs().size(), 1u) << "nothing was queued";

  // Only the failed step: build is reused (not run), its artifacts are the new job's and in
  // test's workspace.
  auto rerun = server.cli({"rerun", "--server", server.url(), "--failed", "1"}, work.path());
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  ASSERT_EQ(trim(rerun.out), "2");
  job = server.wait_final(2);
  ASSERT_TRUE(job);
  ASSERT_EQ(str(*job, "state"), "success") << server.logs(2);
  EXPECT_EQ(num(*job, "rerun_of"), 1);
  EXPECT_EQ(str(*job, "commit"), sha);
  const json::object* build = step_of(*job, "build");
  ASSERT_TRUE(build);
  EXPECT_EQ(str(*build, "state"), "success");
  EXPECT_EQ(str(*build, "reason"), "reused from job #1");
  std::string log = server.logs(2);
  EXPECT_EQ(log.find("building in job"), std::string::npos) << log;
  EXPECT_NE(server.logs(2, "test").find("testing with: built in job 1"), std::string::npos) << log;
  auto app = server.api("GET", "/api/v1/jobs/2/artifacts/out/app.txt");
  EXPECT_EQ(app.status, 200);
  EXPECT_EQ(app.body, "built in job 1\n");
  auto listed = server.api("GET", "/api/v1/jobs/2/artifacts");
  EXPECT_NE(listed.body.find("\"target\":\"app.txt\""), std::string::npos) << listed.body;

  // Nothing failed in job 2: refused (CLI exit 1, saying so); unknown and malformed ids: 2.
  auto nothing = server.cli({"rerun", "--server", server.url(), "--failed", "2"}, work.path());
  EXPECT_EQ(nothing.exit_code, 1) << nothing.err;
  EXPECT_NE(nothing.err.find("nothing failed in job 2"), std::string::npos) << nothing.err;
  EXPECT_EQ(server.cli({"rerun", "--server", server.url(), "999"}, work.path()).exit_code, 2);
  auto bad = server.cli({"rerun", "--server", server.url(), "one"}, work.path());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("not a job id"), std::string::npos) << bad.err;
  auto down = server.cli({"rerun", "--server", "http://127.0.0.1:" + std::to_string(free_port()), "1"}, work.path());
  EXPECT_EQ(down.exit_code, 3) << down.err;

  // A whole re-run runs every step again.
  auto whole = server.api("POST", "/api/v1/jobs/1/rerun");
  ASSERT_EQ(whole.status, 201) << whole.body;
  long third = json::parse(whole.body).as_object().at("id").as_int64();
  job = server.wait_final(third);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << server.logs(third);
  EXPECT_NE(server.logs(third, "build").find("building in job " + std::to_string(third)), std::string::npos);
  EXPECT_EQ(server.api("GET", "/api/v1/jobs/" + std::to_string(third) + "/artifacts/out/app.txt").body,
            "built in job " + std::to_string(third) + "\n");

  // A job that has not ended (here one no agent can take: it stays queued) cannot be re-run:
  // 409, saying so. (Queued and running take the same check: the job is not final.)
  long waiting = server.submit({{"repo", repo}, {"labels", json::array{"nowhere"}}});
  auto early = server.api("POST", "/api/v1/jobs/" + std::to_string(waiting) + "/rerun");
  EXPECT_EQ(early.status, 409) << early.body;
  EXPECT_NE(early.body.find("is queued: only a finished job can be re-run"), std::string::npos) << early.body;
}

std::map<std::string, std::string> bearer(const std::string& token, const std::string& lease = "") {
  std::map<std::string, std::string> h{{"Authorization", "Bearer " + token}};
  if (!lease.empty()) h["X-Boxcar-Lease"] = lease;
  return h;
}

// An agent speaking the protocol by hand: claims the next job and reports for it.
struct HandAgent {
  Server& server;
  std::string credential;
  long job = 0;
  std::string lease = {};
  json::object spec = {};

  void claim() {
    auto r = http_request(server.port(), "POST", "/api/v1/agent/claim", bearer(credential), R"({"wait_ms":5000})");
    ASSERT_EQ(r.status, 200) << r.body;
    spec = json::parse(r.body).as_object().at("job").as_object();
    job = spec.at("id").as_int64();
    lease = std::string(spec.at("lease_token").as_string());
  }
  int post(const std::string& what, const std::string& body) {
    return http_request(server.port(), "POST", "/api/v1/agent/jobs/" + std::to_string(job) + "/" + what,
                        bearer(credential, lease), body).status;
  }
  void upload(const std::string& path, const std::string& step, const std::string& data) {
    EXPECT_EQ(post("artifacts?path=" + path + "&sha256=" + sha256_hex(data) + "&step=" + step, data), 200);
  }
  void finish(const std::string& build, const std::string& test, const std::string& state) {
    EXPECT_EQ(post("steps", R"({"name":"build","state":")" + build + "\"}"), 200);
    EXPECT_EQ(post("steps", R"({"name":"test","state":")" + test + "\"}"), 200);
    EXPECT_EQ(post("complete", R"({"state":")" + state + "\"}"), 200);
  }
};

TEST(Rerun, AnAgentReusesOnlyFromTheJobItReRuns) {
  TempDir work;
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  auto reg = http_request(server.port(), "POST", "/api/v1/agent/register", bearer("tok"), R"({"name":"hand"})");
  ASSERT_EQ(reg.status, 201) << reg.body;
  HandAgent agent{server, std::string(json::parse(reg.body).as_object().at("credential").as_string())};
  json::object job{{"repo", "https://example.com/r.git"}, {"commit", std::string(40, 'a')}};
  long failed = server.submit(job);
  agent.claim();
  agent.upload("app.txt", "build", "mine");
  agent.finish("success", "failed", "failed");
  long other = server.submit(job);  // another job, whose artifacts are not the re-run's to take
  agent.claim();
  agent.upload("secret.txt", "build", "other's");
  agent.finish("success", "success", "success");

  auto queued = server.api("POST", "/api/v1/jobs/" + std::to_string(failed) + "/rerun?failed=1");
  ASSERT_EQ(queued.status, 201) << queued.body;
  agent.claim();
  ASSERT_EQ(agent.job, json::parse(queued.body).as_object().at("id").as_int64());
  // The claim names the job re-run and its steps' states.
  EXPECT_EQ(agent.spec.at("rerun_of").as_int64(), failed);
  EXPECT_EQ(json::serialize(agent.spec.at("previous_steps")), R"({"build":"success","test":"failed"})");

  // Attack: reuse from another job, or fetch its artifact through this job: refused, nothing copied.
  EXPECT_EQ(agent.post("reuse", R"({"step":"build","from_job":)" + std::to_string(other) + "}"), 403);
  auto stolen = http_request(server.port(), "GET", "/api/v1/agent/jobs/" + std::to_string(agent.job) + "/artifacts/secret.txt",
                             bearer(agent.credential, agent.lease));
  EXPECT_EQ(stolen.status, 404);
  EXPECT_EQ(server.api("GET", "/api/v1/jobs/" + std::to_string(agent.job) + "/artifacts").body, "{\"artifacts\":[]}\n");
  // Without the lease: refused too.
  EXPECT_EQ(http_request(server.port(), "POST", "/api/v1/agent/jobs/" + std::to_string(agent.job) + "/reuse",
                         bearer(agent.credential, "wrong"), R"({"step":"build","from_job":1})").status, 409);

  // Control: from the job it re-runs, the step's records are copied and its file served.
  auto copied = http_request(server.port(), "POST", "/api/v1/agent/jobs/" + std::to_string(agent.job) + "/reuse",
                             bearer(agent.credential, agent.lease),
                             R"({"step":"build","from_job":)" + std::to_string(failed) + "}");
  ASSERT_EQ(copied.status, 200) << copied.body;
  EXPECT_NE(copied.body.find("\"path\":\"app.txt\""), std::string::npos) << copied.body;
  auto fetched = http_request(server.port(), "GET", "/api/v1/agent/jobs/" + std::to_string(agent.job) + "/artifacts/app.txt",
                              bearer(agent.credential, agent.lease));
  EXPECT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.body, "mine");
  EXPECT_EQ(server.api("GET", "/api/v1/jobs/" + std::to_string(agent.job) + "/artifacts/app.txt").body, "mine");
}

}  // namespace
}  // namespace boxcar::service_test
