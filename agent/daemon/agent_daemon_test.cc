// The agent against a fake server on real loopback HTTP: real claims, heartbeats, log
// uploads, step updates and completes, real git checkouts, real steps (host executor).
#include "agent/daemon/agent_daemon.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>

#include "testing/fake_server.h"
#include "executors/host/host_executor.h"
#include "http/http_client.h"

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::FakeServer;

// The executor the CLI would choose with --executor host.
std::unique_ptr<executors::Executor> host_executor(asio::io_context& io) {
  return executors::make_host_executor(io);
}

void sh(const std::string& cmd) {
  std::string full = "set -e; " + cmd + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
}

// A bare repository whose pipeline runs `$CMD` (from the job's env) in one step, and a
// branch "bad" with an invalid pipeline file. [on] admits pushes to main and bad only.
constexpr const char* kPipeline = R"(version = 1
[on]
push = { branches = ["main", "bad"] }

[[step]]
name = "hello"
run = "echo branch=$BOXCAR_BRANCH foo=$FOO secret=$API_TOKEN; eval \"$CMD\""
secrets = ["API_TOKEN"]
artifacts = ["art/*"]
)";

class AgentDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-agentd-XXXXXX";
    root = ::mkdtemp(tmpl);
    std::string g = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";
    fs::create_directories(root / "src");
    std::ofstream(root / "src/.boxcar.toml") << kPipeline;
    std::ofstream(root / "src/a.txt") << "content of a\n";
    std::string src = (root / "src").string();
    sh("cd " + src + " && " + g + " init -q && " + g + " add . && " + g + " commit -qm one && " + g +
       " checkout -qb bad && echo 'version = 1\n[[step]]\nname = \"x\"\nrun = 1' > .boxcar.toml && " +
       g + " commit -qam bad && " + g + " checkout -q main && " + g + " clone -q --bare . ../repo.git");
    repo = (root / "repo.git").string();
  }

  void TearDown() override {
    if (io_thread.joinable()) {
      asio::post(io, [this] { daemon.reset(); });
      guard.reset();
      io_thread.join();
    }
    fs::remove_all(root);
  }

  void start_agent(size_t concurrency = 1) {
    AgentConfig opts;
    opts.server = server.url();
    opts.token = "agent-token";  // what the server expects unless a test changes it
    opts.name = "test-agent";
    opts.concurrency = concurrency;
    opts.step_jobs = 2;
    opts.data_dir = root / "data";
    opts.allow_local_repos = true;  // the test repository is a local path
    opts.claim_wait_ms = 2'000;
    opts.log_flush_interval = 20ms;
    if (!server_override.empty()) opts.server = server_override;
    AgentWiring wiring;
    wiring.make_executor = host_executor;
    if (configure) configure(opts, wiring);
    wiring.log = [this](std::string_view line) {
      std::fprintf(stderr, "agent: %.*s\n", int(line.size()), line.data());
      std::lock_guard lock(log_mu);
      log_lines.emplace_back(line);
      log_cv.notify_all();
    };
    wiring.on_exit = [this](Status st) { exit_status.set_value(st); };
    daemon = std::make_unique<AgentDaemon>(io, opts, wiring);
    ASSERT_TRUE(daemon->start().ok());
    io_thread = std::thread([this] { io.run(); });
  }

  protocol::JobSpec job(int64_t id, const std::string& cmd, const std::string& ref = "main") {
    protocol::JobSpec j;
    j.id = id;
    j.repo = repo;
    j.ref = ref;
    j.event = "push";
    j.env = {{"CMD", cmd}, {"FOO", "bar"}, {"API_TOKEN", "s3cr3t-value"}};
    j.lease_ms = 300;  // heartbeats every 100 ms
    return j;
  }

  testing::FakeJob wait_complete(int64_t id, std::chrono::milliseconds timeout = 20s) {
    EXPECT_TRUE(server.wait_job(id, [](const testing::FakeJob& j) { return j.complete.has_value(); }, timeout))
        << "job " << id << " did not complete";
    return server.job(id);
  }

  bool wait_running(int64_t id) {
    return server.wait_job(id, [](const testing::FakeJob& j) {
      auto s = j.last_step("hello");
      return s && s->state == "running";
    }, 20s);
  }

  void run_on_io(std::function<void()> f) { asio::post(io, std::move(f)); }
  // Polls `pred` until it holds; the deadline only bounds a broken test.
  static bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline = 20s) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(20ms);  // a poll interval, not a guess at when it happens
    }
    return true;
  }

  // Runs `f` on the agent's io_context and returns once it ran.
  void run_on_io_and_wait(std::function<void()> f) {
    std::promise<void> ran;
    run_on_io([&] {
      f();
      ran.set_value();
    });
    ran.get_future().wait();
  }

  // Waits until the agent logged `n` lines that start with `prefix`; returns them.
  std::vector<std::string> wait_log_lines(const std::string& prefix, size_t n) {
    std::vector<std::string> found;
    std::unique_lock lock(log_mu);
    bool enough = log_cv.wait_for(lock, 20s, [&] {
      found.clear();
      for (const auto& l : log_lines) {
        if (l.starts_with(prefix)) found.push_back(l);
      }
      return found.size() >= n;
    });
    EXPECT_TRUE(enough) << "the agent logged " << found.size() << " lines starting with \""
                        << prefix << "\", not " << n;
    return found;
  }

  // A step that waits for the test: it runs until go() (a file it polls for).
  std::string until_go(const std::string& then) {
    return "while [ ! -e " + (root / "go").string() + " ]; do sleep 0.02; done; " + then;
  }
  void go() { std::ofstream(root / "go") << "go\n"; }

  fs::path root;
  std::string repo;
  FakeServer server;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::unique_ptr<AgentDaemon> daemon;
  std::thread io_thread;
  std::promise<Status> exit_status;
  std::string server_override;
  std::function<void(AgentConfig&, AgentWiring&)> configure;  // before the daemon starts
  std::mutex log_mu;
  std::condition_variable log_cv;
  std::vector<std::string> log_lines;
};

