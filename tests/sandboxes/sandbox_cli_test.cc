// `boxcar sandbox` end to end: one `boxcar serve` for the suite (two named API tokens, its
// in-process agent hosting the sandboxes), the CLI run as a user runs it. Each test pairs what
// must be refused with a control that shows the probe works.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "base/sha256.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

namespace json = boost::json;

const char* const kTokenA = "sandbox-token-a-0123456789abcdef";
const char* const kTokenB = "sandbox-token-b-0123456789abcdef";

class SandboxCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new TempDir();
    write_file(*work_ / "tokens.toml",
               "[[token]]\nname = \"alice\"\nsha256 = \"" + sha256_hex(kTokenA) +
                   "\"\nscopes = [\"read\", \"write\", \"sandboxes\"]\n\n"
                   "[[token]]\nname = \"bob\"\nsha256 = \"" + sha256_hex(kTokenB) +
                   "\"\nscopes = [\"read\", \"write\", \"sandboxes\"]\n");
    // The harness gives serve --allow-local-repos: the git test checks out a repository it makes.
    server_ = new Server(work_->path(), {"--api-tokens", (*work_ / "tokens.toml").string()});
    if (!server_->ok()) return;
    // The in-process agent offers its data plane with its first sync, just after serve is up:
    // until then a create is 503 (no agent can host a sandbox), as it would be for a user.
    auto created = cli({"sandbox", "create", "--name", "suite"});
    for (int i = 0; i < 100 && created.exit_code != 0 && created.err.find("no agent") != std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      created = cli({"sandbox", "create", "--name", "suite"});
    }
    if (created.exit_code == 0) {
      id_ = created.out;
      while (!id_.empty() && id_.back() == '\n') id_.pop_back();
    } else {
      ADD_FAILURE() << "create: " << created.exit_code << " " << created.err;
    }
  }
  static void TearDownTestSuite() {
    // Deleted and stopped as a user would, so the agent tears its sandboxes down (mounts,
    // cgroups) instead of leaving them to the next start's crash cleanup.
    if (server_ && server_->ok()) {
      if (!id_.empty()) cli({"sandbox", "rm", id_});
      server_->process().signal(SIGTERM);
      server_->process().wait(std::chrono::seconds(30));
    }
    delete server_;
    delete work_;
    server_ = nullptr;
    work_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ && server_->ok());
    ASSERT_FALSE(id_.empty()) << "the suite's sandbox was not created";
  }

  // `boxcar ARGS` as the user holding `token`.
  static CommandResult cli(const std::vector<std::string>& args, const std::string& token = kTokenA) {
    return run_boxcar(args, work_->path(), {"BOXCAR_SERVER=" + server_->url(), "BOXCAR_API_TOKEN=" + token});
  }
  // A shell line with $BOXCAR, $BOXCAR_SERVER and $BOXCAR_API_TOKEN set (pipes into the CLI).
  static CommandResult shell(const std::string& line) {
    return run_command({"/bin/sh", "-c", line}, work_->path(),
                       child_env(work_->path(), {"BOXCAR=" + boxcar_binary(), "BOXCAR_SERVER=" + server_->url(),
                                                 "BOXCAR_API_TOKEN=" + std::string(kTokenA)}));
  }
  static std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }

  static TempDir* work_;
  static Server* server_;
  static std::string id_;
};

TempDir* SandboxCli::work_ = nullptr;
Server* SandboxCli::server_ = nullptr;
std::string SandboxCli::id_;

