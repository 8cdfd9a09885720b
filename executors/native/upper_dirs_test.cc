// UpperDirs refuses a place a local user could change: root works there by path, and a user
// who owns a directory on the way could swap what lies below for links.
#include "executors/native/upper_dirs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace boxcar::executors::native {
namespace {

namespace fs = std::filesystem;

class UpperDirsPlace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/var/lib/boxcar-upper-place-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override {
    if (!base_.empty()) fs::remove_all(base_);
  }
  fs::path base_;
};

TEST_F(UpperDirsPlace, ADirectoryAnotherUserOwnsOnTheWayIsRefused) {
  fs::create_directories(base_ / "theirs");
  ASSERT_EQ(::chown((base_ / "theirs").c_str(), 65534, 65534), 0);
  auto refused = UpperDirs::open(base_ / "theirs" / "uppers", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("may be changed by a user other than root"), std::string::npos)
      << refused.error().message;
  EXPECT_FALSE(fs::exists(base_ / "theirs" / "uppers"));
  // A world-writable directory without the sticky bit is refused too; with it (like /tmp), fine.
  fs::create_directories(base_ / "open");
  ::chmod((base_ / "open").c_str(), 0777);
  EXPECT_FALSE(UpperDirs::open(base_ / "open" / "uppers", 0).ok());
  ::chmod((base_ / "open").c_str(), 01777);
  EXPECT_TRUE(UpperDirs::open(base_ / "open" / "uppers", 0).ok());
  // Control: root's own place.
  auto ours = UpperDirs::open(base_ / "ours" / "uppers", 0);
  ASSERT_TRUE(ours.ok()) << ours.error().message;
}

TEST_F(UpperDirsPlace, ALinkWhereTheDirectoryShouldBeIsRefused) {
  fs::create_directories(base_ / "elsewhere");
  fs::create_directory_symlink(base_ / "elsewhere", base_ / "uppers");
  EXPECT_FALSE(UpperDirs::open(base_ / "uppers", 0).ok());
  EXPECT_TRUE(fs::is_empty(base_ / "elsewhere"));
}

}  // namespace
}  // namespace boxcar::executors::native
