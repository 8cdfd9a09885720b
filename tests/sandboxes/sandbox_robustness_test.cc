// The sandbox service when an agent dies and when many sandboxes come and go, end to end: a
// real `boxcar serve` (no in-process agent) and a separate `boxcar agent` process hosting
// native sandboxes, on SQLite and on PostgreSQL. The agent syncs every 200 ms and the server
// reads it lost after 1 s (--sandbox-sync-interval, --sandbox-lost-after), so a death shows
// at once; each "lost" or "gone" is waited for by polling, never by sleeping a set time.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/service/harness.h"
#include "testing/postgres_server.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

const char* const kApiToken = "robustness-api-token-0123456789";

// One PostgreSQL server for the binary, started by the first test that needs it.
testing::PostgresServer* postgres() {
  static std::unique_ptr<testing::PostgresServer> pg = [] {
    auto started = testing::PostgresServer::start();
    return started ? std::move(*started) : nullptr;
  }();
  return pg.get();
}

class SandboxRobustness : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
    std::vector<std::string> args = {"--agents", "0", "--agent-token", "tok", "--api-token", kApiToken,
                                     "--sandbox-lost-after", "1s"};
    if (GetParam() == "postgres") {
      auto* pg = postgres();
      ASSERT_TRUE(pg) << "no PostgreSQL server (make test installs the postgresql package)";
      static int databases = 0;
      auto url = pg->create_database("robust_" + std::to_string(++databases));
      ASSERT_TRUE(url) << url.error().message;
      args.insert(args.end(), {"--db", *url});
    }
    server_ = std::make_unique<Server>(work_.path(), args);
    ASSERT_TRUE(server_->ok());
    start_agent();
  }
  void TearDown() override {
    if (agent_ && agent_->running()) {
      agent_->signal(SIGTERM);
      agent_->wait(std::chrono::seconds(30));
    }
  }

  // The same data directory and name each time, as a restarted agent would have.
  void start_agent() {
    agent_ = start_boxcar({"agent", "--server", server_->url(), "--token", "tok", "--data",
                           (work_ / "agent").string(), "--name", "sandboxer", "--concurrency", "0",
                           "--executor", "native", "--sandbox-slots", "60", "--sandbox-sync-interval",
                           "200ms"},
                          work_.path(), "agent");
  }
  HttpResult api(const std::string& method, const std::string& target, const std::string& body = "") {
    return server_->api(method, target, body);
  }
  // Creates a sandbox once the agent has offered its data plane; "" with a failure recorded.
  std::string create(const std::string& network = "job") {
    std::string body = json::serialize(json::object{{"network", network}});
    HttpResult r;
    bool made = wait_until(
        [&] {
          r = api("POST", "/api/v1/sandboxes", body);
          return r.status != 503;  // 503: no agent has offered its data plane yet
        },
        30s, "a create the agent can take");
    EXPECT_TRUE(made && r.status == 201) << r.status << " " << r.body << "\n" << agent_->describe();
    if (r.status != 201) return "";
    return std::string(json::parse(r.body).at("id").as_string());
  }
  std::string state(const std::string& id) {
    auto r = api("GET", "/api/v1/sandboxes/" + id);
    if (r.status != 200) return "status " + std::to_string(r.status);
    return std::string(json::parse(r.body).at("state").as_string());
  }
  HttpResult exec(const std::string& id, const std::string& command) {
    return api("POST", "/api/v1/sandboxes/" + id + "/exec", json::serialize(json::object{{"command", command}}));
  }
  static std::string out(const HttpResult& r) {
    auto v = json::parse(r.body);
    return v.is_object() && v.as_object().contains("stdout") ? std::string(v.at("stdout").as_string()) : "";
  }

  TempDir work_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Process> agent_;
};

// Host processes whose command line holds `marker` (the sandboxes' processes are the host's
// too, in other namespaces).
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(e.path() / "cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(marker) != std::string::npos) found.push_back(std::stoi(name));
  }
  return found;
}

