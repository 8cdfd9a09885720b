// Reliability of the CI service: agents and servers killed mid-job, draining, cancelling.
#include <signal.h>

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

std::string one_step(const std::string& name, const std::string& run) {
  return "version = 1\n[[step]]\nname = \"" + name + "\"\nrun = '''\n" + run + "\n'''\n";
}

std::unique_ptr<Process> start_agent(const fs::path& work, const Server& server,
                                     const std::string& name,
                                     const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"agent",  "--server", server.url(),  "--token",
                                   "tok",    "--data",   (work / ("agent-" + name)).string(),
                                   "--name", name,       "--executor",  "host",
                                   "--allow-local-repos"};
  args.insert(args.end(), extra.begin(), extra.end());
  return start_boxcar(args, work, "agent-" + name);
}

// A step's shell line that waits until the test creates `go`: a step that runs exactly as long
// as the test needs it to, instead of a sleep the test races.
std::string until_created(const fs::path& go) {
  return "while [ ! -e '" + go.string() + "' ]; do sleep 0.05; done";
}

// What GET /metrics shows of the agents' claims held open: who is idle and claiming.
bool claims_waiting(Server& server, int n) {
  return server.api("GET", "/metrics").body.find("\nboxcar_agent_claims_waiting " +
                                                 std::to_string(n) + "\n") != std::string::npos;
}

bool step_is(const json::object& job, const std::string& step, const std::string& state) {
  for (const auto& s : job.at("steps").as_array()) {
    if (str(s.as_object(), "name") == step) return str(s.as_object(), "state") == state;
  }
  return false;
}

TEST(AgentKilledMidJobIsRequeuedAndFinishedByAnother, LeaseExpiryHandsItOver) {
  TempDir work;
  fs::path go = work / "go";
  make_git_repo(work / "repo", one_step("slow", "echo begin; " + until_created(go) + "; echo done"));
  Server server(work.path(), {"--agents", "0", "--lease", "2s", "--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  auto a = start_agent(work.path(), server, "agent-a", {"--concurrency", "1"});

  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = server.job(id);
        return j && str(*j, "state") == "running" && step_is(*j, "slow", "running");
      },
      60s, "agent A runs the step"))
      << a->describe();

  // A second agent while A is alive and heartbeating: once B is seen claiming (A's one slot
  // is busy, so the claim held is B's), over more than two lease periods it must not take the
  // job (no two runs at once). The step cannot end meanwhile: it waits for `go`. The window is
  // the property under test (a lease kept by heartbeats outlives its period), not a wait.
  auto b = start_agent(work.path(), server, "agent-b", {"--concurrency", "1"});
  ASSERT_TRUE(wait_until([&] { return claims_waiting(server, 1); }, 60s, "agent B claims"))
      << b->describe();
  std::this_thread::sleep_for(4500ms);
  {
    auto j = server.job(id);
    ASSERT_TRUE(j);
    EXPECT_EQ(num(*j, "attempt"), 1) << "the job was handed to B while A still held it: "
                                     << json::serialize(*j);
    EXPECT_EQ(server.logs(id).find("agent-b"), std::string::npos) << server.logs(id);
  }

  a->signal(SIGKILL);
  ASSERT_TRUE(a->wait(10s));
  write_file(go, "go\n");  // attempt 2, on B, may finish

  auto job = server.wait_final(id);
  ASSERT_TRUE(job) << b->describe();
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job) << server.logs(id);
  EXPECT_EQ(num(*job, "attempt"), 2) << json::serialize(*job);
  std::string logs = server.logs(id);
  EXPECT_NE(logs.find("agent-b"), std::string::npos) << "attempt 2 not run by B:\n" << logs;
  EXPECT_NE(logs.find("done"), std::string::npos) << logs;
  EXPECT_TRUE(b->running()) << b->describe();
}

TEST(ServerKilledAndRestartedMidJobLosesNothing, EveryLineOnceInOrder) {
  TempDir work;
  const int kLines = 20;
  make_git_repo(work / "repo",
                one_step("count", "for i in $(seq 1 " + std::to_string(kLines) +
                                      "); do echo line-$i; sleep 0.2; done"));
  std::vector<std::string> args = {"--agents", "0", "--lease", "30s", "--agent-token", "tok",
                                   "--db", "sqlite:" + (work / "store.db").string()};
  auto server = std::make_unique<Server>(work.path(), args);
  ASSERT_TRUE(server->ok());
  int port = server->port();
  auto agent = start_agent(work.path(), *server, "survivor");

  long id = server->submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(wait_until([&] { return server->logs(id).find("line-3\n") != std::string::npos; },
                         60s, "the step prints its first lines"))
      << agent->describe();

  auto failed_uploads = [&] {
    std::string log = agent->out() + agent->err();
    size_t n = 0;
    for (size_t at = log.find("upload failed ("); at != std::string::npos; at = log.find("upload failed (", at + 1)) ++n;
    return n;
  };
  size_t failed_before = failed_uploads();
  server->process().signal(SIGKILL);
  ASSERT_TRUE(server->process().wait(10s));
  std::string first_life = server->process().describe();
  server.reset();
  // The server stays down until the agent has found it gone (an upload failed and is being
  // retried), so the restart is one the agent had to ride out, on any machine's speed.
  ASSERT_TRUE(wait_until([&] { return failed_uploads() > failed_before; }, 60s,
                         "the agent finds the server gone"))
      << agent->describe();
  server = std::make_unique<Server>(work.path(), args, port, "serve-restarted");
  ASSERT_TRUE(server->ok()) << first_life;

  auto job = server->wait_final(id);
  ASSERT_TRUE(job) << agent->describe();
  EXPECT_EQ(str(*job, "state"), "success") << json::serialize(*job);
  EXPECT_EQ(num(*job, "attempt"), 1) << "the job was run again: " << json::serialize(*job);

  std::string logs = server->logs(id, "count");
  std::vector<std::string> lines;
  std::istringstream in(logs);
  std::string line;
  std::regex numbered("line-[0-9]+");
  while (std::getline(in, line)) {
    if (std::regex_match(line, numbered)) lines.push_back(line);
  }
  std::vector<std::string> expected;
  for (int i = 1; i <= kLines; ++i) expected.push_back("line-" + std::to_string(i));
  EXPECT_EQ(lines, expected) << "step log:\n" << logs << agent->describe();
  EXPECT_TRUE(agent->running()) << agent->describe();
}

