// Hostile pipeline files and job bodies against a real server and agent: each fails its own
// job with the reason, the server stays up, and a normal job afterwards succeeds.
#include <gtest/gtest.h>

#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

const std::string kNormal = "version = 1\n[[step]]\nname = \"hi\"\nrun = \"echo still-serving\"\n";

// The job ends `error`, its reason (and its log) containing `why`.
void expect_refused(Server& server, long id, const std::string& why) {
  auto job = server.wait_final(id);
  ASSERT_TRUE(job) << server.process().describe();
  EXPECT_EQ(str(*job, "state"), "error") << json::serialize(*job);
  EXPECT_NE(str(*job, "reason").find(why), std::string::npos) << json::serialize(*job);
  EXPECT_NE(server.logs(id).find(why), std::string::npos) << server.logs(id);
  EXPECT_EQ(num(*job, "attempt"), 1) << "failed once, not re-queued: " << json::serialize(*job);
}

void expect_still_serving(Server& server, const fs::path& repo) {
  ASSERT_TRUE(server.process().running()) << server.process().describe();
  long id = server.submit({{"repo", repo.string()}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job) << server.process().describe();
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
  EXPECT_NE(server.logs(id).find("still-serving"), std::string::npos) << server.logs(id);
}

// What users reported: a 120 KB file of dotted keys or brackets overflowed the stack of the
// in-process agent (serve died, in a loop), and 220 KB asked for 5 GB (serve was OOM-killed).
TEST(HostilePipelineFiles, FailTheirJobsAndTheServerStaysUp) {
  TempDir work;
  make_git_repo(work / "dotted", "version = 1\n" + repeat("a.", 60'000) + "b = 1\n");
  make_git_repo(work / "brackets", "version = 1\nx = " + repeat("[", 120'000) + "\n");
  std::string amplified = "version = 1\n[defaults]\nenv = { BIG = \"" + repeat("x", 200'000) + "\" }\n";
  for (int i = 0; i < 100; ++i) {
    amplified += "[[step]]\nname = \"s" + std::to_string(i) + "-${matrix.a}-${matrix.b}\"\n" +
                 "run = \"true\"\nmatrix = { a = [" + repeat("\"x\",", 15) + "\"y\"], b = [" +
                 repeat("\"p\",", 15) + "\"q\"] }\n";
  }
  make_git_repo(work / "amplified", amplified);
  make_git_repo(work / "normal", kNormal);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  pid_t pid = server.process().pid();

  long dotted = server.submit({{"repo", (work / "dotted").string()}});
  long brackets = server.submit({{"repo", (work / "brackets").string()}});
  long big = server.submit({{"repo", (work / "amplified").string()}});
  expect_refused(server, dotted, ".boxcar.toml:2:1: error: tables, arrays and dotted keys nest "
                                 "deeper than 32 levels");
  expect_refused(server, brackets, ".boxcar.toml:2:37: error: tables, arrays and dotted keys nest "
                                   "deeper than 32 levels");
  expect_refused(server, big, "env \"BIG\": BIG=value is 200004 bytes, over the limit of 131071");
  EXPECT_NE(server.logs(big).find("copied into each of the 100 steps"), std::string::npos)
      << server.logs(big);
  expect_still_serving(server, work / "normal");
  EXPECT_EQ(server.process().pid(), pid);
}

// With the depth limit lifted, the same kind of file overflows the parser's stack: the child
// process that parses it first dies, not the server, and the job says why.
TEST(HostilePipelineFiles, AParserCrashFailsTheJobNotTheServer) {
  TempDir work;
  make_git_repo(work / "deep", "version = 1\n" + repeat("a.", 400'000) + "b = 1\n");
  make_git_repo(work / "normal", kNormal);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host",
                              "--max-pipeline-depth", "1000000"});
  ASSERT_TRUE(server.ok());
  long deep = server.submit({{"repo", (work / "deep").string()}});
  expect_refused(server, deep, "the pipeline parser crashed on .boxcar.toml: SIGSEGV");
  expect_still_serving(server, work / "normal");
}

TEST(HostileJobBodies, OversizedBodiesAndEnvAreRefused) {
  TempDir work;
  make_git_repo(work / "normal", kNormal);
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());
  std::string repo = (work / "normal").string();

  // 16 MiB used to be accepted though an agent reads at most 8 MiB of claim.
  json::object huge{{"repo", repo}, {"env", json::object{{"X", std::string(2 << 20, 'x')}}}};
  auto r = server.api("POST", "/api/v1/jobs", json::serialize(huge));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("request body larger than 1048576 bytes"), std::string::npos) << r.body;

  json::object long_value{{"repo", repo}, {"env", json::object{{"X", std::string(200'000, 'x')}}}};
  r = server.api("POST", "/api/v1/jobs", json::serialize(long_value));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("X=value is 200002 bytes, over the limit of 131071"), std::string::npos)
      << r.body;
  EXPECT_TRUE(server.jobs().empty()) << "nothing was queued";

  // Control: the longest variable the server takes reaches the step ("X=" + value + NUL).
  long id = server.submit({{"repo", repo}, {"env", json::object{{"X", std::string((128 << 10) - 3, 'x')}}}});
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
}

// A job queued before the body limit existed (written here straight into the store) is larger
// than an agent reads: the agent fails it from the claim's headers, once, and goes on.
TEST(HostileJobBodies, AClaimTooLargeToReadFailsItsJob) {
  TempDir work;
  make_git_repo(work / "normal", kNormal);
  fs::path db = work / "store.db";
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok", "--db", "sqlite:" + db.string()});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "normal").string()}});
  ASSERT_GT(id, 0);
  auto update = run_command(
      {"/usr/bin/python3", "-c",
       "import json, sqlite3, sys\n"
       "db = sqlite3.connect(sys.argv[1], timeout=30)\n"
       "db.execute('UPDATE jobs SET env = ? WHERE id = ?',"
       " (json.dumps({'BIG': 'x' * 9_000_000}), int(sys.argv[2])))\n"
       "db.commit()\n",
       db.string(), std::to_string(id)});
  ASSERT_EQ(update.exit_code, 0) << update.out << update.err;

  auto agent = start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--data",
                             (work / "agent").string(), "--executor", "host", "--allow-local-repos"},
                            work.path(), "agent");
  expect_refused(server, id, "the claim answer is larger than 8.0 MiB, the most an agent reads");
  EXPECT_TRUE(agent->running()) << agent->describe();
  expect_still_serving(server, work / "normal");
}

}  // namespace
}  // namespace boxcar::service_test
