// `boxcar run` end to end: scheduling, retries, timeouts, Ctrl-C, masking, logs, artifacts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <algorithm>
#include <fstream>
#include <iterator>

#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

std::map<std::string, boost::json::object> finished(const ProcessResult& r) {
  std::map<std::string, boost::json::object> out;
  for (const auto& e : r.events()) {
    if (e.at("event").as_string() == "step_finished") out[std::string(e.at("step").as_string())] = e;
  }
  return out;
}

std::string status_of(const ProcessResult& r, const std::string& step) {
  auto f = finished(r);
  if (!f.count(step)) return "(not finished)";
  return std::string(f[step].at("status").as_string());
}

// True when no live (non-zombie) process has this pid.
bool process_gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

TEST(RunTest, IndependentStepsStartInParallel) {
  // Each step waits for the other's marker: this passes only if both run at the same time.
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "a"
timeout = "60s"
run = "touch a.started; for i in $(seq 300); do [ -e b.started ] && exit 0; sleep 0.1; done; exit 1"
[[step]]
name = "b"
timeout = "60s"
run = "touch b.started; for i in $(seq 300); do [ -e a.started ] && exit 0; sleep 0.1; done; exit 1"
)");
  // The host executor: isolated steps never see each other's files (tests/cli/layers_test.cc).
  auto r = run_boxcar({"run", "--json", "--jobs", "2", "--executor", "host"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status_of(r, "a"), "success");
  EXPECT_EQ(status_of(r, "b"), "success");
}

// `needs = ["build (cc=fast)"]` waits for that one expansion only: "after-fast" must start while
// "build (cc=slow)" still runs, since the slow cell waits for its marker. The marker lives
// outside the workspace (host executor), so the steps' own workspace layers cannot hide it.
TEST(RunTest, OneCellNeedStartsBeforeTheOtherCellsEnd) {
  TempDir dir;
  std::string marker = (dir.path() / "after-fast.ran").string();
  dir.write("ws/.boxcar.toml", R"P(version = 1
[[step]]
name = "build"
timeout = "60s"
matrix = { cc = ["fast", "slow"] }
run = """
if [ ${matrix.cc} = slow ]; then
  for i in $(seq 600); do [ -e )P" + marker + R"P( ] && exit 0; sleep 0.1; done; exit 1
fi
"""
[[step]]
name = "after-fast"
needs = ["build (cc=fast)"]
run = "touch )P" + marker + R"P("
[[step]]
name = "after-all"
needs = ["build"]
run = "true"
)P");
  auto r = run_boxcar({"run", "--json", "--jobs", "3", "--executor", "host"}, dir.path() / "ws");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status_of(r, "build (cc=slow)"), "success") << r.out;
  EXPECT_EQ(status_of(r, "after-fast"), "success") << r.out;
  EXPECT_EQ(status_of(r, "after-all"), "success") << r.out;
  auto p = run_boxcar({"plan"}, dir.path() / "ws");
  EXPECT_NE(p.out.find("build (cc=fast)"), std::string::npos) << p.out;
}