TEST_P(SandboxRobustness, AKilledAgentsSandboxIsLostThenBackStoppedWithItsWorkspaceAndNoOldProcess) {
  std::string id = create();
  ASSERT_FALSE(id.empty());
  auto wrote = exec(id, "echo kept-across-restarts > /workspace/note.txt");
  ASSERT_EQ(wrote.status, 200) << wrote.body;
  const std::string marker = "sleep 4242.5";
  auto spawned = api("POST", "/api/v1/sandboxes/" + id + "/processes",
                     json::serialize(json::object{{"id", "sleeper"}, {"command", marker}}));
  ASSERT_EQ(spawned.status, 201) << spawned.body;
  ASSERT_TRUE(wait_until([&] { return !processes_with(marker).empty(); }, 10s, "the sleeper runs"));
  EXPECT_EQ(state(id), "running");  // control: a live agent's sandbox is not lost

  agent_->signal(SIGKILL);
  ASSERT_TRUE(agent_->wait(10s));
  ASSERT_TRUE(wait_until([&] { return state(id) == "lost"; }, 10s, "the sandbox reads lost")) << state(id);
  auto refused = exec(id, "true");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("sandbox_unavailable"), std::string::npos) << refused.body;
  auto patch = api("PATCH", "/api/v1/sandboxes/" + id, R"({"keep_alive":true})");
  EXPECT_EQ(patch.status, 503) << patch.body;  // the timers cannot reach a lost agent

  start_agent();
  ASSERT_TRUE(wait_until([&] { return state(id) != "lost"; }, 30s, "the restarted agent re-adopts it"))
      << agent_->describe();
  std::string back = state(id);
  EXPECT_TRUE(back == "stopped" || back == "running") << back;
  auto note = exec(id, "cat /workspace/note.txt");
  ASSERT_EQ(note.status, 200) << note.body;
  EXPECT_EQ(out(note), "kept-across-restarts\n") << note.body;
  EXPECT_TRUE(wait_until([&] { return processes_with(marker).empty(); }, 10s, "the old sleeper is gone"));
  auto ps = api("GET", "/api/v1/sandboxes/" + id + "/processes?status=running");
  EXPECT_EQ(ps.body.find("sleeper"), std::string::npos) << ps.body;
  // The agent is back: the timers reach it again (the control of the 503 above).
  auto patched = api("PATCH", "/api/v1/sandboxes/" + id, R"({"keep_alive":true})");
  EXPECT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(api("DELETE", "/api/v1/sandboxes/" + id).status, 204);
}

// What sandboxes leave on the host, as far as one agent process (`pid`, data dir `data`) is
// concerned: other engineers' and tests' agents on this machine make their own, so everything
// here is attributed to this agent.
struct HostResidue {
  std::vector<std::string> mounts;  // mountinfo lines naming the agent's data directory
  size_t cgroups = 0;               // cgroups below the agent instance's directories
  std::set<std::string> netns;      // network namespaces its processes and fds hold, not its own
  std::set<int> slots;              // job-network slots it holds (flock on slot-<n>.lock)
  std::set<std::string> tables;     // nft tables boxcar_job_<n> that exist, of `watched` slots
};

std::string link_of(const fs::path& p) {
  std::error_code ec;
  auto target = fs::read_symlink(p, ec);
  return ec ? "" : target.string();
}

HostResidue residue(pid_t pid, const fs::path& data, const std::set<int>& watched) {
  HostResidue r;
  std::istringstream mountinfo(read_file("/proc/self/mountinfo"));
  for (std::string line; std::getline(mountinfo, line);) {
    if (line.find(data.string()) != std::string::npos) r.mounts.push_back(line);
  }
  // The agent instance's cgroups are <mount>/<its cgroup>/<parent>/<pid>-<start time>/.
  std::string instance = std::to_string(pid) + "-";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 6) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_directory(ec) || !it->path().filename().string().starts_with(instance)) continue;
    std::error_code sub;
    for (auto c = fs::recursive_directory_iterator(it->path(), sub); !sub && c != fs::recursive_directory_iterator();
         c.increment(sub)) {
      if (c->is_directory(sub)) ++r.cgroups;
    }
    it.disable_recursion_pending();
  }
  // The agent's process tree, by parent pid.
  std::set<pid_t> tree = {pid};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string line = read_file(e.path() / "stat");
      auto close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(line.substr(close + 2));
      char st;
      pid_t ppid = 0;
      rest >> st >> ppid;
      if (tree.contains(ppid) && tree.insert(std::stoi(name)).second) grew = true;
    }
  }
  std::string own = link_of("/proc/" + std::to_string(pid) + "/ns/net");
  for (pid_t p : tree) {
    fs::path proc = "/proc/" + std::to_string(p);
    if (auto ns = link_of(proc / "ns/net"); !ns.empty() && ns != own) r.netns.insert(ns);
    for (const auto& fd : fs::directory_iterator(proc / "fd", ec)) {
      if (auto l = link_of(fd.path()); l.starts_with("net:[") && l != own) r.netns.insert(l);
    }
  }
  // Slots: the lock files whose flock this agent holds (/proc/locks names pid and inode).
  std::map<uint64_t, int> slot_of_inode;
  for (const auto& e : fs::directory_iterator("/run/boxcar/network", ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with("slot-") || !name.ends_with(".lock")) continue;
    struct stat st{};
    if (::stat(e.path().c_str(), &st) == 0) slot_of_inode[st.st_ino] = std::atoi(name.c_str() + 5);
  }
  std::istringstream locks(read_file("/proc/locks"));
  for (std::string line; std::getline(locks, line);) {
    std::istringstream f(line);
    std::string n, kind, mode, rw, dev;
    pid_t holder = 0;
    f >> n >> kind >> mode >> rw >> holder >> dev;
    if (kind != "FLOCK" || !tree.contains(holder)) continue;
    auto inode = std::strtoull(dev.substr(dev.rfind(':') + 1).c_str(), nullptr, 10);
    if (auto it = slot_of_inode.find(inode); it != slot_of_inode.end()) r.slots.insert(it->second);
  }
  std::string tables = run_command({"/usr/sbin/nft", "list", "tables"}).out;
  for (int slot : watched) {
    std::string t = "boxcar_job_" + std::to_string(slot);
    if ((tables + "\n").find("inet " + t + "\n") != std::string::npos) r.tables.insert(t);
  }
  return r;
}