TEST_F(SandboxCli, ExecPassesTheCommandsExitCodeAndOutputThrough) {
  auto ok = cli({"sandbox", "exec", id_, "--", "python3", "-c", "print(6*7)"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "42\n");
  auto failed = cli({"sandbox", "exec", id_, "--sh", "echo oops >&2; exit 7"});
  EXPECT_EQ(failed.exit_code, 7);
  EXPECT_EQ(failed.err, "oops\n");
  auto signaled = cli({"sandbox", "exec", id_, "--sh", "kill -TERM $$"});
  EXPECT_EQ(signaled.exit_code, 128 + 15) << signaled.err;
  auto timed_out = cli({"sandbox", "exec", id_, "--timeout", "1s", "--", "sleep", "30"});
  EXPECT_EQ(timed_out.exit_code, 124) << timed_out.err;
}

TEST_F(SandboxCli, ExecWithIReadsOurStdinAndWithoutItNothing) {
  auto piped = shell("printf 'hello\\nworld' | \"$BOXCAR\" sandbox exec -i " + id_ + " -- tr a-z A-Z");
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, "HELLO\nWORLD");
  // Control: without -i the command's stdin is empty, even with ours full.
  auto closed = shell("printf 'hello' | \"$BOXCAR\" sandbox exec " + id_ + " -- wc -c");
  EXPECT_EQ(closed.exit_code, 0) << closed.err;
  EXPECT_EQ(trimmed(closed.out), "0");
}