// The default shell is bash with pipefail where the root has bash (the host's, here): a failure
// early in a pipe fails the step, and its summary says which shell ran. Control: the same script
// with shell = sh passes, as sh -e only looks at the pipe's last command.
TEST(RunTest, DefaultShellFailsOnAPipeFailure) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "piped"
run = "false | true"
[[step]]
name = "sh"
shell = ["/bin/sh", "-e", "-c"]
run = "false | true"
)");
  auto r = run_boxcar({"run", "--json"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(status_of(r, "piped"), "failed") << r.out;
  EXPECT_EQ(status_of(r, "sh"), "success") << r.out;
  EXPECT_NE(r.out.find(R"("step":"piped","status":"failed")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("shell":"/bin/bash --noprofile --norc -eo pipefail -c")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("shell":"/bin/sh -e -c")"), std::string::npos) << r.out;
  // Not bash with pipefail: the terminal's summary line says so.
  auto plain = run_boxcar({"run"}, dir.path());
  EXPECT_NE(plain.out.find("(shell: /bin/sh -e -c)"), std::string::npos) << plain.out;
}

TEST(RunTest, JobsOneRunsOneStepAtATime) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "a"
run = "echo a-start >> order; sleep 0.3; echo a-end >> order"
[[step]]
name = "b"
run = "echo b-start >> order; sleep 0.3; echo b-end >> order"
)");
  // The host executor: there the steps share the workspace, so both append to one file.
  auto r = run_boxcar({"run", "--json", "--jobs", "1", "--executor", "host"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(dir.read("order"), "a-start\na-end\nb-start\nb-end\n");
}

TEST(RunTest, RetryRunsAFailedStepAgain) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "flaky"
retry = 2
run = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo attempt $n; [ $n -ge 2 ]"
[[step]]
name = "never"
run = "echo nope; exit 4"
)");
  // The host executor keeps `count` between attempts; isolated executors give each attempt a
  // fresh layer of the workspace (tests/cli/layers_test.cc).
  auto r = run_boxcar({"run", "--json", "--executor", "host"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  auto f = finished(r);
  EXPECT_EQ(f["flaky"].at("status").as_string(), "success");
  EXPECT_EQ(f["flaky"].at("attempts").as_int64(), 2);
  EXPECT_EQ(f["never"].at("status").as_string(), "failed");
  EXPECT_EQ(f["never"].at("exit_code").as_int64(), 4);
  EXPECT_EQ(f["never"].at("attempts").as_int64(), 1);
  EXPECT_EQ(dir.read("count"), "2\n");
  // Each attempt keeps its own log.
  fs::path logs = latest_run(dir.path()) / "logs";
  EXPECT_NE(dir.read(fs::relative(logs / "flaky.log", dir.path())).find("attempt 1"), std::string::npos);
  EXPECT_NE(dir.read(fs::relative(logs / "flaky.attempt2.log", dir.path())).find("attempt 2"),
            std::string::npos);
}

TEST(RunTest, AllowFailureKeepsThePipelineGreen) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "lint"
allow_failure = true
run = "exit 1"
[[step]]
name = "after"
needs = ["lint"]
run = "echo still runs"
)");
  auto r = run_boxcar({"run", "--json"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(status_of(r, "lint"), "failed");
  EXPECT_EQ(status_of(r, "after"), "success");
}

// Live (non-zombie) processes on the host whose command line contains `marker`.
int live_processes_with(const std::string& marker) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(marker) == std::string::npos) continue;
    if (!process_gone(std::stoi(name))) ++n;
  }
  return n;
}

// A sleep duration no other process uses, so the test can find its processes by command line
// whichever pid namespace they ran in.
std::string unique_sleep() {
  return "7" + std::to_string(getpid() % 1000) + "." + std::to_string(rand() % 100000 + 1);
}

class KillTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = executor_unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(KillTest, TimeoutKillsDaemonizedChildren) {
  TempDir dir;
  std::string marker = unique_sleep();
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "daemons"
timeout = "1s"
grace = "1s"
run = """
setsid sh -c 'exec sleep MARK' &
(sh -c 'sleep MARK &' &)
sh -c 'trap "" TERM; while :; do sleep MARK; done' &
echo started
sleep MARK
"""
[[step]]
name = "after"
needs = ["daemons"]
run = "echo never"
)");
  std::string text = dir.read(".boxcar.toml");
  for (size_t p; (p = text.find("MARK")) != std::string::npos;) text.replace(p, 4, marker);
  dir.write(".boxcar.toml", text);
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("started"), std::string::npos);
  EXPECT_EQ(status_of(r, "daemons"), "timeout");
  EXPECT_EQ(status_of(r, "after"), "skipped");
  EXPECT_EQ(live_processes_with("sleep " + marker), 0) << "a daemon survived the timeout";
}

TEST_P(KillTest, CtrlCCancelsEverythingAndExits130) {
  TempDir dir;
  std::string marker = unique_sleep();
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "long"
grace = "1s"
run = "echo ready; trap '' TERM; sleep )" + marker + R"("
[[step]]
name = "later"
needs = ["long"]
run = "echo never"
)");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, dir.path(), {}, "ready");
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_EQ(status_of(r, "long"), "cancelled");
  EXPECT_EQ(status_of(r, "later"), "cancelled");
  EXPECT_EQ(live_processes_with("sleep " + marker), 0);
}