TEST_F(AgentDaemonTest, DataDirectoriesArePrivate) {
  fs::create_directories(root / "data" / "workspaces");
  fs::permissions(root / "data", fs::perms(0755));
  fs::permissions(root / "data" / "workspaces", fs::perms(0777));
  start_agent();
  for (const char* sub : {"", "workspaces", "mirrors", "artifacts"}) {
    EXPECT_EQ(fs::status(root / "data" / sub).permissions(), fs::perms::owner_all) << sub;
  }
}

TEST_F(AgentDaemonTest, RunsAClaimedJobEndToEnd) {
  start_agent();
  server.enqueue(job(1, "cat a.txt; echo done"));
  auto j = wait_complete(1);
  ASSERT_TRUE(j.complete);
  EXPECT_EQ(j.complete->state, "success") << j.complete->reason;
  EXPECT_EQ(j.agent, "test-agent");  // the registered agent claimed it
  EXPECT_EQ(j.log("hello"), "branch=main foo=bar secret=***\ncontent of a\ndone\n");
  ASSERT_GE(j.steps.size(), 2u);
  EXPECT_EQ(j.steps.front().state, "running");
  auto last = j.last_step("hello");
  EXPECT_EQ(last->state, "success");
  EXPECT_EQ(last->exit_code, 0);
  EXPECT_TRUE(last->started_at && last->finished_at && *last->finished_at >= *last->started_at);
  EXPECT_NE(j.log("(job)").find("checked out "), std::string::npos) << j.log("(job)");
  // The workspace is gone; the mirror stays for the next job.
  EXPECT_FALSE(fs::exists(root / "data/workspaces/1-1"));
  EXPECT_TRUE(fs::exists(root / "data/mirrors"));

  // Heartbeats go out while a step runs: it runs until the server has seen two.
  server.enqueue(job(2, until_go("exit 3")));
  ASSERT_TRUE(server.wait_job(2, [](const testing::FakeJob& fj) { return fj.heartbeats >= 2; }, 20s));
  go();
  j = wait_complete(2);
  EXPECT_EQ(j.complete->state, "failed");
  EXPECT_EQ(j.complete->reason, "step \"hello\" failed: exit code 3");
  EXPECT_EQ(j.last_step("hello")->exit_code, 3);
  EXPECT_GE(j.heartbeats, 2);
}

