#include "executors/host/process_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "executors/host/spawn.h"

namespace boxcar::executors::host {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TEST(TreeRootTest, FindsCgroup2InMountinfo) {
  const char* hybrid =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(TreeRoot::find_cgroup2(hybrid), "/sys/fs/cgroup/unified");
  EXPECT_EQ(TreeRoot::find_cgroup2("29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            "/sys/fs/cgroup");
  EXPECT_EQ(TreeRoot::find_cgroup2("29 23 0:26 / /my\\040cgroups rw - cgroup2 none rw"),
            "/my cgroups");
  // A bind mount of a sub-directory is not the hierarchy's root.
  EXPECT_EQ(TreeRoot::find_cgroup2("29 23 0:26 /sub /mnt rw - cgroup2 cgroup2 rw\n"), "");
  EXPECT_EQ(TreeRoot::find_cgroup2("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), "");
}

fs::path cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream s;
  s << in.rdbuf();
  return TreeRoot::find_cgroup2(s.str());
}

TEST(TreeRootTest, SweepKillsAndRemovesWhatADeadAgentLeft) {
  auto root = TreeRoot::open();
  if (!root->uses_cgroup()) GTEST_SKIP() << "cgroup v2 is not writable here";
  // No process can have pid 4194304 (PID_MAX_LIMIT): this owner is dead.
  fs::path dead_owner = cgroup2_mount() / "boxcar.host" / "4194304-1";
  fs::path leaf = dead_owner / "job.1" / "c1";
  // Another test process's prepare() may sweep this owner at any moment: retry the setup.
  Result<Child> child = Error{"not started"};
  for (int attempt = 0; attempt < 5 && !child.ok(); ++attempt) {
    fs::create_directories(leaf);
    unique_fd leaf_fd(::open(leaf.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!leaf_fd) continue;
    child = spawn(SpawnRequest{{"sleep", "1000"}, {"PATH=/usr/bin:/bin"}, "/", leaf_fd.get()});
  }
  ASSERT_TRUE(child.ok()) << child.error().message;

  auto busy = root->sweep_dead_owners();

  siginfo_t info{};
  ASSERT_EQ(::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child->pidfd.get()), &info,
                     WEXITED | __WALL),
            0);
  EXPECT_EQ(info.si_code, CLD_KILLED);
  EXPECT_EQ(info.si_status, SIGKILL);
  for (auto& tree : busy) {
    for (int i = 0; i < 1000 && !tree->remove(); ++i) std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(fs::exists(dead_owner));
}

TEST(TreeRootTest, CookieTreeFindsItsMembers) {
  auto root = TreeRoot::open(/*try_cgroup=*/false);
  ASSERT_FALSE(root->uses_cgroup());
  auto sandbox = root->sandbox("cookie.1");
  ASSERT_TRUE(sandbox.ok());
  auto command = (*sandbox)->child("c1");
  ASSERT_TRUE(command.ok());
  EXPECT_TRUE((*command)->env_cookie().starts_with("BOXCAR_SANDBOX_ID="));
  EXPECT_TRUE((*sandbox)->empty());

  auto child =
      spawn(SpawnRequest{{"sleep", "1000"}, {"PATH=/usr/bin:/bin", (*command)->env_cookie()}, "/"});
  ASSERT_TRUE(child.ok()) << child.error().message;
  EXPECT_FALSE((*command)->empty());
  EXPECT_FALSE((*sandbox)->empty());
  (*sandbox)->kill();
  siginfo_t info{};
  ASSERT_EQ(::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child->pidfd.get()), &info,
                     WEXITED | __WALL),
            0);
  EXPECT_EQ(info.si_status, SIGKILL);
  EXPECT_TRUE((*command)->empty());
}

}  // namespace
}  // namespace boxcar::executors::host