TEST_P(SandboxRobustness, FiftySandboxesCreatedAndDeletedLeaveNoMountCgroupNetnsOrNftTable) {
  std::string first = create();  // the agent is up and hosting
  ASSERT_FALSE(first.empty());
  ASSERT_EQ(api("DELETE", "/api/v1/sandboxes/" + first).status, 204);
  fs::path data = work_ / "agent";
  HostResidue before;
  ASSERT_TRUE(wait_until(
      [&] {
        before = residue(agent_->pid(), data, {});
        return before.netns.empty() && before.slots.empty();
      },
      20s, "the first sandbox is gone"));
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    std::string id = create(i % 2 == 0 ? "job" : "none");
    ASSERT_FALSE(id.empty()) << "sandbox " << i;
    ids.push_back(id);
  }
  // Control: while they exist, the probes see them.
  HostResidue during = residue(agent_->pid(), data, {});
  during = residue(agent_->pid(), data, during.slots);
  EXPECT_GE(during.netns.size(), 50u) << "each sandbox has a network namespace";
  EXPECT_GE(during.slots.size(), 25u) << "each \"job\" network holds a slot";
  EXPECT_EQ(during.tables.size(), during.slots.size()) << "and an nft table";
  EXPECT_GT(during.cgroups, before.cgroups);
  EXPECT_GE(during.mounts.size(), before.mounts.size());

  for (const auto& id : ids) ASSERT_EQ(api("DELETE", "/api/v1/sandboxes/" + id).status, 204) << id;
  HostResidue after;
  bool clean = wait_until(
      [&] {
        after = residue(agent_->pid(), data, during.slots);
        return after.netns.empty() && after.slots.empty() && after.cgroups <= before.cgroups &&
               after.mounts == before.mounts;
      },
      30s, "every sandbox's namespaces, slots, cgroups and mounts are gone");
  EXPECT_TRUE(clean);
  EXPECT_EQ(after.netns.size(), 0u);
  EXPECT_EQ(after.slots.size(), 0u);
  EXPECT_LE(after.cgroups, before.cgroups);
  EXPECT_EQ(after.mounts, before.mounts);
  // A table of one of our slots may only exist when another process has claimed that slot since.
  for (int slot : during.slots) {
    if (!after.tables.contains("boxcar_job_" + std::to_string(slot))) continue;
    std::string lock = "/run/boxcar/network/slot-" + std::to_string(slot) + ".lock";
    EXPECT_EQ(run_command({"flock", "-n", lock, "true"}).exit_code, 1)
        << "boxcar_job_" << slot << " is left behind with nobody holding its slot";
  }
  auto listed = api("GET", "/api/v1/sandboxes");
  EXPECT_EQ(json::parse(listed.body).at("sandboxes").as_array().size(), 0u) << listed.body;
}

INSTANTIATE_TEST_SUITE_P(Stores, SandboxRobustness, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace boxcar::service_test