TEST_F(AgentDaemonTest, RetriedLogUploadIsStoredOnce) {
  start_agent();
  server.fail_log_uploads(2);
  server.enqueue(job(1, "for i in 1 2 3; do echo line $i; sleep 0.05; done"));
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "success");
  EXPECT_EQ(j.log("hello"), "branch=main foo=bar secret=***\nline 1\nline 2\nline 3\n");
  EXPECT_GE(j.duplicate_chunks, 1);  // the retries carried the same sequence numbers
}

TEST_F(AgentDaemonTest, ArtifactsAreUploadedRetriedAndLinksKeptBack) {
  start_agent();
  server.fail_artifact_uploads(1);
  server.enqueue(job(1, "mkdir art && echo hi > art/a.txt && head -c 300000 /dev/urandom > art/b.bin"
                        " && ln -s /etc/passwd art/link"));
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "success") << j.complete->reason;
  ASSERT_EQ(j.artifacts.size(), 2u) << j.log("(job)");
  EXPECT_EQ(j.artifacts["art/a.txt"].data, "hi\n");
  EXPECT_EQ(j.artifacts["art/a.txt"].step, "hello");
  EXPECT_EQ(j.artifacts["art/b.bin"].data.size(), 300000u);
  EXPECT_EQ(j.artifacts.count("art/link"), 0u);
  EXPECT_EQ(j.artifact_uploads, 3);  // one refused with 503, then retried
  // Refused at collection (it leaves the step's set), said in the step's own log.
  EXPECT_NE(j.log("hello").find("link \"art/link\" -> \"/etc/passwd\" not kept"), std::string::npos)
      << j.log("hello");
  // Removed once the server took the job's last report (just after complete was answered).
  EXPECT_TRUE(eventually([&] { return !fs::exists(root / "data/artifacts/1-1"); }));
}

TEST_F(AgentDaemonTest, InvalidPipelineAndOnFilter) {
  start_agent();
  server.enqueue(job(1, "true", "bad"));
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "error");
  EXPECT_NE(j.complete->reason.find("1 error in .boxcar.toml: .boxcar.toml:4:"), std::string::npos)
      << j.complete->reason;
  EXPECT_NE(j.log("(job)").find("^"), std::string::npos) << j.log("(job)");  // the caret

  auto skipped = job(2, "true", "refs/heads/feature/x");
  sh("git -C " + repo + " branch feature/x main");
  server.enqueue(skipped);
  j = wait_complete(2);
  EXPECT_EQ(j.complete->state, "skipped");
  EXPECT_EQ(j.complete->reason, "[on] does not match push to refs/heads/feature/x");

  auto missing = job(3, "true");
  missing.commit = "0123456789abcdef0123456789abcdef01234567";
  server.enqueue(missing);
  j = wait_complete(3);
  EXPECT_EQ(j.complete->state, "error");
  EXPECT_EQ(j.complete->reason, "commit 0123456789abcdef0123456789abcdef01234567 is not in " + repo +
                                    " (fetched refs/*)");
}

// A claim the agent cannot use fails that job (its id and lease come in the answer's
// headers) instead of leaking the lease; the agent goes on with the next job.
TEST_F(AgentDaemonTest, UnreadableClaimFailsItsJob) {
  start_agent();
  server.enqueue_unreadable(1, R"({"job": {"id": 1, "repo": )");
  server.enqueue_unreadable(2, "{\"job\": {\"id\": 2, \"env\": {\"X\": \"" +
                                   std::string(protocol::kMaxClaimBytes, 'x') + "\"}}}");
  server.enqueue(job(3, "echo fine"));
  auto bad = wait_complete(1);
  EXPECT_EQ(bad.complete->state, "error");
  EXPECT_NE(bad.complete->reason.find("unreadable claim answer"), std::string::npos)
      << bad.complete->reason;
  EXPECT_NE(bad.log("(job)").find("unreadable claim answer"), std::string::npos) << bad.log("(job)");
  auto big = wait_complete(2);
  EXPECT_EQ(big.complete->state, "error");
  EXPECT_EQ(big.complete->reason, "the claim answer is larger than 8.0 MiB, the most an agent reads");
  auto fine = wait_complete(3);  // control: the agent is still claiming and running jobs
  EXPECT_EQ(fine.complete->state, "success") << fine.complete->reason;
  EXPECT_EQ(server.jobs_claimed(), 3);
}

