// The service through the CLI, the README's setup, and many agents on PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "testing/postgres_server.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t b = s.find_first_not_of(" \n");
  return b == std::string::npos ? "" : s.substr(b);
}

TEST(CliRoundTrip, SubmitJobsLogsAndADeadServer) {
  TempDir work;
  make_git_repo(work / "good", "version = 1\n[[step]]\nname = \"hi\"\nrun = \"echo cli-round-trip-output\"\n"
                               "[[step]]\nname = \"test\"\nrun = \"echo test-line\"\n");
  make_git_repo(work / "bad", "version = 1\n[[step]]\nname = \"boom\"\nrun = \"echo about-to-fail; exit 3\"\n");
  Server server(work.path(), {"--agent-token", "tok", "--executor", "host"});
  ASSERT_TRUE(server.ok());

  auto submit = server.cli({"submit", "--server", server.url(), (work / "good").string()}, work.path());
  ASSERT_EQ(submit.exit_code, 0) << submit.out << submit.err;
  std::string id = trim(submit.out);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(std::all_of(id.begin(), id.end(), ::isdigit)) << "submit printed: " << submit.out;

  auto jobs = server.cli({"jobs", "--server", server.url()}, work.path());
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_NE(jobs.out.find(id), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find((work / "good").string()), std::string::npos) << jobs.out;

  auto logs = server.cli({"logs", "-f", "--server", server.url(), id}, work.path());
  EXPECT_EQ(logs.exit_code, 0) << logs.out << logs.err;
  EXPECT_NE(logs.out.find("cli-round-trip-output"), std::string::npos) << logs.out;
  auto job = server.job(std::stol(id));
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << "logs -f returned before the end: " << json::serialize(*job);

  // Piped: `[step] line` without colour, the job's own lines bare; one step; a misspelt one.
  auto all = server.cli({"logs", "--server", server.url(), id}, work.path());
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("[hi] cli-round-trip-output\n"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("[test] test-line\n"), std::string::npos) << all.out;
  EXPECT_NE(("\n" + all.out).find("\nchecked out "), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find('\x1b'), std::string::npos) << "colour in piped output: " << all.out;
  auto one = server.cli({"logs", "--server", server.url(), id, "test"}, work.path());
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "[test] test-line\n");
  auto typo = server.cli({"logs", "--server", server.url(), id, "tset"}, work.path());
  EXPECT_EQ(typo.exit_code, 2) << typo.out << typo.err;
  EXPECT_EQ(typo.err, "boxcar logs: no step \"tset\" in job " + id + " (did you mean \"test\"?)\n");
  EXPECT_TRUE(typo.out.empty()) << typo.out;
  auto stamped = server.cli({"logs", "--timestamps", "--server", server.url(), id, "test"}, work.path());
  EXPECT_EQ(stamped.exit_code, 0) << stamped.err;
  EXPECT_TRUE(std::regex_match(stamped.out, std::regex(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[test\] test-line\n)"))) << stamped.out;

  auto failing = server.cli({"submit", "--server", server.url(), (work / "bad").string()}, work.path());
  ASSERT_EQ(failing.exit_code, 0) << failing.err;
  std::string bad_id = trim(failing.out);
  auto bad_logs = server.cli({"logs", "-f", "--server", server.url(), bad_id}, work.path());
  EXPECT_EQ(bad_logs.exit_code, 1) << bad_logs.out << bad_logs.err;
  EXPECT_NE(bad_logs.out.find("about-to-fail"), std::string::npos) << bad_logs.out;
  auto bad_job = server.job(std::stol(bad_id));
  ASSERT_TRUE(bad_job);
  EXPECT_EQ(str(*bad_job, "state"), "failed") << json::serialize(*bad_job);

  // Nobody listens on this port.
  std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  auto unreachable = run_boxcar({"submit", "--server", dead, (work / "good").string()}, work.path());
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.out << unreachable.err;
  std::string err = trim(unreachable.err);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line:\n" << unreachable.err;
  EXPECT_TRUE(trim(unreachable.out).empty()) << unreachable.out;
}

TEST(AgentGitToken, NeedsTheHostsItMayGoTo) {
  TempDir work;
  auto r = run_boxcar({"agent", "--server", "http://127.0.0.1:1", "--token", "tok", "--git-token",
                       "secret-token", "--data", (work / "agent").string()},
                      work.path());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--git-token-hosts"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("secret-token"), std::string::npos) << r.err;
  auto bad = run_boxcar({"agent", "--server", "http://127.0.0.1:1", "--token", "tok", "--git-token",
                         "t", "--git-token-hosts", "https://github.com/"},
                        work.path());
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("host names"), std::string::npos) << bad.err;
}