TEST_P(KillTest, ABackgroundProcessHoldingTheOutputDoesNotHangTheStep) {
  TempDir dir;
  std::string marker = unique_sleep();
  dir.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"bg\"\ntimeout = \"5m\"\nrun = \"sleep " +
                                marker + " & echo started\"\n");
  auto r = run_boxcar({"run", "--json", "--executor", GetParam()}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status_of(r, "bg"), "success");
  EXPECT_NE(r.out.find("started"), std::string::npos);
  EXPECT_EQ(live_processes_with("sleep " + marker), 0) << "the step's leftovers are killed";
}

TEST_P(KillTest, ServicesAreReadyBeforeTheScriptRuns) {
  TempDir dir;
  std::string p, p2;
  {
    HeldPort a(0), b(0);  // two distinct free ports, released for the services to take
    p = std::to_string(a.port());
    p2 = std::to_string(b.port());
  }
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "uses-web"
run = "python3 -c \"import urllib.request; print('status', urllib.request.urlopen('http://127.0.0.1:)" + p + R"(/').status)\""
[[step.service]]
name = "web"
run = "sleep 0.5; exec python3 -m http.server )" + p + R"( --bind 127.0.0.1"
ready = { tcp = )" + p + R"(, timeout = "60s" }

# A service without a ready check before one with it: each check has its own deadline.
[[step]]
name = "unchecked-first"
run = "echo mixed order ok"
[[step.service]]
name = "sidecar"
run = "sleep 1000"
[[step.service]]
name = "db"
run = "sleep 0.5; exec python3 -m http.server )" + p2 + R"( --bind 127.0.0.1"
ready = { tcp = )" + p2 + R"( }

[[step]]
name = "crashes"
run = "echo never"
[[step.service]]
name = "broken"
run = "exit 3"
ready = { tcp = 9 }

[[step]]
name = "never-ready"
run = "echo never"
[[step.service]]
name = "silent"
run = "sleep 1000"
ready = { tcp = 9, timeout = "1s" }
)");
  auto r = run_boxcar({"run", "--json", "--jobs", "1", "--executor", GetParam()}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto f = finished(r);
  EXPECT_EQ(f["uses-web"].at("status").as_string(), "success") << r.out;
  EXPECT_NE(r.out.find("status 200"), std::string::npos);
  EXPECT_EQ(f["unchecked-first"].at("status").as_string(), "success") << r.out;
  EXPECT_NE(r.out.find("mixed order ok"), std::string::npos);
  EXPECT_EQ(f["crashes"].at("status").as_string(), "failed");
  EXPECT_EQ(f["crashes"].at("reason").as_string(),
            "service \"broken\" exited (exit code 3) before the step's script ran");
  EXPECT_EQ(f["never-ready"].at("reason").as_string(), "service \"silent\" not ready after 1.0s");
  EXPECT_EQ(r.out.find("never"), r.out.find("never-ready")) << "no script ran after a bad service";
}

INSTANTIATE_TEST_SUITE_P(Executors, KillTest, ::testing::Values("host", "native", "oci"));

// --oci-runtime: refused with another executor and when it names nothing runnable, each with
// what to do; the control is the examples suite, which runs on --executor oci with runc.
TEST(RunTest, OciRuntimeFlagIsValidated) {
  TempDir dir;
  dir.write(".boxcar.toml", "version = 1\n[[step]]\nname = \"a\"\nrun = \"true\"\n");
  auto other = run_boxcar({"run", "--oci-runtime", "runc"}, dir.path());
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("--oci-runtime only applies to --executor oci"), std::string::npos) << other.err;
  auto not_file = run_boxcar({"run", "--executor", "oci", "--oci-runtime", "/nonexistent/runc"}, dir.path());
  EXPECT_EQ(not_file.exit_code, 2);
  EXPECT_NE(not_file.err.find("--oci-runtime: /nonexistent/runc is not an executable file"), std::string::npos)
      << not_file.err;
  if (::geteuid() != 0) return;  // below: the runtime is looked for once the host can run oci
  auto missing = run_boxcar({"run", "--executor", "oci", "--oci-runtime", "no-such-runtime-xyz"}, dir.path());
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("\"no-such-runtime-xyz\" not found in PATH"), std::string::npos) << missing.err;
  auto typo = run_boxcar({"run", "--executor", "occi"}, dir.path());
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("did you mean \"oci\""), std::string::npos) << typo.err;
}