TEST_F(AgentDaemonTest, DrainFinishesTheRunningJobAndClaimsNoMore) {
  start_agent();
  server.enqueue(job(1, until_go("echo finished")));
  ASSERT_TRUE(wait_running(1));
  run_on_io_and_wait([this] { daemon->drain(); });
  // Draining, with job 1 still running: job 2 arrives, then job 1 is let finish.
  server.enqueue(job(2, "true"));
  go();
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "success");
  auto exited = exit_status.get_future();
  ASSERT_EQ(exited.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(exited.get().ok());
  EXPECT_EQ(server.jobs_claimed(), 1);
  EXPECT_EQ(server.queued(), 1u);
}

TEST_F(AgentDaemonTest, CancelAnsweredInAHeartbeatCancelsTheStep) {
  start_agent();
  server.enqueue(job(1, "sleep 30"));
  ASSERT_TRUE(wait_running(1));
  server.set_cancel(1);
  // wait_complete gives up after 20 s, long before the step's 30 s: completing at all shows
  // the cancel stopped the step.
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "cancelled");
  EXPECT_EQ(j.last_step("hello")->state, "cancelled");
}

TEST_F(AgentDaemonTest, LostLeaseStopsTheJobWithoutComplete) {
  start_agent();
  fs::path pid_file = root / "pid";
  server.enqueue(job(1, "echo $$ > " + pid_file.string() + "; sleep 30"));
  ASSERT_TRUE(wait_running(1));
  ASSERT_TRUE(server.wait_job(1, [&](const testing::FakeJob&) { return fs::exists(pid_file) && fs::file_size(pid_file) > 0; }, 10s));
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  ASSERT_GT(pid, 0);
  server.set_lost(1);
  // The step's processes go, the agent lets go of the job, and the job is never completed.
  EXPECT_TRUE(eventually([&] { return ::kill(pid, 0) != 0; }));
  EXPECT_TRUE(eventually([&] {
    size_t running = 1;
    run_on_io_and_wait([&] { running = daemon->running_jobs(); });
    return running == 0;
  }));
  // Not a wait for an event but a grace for a report that must never come: a complete the
  // agent had queued would reach the server within this.
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(server.job(1).complete.has_value());
  EXPECT_FALSE(fs::exists(root / "data/workspaces/1-1"));
}

// "retrying in 250ms" / "retrying in 1.2s" -> milliseconds.
int64_t retry_delay_ms(const std::string& line) {
  std::string d = line.substr(line.rfind(' ') + 1);
  if (d.ends_with("ms")) return std::stoll(d);
  return static_cast<int64_t>(std::stod(d) * 1000);
}

TEST_F(AgentDaemonTest, UnreachableServerIsRetriedWithBackoff) {
  {
    FakeServer gone;  // its port is closed once it is destroyed
    server_override = gone.url();
  }
  start_agent();
  // Counts attempts, not time: the first three failures, each announcing a longer wait
  // (250 ms doubling, each drawn from [d/2, d]): a backoff, not a busy loop.
  auto failures =
      wait_log_lines("cannot register with " + server_override + ": connection refused; retrying in ", 3);
  ASSERT_GE(failures.size(), 3u);
  int64_t bound = 250;
  for (size_t i = 0; i < 3; ++i, bound *= 2) {
    int64_t d = retry_delay_ms(failures[i]);
    EXPECT_GE(d, bound / 2) << failures[i];
    EXPECT_LE(d, bound) << failures[i];
  }
}

TEST_F(AgentDaemonTest, RefusedTokenIsFatal) {
  server.token = "another-token";
  start_agent();
  auto exited = exit_status.get_future();
  ASSERT_EQ(exited.wait_for(10s), std::future_status::ready);
  Status st = exited.get();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("the server refused the registration token"), std::string::npos);
  EXPECT_FALSE(fs::exists(root / "data/agent-credential.json"));
}