TEST(SigtermDrainsTheAgent, RunningJobFinishesQueuedJobStays) {
  TempDir work;
  fs::path go = work / "go";
  make_git_repo(work / "repo", one_step("work", "echo working; " + until_created(go) + "; echo finished"));
  Server server(work.path(), {"--agents", "0", "--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  auto agent = start_agent(work.path(), server, "drainer", {"--concurrency", "1"});

  long first = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(first, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        auto j = server.job(first);
        return j && step_is(*j, "work", "running");
      },
      60s, "the first job's step runs"))
      << agent->describe();
  long second = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(second, 0);

  agent->signal(SIGTERM);
  ASSERT_TRUE(wait_until(
      [&] { return (agent->out() + agent->err()).find("draining: waiting for 1 running job") != std::string::npos; },
      60s, "the agent drains"))
      << agent->describe();
  write_file(go, "go\n");  // only now may the first job finish
  auto code = agent->wait(90s);
  ASSERT_TRUE(code) << "the agent did not exit after SIGTERM\n" << agent->describe();
  EXPECT_EQ(*code, 0) << agent->describe();

  auto j1 = server.job(first);
  ASSERT_TRUE(j1);
  EXPECT_EQ(str(*j1, "state"), "success") << json::serialize(*j1) << agent->describe();
  EXPECT_NE(server.logs(first).find("finished"), std::string::npos) << server.logs(first);
  auto j2 = server.job(second);
  ASSERT_TRUE(j2);
  EXPECT_EQ(str(*j2, "state"), "queued") << json::serialize(*j2);

  // Control: the queued job is intact, and the next agent runs it.
  auto next = start_agent(work.path(), server, "next");
  auto done = server.wait_final(second);
  ASSERT_TRUE(done) << next->describe();
  EXPECT_EQ(str(*done, "state"), "success") << json::serialize(*done);
  EXPECT_EQ(num(*done, "attempt"), 1) << json::serialize(*done);
}

// Also: the pending step that needs it is cancelled, and the when.status = "always" cleanup
// still runs after the cancel (as on Ctrl-C in `boxcar run`), its log reaching the server.
TEST(CancelReachesARunningStep, TheCliCancelsIt) {
  TempDir work;
  make_git_repo(work / "repo", one_step("forever", "echo started; sleep 1000; echo never-printed") +
                                   "[[step]]\nname = \"after\"\nneeds = [\"forever\"]\nrun = \"echo never-ran\"\n"
                                   "[[step]]\nname = \"cleanup\"\nwhen = { status = \"always\" }\n"
                                   "timeout = \"30s\"\nrun = \"echo cleaning-up\"\n");
  // The default executor (native sandbox) in the in-process agent.
  Server server(work.path(), {"--agent-token", "tok"});
  ASSERT_TRUE(server.ok());
  long id = server.submit({{"repo", (work / "repo").string()}});
  ASSERT_GT(id, 0);
  ASSERT_TRUE(wait_until([&] { return server.logs(id).find("started") != std::string::npos; }, 60s,
                         "the step prints \"started\""))
      << server.process().describe();
  {
    auto j = server.job(id);
    ASSERT_TRUE(j);
    EXPECT_EQ(str(*j, "state"), "running") << json::serialize(*j);
  }

  auto cancel = server.cli({"cancel", "--server", server.url(), std::to_string(id)}, work.path());
  EXPECT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;

  auto job = server.wait_final(id, 90s);
  ASSERT_TRUE(job);
  EXPECT_EQ(str(*job, "state"), "cancelled") << json::serialize(*job);
  EXPECT_TRUE(step_is(*job, "forever", "cancelled")) << json::serialize(*job);
  EXPECT_TRUE(step_is(*job, "after", "cancelled")) << json::serialize(*job);
  EXPECT_TRUE(step_is(*job, "cleanup", "success")) << json::serialize(*job);
  EXPECT_NE(server.logs(id, "cleanup").find("cleaning-up"), std::string::npos) << server.logs(id);
  EXPECT_EQ(server.logs(id).find("never-printed"), std::string::npos);
  EXPECT_EQ(server.logs(id).find("never-ran"), std::string::npos);
  // The agent survives a cancel and takes the next job (control: cancel hit only that job).
  make_git_repo(work / "repo", one_step("quick", "echo after-cancel"));
  long next = server.submit({{"repo", (work / "repo").string()}});
  auto after = server.wait_final(next);
  ASSERT_TRUE(after);
  EXPECT_EQ(str(*after, "state"), "success") << json::serialize(*after) << server.logs(next);
}

}  // namespace
}  // namespace boxcar::service_test
