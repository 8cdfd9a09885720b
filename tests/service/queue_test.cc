// The queue's limits against real `boxcar serve` and `boxcar agent` processes: a job whose agent
// dies on every attempt ends as an error after --max-attempts (SQLite and PostgreSQL), retention
// deletes old finished jobs and their artifacts, and --max-job-log caps a job's log.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "testing/postgres_server.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::unique_ptr<Process> start_agent(const fs::path& work, const Server& server,
                                     const std::string& name) {
  return start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--data",
                       (work / ("agent-" + name)).string(), "--name", name, "--executor", "host",
                       "--allow-local-repos"},
                      work, "agent-" + name);
}

// A step that runs until the test creates `stop` (host executor: it sees the test's files), or
// for a minute at most: an agent killed under it leaves it behind.
std::string blocking_pipeline(const fs::path& stop, const std::string& before = "") {
  return "version = 1\n[[step]]\nname = \"block\"\nrun = '''\n" + before +
         "echo started\nfor i in $(seq 1 1200); do [ -e " + stop.string() +
         " ] && break; sleep 0.05; done\necho stopped\n'''\n";
}

// The log after the last lost attempt's note: what the current attempt wrote.
std::string current_attempt(const std::string& log) {
  size_t note = log.rfind("boxcar: attempt ");
  return note == std::string::npos ? log : log.substr(note);
}

class PoisonJobTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PoisonJobTest, AnAgentKilledOnEveryAttemptEndsTheJobAsAnError) {
  TempDir work;
  std::vector<std::string> db;
  std::unique_ptr<testing::PostgresServer> pg;
  if (GetParam() == "postgres") {
    auto started = testing::PostgresServer::start();
    ASSERT_TRUE(started) << "no PostgreSQL server: " << started.error().message;
    pg = std::move(*started);
    auto url = pg->create_database("poison");
    ASSERT_TRUE(url) << url.error().message;
    db = {"--db", *url};
  }
  std::vector<std::string> args = {"--agents", "0", "--lease", "1s", "--agent-token", "tok",
                                   "--max-attempts", "2"};
  args.insert(args.end(), db.begin(), db.end());
  Server server(work.path(), args);
  ASSERT_TRUE(server.ok());
  fs::path stop = work / "stop";
  make_git_repo(work / "poison", blocking_pipeline(stop));

  long id = server.submit({{"repo", (work / "poison").string()}});
  ASSERT_GT(id, 0);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto agent = start_agent(work.path(), server, "doomed-" + std::to_string(attempt));
    ASSERT_TRUE(wait_until(
        [&] {
          auto j = server.job(id);
          return j && str(*j, "state") == "running" && num(*j, "attempt") == attempt &&
                 current_attempt(server.logs(id)).find("started") != std::string::npos;
        },
        60s, "attempt " + std::to_string(attempt) + " runs its step"))
        << agent->describe();
    agent->signal(SIGKILL);
    ASSERT_TRUE(agent->wait(10s));
  }
  auto job = server.wait_final(id, 60s);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "error") << json::serialize(*job);
  EXPECT_EQ(num(*job, "attempt"), 2) << json::serialize(*job);
  EXPECT_EQ(num(*job, "max_attempts"), 2) << json::serialize(*job);
  EXPECT_NE(str(*job, "reason").find("lease expired 2 times: agent lost"), std::string::npos)
      << json::serialize(*job);
  EXPECT_NE(str(*job, "reason").find("--max-attempts"), std::string::npos) << json::serialize(*job);
  std::string log = server.logs(id);
  EXPECT_NE(log.find("boxcar: attempt 1 of 2 lost: agent \"doomed-1\" stopped reporting (its "
                     "lease expired); queued again as attempt 2"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("boxcar: attempt 2 of 2 lost: agent \"doomed-2\""), std::string::npos) << log;

  // Control: the queue is not blocked. A healthy agent runs the next job to success.
  write_file(stop, "");  // and the killed agents' orphaned steps end
  make_git_repo(work / "fine", "version = 1\n[[step]]\nname = \"ok\"\nrun = \"echo fine\"\n");
  auto healthy = start_agent(work.path(), server, "healthy");
  long next = server.submit({{"repo", (work / "fine").string()}});
  auto done = server.wait_final(next, 60s);
  ASSERT_TRUE(done) << healthy->describe();
  EXPECT_EQ(str(*done, "state"), "success") << json::serialize(*done) << server.logs(next);
  EXPECT_EQ(str(*server.job(id), "state"), "error");  // the poison job is not run again
}