TEST_F(SandboxCli, CopyBothWaysKeepsA20MiBFileByteForByte) {
  std::string bytes(20u << 20, '\0');
  std::mt19937_64 rng(16);
  for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&bytes[i], &v, 8);
  }
  write_file(*work_ / "big.bin", bytes);
  auto up = cli({"sandbox", "cp", (*work_ / "big.bin").string(), id_ + ":/workspace/in/big.bin"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(up.err, "") << "no progress bar when stderr is not a terminal";
  auto inside = cli({"sandbox", "exec", id_, "--", "sha256sum", "/workspace/in/big.bin"});
  ASSERT_EQ(inside.exit_code, 0) << inside.err;
  EXPECT_EQ(inside.out.substr(0, 64), sha256_hex(bytes));
  auto down = cli({"sandbox", "cp", id_ + ":/workspace/in/big.bin", (*work_ / "back.bin").string()});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_TRUE(read_file(*work_ / "back.bin") == bytes) << "the file came back changed";
  // A missing source is a clear 2, and leaves no partial file behind.
  auto missing = cli({"sandbox", "cp", id_ + ":/workspace/nope", (*work_ / "nope").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_FALSE(fs::exists(*work_ / "nope"));
}

TEST_F(SandboxCli, WatchPrintsOneLinePerChangeUntilThePathGoes) {
  ASSERT_EQ(cli({"sandbox", "exec", id_, "--sh", "mkdir -p /workspace/cw"}).exit_code, 0);
  // The watch says "watching" on stderr once it is in place; the changes come after it.
  auto r = shell("$BOXCAR sandbox watch " + id_ + " /workspace/cw --exclude '*.tmp' >out 2>err & pid=$!; "
                 "i=0; until grep -q watching err || [ $i -gt 400 ]; do sleep 0.05; i=$((i+1)); done; "
                 "$BOXCAR sandbox exec " + id_ + " --sh 'echo x > /workspace/cw/a.txt; touch /workspace/cw/b.tmp; "
                 "rm -rf /workspace/cw'; wait $pid; echo \"exit $?\"; cat out");
  EXPECT_NE(r.out.find("exit 0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("create    /workspace/cw/a.txt\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("modify    /workspace/cw/a.txt\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("b.tmp"), std::string::npos) << "excluded: " << r.out;
  auto bad = cli({"sandbox", "watch", id_, "/workspace/../etc"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(SandboxCli, SpawnLogsWaitAndKillAProcess) {
  auto spawned = cli({"sandbox", "spawn", id_, "--id", "ticker", "--sh", "echo ready; while :; do sleep 1; done"});
  ASSERT_EQ(spawned.exit_code, 0) << spawned.err;
  EXPECT_EQ(trimmed(spawned.out), "ticker");
  auto ready = cli({"sandbox", "wait", id_, "ticker", "--log", "rea.y", "--timeout", "20s"});
  EXPECT_EQ(ready.exit_code, 0) << ready.err;
  EXPECT_EQ(trimmed(ready.out), "ready");
  auto ps = cli({"sandbox", "ps", id_});
  EXPECT_NE(ps.out.find("ticker"), std::string::npos) << ps.out;
  auto killed = cli({"sandbox", "kill", id_, "ticker"});
  EXPECT_EQ(killed.exit_code, 0) << killed.err;
  // The process is over: -f replays its output and ends with its exit.
  auto logs = cli({"sandbox", "logs", "-f", id_, "ticker"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "ready\n");
  auto gone = cli({"sandbox", "wait", id_, "ticker", "--log", "never", "--timeout", "2s"});
  EXPECT_EQ(gone.exit_code, 1) << "a wait that cannot be met any more: " << gone.err;
  auto unknown = cli({"sandbox", "logs", id_, "no-such-process"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
}

TEST_F(SandboxCli, AnExposedPortIsReachableThroughThePreviewProxyUntilUnexposed) {
  ASSERT_EQ(cli({"sandbox", "exec", id_, "--sh", "mkdir -p /workspace/site && echo hi-from-sandbox > /workspace/site/index.html"})
                .exit_code,
            0);
  auto web = cli({"sandbox", "spawn", id_, "--id", "web", "--cwd", "/workspace/site", "--", "python3", "-m",
                  "http.server", "8000"});
  ASSERT_EQ(web.exit_code, 0) << web.err;
  auto up = cli({"sandbox", "wait", id_, "web", "--port", "8000", "--http", "/", "--timeout", "20s"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto exposed = cli({"sandbox", "expose", id_, "8000", "--json"});
  ASSERT_EQ(exposed.exit_code, 0) << exposed.err;
  auto port = json::parse(exposed.out).as_object();
  std::string path_url = std::string(port.at("path_url").as_string());
  // http://127.0.0.1:PPORT/preview/TOKEN/
  auto authority = path_url.substr(7, path_url.find('/', 7) - 7);
  int pport = std::stoi(authority.substr(authority.find(':') + 1));
  std::string path = path_url.substr(path_url.find('/', 7));
  auto page = http_request(pport, "GET", path + "index.html");
  EXPECT_EQ(page.status, 200) << page.error;
  EXPECT_EQ(page.body, "hi-from-sandbox\n");
  auto listed = cli({"sandbox", "ports", id_});
  EXPECT_NE(listed.out.find("8000"), std::string::npos) << listed.out;
  ASSERT_EQ(cli({"sandbox", "unexpose", id_, "8000"}).exit_code, 0);
  EXPECT_EQ(http_request(pport, "GET", path + "index.html").status, 404) << "the URL is withdrawn";
  cli({"sandbox", "kill", id_, "web"});
}

// The server's view follows the agent's sync: wait (bounded) until `get` shows `want`.
std::string state_of(const std::function<CommandResult()>& get, const std::string& want) {
  std::string state;
  for (int i = 0; i < 100; ++i) {
    auto got = get();
    if (got.exit_code == 0) state = std::string(json::parse(got.out).as_object().at("state").as_string());
    if (state == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return state;
}

TEST_F(SandboxCli, PauseShowsInGetAndAnExecOrAPreviewHitWakesIt) {
  auto get = [&] { return cli({"sandbox", "get", id_, "--json"}); };
  ASSERT_EQ(cli({"sandbox", "exec", id_, "--sh", "mkdir -p /workspace/p && echo awake > /workspace/p/index.html"}).exit_code, 0);
  ASSERT_EQ(cli({"sandbox", "spawn", id_, "--id", "pweb", "--cwd", "/workspace/p", "--", "python3", "-m", "http.server",
                 "8001"}).exit_code, 0);
  ASSERT_EQ(cli({"sandbox", "wait", id_, "pweb", "--port", "8001", "--http", "/", "--timeout", "20s"}).exit_code, 0);
  auto exposed = cli({"sandbox", "expose", id_, "8001", "--json"});
  ASSERT_EQ(exposed.exit_code, 0) << exposed.err;
  std::string path_url = std::string(json::parse(exposed.out).as_object().at("path_url").as_string());
  auto authority = path_url.substr(7, path_url.find('/', 7) - 7);
  int pport = std::stoi(authority.substr(authority.find(':') + 1));
  std::string path = path_url.substr(path_url.find('/', 7));

  auto paused = cli({"sandbox", "pause", id_, "--json"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(json::parse(paused.out).as_object().at("state"), "paused");
  EXPECT_EQ(state_of(get, "paused"), "paused");
  // Metrics answer from the cgroups and leave it paused.
  auto metrics = cli({"sandbox", "metrics", id_, "--json"});
  ASSERT_EQ(metrics.exit_code, 0) << metrics.err;
  EXPECT_GE(json::parse(metrics.out).as_object().at("pids").to_number<int64_t>(), 2);
  EXPECT_EQ(json::parse(get().out).as_object().at("state"), "paused");
  // A preview hit thaws it before connecting (a frozen server would never answer).
  auto page = http_request(pport, "GET", path + "index.html");
  EXPECT_EQ(page.status, 200) << page.error;
  EXPECT_EQ(page.body, "awake\n");
  EXPECT_EQ(state_of(get, "running"), "running");

  // An exec thaws it too.
  ASSERT_EQ(cli({"sandbox", "pause", id_}).exit_code, 0);
  auto ran = cli({"sandbox", "exec", id_, "--", "cat", "/workspace/p/index.html"});
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(ran.out, "awake\n");

  // Stop ends the processes and keeps /workspace; resume starts it again.
  auto stopped = cli({"sandbox", "stop", id_});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(state_of(get, "stopped"), "stopped");
  auto resumed = cli({"sandbox", "resume", id_});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("running"), std::string::npos) << resumed.out;
  EXPECT_EQ(cli({"sandbox", "exec", id_, "--", "cat", "/workspace/p/index.html"}).out, "awake\n");
  // Another token's user cannot pause it (control: the owner just did).
  EXPECT_EQ(cli({"sandbox", "pause", id_}, kTokenB).exit_code, 2);
  cli({"sandbox", "unexpose", id_, "8001"});
}

TEST_F(SandboxCli, AnotherTokensSandboxIsNotFoundWhileItsOwnersIs) {
  auto owner = cli({"sandbox", "get", id_});
  EXPECT_EQ(owner.exit_code, 0) << owner.err;
  auto other = cli({"sandbox", "get", id_}, kTokenB);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("no such sandbox"), std::string::npos) << other.err;
  auto other_exec = cli({"sandbox", "exec", id_, "--", "true"}, kTokenB);
  EXPECT_EQ(other_exec.exit_code, 2) << other_exec.err;
  // The API itself: 404 for bob (existence does not leak), 200 for alice.
  auto as_b = http_request(server_->port(), "GET", "/api/v1/sandboxes/" + id_,
                           {{"Authorization", std::string("Bearer ") + kTokenB}});
  EXPECT_EQ(as_b.status, 404) << as_b.body;
  auto as_a = http_request(server_->port(), "GET", "/api/v1/sandboxes/" + id_,
                           {{"Authorization", std::string("Bearer ") + kTokenA}});
  EXPECT_EQ(as_a.status, 200) << as_a.body;
  auto b_list = cli({"sandbox", "list", "--json"}, kTokenB);
  ASSERT_EQ(b_list.exit_code, 0) << b_list.err;
  EXPECT_EQ(b_list.out.find(id_), std::string::npos) << "bob's list shows alice's sandbox";
}

TEST_F(SandboxCli, JsonOutputParses) {
  auto list = cli({"sandbox", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto sandboxes = json::parse(list.out).as_object().at("sandboxes").as_array();
  bool found = false;
  for (const auto& s : sandboxes) found = found || s.as_object().at("id").as_string() == id_;
  EXPECT_TRUE(found) << list.out;
  auto exec = cli({"sandbox", "exec", id_, "--json", "--sh", "echo hi; exit 3"});
  EXPECT_EQ(exec.exit_code, 3);
  auto r = json::parse(exec.out).as_object();
  EXPECT_EQ(r.at("stdout").as_string(), "hi\n");
  EXPECT_EQ(r.at("outcome").as_string(), "failed");
  auto missing = cli({"sandbox", "get", "aaaaaaaaaaaa", "--json"});
  EXPECT_EQ(missing.exit_code, 2);
  auto err = json::parse(missing.out).as_object();
  EXPECT_EQ(err.at("code").as_string(), "sandbox_not_found");
  EXPECT_EQ(err.at("exit_code").as_int64(), 2);
}

TEST_F(SandboxCli, FilesVerbsAndRemovingTheSandbox) {
  ASSERT_EQ(cli({"sandbox", "mkdir", "-p", id_, "/workspace/d/e"}).exit_code, 0);
  ASSERT_EQ(cli({"sandbox", "exec", id_, "--sh", "echo text > /workspace/d/e/f.txt"}).exit_code, 0);
  auto ls = cli({"sandbox", "ls", id_, "/workspace/d/e"});
  EXPECT_EQ(ls.out, "f.txt\n") << ls.err;
  ASSERT_EQ(cli({"sandbox", "mv", id_, "/workspace/d/e/f.txt", "/workspace/d/g.txt"}).exit_code, 0);
  auto cat = cli({"sandbox", "cat", id_, "/workspace/d/g.txt"});
  EXPECT_EQ(cat.out, "text\n") << cat.err;
  auto dir_without_r = cli({"sandbox", "rm", id_, "/workspace/d"});
  EXPECT_EQ(dir_without_r.exit_code, 2) << "a directory needs -r";
  EXPECT_EQ(cli({"sandbox", "rm", "-r", id_, "/workspace/d"}).exit_code, 0);
  EXPECT_EQ(cli({"sandbox", "cat", id_, "/workspace/d/g.txt"}).exit_code, 2);

  auto other = cli({"sandbox", "create"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  std::string gone = trimmed(other.out);
  EXPECT_EQ(cli({"sandbox", "rm", gone}).exit_code, 0);
  auto after = cli({"sandbox", "get", gone});
  EXPECT_EQ(after.exit_code, 2) << "a deleted sandbox is not found";
}

TEST_F(SandboxCli, GitChecksOutARepositoryAndRefusesALoopbackHost) {
  auto made = shell("git init -q -b main repo && cd repo && echo hello > a.txt && git add a.txt && "
                    "git -c user.name=t -c user.email=t@example.com commit -qm one");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::string url = "file://" + (work_->path() / "repo").string();
  auto got = cli({"sandbox", "git", id_, url, "--dir", "/workspace/cloned"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_NE(got.out.find("/workspace/cloned"), std::string::npos) << got.out;
  EXPECT_EQ(cli({"sandbox", "cat", id_, "/workspace/cloned/a.txt"}).out, "hello\n");
  auto again = cli({"sandbox", "git", id_, url, "--dir", "/workspace/cloned"});
  EXPECT_NE(again.exit_code, 0) << "a non-empty dir needs --replace";
  EXPECT_EQ(cli({"sandbox", "git", id_, url, "--dir", "/workspace/cloned", "--replace"}).exit_code, 0);

  // The server itself is on loopback: the SSRF guard refuses it, naming the flag that allows it.
  auto loopback = cli({"sandbox", "git", id_, server_->url() + "/x.git"});
  EXPECT_NE(loopback.exit_code, 0);
  EXPECT_NE(loopback.err.find("--sandbox-git-allow-private"), std::string::npos) << loopback.err;
}

TEST_F(SandboxCli, BadUsageExits2WithDidYouMeanAndAnUnreachableServer3) {
  auto typo = cli({"sandbox", "exce", id_, "--", "true"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("did you mean \"exec\"?"), std::string::npos) << typo.err;
  auto flag = cli({"sandbox", "create", "--memroy", "1GiB"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_NE(flag.err.find("did you mean --memory?"), std::string::npos) << flag.err;
  auto unreachable = run_boxcar({"sandbox", "list", "--server", "http://127.0.0.1:1"}, work_->path(),
                                {"BOXCAR_API_TOKEN=x"});
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.err;
  EXPECT_NE(unreachable.err.find("cannot reach the boxcar server"), std::string::npos) << unreachable.err;
  // A bad body field, answered by the server: 2 and its message.
  auto bad = cli({"sandbox", "create", "--memory", "lots"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

}  // namespace
}  // namespace boxcar::service_test
