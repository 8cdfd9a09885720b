#include "agent/step_shell.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <fstream>

#include <gtest/gtest.h>

#include "testing/scratch_dir.h"

namespace boxcar::agent {
namespace {
namespace fs = std::filesystem;

void executable(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "#!/bin/sh\n";
  fs::permissions(p, fs::perms::owner_all);
}

TEST(StepShell, ExplicitShellWins) {
  EXPECT_EQ(step_shell({"/bin/dash", "-c"}, {}), (std::vector<std::string>{"/bin/dash", "-c"}));
}

TEST(StepShell, HostHasBash) {
  // Debian 12 has bash; the pick on the host is it, with pipefail.
  auto shell = step_shell({}, {});
  ASSERT_EQ(shell.size(), 6u);
  EXPECT_EQ(shell[4], "pipefail");
}

TEST(StepShell, LayersTopFirstWhiteoutsAndUsrmerge) {
  testing::ScratchDir dir;
  fs::path lower = dir.dir / "lower", upper = dir.dir / "upper";
  fs::create_directories(lower);
  fs::create_directories(upper);
  EXPECT_EQ(bash_in({lower}), "");
  EXPECT_EQ(step_shell({}, {lower}), sh_shell());

  // usrmerge: bin -> usr/bin in the lower layer, bash in usr/bin.
  executable(lower / "usr/bin/bash");
  fs::create_directory_symlink("usr/bin", lower / "bin");
  EXPECT_EQ(bash_in({lower}), "/bin/bash");
  EXPECT_EQ(step_shell({}, {lower}), bash_shell("/bin/bash"));

  // A whiteout of usr/bin/bash in the upper layer hides it (bin -> usr/bin leads there too).
  fs::create_directories(upper / "usr/bin");
  ASSERT_EQ(::mknod((upper / "usr/bin/bash").c_str(), S_IFCHR | 0600, makedev(0, 0)), 0);
  EXPECT_EQ(bash_in({lower, upper}), "");

  // A link out of the layers is never followed into the host, which has bash.
  testing::ScratchDir other;
  fs::create_directory_symlink("../../../../../../../usr/bin", other.dir / "bin");
  EXPECT_EQ(bash_in({other.dir}), "");
  fs::create_directories(other.dir / "x");
  fs::create_directory_symlink("/usr/bin", other.dir / "x/usr");  // a loop inside the layer
  fs::remove(other.dir / "bin");
  fs::create_directory_symlink("x/usr", other.dir / "bin");
  EXPECT_EQ(bash_in({other.dir}), "");
}

}  // namespace
}  // namespace boxcar::agent
