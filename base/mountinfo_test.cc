#include "base/mountinfo.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(MountInfo, FieldsAfterOptionalOnesAndEscapesUndone) {
  auto mounts = parse_mountinfo(
      "36 35 98:0 / /run/a\\040b/s1/workspace rw,nosuid shared:1 master:2 - ext4 /dev/sda\\0401 rw\n"
      "37 35 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "garbage line\n");
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].mount_point, "/run/a b/s1/workspace");
  EXPECT_EQ(mounts[0].type, "ext4");
  EXPECT_EQ(mounts[0].source, "/dev/sda 1");
  EXPECT_EQ(mounts[1].super_options, "rw,memory");
  EXPECT_EQ(unescape_mountinfo("a\\134b\\011c\\012"), "a\\b\tc\n");
  EXPECT_EQ(unescape_mountinfo("trailing\\04"), "trailing\\04");  // not an escape: kept
}

}  // namespace
}  // namespace boxcar