TEST(RunTest, SecretsAreMaskedInOutputAndLogs) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "leak"
secrets = ["TOKEN", "API_KEY"]
run = """
echo "token is $TOKEN"
printf '%s' "$TOKEN" | base64
printf 'split: hunt'; sleep 0.3; printf 'er2-secret-value\n'
echo "key is $API_KEY" >&2
"""
[[step]]
name = "unset"
secrets = ["NOT_GIVEN_ANYWHERE"]
run = "touch ran-without-its-secret"
)");
  auto r = run_boxcar({"run", "--json", "--secret", "TOKEN=hunter2-secret-value"}, dir.path(),
                      {"API_KEY=from-the-environment"});
  // A secret given nowhere fails its own step before its script runs, naming it and the fix;
  // the sibling still runs (control: its secrets are masked below), and the run fails.
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "ran-without-its-secret"));
  EXPECT_NE(r.out.find("secret NOT_GIVEN_ANYWHERE is declared by step \\\"unset\\\" but not set"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--secret NOT_GIVEN_ANYWHERE=VALUE or export NOT_GIVEN_ANYWHERE"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("step":"leak","status":"success")"), std::string::npos) << r.out;
  std::string log = dir.read(fs::relative(latest_run(dir.path()) / "logs" / "leak.log", dir.path()));
  for (const std::string& text : {r.out, log}) {
    EXPECT_EQ(text.find("hunter2-secret-value"), std::string::npos) << text;
    EXPECT_EQ(text.find("aHVudGVyMi1zZWNyZXQtdmFsdWU"), std::string::npos) << text;  // base64
    EXPECT_EQ(text.find("from-the-environment"), std::string::npos) << text;
    EXPECT_NE(text.find("token is ***"), std::string::npos) << text;
    EXPECT_NE(text.find("split: ***"), std::string::npos) << text;
    EXPECT_NE(text.find("key is ***"), std::string::npos) << text;
  }
}

