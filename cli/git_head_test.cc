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

// Steps can write .git between runs: what they plant there must not make boxcar read host files.
TEST(GitHeadTest, PlantedRefsAndLinksAreNotFollowed) {
  auto dir = make_temp_dir();
  auto outside = make_temp_dir();
  std::ofstream(outside / "secret") << "0123456789abcdef0123456789abcdef01234567\n";
  std::filesystem::create_directories(dir / ".git/refs/heads");
  std::ofstream(dir / ".git/HEAD") << "ref: ../../../../../../.." << (outside / "secret").string() << "\n";
  EXPECT_EQ(read_git_head(dir).commit, "");
  std::ofstream(dir / ".git/HEAD") << "ref: refs/heads/main\n";
  std::filesystem::create_symlink(outside / "secret", dir / ".git/refs/heads/main");
  EXPECT_EQ(read_git_head(dir).commit, "");
  std::filesystem::remove(dir / ".git/HEAD");
  std::filesystem::create_symlink(outside / "secret", dir / ".git/HEAD");
  EXPECT_EQ(read_git_head(dir).commit, "");
  std::filesystem::remove_all(dir / ".git");
  std::filesystem::create_directory_symlink(outside, dir / ".git");
  std::ofstream(outside / "HEAD") << "0123456789abcdef0123456789abcdef01234567\n";
  EXPECT_EQ(read_git_head(dir).commit, "");
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(outside);
}

}  // namespace
}  // namespace boxcar::cli