// The sandbox flags of `boxcar agent` and `boxcar serve`: each bad value exits 2 before
// anything starts, naming the flag and what to give instead (the control: the same command
// with the value fixed passes: cli_test's SandboxFlagsTest).
TEST(SandboxFlags, BadValuesExit2WithTheFixInTheError) {
  TempDir work;
  std::vector<std::string> agent = {"agent", "--server", "http://127.0.0.1:1", "--token", "tok", "--data",
                                    (work / "agent").string()};
  auto with = [](std::vector<std::string> args, std::vector<std::string> more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  for (auto [extra, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--sandbox-listen", "0.0.0.0:8471"}, "give --sandbox-advertise http://ADDRESS:PORT"},
           {{"--sandbox-slots", "-1"}, "--sandbox-slots must be a number from 0"},
           {{"--concurrency", "0", "--sandbox-slots", "0"}, "the agent would do nothing"}}) {
    auto r = run_boxcar(with(agent, extra), work.path());
    EXPECT_EQ(r.exit_code, 2) << extra[0] << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
  auto serve = run_boxcar({"serve", "--data", (work / "serve").string(), "--sandbox-listen", "0.0.0.0:0"},
                          work.path());
  EXPECT_EQ(serve.exit_code, 2) << serve.err;
  EXPECT_NE(serve.err.find("is not a loopback address"), std::string::npos) << serve.err;
  // The usage text lists them (the values that pass are cli_test's SandboxFlagsTest).
  auto help = run_boxcar({"agent", "--help"}, work.path());
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("--sandbox-advertise URL"), std::string::npos) << help.out;
}

TEST(AServerAndOneAgentFromTheReadme, HelloExampleRunsInTheNativeSandbox) {
  TempDir work;
  std::string pipeline = read_file(fs::path(BOXCAR_SOURCE_DIR) / "examples/hello/.boxcar.toml");
  ASSERT_FALSE(pipeline.empty());
  make_git_repo(work / "hello", pipeline);
  Server server(work.path(), {});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "hello").string()}});
  ASSERT_GT(id, 0);
  auto job = server.wait_final(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id)
                                           << server.process().describe();
  const auto& steps = job->at("steps").as_array();
  // Six steps: the demo's "preview" step succeeds once its page answers (an agent does not
  // publish previews yet, so its server stops when the job ends).
  EXPECT_EQ(steps.size(), 6u) << json::serialize(*job);
  for (const auto& s : steps) EXPECT_EQ(str(s.as_object(), "state"), "success") << json::serialize(s);
  std::string logs = server.logs(id);
  EXPECT_NE(logs.find("hello from boxcar"), std::string::npos) << logs;
  EXPECT_NE(logs.find("all checks passed"), std::string::npos) << logs;
  // The native sandbox shows the checkout as /workspace.
  EXPECT_NE(logs.find("workspace /workspace"), std::string::npos) << logs;
}

TEST(FourAgentsOnPostgresRunEachOf500JobsOnce, NoJobLostNoneTwice) {
  int kJobs = 500;
  if (const char* n = std::getenv("BOXCAR_SERVICE_TEST_JOBS")) kJobs = std::atoi(n);
  auto pg = testing::PostgresServer::start();
  // make test installs the postgresql package: a server that cannot start is a failure.
  ASSERT_TRUE(pg) << "no PostgreSQL server: " << pg.error().message;
  auto db = (*pg)->create_database("boxcar_service");
  ASSERT_TRUE(db) << db.error().message;

  TempDir work;
  fs::path ran = work / "ran.txt";
  make_git_repo(work / "repo", "version = 1\n[[step]]\nname = \"record\"\nrun = \"echo $BOXCAR_JOB_ID >> " +
                                   ran.string() + "\"\n");
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok", "--db", *db});
  ASSERT_TRUE(server.ok());
  std::vector<std::unique_ptr<Process>> agents;
  for (int i = 0; i < 4; ++i) {
    std::string name = "pg-agent-" + std::to_string(i);
    agents.push_back(start_boxcar({"agent", "--server", server.url(), "--token", "tok", "--data",
                                   (work / name).string(), "--name", name, "--executor", "host",
                                   "--concurrency", "2", "--allow-local-repos"},
                                  work.path(), name));
  }

  std::set<long> ids;
  for (int i = 0; i < kJobs; ++i) {
    long id = server.submit({{"repo", (work / "repo").string()}});
    ASSERT_GT(id, 0);
    ids.insert(id);
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kJobs));

  std::vector<json::object> jobs;
  ASSERT_TRUE(wait_until(
      [&] {
        jobs = server.jobs("?limit=1000");
        return jobs.size() == ids.size() &&
               std::all_of(jobs.begin(), jobs.end(),
                           [](const json::object& j) { return is_final_state(str(j, "state")); });
      },
      240s, "all jobs are final"))
      << agents[0]->describe();

  std::map<std::string, int> states;
  for (const auto& j : jobs) {
    ++states[str(j, "state")];
    EXPECT_EQ(num(j, "attempt"), 1) << json::serialize(j);
    EXPECT_TRUE(ids.count(num(j, "id"))) << json::serialize(j);
  }
  EXPECT_EQ(states["success"], kJobs) << [&] {
    std::string s;
    for (auto& [k, v] : states) s += k + "=" + std::to_string(v) + " ";
    return s;
  }();

  std::istringstream in(read_file(ran));
  std::string line;
  std::vector<long> ran_ids;
  while (std::getline(in, line)) ran_ids.push_back(std::atol(line.c_str()));
  EXPECT_EQ(ran_ids.size(), static_cast<size_t>(kJobs));
  std::set<long> distinct(ran_ids.begin(), ran_ids.end());
  EXPECT_EQ(distinct, ids);
  // Every job was claimed exactly once, and the work was really shared.
  std::regex claim("job ([0-9]+) \\(attempt ([0-9]+)\\)");
  std::map<long, int> claims;
  int busy_agents = 0;
  for (auto& a : agents) {
    EXPECT_TRUE(a->running()) << a->describe();
    std::string err = a->err();
    int mine = 0;
    for (std::sregex_iterator it(err.begin(), err.end(), claim), end; it != end; ++it) {
      ++claims[std::stol((*it)[1])];
      ++mine;
    }
    if (mine > 0) ++busy_agents;
  }
  EXPECT_EQ(claims.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : claims) EXPECT_EQ(n, 1) << "job " << id << " claimed " << n << " times";
  EXPECT_GE(busy_agents, 2) << "one agent did all the work: the test proves nothing about sharing";
}

}  // namespace
}  // namespace boxcar::service_test