TEST(RunTest, StepsSeeOnlyTheirOwnEnvironment) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[env]
LEVEL = "pipeline"
SHARED = "pipeline"
[defaults]
env = { LEVEL = "defaults" }
[[step]]
name = "env"
env = { SHARED = "step" }
run = "env | sort > env.txt"
artifacts = ["env.txt"]
)");
  auto r = run_boxcar({"run", "--json"}, dir.path(), {"AGENT_ONLY_MARKER=visible"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // From the step's own layer (the checkout does not change), as its artifact.
  std::string env = "\n" + dir.read(fs::relative(latest_run(dir.path()) / "artifacts/env.txt", dir.path()));
  EXPECT_EQ(env.find("AGENT_ONLY_MARKER"), std::string::npos);
  for (const char* want : {"CI=true", "BOXCAR=true", "BOXCAR_STEP=env", "LEVEL=defaults",
                           "SHARED=step", "BOXCAR_EVENT=manual"}) {
    EXPECT_NE(env.find(std::string("\n") + want + "\n"), std::string::npos) << want << "\n" << env;
  }
}

TEST(RunTest, LogCapTruncatesWithANotice) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "chatty"
run = "head -c 100000 /dev/zero | tr '\\0' 'x' | fold -w 100"
)");
  auto r = run_boxcar({"run", "--json", "--log-limit", "1KiB"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string log = dir.read(fs::relative(latest_run(dir.path()) / "logs" / "chatty.log", dir.path()));
  EXPECT_LT(log.size(), 2000u);
  EXPECT_NE(log.find("output truncated"), std::string::npos) << log;
}

TEST(RunTest, MemoryStaysBoundedForAHugeSingleLine) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "one-line"
run = "head -c 512M /dev/zero | tr '\\0' x; echo; echo after"
)");
  auto r = run_boxcar({"run", "--log-limit", "1GiB"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The line reached the terminal (in 64 KiB pieces) and the log whole, with bounded memory.
  EXPECT_GT(r.out.size(), 512u << 20);
  EXPECT_LT(r.max_rss_kib, 64 * 1024) << "peak RSS " << r.max_rss_kib << " KiB";
  auto log = latest_run(dir.path()) / "logs" / "one-line.log";
  EXPECT_EQ(fs::file_size(log), (512u << 20) + std::string("\nafter\n").size());
}

TEST(RunTest, TerminalOutputIsPrefixedPlainWhenPipedAndEndsWithASummary) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "one"
run = "echo first line; echo second line"
[[step]]
name = "two"
needs = ["one"]
run = "exit 7"
)");
  auto r = run_boxcar({"run"}, dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("[one] first line\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[one] second line\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no colour when piped";
  EXPECT_NE(r.out.find("STEP"), std::string::npos);
  EXPECT_NE(r.out.find("exit code 7"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(latest_run(dir.path()) / "summary.json"));
}

// Attack: links to /etc, out of the workspace, to a file not collected, and a chain through
// one of them are refused, each named in the step's log; control: links inside the set (and a
// chain of them) are kept as links in the run directory.
TEST(RunTest, ArtifactsKeepOnlyLinksInsideTheCollectedSet) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "tricky"
run = """
mkdir -p out
ln -s /etc/passwd out/passwd-link
ln -s /etc out/etc-dir
ln -s ../../x out/up
ln -s ../.boxcar.toml out/uncollected
ln -s passwd-link out/chain-out
mkfifo out/fifo
echo real > out/real.txt
ln -s real.txt out/real.so
ln -s real.so out/real.so.0
"""
artifacts = ["out/**"]
)");
  auto r = run_boxcar({"run", "--json"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  fs::path art = latest_run(dir.path()) / "artifacts" / "out";
  EXPECT_TRUE(fs::is_regular_file(art / "real.txt"));
  EXPECT_EQ(fs::read_symlink(art / "real.so"), "real.txt");
  EXPECT_EQ(fs::read_symlink(art / "real.so.0"), "real.so");
  std::ifstream through(art / "real.so.0");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(through), {}), "real\n");
  for (const char* bad : {"passwd-link", "etc-dir", "up", "uncollected", "chain-out"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(art / bad))) << bad;
    bool logged = false;
    for (const auto& e : r.events()) {
      logged = logged || (e.at("event").as_string() == "log" &&
                          std::string(e.at("line").as_string()).find("link \"out/" + std::string(bad) + "\"") !=
                              std::string::npos);
    }
    EXPECT_TRUE(logged) << bad << " is named in the step's log\n" << r.out;
  }
  EXPECT_FALSE(fs::exists(art / "fifo"));
  EXPECT_NE(r.out.find("FIFO"), std::string::npos) << "a warning names the skipped FIFO";
}

TEST(RunTest, WhenBranchFilterUsesTheCheckedOutBranch) {
  TempDir dir;
  dir.write(".boxcar.toml", R"(version = 1
[[step]]
name = "main-only"
when = { branch = ["main"] }
run = "echo deploying"
[[step]]
name = "any"
run = "true"
)");
  ASSERT_EQ(std::system(("cd " + dir.path().string() +
                         " && git init -q -b feature/x . && git -c user.email=t@t -c user.name=t "
                         "commit -q --allow-empty -m init").c_str()), 0);
  auto r = run_boxcar({"run", "--json"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status_of(r, "main-only"), "skipped");
  auto r2 = run_boxcar({"run", "--json", "--branch", "main"}, dir.path());
  EXPECT_EQ(status_of(r2, "main-only"), "success");
}

}  // namespace
}  // namespace boxcar::testing
