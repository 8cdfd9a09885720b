#include "base/glob.h"

#include <gtest/gtest.h>

namespace boxcar {
namespace {

TEST(GlobTest, StarStopsAtSlash) {
  EXPECT_TRUE(glob_match("release/*", "release/1.0"));
  EXPECT_FALSE(glob_match("release/*", "release/1.0/hotfix"));
  EXPECT_TRUE(glob_match("*.xml", "a.xml"));
  EXPECT_FALSE(glob_match("*.xml", "dir/a.xml"));
  EXPECT_TRUE(glob_match("v*", "v1.2.3"));
}

TEST(GlobTest, DoubleStarCrossesSegments) {
  EXPECT_TRUE(glob_match("reports/**/*.xml", "reports/a.xml"));
  EXPECT_TRUE(glob_match("reports/**/*.xml", "reports/x/y/a.xml"));
  EXPECT_FALSE(glob_match("reports/**/*.xml", "other/a.xml"));
  EXPECT_TRUE(glob_match("build/**", "build/a/b/c"));
  EXPECT_TRUE(glob_match("**/*.log", "a/b.log"));
  EXPECT_TRUE(glob_match("**/*.log", "b.log"));
}

TEST(GlobTest, QuestionAndClasses) {
  EXPECT_TRUE(glob_match("file?.txt", "file1.txt"));
  EXPECT_FALSE(glob_match("file?.txt", "file/.txt"));
  EXPECT_TRUE(glob_match("[a-c]x", "bx"));
  EXPECT_FALSE(glob_match("[!a-c]x", "bx"));
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "a"));
}

TEST(GlobTest, LiteralsAndWildcardDetection) {
  EXPECT_TRUE(glob_match("main", "main"));
  EXPECT_FALSE(glob_match("main", "main2"));
  EXPECT_FALSE(glob_has_wildcards("build/app"));
  EXPECT_TRUE(glob_has_wildcards("build/*.o"));
}

}  // namespace
}  // namespace boxcar
