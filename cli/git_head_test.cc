#include "cli/git_head.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace boxcar::cli {
namespace {

std::filesystem::path make_temp_dir() {
  char tmpl[] = "/tmp/boxcar-git-head-XXXXXX";
  return std::filesystem::path(mkdtemp(tmpl));
}

// A real repository made with git, so the reader is checked against git's own layout.
TEST(GitHeadTest, ReadsBranchAndCommitOfARealRepository) {
  auto dir = make_temp_dir();
  std::string cmd = "cd " + dir.string() +
                    " && git init -q -b feature/x . && git -c user.email=t@t -c user.name=t "
                    "commit -q --allow-empty -m init && git rev-parse HEAD > head.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(dir / "head.txt");
  std::string expected;
  in >> expected;
  GitHead head = read_git_head(dir);
  EXPECT_EQ(head.branch, "feature/x");
  EXPECT_EQ(head.commit, expected);

  // After gc the ref lives in packed-refs only.
  ASSERT_EQ(std::system(("cd " + dir.string() + " && git pack-refs --all").c_str()), 0);
  EXPECT_EQ(read_git_head(dir).commit, expected);
  std::filesystem::remove_all(dir);
}

TEST(GitHeadTest, NotARepository) {
  auto dir = make_temp_dir();
  GitHead head = read_git_head(dir);
  EXPECT_EQ(head.branch, "");
  EXPECT_EQ(head.commit, "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace boxcar::cli
