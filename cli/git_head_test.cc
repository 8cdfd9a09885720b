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

// BOXCAR_REF, BOXCAR_TAG and BOXCAR_REPO of a local run: HEAD's ref, the tag naming HEAD's
// commit exactly (lightweight loose, annotated packed), origin's URL without its password.
TEST(GitHeadTest, RefTagAndOriginOfARealRepository) {
  auto dir = make_temp_dir();
  std::string git = "cd " + dir.string() + " && git -c user.email=t@t -c user.name=t ";
  ASSERT_EQ(std::system(("cd " + dir.string() + " && git init -q -b main . && git remote add origin "
                         "https://user:hunter2@example.com/org/app.git")
                            .c_str()),
            0);
  ASSERT_EQ(std::system((git + "commit -q --allow-empty -m one").c_str()), 0);
  GitHead head = read_git_head(dir);
  EXPECT_EQ(head.ref, "refs/heads/main");
  EXPECT_EQ(head.tag, "");
  EXPECT_EQ(head.origin.find("hunter2"), std::string::npos) << head.origin;
  EXPECT_NE(head.origin.find("example.com/org/app.git"), std::string::npos) << head.origin;

  ASSERT_EQ(std::system((git + "tag v1 && git checkout -q --detach v1").c_str()), 0);
  head = read_git_head(dir);
  EXPECT_EQ(head.tag, "v1");
  EXPECT_EQ(head.ref, "refs/tags/v1");
  EXPECT_EQ(head.branch, "");

  // An annotated tag, packed: found through its peeled commit. A tag of another commit: none.
  ASSERT_EQ(std::system((git + "checkout -q main && git -c user.email=t@t -c user.name=t commit -q "
                               "--allow-empty -m two && git -c user.email=t@t -c user.name=t tag -a v2 -m v2 "
                               "&& git tag -d v1 >/dev/null && git pack-refs --all")
                            .c_str()),
            0);
  head = read_git_head(dir);
  EXPECT_EQ(head.tag, "v2");
  EXPECT_EQ(head.ref, "refs/heads/main");
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
