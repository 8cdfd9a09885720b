#include "base/safe_relative_path.h"

#include <string>

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(SafeRelativePath, AcceptsPathsInsideADirectory) {
  for (const char* p : {"a", "a.txt", "dir/a.txt", "a/b/c", "..a", "a..", ".hidden", "a/.b"}) {
    EXPECT_TRUE(safe_relative_path(p)) << p;
  }
}

TEST(SafeRelativePath, RefusesEveryWayOut) {
  for (const char* p : {"", "/a", "/", "..", "../a", "a/..", "a/../b", ".", "./a", "a/.", "a//b",
                        "a/", "//a"}) {
    EXPECT_FALSE(safe_relative_path(p)) << p;
  }
  EXPECT_FALSE(safe_relative_path(std::string("a\0b", 3)));
}

// The server's copy had a length limit and the CLI's had none: the one check has it for both.
TEST(SafeRelativePath, RefusesPathsLongerThanPathMax) {
  std::string longest(kMaxRelativePathBytes, 'a');
  EXPECT_TRUE(safe_relative_path(longest));
  EXPECT_FALSE(safe_relative_path(longest + "a"));
}

}  // namespace
}  // namespace boxcar
