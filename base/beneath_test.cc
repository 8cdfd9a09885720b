#include "base/beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace boxcar {
namespace {

namespace fs = std::filesystem;

class BeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-beneath-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "in/sub");
    fs::create_directories(root_ / "outside");
    std::ofstream(root_ / "outside/secret") << "precious";
    dir_ = unique_fd(::open((root_ / "in").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string read(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
  unique_fd dir_;
};

TEST_F(BeneathTest, OpensInsideButNeverThroughALinkOrDotDot) {
  std::ofstream(root_ / "in/sub/file") << "ok";
  EXPECT_TRUE(open_beneath(dir_.get(), "sub/file", O_RDONLY));
  fs::create_symlink(root_ / "outside", root_ / "in/link");
  fs::create_symlink(root_ / "outside/secret", root_ / "in/sub/leaf");
  EXPECT_FALSE(open_beneath(dir_.get(), "link/secret", O_RDONLY));
  EXPECT_FALSE(open_beneath(dir_.get(), "sub/leaf", O_RDONLY));
  EXPECT_FALSE(open_beneath(dir_.get(), "../outside/secret", O_RDONLY));
  EXPECT_FALSE(open_beneath(dir_.get(), (root_ / "outside/secret").string(), O_RDONLY));
}

TEST_F(BeneathTest, CreateFreshReplacesAPlantedLinkInsteadOfWritingThroughIt) {
  fs::create_symlink(root_ / "outside/secret", root_ / "in/step.log");
  unique_fd fd = create_fresh(dir_.get(), "step.log");
  ASSERT_TRUE(fd) << std::strerror(errno);
  ASSERT_EQ(::write(fd.get(), "log", 3), 3);
  EXPECT_EQ(read(root_ / "outside/secret"), "precious");
  EXPECT_FALSE(fs::is_symlink(root_ / "in/step.log"));
  EXPECT_EQ(read(root_ / "in/step.log"), "log");
  // A hard link to another file is replaced too, not truncated.
  std::ofstream(root_ / "in/other") << "keep";
  fs::create_hard_link(root_ / "in/other", root_ / "in/hard.log");
  ASSERT_TRUE(create_fresh(dir_.get(), "hard.log"));
  EXPECT_EQ(read(root_ / "in/other"), "keep");
  EXPECT_FALSE(create_fresh(dir_.get(), "../escape"));
  EXPECT_FALSE(create_fresh(dir_.get(), "sub"));  // a directory stays
}

}  // namespace
}  // namespace boxcar