TEST_F(AgentDaemonTest, RegistersOnceAndKeepsItsCredentialPrivate) {
  start_agent();
  server.enqueue(job(1, "true"));
  auto j = wait_complete(1);
  EXPECT_EQ(j.complete->state, "success");
  EXPECT_EQ(j.agent, "test-agent");
  EXPECT_EQ(j.wrong_lease, 0);  // every report carried the claim's lease token
  EXPECT_EQ(server.registrations(), std::vector<std::string>{"test-agent"});
  fs::path stored = root / "data/agent-credential.json";
  ASSERT_TRUE(fs::exists(stored));
  EXPECT_EQ(fs::status(stored).permissions(), fs::perms::owner_read | fs::perms::owner_write);

  // A restarted agent (a new daemon on the same data directory, under another --name) keeps
  // its registration: no second one, and the old name.
  std::promise<void> restarted;
  run_on_io([&] {
    daemon.reset();
    AgentConfig opts;
    opts.server = server.url();
    opts.token = "agent-token";
    opts.name = "renamed";
    opts.data_dir = root / "data";
    opts.allow_local_repos = true;
    opts.claim_wait_ms = 2'000;
    AgentWiring wiring;
    wiring.make_executor = host_executor;
    wiring.log = [](std::string_view line) {
      std::fprintf(stderr, "agent 2: %.*s\n", int(line.size()), line.data());
    };
    daemon = std::make_unique<AgentDaemon>(io, opts, wiring);
    EXPECT_TRUE(daemon->start().ok());
    restarted.set_value();
  });
  restarted.get_future().wait();
  server.enqueue(job(2, "true"));
  j = wait_complete(2);
  EXPECT_EQ(j.complete->state, "success");
  EXPECT_EQ(j.agent, "test-agent");
  EXPECT_EQ(server.registrations(), std::vector<std::string>{"test-agent"});
}

TEST_F(AgentDaemonTest, RevokedAgentStopsAndCannotRegisterAgain) {
  start_agent();
  // Once registered, revoke it: the next claim is refused, and that is fatal.
  ASSERT_TRUE(server.wait_registrations(1, 10s));
  server.revoke("test-agent");
  auto exited = exit_status.get_future();
  ASSERT_EQ(exited.wait_for(10s), std::future_status::ready);
  Status st = exited.get();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("refused"), std::string::npos) << st.error().message;

  // Restarted on the same data directory, the stored credential is refused, and registering
  // again under the revoked name is refused too: the agent stops instead of coming back.
  std::promise<Status> second;
  run_on_io([&] {
    daemon.reset();
    AgentConfig opts;
    opts.server = server.url();
    opts.token = "agent-token";
    opts.data_dir = root / "data";
    opts.claim_wait_ms = 2'000;
    AgentWiring wiring;
    wiring.make_executor = host_executor;
    wiring.on_exit = [&](Status s) { second.set_value(s); };
    daemon = std::make_unique<AgentDaemon>(io, opts, wiring);
    EXPECT_TRUE(daemon->start().ok());
  });
  auto again = second.get_future();
  ASSERT_EQ(again.wait_for(10s), std::future_status::ready);
  Status st2 = again.get();
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find("revoked"), std::string::npos) << st2.error().message;
  EXPECT_EQ(server.registrations(), (std::vector<std::string>{"test-agent", "test-agent"}));
}

TEST(ServerUrl, Parses) {
  auto u = parse_server_url("http://127.0.0.1:8080/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->prefix, "");
  u = parse_server_url("http://ci.example/boxcar");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->prefix, "/boxcar");
  EXPECT_FALSE(parse_server_url("ftp://x").ok());
  EXPECT_FALSE(parse_server_url("http://x:abc").ok());
  u = parse_server_url("https://ci.example:8443");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, "8443");
}

// The agent token never leaves for another machine in clear: the daemon refuses to start.
TEST(AgentDaemonStart, RefusesToSendTheTokenOverPlainHttpToAnotherHost) {
  boost::asio::io_context io;
  AgentConfig opts;
  opts.server = "http://192.0.2.1:8080";  // TEST-NET-1: never reached
  opts.token = "agent-token";
  opts.data_dir = std::filesystem::temp_directory_path() / "boxcar-agent-plain-http";
  AgentWiring wiring;
  wiring.make_executor = host_executor;
  AgentDaemon daemon(io, opts, wiring);
  Status st = daemon.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("refusing to send the agent token over plain http to 192.0.2.1"),
            std::string::npos)
      << st.error().message;
  EXPECT_EQ(io.poll(), 0u);  // nothing was started: no resolve, no connect
}

