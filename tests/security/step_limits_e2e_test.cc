// `boxcar run` under the step limits: a step that names no `resources` is limited all the same
// (memory, pids, cpus, /tmp), a step asking past a ceiling is refused before anything runs, and
// a preview_ttl past its ceiling is cut. Each attack beside a control that must pass.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

CommandResult boxcar_run(const fs::path& workspace, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {boxcar_binary(), "run"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_command(argv, workspace);
}

// Each step's state in the run's summary.json, by name.
std::map<std::string, std::string> step_states(const fs::path& workspace) {
  std::map<std::string, std::string> states;
  fs::path newest;
  for (const auto& e : fs::directory_iterator(workspace / ".boxcar/runs")) {
    if (newest.empty() || e.path().filename() > newest.filename()) newest = e.path();
  }
  auto summary = boost::json::parse(read_file(newest / "summary.json"));
  for (const auto& s : summary.at("steps").as_array()) {
    states[std::string(s.at("name").as_string())] = std::string(s.at("status").as_string());
  }
  return states;
}

TEST(StepLimits, DefaultsContainAForkBombAndAMemoryHogBesideAControl) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  // No step names `resources`: only the agent's defaults stand between them and the machine.
  std::string toml = R"(version = 1
[[step]]
name = "bomb"
run = '''
python3 -c '
import os, time
n = 0
try:
    while n < 10000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError:
    print("fork refused after", n)
    raise SystemExit(1)
'
'''
[[step]]
name = "hog"
run = "python3 -c 'x = bytearray(256 << 20); print(\"hog survived\")'"
[[step]]
name = "control"
run = '''
python3 -c '
import os, time
kids = []
for _ in range(16):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(0)
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
x = bytearray(16 << 20)
print("control fine")
'
'''
)";
  make_git_repo(work / "ws", toml);
  // Two at a time: "control" starts in the sandbox of whichever attack ends first (or one
  // prepared ahead), right after an OOM, which once made it report oom too.
  auto r = boxcar_run(work / "ws", {"--default-memory", "64MiB", "--default-pids", "64", "--jobs", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("[control] control fine"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[bomb] fork refused after"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hog survived"), std::string::npos) << r.out;
  auto states = step_states(work / "ws");
  EXPECT_EQ(states["bomb"], "failed");
  EXPECT_EQ(states["hog"], "oom");
  EXPECT_EQ(states["control"], "success");
  // The bomb never got near its 10,000 processes, and the host is fine.
  size_t at = r.out.find("fork refused after ");
  if (at != std::string::npos) {
    EXPECT_LT(std::stoi(r.out.substr(at + 19)), 64) << r.out;
  }
  EXPECT_EQ(run_command({"/bin/sh", "-c", "echo alive"}).out, "alive\n");
}

// The step's cgroup file `file` of controller `controller`, read from the host while it runs:
// <mount>/<this process's cgroup>/boxcar/<boxcar's pid>-<start>/<step>/file (cgroup v1).
std::string step_cgroup_value(const std::string& controller, const std::string& file, pid_t boxcar) {
  std::string own;
  std::ifstream self("/proc/self/cgroup");
  for (std::string line; std::getline(self, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (line.substr(a + 1, b - a - 1) == controller) own = line.substr(b + 1);
  }
  fs::path parent = "/sys/fs/cgroup/" + controller + (own == "/" ? "" : own) + "/boxcar";
  std::error_code ec;
  for (const auto& inst : fs::directory_iterator(parent, ec)) {
    if (inst.path().filename().string().rfind(std::to_string(boxcar) + "-", 0) != 0) continue;
    for (const auto& step : fs::directory_iterator(inst.path(), ec)) {
      if (step.is_directory()) return read_file(step.path() / file);
    }
  }
  return "";
}

TEST(StepLimits, OutOfTheBoxAStepWithoutResourcesIsLimited) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  if (!fs::exists("/sys/fs/cgroup/pids")) GTEST_SKIP() << "reads cgroup v1 files";
  TempDir work;
  make_git_repo(work / "ws", "version = 1\n[[step]]\nname = \"plain\"\nrun = \"echo started; sleep 60\"\n");
  auto run = start_boxcar({"run"}, work / "ws", "run");
  // The step's cgroup exists while its sandbox runs.
  auto started = [&] { return !step_cgroup_value("pids", "pids.max", run->pid()).empty(); };
  ASSERT_TRUE(wait_until(started, 60s, "the step started")) << run->describe();
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t memory = std::min<uint64_t>(4ull << 30, uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE)));
  EXPECT_EQ(step_cgroup_value("pids", "pids.max", run->pid()), "4096\n");
  EXPECT_EQ(step_cgroup_value("memory", "memory.limit_in_bytes", run->pid()), std::to_string(memory) + "\n");
  EXPECT_EQ(step_cgroup_value("cpu", "cpu.cfs_quota_us", run->pid()), std::to_string(cpus * 100000) + "\n");
  run->signal(SIGINT);
  EXPECT_TRUE(run->wait(60s)) << run->describe();
}

TEST(StepLimits, AStepAskingPastACeilingIsRefusedBeforeAnyStepRuns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  auto pipeline = [](const std::string& memory) {
    return "version = 1\n"
           "[[step]]\nname = \"first\"\nrun = \"echo first ran\"\n"
           "[[step]]\nname = \"greedy\"\nrun = \"echo greedy ran\"\nresources = { memory = \"" + memory + "\" }\n";
  };
  make_git_repo(work / "ws", pipeline("1GiB"));
  auto refused = boxcar_run(work / "ws", {"--max-memory", "256MiB"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find(".boxcar.toml:5:1: error: step \"greedy\": resources.memory = 1.0 GiB is over the "
                             "ceiling of 256.0 MiB: ask for at most 256.0 MiB (raise it with --max-memory)"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.out.find("first ran"), std::string::npos) << "a step ran before the pipeline was refused";
  // The control: under the same ceiling, asking for less runs.
  write_file(work / "ws/.boxcar.toml", pipeline("128MiB"));
  auto fits = boxcar_run(work / "ws", {"--max-memory", "256MiB"});
  EXPECT_EQ(fits.exit_code, 0) << fits.out << fits.err;
  EXPECT_NE(fits.out.find("[greedy] greedy ran"), std::string::npos) << fits.out;
  EXPECT_NE(fits.out.find("[first] first ran"), std::string::npos) << fits.out;
}

TEST(StepLimits, APreviewTtlPastItsCeilingIsCut) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  make_git_repo(work / "ws",
                "version = 1\n[[step]]\nname = \"web\"\nrun = \"python3 -m http.server 8471 --bind 127.0.0.1\"\n"
                "preview_ttl = \"720h\"\n[[step.expose]]\nport = 8471\n");
  // Without the ceiling this run would stay up for 30 days; with it, it ends by itself.
  auto r = boxcar_run(work / "ws", {"--max-preview-ttl", "1s", "--preview-listen", "127.0.0.1:" + std::to_string(free_port())});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("preview web: http://"), std::string::npos) << "the control: the preview opened\n" << r.out;
  EXPECT_NE(r.out.find("web: preview_ttl 720h00m is over the ceiling of 1.0s: its previews close after 1.0s"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace boxcar::service_test
