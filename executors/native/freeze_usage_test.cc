// Sandbox::freeze and Sandbox::usage on real native sandboxes: a frozen sandbox's processes do
// not run (a counter beside an unfrozen control's), thawing resumes them, and usage sees a
// memory hog's bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
#include <filesystem>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;

class NativeFreezeUsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
    char tmpl[] = "/tmp/boxcar-freeze-test-XXXXXX";
    workspace_ = ::mkdtemp(tmpl);
    executor_ = make_native_executor(io_);
    auto job = executor_->prepare(JobSpec{"freeze", workspace_});
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = std::move(*job);
  }
  void TearDown() override {
    if (job_) job_->destroy();
    io_.restart();
    io_.run_for(std::chrono::milliseconds(50));  // reaps and cgroup removal
    if (!workspace_.empty()) fs::remove_all(workspace_);
  }

  std::unique_ptr<Sandbox> start(SandboxSpec spec = {}) {
    if (spec.name.empty()) spec.name = "s" + std::to_string(++n_);
    auto s = job_->start(spec);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  // `script` left running in the background of `sandbox` (the command itself returns at once).
  void detach(Sandbox& sandbox, const std::string& script) {
    auto r = boxcar::testing::run_in(
        io_, sandbox, ExecRequest{{"sh", "-c", "(" + script + ") </dev/null >/dev/null 2>&1 &"}, {"PATH=/usr/bin:/bin"}});
    ASSERT_EQ(r.outcome.kind, Outcome::Kind::ok) << r.err;
  }
  // A counter the sandbox rewrites (atomically: temp file and rename) as fast as it can.
  std::string counter(const std::string& name) {
    return "i=0; while :; do i=$((i+1)); echo $i > /workspace/" + name + ".t; mv /workspace/" + name +
           ".t /workspace/" + name + "; done";
  }
  long read_counter(const std::string& name) {
    std::ifstream in(workspace_ / name);
    long v = -1;
    in >> v;
    return v;
  }
  // Waits (bounded: a broken probe fails instead of hanging) until the counter passes `above`.
  bool counter_passes(const std::string& name, long above) {
    for (int i = 0; i < 20000; ++i) {
      if (read_counter(name) > above) return true;
      ::usleep(1000);
    }
    return false;
  }

  boost::asio::io_context io_;
  fs::path workspace_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Job> job_;
  int n_ = 0;
};

TEST_F(NativeFreezeUsageTest, AFrozenSandboxDoesNotRunAndThawResumesIt) {
  auto frozen = start();
  auto control = start();
  ASSERT_TRUE(frozen && control);
  detach(*frozen, counter("frozen"));
  detach(*control, counter("control"));
  ASSERT_TRUE(counter_passes("frozen", 0));
  ASSERT_TRUE(counter_passes("control", 0));

  Status s = frozen->freeze(true);
  ASSERT_TRUE(s.ok()) << s.error().message;
  long at_freeze = read_counter("frozen");
  // The control (the same loop, not frozen) moves on by several steps meanwhile: the probe
  // works, and the frozen one had every chance to move too.
  long control_now = read_counter("control");
  ASSERT_TRUE(counter_passes("control", control_now + 5));
  EXPECT_EQ(read_counter("frozen"), at_freeze);
  // Usage is read from the cgroups: it works on a frozen sandbox and does not thaw it.
  auto u = frozen->usage();
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_GE(u->pids, 2u);  // init and the loop at least
  EXPECT_EQ(read_counter("frozen"), at_freeze);

  s = frozen->freeze(false);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(counter_passes("frozen", at_freeze));
  // A thawed sandbox serves commands as before.
  auto r = boxcar::testing::run_in(io_, *frozen, ExecRequest{{"echo", "awake"}, {"PATH=/usr/bin:/bin"}});
  EXPECT_EQ(r.out, "awake\n");
}

TEST_F(NativeFreezeUsageTest, UsageSeesAMemoryHog) {
  SandboxSpec spec;
  spec.memory_bytes = 512ull << 20;
  auto sb = start(spec);
  ASSERT_TRUE(sb);
  // Init is in its cgroups once it answered a command.
  boxcar::testing::run_in(io_, *sb, ExecRequest{{"true"}, {"PATH=/usr/bin:/bin"}});
  auto before = sb->usage();
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_LT(before->memory_bytes, 64ull << 20);  // control: an idle sandbox holds little
  EXPECT_GE(before->pids, 1u);
  detach(*sb, "python3 -c 'import os, time; b = b\"x\" * (96 << 20); open(\"/workspace/hog\", \"w\").close(); time.sleep(600)'");
  bool ready = false;
  for (int i = 0; i < 20000 && !ready; ++i) {
    ready = fs::exists(workspace_ / "hog");
    if (!ready) ::usleep(1000);
  }
  ASSERT_TRUE(ready);
  auto during = sb->usage();
  ASSERT_TRUE(during.ok()) << during.error().message;
  EXPECT_GE(during->memory_bytes, 96ull << 20);
  EXPECT_GE(during->memory_peak_bytes, during->memory_bytes);
  EXPECT_GE(during->pids, 2u);
  EXPECT_GT(during->cpu_ms, 0u);  // building 96 MiB takes some CPU
  EXPECT_EQ(during->oom_kills, 0u);
}

TEST_F(NativeFreezeUsageTest, AGoneSandboxAnswersAnError) {
  auto sb = start();
  ASSERT_TRUE(sb);
  ASSERT_TRUE(sb->usage().ok());  // control
  sb->destroy();
  io_.restart();
  io_.run_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(sb->freeze(true).ok());
  EXPECT_FALSE(sb->usage().ok());
}

// Not a test: what freeze and thaw cost with a busy process inside (bench/RESULTS.md).
// build/executors/native/native_executor_test --gtest_filter='*FreezeThawCost' --gtest_also_run_disabled_tests
TEST_F(NativeFreezeUsageTest, DISABLED_FreezeThawCost) {
  auto sb = start();
  ASSERT_TRUE(sb);
  detach(*sb, counter("cost"));
  ASSERT_TRUE(counter_passes("cost", 0));
  std::vector<double> freeze_ms, thaw_ms;
  for (int i = 0; i < 200; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(sb->freeze(true).ok());
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(sb->freeze(false).ok());
    auto t2 = std::chrono::steady_clock::now();
    freeze_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    thaw_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  std::sort(freeze_ms.begin(), freeze_ms.end());
  std::sort(thaw_ms.begin(), thaw_ms.end());
  std::printf("freeze p50 %.3f ms p95 %.3f ms; thaw p50 %.3f ms p95 %.3f ms (200 each)\n", freeze_ms[100],
              freeze_ms[190], thaw_ms[100], thaw_ms[190]);
}

}  // namespace
}  // namespace boxcar::executors
