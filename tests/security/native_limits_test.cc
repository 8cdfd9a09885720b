// Attacks on the native executor's resource limits (pids, memory, /tmp and /dev/shm, timeouts,
// orphans), each beside a control that shows the probe works: a bystander sandbox that keeps
// running, or the same probe within its limit.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "executors/native/caps.h"
#include "executors/native/native_executor.h"

#include "tests/security/security_fixture.h"

namespace boxcar::executors {
namespace {

TEST_P(SecurityTest, ForkBombEndsUnderPidsLimit) {
  const std::string probe = R"(python3 -c '
import os, time
n = 0
for i in range(100):
    try:
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        n += 1
    except OSError:
        pass
print(n)
')";
  Ran control = sandboxed(probe);
  EXPECT_EQ(control.out, "100\n");
  SandboxSpec limited = spec();
  limited.pids = 32;
  Ran attack = sandboxed(probe, limited);
  ASSERT_FALSE(attack.out.empty()) << attack.err;
  EXPECT_LT(std::stoi(attack.out), 32);
  // A real bomb, stopped as a timeout would: the host keeps working, nothing survives.
  auto sb = start(limited);
  Ran bomb;
  bool done = false;
  launch(*sb, "b() { b | b & }; b; sleep 100", bomb, done);
  run_for(std::chrono::milliseconds(500));
  sb->stop(Outcome::Kind::timeout, Millis(100));
  wait_for(done);
  EXPECT_EQ(bomb.outcome.kind, Outcome::Kind::timeout);
  EXPECT_EQ(on_host("echo alive").out, "alive\n");
}

TEST_P(SecurityTest, MemoryBombKillsOnlyThatStep) {
  const std::string probe = "python3 -c 'x = bytearray(200 << 20); print(\"survived\")'";
  Ran control = sandboxed(probe);
  EXPECT_EQ(control.out, "survived\n");
  SandboxSpec limited = spec();
  limited.memory_bytes = 48ull << 20;
  auto sb = start(limited);
  auto neighbour = start(spec("neighbour"));
  Ran bystander;
  bool bystander_done = false;
  launch(*neighbour, "sleep 0.5; echo still-here", bystander, bystander_done);
  Ran attack = in_sandbox(*sb, probe);
  EXPECT_EQ(attack.outcome.kind, Outcome::Kind::oom) << describe(attack.outcome);
  wait_for(bystander_done);
  EXPECT_EQ(bystander.out, "still-here\n");
  EXPECT_TRUE(bystander.outcome.ok());
}

TEST_P(SecurityTest, FillingTmpHitsItsLimit) {
  const std::string probe = "dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>&1 | grep -o 'No space left on device'; echo end";
  SandboxSpec big = spec();
  big.tmp_bytes = 16ull << 20;
  EXPECT_EQ(sandboxed(probe, big).out, "end\n");  // control
  SandboxSpec small = spec();
  small.tmp_bytes = 2ull << 20;
  EXPECT_EQ(sandboxed(probe, small).out, "No space left on device\nend\n");
}

// /tmp and /dev/shm are tmpfs: their pages are charged to the memory cgroup of the step that
// wrote them, so a step cannot keep more there than its memory limit, whatever their sizes.
TEST_P(SecurityTest, TmpAndShmWritesCountTowardTheMemoryLimit) {
  auto fill = [](const std::string& where, int mib) {
    return "dd if=/dev/zero of=" + where + "/fill bs=1M count=" + std::to_string(mib) + " 2>/dev/null; echo wrote";
  };
  SandboxSpec limited = spec();
  limited.memory_bytes = 32ull << 20;
  for (const char* where : {"/tmp", "/dev/shm"}) {
    Ran control = sandboxed(fill(where, 8), limited);
    EXPECT_EQ(control.out, "wrote\n") << where << ": " << control.err;
    EXPECT_TRUE(control.outcome.ok()) << where << ": " << describe(control.outcome);
    Ran attack = sandboxed(fill(where, 56), limited);  // both tmpfs are larger than that
    EXPECT_EQ(attack.outcome.kind, Outcome::Kind::oom) << where << ": " << describe(attack.outcome) << attack.out;
  }
}

TEST_P(SecurityTest, ShmIsSizedApartFromTmp) {
  SandboxSpec s = spec();
  s.shm_bytes = 4ull << 20;
  const std::string probe = "dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>&1 | grep -o 'No space left on device'; "
                            "dd if=/dev/zero of=/tmp/fill bs=1M count=8 2>&1 | grep -o 'No space left on device'; echo end";
  EXPECT_EQ(sandboxed(probe, s).out, "No space left on device\nend\n");
  s.shm_bytes = 16ull << 20;  // the control: the same writes fit
  EXPECT_EQ(sandboxed(probe, s).out, "end\n");
}

TEST_P(SecurityTest, TimeoutKillsSetsidAndDoubleForkedDaemons) {
  std::string marker = "boxcar-daemon-" + std::to_string(::getpid());
  auto sb = start(spec());
  Ran r;
  bool done = false;
  launch(*sb,
         "setsid bash -c 'exec -a " + marker + "-a sleep 1000' </dev/null >/dev/null 2>&1 & "
         "(bash -c '(trap \"\" TERM HUP; exec -a " + marker + "-b sleep 1000) &' &) ; "
         "nohup bash -c 'trap \"\" TERM; exec -a " + marker + "-c sleep 1000' >/dev/null 2>&1 & sleep 1000",
         r, done);
  std::vector<pid_t> before;
  for (int i = 0; i < 200 && before.size() < 3; ++i) {
    run_for(std::chrono::milliseconds(10));
    before = pids_with(marker);
  }
  EXPECT_EQ(before.size(), 3u);  // control: the probe sees them while they run
  sb->stop(Outcome::Kind::timeout, Millis(200));
  wait_for(done);
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::timeout);
  std::vector<pid_t> after = pids_with(marker);
  for (int i = 0; i < 100 && !after.empty(); ++i) {
    run_for(std::chrono::milliseconds(10));
    after = pids_with(marker);
  }
  EXPECT_TRUE(after.empty());
}

TEST_P(SecurityTest, InitReapsOrphans) {
  // Control: a parent that never waits leaves a zombie, and ps sees it.
  Ran control = sandboxed("bash -c 'sleep 0.1 & exec sleep 0.6' & sleep 0.4; ps -e -o stat= | grep -c Z");
  EXPECT_EQ(control.out, "1\n");
  // Attack: orphans (their parent exits) are reparented to init, which reaps them.
  Ran attack = sandboxed("for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; sleep 0.5; ps -e -o stat= | grep -c Z");
  EXPECT_EQ(attack.out, "0\n");
}

}  // namespace
}  // namespace boxcar::executors