INSTANTIATE_TEST_SUITE_P(Stores, PoisonJobTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(JobRetentionAndLogCap, OldFinishedJobsGoRunningAndQueuedStayLogsAreCapped) {
  TempDir work;
  Server server(work.path(), {"--executor", "host", "--agent-token", "tok", "--job-retention", "2s",
                              "--max-job-log", "4KiB"});
  ASSERT_TRUE(server.ok());
  make_git_repo(work / "quick",
                "version = 1\n[[step]]\nname = \"make\"\nrun = \"echo made > out.txt; echo quick\"\n"
                "artifacts = [\"out.txt\"]\n");
  long quick = server.submit({{"repo", (work / "quick").string()}});
  auto finished = server.wait_final(quick, 60s);
  ASSERT_TRUE(finished);
  ASSERT_EQ(str(*finished, "state"), "success") << json::serialize(*finished) << server.logs(quick);
  auto listed = server.api("GET", "/api/v1/jobs/" + std::to_string(quick) + "/artifacts");
  ASSERT_EQ(listed.status, 200) << listed.body;
  std::string sha = str(json::parse(listed.body).at("artifacts").as_array().at(0).as_object(), "sha256");
  fs::path blob = server.data_dir() / "artifacts" / "sha256" / sha.substr(0, 2) / sha;
  ASSERT_TRUE(fs::exists(blob)) << blob;

  // A loud job that runs (the one in-process agent is busy with it) and a job queued behind it.
  fs::path stop = work / "stop";
  make_git_repo(work / "loud", blocking_pipeline(
                                   stop, "for i in $(seq 1 200); do echo \"line $i of a loud step, "
                                         "forty bytes or so\"; done\n"));
  long loud = server.submit({{"repo", (work / "loud").string()}});
  long queued = server.submit({{"repo", (work / "quick").string()}});

  // Attack: the loud step prints ~9 KB; the server keeps 4 KiB and says so, once.
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = server.job(loud);
        return j && j->at("log_truncated").as_bool();
      },
      60s, "the loud job's log reaches the cap"));
  // Retention: the quick job finished over 2 s ago goes, with its blob; the others stay.
  ASSERT_TRUE(wait_until(
      [&] { return server.api("GET", "/api/v1/jobs/" + std::to_string(quick)).status == 404; }, 30s,
      "the finished job is deleted"));
  EXPECT_EQ(server.api("GET", "/api/v1/jobs/" + std::to_string(quick) + "/logs").status, 404);
  EXPECT_FALSE(fs::exists(blob)) << blob;
  auto running = server.job(loud);
  ASSERT_TRUE(running);
  EXPECT_EQ(str(*running, "state"), "running") << json::serialize(*running);
  EXPECT_LE(num(*running, "log_bytes"), 4096 + 200) << json::serialize(*running);
  auto waiting = server.job(queued);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(str(*waiting, "state"), "queued") << json::serialize(*waiting);

  write_file(stop, "");
  auto loud_done = server.wait_final(loud, 60s);
  ASSERT_TRUE(loud_done);
  // A capped log does not fail the job; the log ends with the note, nothing after it.
  EXPECT_EQ(str(*loud_done, "state"), "success") << json::serialize(*loud_done);
  std::string log = server.logs(loud);
  std::string note = "boxcar: the job's log reached the server's limit of 4.0 KiB (boxcar serve "
                     "--max-job-log): the rest of it is dropped\n";
  ASSERT_GE(log.size(), note.size()) << log;
  EXPECT_EQ(log.substr(log.size() - note.size()), note) << log;
  EXPECT_NE(log.find("line 1 of a loud step"), std::string::npos) << log;
  EXPECT_EQ(log.find("line 200 of a loud step"), std::string::npos) << log;
  EXPECT_EQ(log.find("stopped"), std::string::npos) << log;
}

TEST(QueueFlags, BadValuesAreRefusedWithTheFlagAndTheExpectedForm) {
  TempDir work;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const auto& c : std::vector<Case>{
           {{"--max-attempts", "0"}, "--max-attempts must be a number from 1 to 100"},
           {{"--job-retention", "soon"}, "--job-retention must be a duration of at least 1s"},
           {{"--max-job-log", "12"}, "--max-job-log must be a size from 1KiB to 1TiB"},
           {{"--max-followers-per-job", "-1"}, "--max-followers-per-job must be a number"},
           {{"--max-followers-per-client", "x"}, "--max-followers-per-client must be a number"}}) {
    std::vector<std::string> args = {"serve", "--data", (work / "data").string()};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_boxcar(args, work.path());
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  // Control: the help lists every one of them.
  auto help = run_boxcar({"serve", "--help"}, work.path());
  EXPECT_EQ(help.exit_code, 0) << help.err;
  for (const char* flag : {"--max-attempts", "--job-retention", "--max-job-log",
                           "--max-followers-per-job", "--max-followers-per-client"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace boxcar::service_test