// The agent library has no default executor (the host one would run jobs unisolated without
// anyone asking for it): without one, start() refuses; the same config with one starts.
TEST(AgentDaemonStart, RefusesToStartWithoutAnExecutor) {
  boost::asio::io_context io;
  AgentConfig opts;
  opts.server = "http://127.0.0.1:9";  // never reached: nothing runs the io_context
  opts.token = "agent-token";
  opts.data_dir = std::filesystem::temp_directory_path() / "boxcar-agent-no-executor";
  {
    AgentDaemon daemon(io, opts, AgentWiring{});
    Status st = daemon.start();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("no executor"), std::string::npos) << st.error().message;
  }
  AgentWiring wiring;
  wiring.make_executor = host_executor;
  wiring.log = [](std::string_view) {};
  AgentDaemon daemon(io, opts, wiring);
  EXPECT_TRUE(daemon.start().ok());
  std::filesystem::remove_all(opts.data_dir);
}

}  // namespace
}  // namespace boxcar::agent

namespace boxcar::agent {
namespace {

// The sandboxes an agent hosts, stood in for (the real SandboxService needs the native
// executor; its own tests run real ones): what the sync sends, and what the server deletes.
class StandInSandboxes : public SandboxSource {
 public:
  struct Shared {
    std::mutex mu;
    std::vector<protocol::SandboxReport> reports;
    std::vector<std::string> removed;
    bool shut_down = false;
    std::function<void()> changed;  // the daemon's: call on the io_context
  };
  explicit StandInSandboxes(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  protocol::SandboxSync snapshot() const override {
    std::lock_guard lock(shared_->mu);
    protocol::SandboxSync s;
    s.endpoint = "http://127.0.0.1:8471";
    s.key = "data-plane-key";
    s.slots_free = 5 - static_cast<int64_t>(shared_->reports.size());
    s.memory_free_bytes = 1 << 30;
    s.sandboxes = shared_->reports;
    return s;
  }
  void remove(const std::string& id) override {
    std::lock_guard lock(shared_->mu);
    shared_->removed.push_back(id);
    std::erase_if(shared_->reports, [&](const protocol::SandboxReport& r) { return r.id == id; });
  }
  void shutdown() override {
    std::lock_guard lock(shared_->mu);
    shared_->shut_down = true;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

class AgentSandboxSyncTest : public AgentDaemonTest {
 protected:
  // A sandbox-only agent (--concurrency 0 --sandbox-slots 5) hosting the stand-in; syncs go
  // out every `interval` (long: a sync seen sooner came from a change or a retry).
  void start_sandbox_agent(std::chrono::milliseconds interval = 60s) {
    configure = [this, interval](AgentConfig& c, AgentWiring& w) {
      c.concurrency = 0;
      c.sandbox_slots = 5;
      c.sandbox_sync_interval = interval;
      w.make_sandboxes = [this](asio::io_context&, executors::Executor&, const AgentConfig& config,
                                std::function<void()> changed) -> Result<std::unique_ptr<SandboxSource>> {
        EXPECT_EQ(config.sandbox_slots, 5u);
        shared->changed = std::move(changed);
        return std::unique_ptr<SandboxSource>(std::make_unique<StandInSandboxes>(shared));
      };
    };
    start_agent();
  }
  size_t syncs() { return server.sandbox_syncs().size(); }
  void report(const std::string& id, const std::string& state) {
    run_on_io_and_wait([&] {
      {
        std::lock_guard lock(shared->mu);
        std::erase_if(shared->reports, [&](const protocol::SandboxReport& r) { return r.id == id; });
        shared->reports.push_back({id, state, 1, 0, "", {}});
      }
      shared->changed();
    });
  }
  std::shared_ptr<StandInSandboxes::Shared> shared = std::make_shared<StandInSandboxes::Shared>();
};

TEST_F(AgentSandboxSyncTest, ASandboxOnlyAgentRegistersClaimsNothingAndSyncsWithItsCredential) {
  server.enqueue(job(1, "true"));
  start_sandbox_agent();
  ASSERT_TRUE(eventually([&] { return syncs() >= 1; }));
  auto seen = server.sandbox_syncs();
  EXPECT_EQ(server.registrations(), std::vector<std::string>{"test-agent"});
  EXPECT_EQ(seen[0].agent, "test-agent");  // sent with the credential the registration gave
  EXPECT_EQ(seen[0].sync.endpoint, "http://127.0.0.1:8471");
  EXPECT_EQ(seen[0].sync.key, "data-plane-key");
  EXPECT_EQ(seen[0].sync.slots_free, 5);
  EXPECT_EQ(server.jobs_claimed(), 0);  // the control: a job was there to claim
  EXPECT_EQ(server.queued(), 1u);
}

TEST_F(AgentSandboxSyncTest, AChangeSyncsAtOnceAndTheServersDeletionsAreRemoved) {
  start_sandbox_agent();
  ASSERT_TRUE(eventually([&] { return syncs() >= 1; }));
  // Two changes in one handler: one sync carries both (the interval is a minute away).
  run_on_io_and_wait([&] {
    std::lock_guard lock(shared->mu);
    shared->reports.push_back({"aaaaaaaaaaaa", "running", 1, 0, "", {}});
    shared->reports.push_back({"bbbbbbbbbbbb", "running", 1, 0, "", {}});
  });
  run_on_io_and_wait([&] {
    shared->changed();
    shared->changed();
  });
  ASSERT_TRUE(eventually([&] { return syncs() >= 2; }));
  auto seen = server.sandbox_syncs();
  ASSERT_EQ(seen[1].sync.sandboxes.size(), 2u);
  EXPECT_EQ(seen[1].sync.slots_free, 3);
  server.delete_sandbox("aaaaaaaaaaaa");
  report("bbbbbbbbbbbb", "paused");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(shared->mu);
    return !shared->removed.empty();
  }));
  {
    std::lock_guard lock(shared->mu);
    EXPECT_EQ(shared->removed, std::vector<std::string>{"aaaaaaaaaaaa"});  // never bbbb…
  }
  EXPECT_EQ(server.sandbox_syncs()[2].sync.sandboxes.size(), 2u);  // before the answer came back
}

TEST_F(AgentSandboxSyncTest, AnUnreachableServerIsRetriedWithBackoffNotAtTheInterval) {
  server.fail_sandbox_syncs(2);
  start_sandbox_agent();
  // Two 503s (logged once, with the backoff), then the third attempt is taken: retries, not
  // the minute-long interval.
  wait_log_lines("sandbox sync: server error (HTTP 503)", 1);
  ASSERT_TRUE(eventually([&] { return syncs() >= 1; }));
  wait_log_lines("sandbox sync: reached the server again", 1);
}

TEST_F(AgentSandboxSyncTest, DrainShutsTheSandboxesDownAndExits) {
  start_sandbox_agent();
  ASSERT_TRUE(eventually([&] { return syncs() >= 1; }));
  run_on_io([&] { daemon->drain(); });
  auto exited = exit_status.get_future();
  ASSERT_EQ(exited.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(exited.get().ok());
  std::lock_guard lock(shared->mu);
  EXPECT_TRUE(shared->shut_down);
}

TEST_F(AgentSandboxSyncTest, ASandboxOnlyAgentThatCannotHostIsAnErrorAJobAgentOnlySaysSo) {
  auto cannot = [](asio::io_context&, executors::Executor& e, const AgentConfig&,
                   std::function<void()>) -> Result<std::unique_ptr<SandboxSource>> {
    return Error{"sandboxes need the native executor, not " + std::string(e.name()), 0, ErrorCode::unavailable};
  };
  AgentConfig c;
  c.server = server.url();
  c.token = "agent-token";
  c.data_dir = root / "data";
  c.concurrency = 0;
  c.sandbox_slots = 5;
  AgentWiring w;
  w.make_executor = host_executor;
  w.make_sandboxes = cannot;
  w.log = [](std::string_view) {};
  AgentDaemon only(io, c, w);
  Status st = only.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("sandbox-only agent, but this agent cannot host sandboxes: sandboxes need the "
                                    "native executor, not host"), std::string::npos) << st.error().message;
  // The control: with jobs to run, the same agent starts and only says hosting is off.
  configure = [&](AgentConfig& cc, AgentWiring& ww) {
    cc.sandbox_slots = 5;
    ww.make_sandboxes = cannot;
  };
  start_agent();
  wait_log_lines("sandbox hosting is off: sandboxes need the native executor, not host", 1);
  server.enqueue(job(1, "true"));
  EXPECT_EQ(wait_complete(1).complete->state, "success");
}

}  // namespace
}  // namespace boxcar::agent
