// Chaos: many short jobs through one server and two agents while the server and the agents are
// SIGKILLed at random (seeded) and restarted. Every job must end exactly once, successfully,
// with its complete log: each expected line exactly once in the attempt that finished it, and
// no line twice in any attempt. The server's store is a SQLite file, so a restarted server
// sees the same queue. BOXCAR_CHAOS_JOBS and BOXCAR_CHAOS_SEED change the size and the seed.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

constexpr int kJobs = 200;          // the issue asks for 1,000: BOXCAR_CHAOS_JOBS=1000
constexpr uint32_t kSeed = 10'2024;
constexpr int kKills = 10;          // then the survivors finish the queue
constexpr int kLinesPerStep = 5;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// The log after the last note of a lost attempt: what the attempt that finished the job wrote.
std::string final_attempt(const std::string& log) {
  size_t note = log.rfind("boxcar: attempt ");
  if (note == std::string::npos) return log;
  size_t end = log.find('\n', note);
  return end == std::string::npos ? "" : log.substr(end + 1);
}

// Lines of `text` that appear more than once.
std::vector<std::string> repeated_lines(const std::string& text) {
  std::map<std::string, int> seen;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) ++seen[line];
  std::vector<std::string> out;
  for (const auto& [line, n] : seen) {
    if (n > 1) out.push_back(line + " (x" + std::to_string(n) + ")");
  }
  return out;
}

class Chaos {
 public:
  explicit Chaos(const fs::path& work) : work_(work) {}

  std::vector<std::string> server_args() const {
    return {"--agents", "0", "--lease", "2s", "--agent-token", "tok", "--max-attempts", "50",
            "--db", "sqlite:" + (work_ / "chaos.db").string()};
  }

  bool start_server(int port = 0) {
    server_ = std::make_unique<Server>(work_, server_args(), port,
                                       "serve-" + std::to_string(generation_++));
    return server_->ok();
  }

  void start_agent(size_t slot) {
    std::string name = "chaos-" + std::to_string(slot) + "-" + std::to_string(generation_++);
    auto p = start_boxcar({"agent", "--server", server_->url(), "--token", "tok", "--data",
                           (work_ / name).string(), "--name", name, "--executor", "host",
                           "--concurrency", "3", "--allow-local-repos"},
                          work_, name);
    if (agents_.size() <= slot) agents_.resize(slot + 1);
    agents_[slot] = std::move(p);
  }

  // SIGKILL one of the server (0) and the agents (1, 2), then start it again.
  void kill_and_restart(int victim) {
    if (victim == 0) {
      int port = server_->port();
      server_->process().signal(SIGKILL);
      server_->process().wait(10s);
      server_.reset();
      start_server(port);
    } else {
      auto& agent = agents_[victim - 1];
      agent->signal(SIGKILL);
      agent->wait(10s);
      start_agent(victim - 1);
    }
  }

  Server& server() { return *server_; }
  std::string describe() const {
    std::string out;
    for (const auto& a : agents_) out += a->describe();
    return out + (server_ ? server_->process().describe() : "");
  }

 private:
  fs::path work_;
  int generation_ = 0;
  std::unique_ptr<Server> server_;
  std::vector<std::unique_ptr<Process>> agents_;
};

TEST(ChaosKillsServersAndAgents, EveryJobEndsOnceWithItsWholeLog) {
  const int jobs = env_int("BOXCAR_CHAOS_JOBS", kJobs);
  const uint32_t seed = static_cast<uint32_t>(env_int("BOXCAR_CHAOS_SEED", kSeed));
  std::mt19937 rng(seed);
  TempDir work;
  std::string pipeline = "version = 1\n";
  for (const char* step : {"a", "b"}) {
    pipeline += std::string("[[step]]\nname = \"") + step + "\"\nrun = 'for i in $(seq 1 " +
                std::to_string(kLinesPerStep) + "); do echo \"" + step +
                "-line-$i of job $BOXCAR_JOB_ID\"; sleep 0.02; done'\n";
  }
  make_git_repo(work / "repo", pipeline);

  Chaos chaos(work.path());
  ASSERT_TRUE(chaos.start_server());
  chaos.start_agent(0);
  chaos.start_agent(1);
  std::set<long> ids;
  for (int i = 0; i < jobs; ++i) {
    long id = chaos.server().submit({{"repo", (work / "repo").string()}});
    ASSERT_GT(id, 0) << chaos.describe();
    ids.insert(id);
  }

  // Kill something every 0.3-1.2 s (seeded) until kKills kills are done, then let it finish.
  std::vector<json::object> listed;
  int kills = 0;
  auto all_final = [&] {
    listed = chaos.server().jobs("?limit=1000");
    return listed.size() == ids.size() &&
           std::all_of(listed.begin(), listed.end(),
                       [](const json::object& j) { return is_final_state(str(j, "state")); });
  };
  auto deadline = std::chrono::steady_clock::now() + 240s;
  while (kills < kKills && std::chrono::steady_clock::now() < deadline && !all_final()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    int victim = static_cast<int>(rng() % 3);
    chaos.kill_and_restart(victim);
    ASSERT_TRUE(victim != 0 || chaos.server().ok()) << chaos.describe();
    ++kills;
  }
  ASSERT_TRUE(wait_until(all_final, 240s, "every job is final")) << chaos.describe();

  // Every job once, none lost, none extra; all succeeded.
  std::set<long> seen;
  std::map<long, int> attempts;
  for (const auto& j : listed) {
    long id = num(j, "id");
    EXPECT_TRUE(seen.insert(id).second) << "job listed twice: " << json::serialize(j);
    EXPECT_EQ(str(j, "state"), "success") << json::serialize(j) << chaos.server().logs(id);
    attempts[id] = static_cast<int>(num(j, "attempt"));
  }
  EXPECT_EQ(seen, ids);

  int rerun = 0;
  for (long id : ids) {
    std::string log = chaos.server().logs(id);
    std::string last = final_attempt(log);
    for (const char* step : {"a", "b"}) {
      for (int i = 1; i <= kLinesPerStep; ++i) {
        std::string line = std::string(step) + "-line-" + std::to_string(i) + " of job " +
                           std::to_string(id) + "\n";
        size_t at = last.find(line);
        EXPECT_NE(at, std::string::npos) << "job " << id << " lacks " << line << log;
        if (at != std::string::npos) {
          EXPECT_EQ(last.find(line, at + 1), std::string::npos)
              << "job " << id << " has twice " << line << log;
        }
      }
    }
    // No attempt stored a line twice (a retried upload is stored once).
    size_t from = 0;
    while (from < log.size()) {
      size_t note = log.find("boxcar: attempt ", from);
      std::string part = log.substr(from, note == std::string::npos ? std::string::npos : note - from);
      EXPECT_TRUE(repeated_lines(part).empty())
          << "job " << id << ": " << repeated_lines(part).front() << "\n" << log;
      if (note == std::string::npos) break;
      from = log.find('\n', note);
      from = from == std::string::npos ? log.size() : from + 1;
    }
    if (attempts[id] > 1) ++rerun;
  }
  std::printf("chaos: %d jobs, seed %u, %d kills, %d jobs needed more than one attempt\n", jobs,
              seed, kills, rerun);
}

}  // namespace
}  // namespace boxcar::service_test
