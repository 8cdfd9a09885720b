#include "agent/checkout.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

std::string sh(const std::string& cmd) {
  std::string full = "set -e; " + cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr const char* kGit = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main "
                             "-c protocol.file.allow=always";

// A bare repository with main (two commits, the second adding a submodule), a tag v1 on the
// first, and a branch "feature".
class CheckoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxcar-checkout-XXXXXX";
    root = ::mkdtemp(tmpl);
    std::string g = kGit;
    std::string r = root.string();
    sh("cd " + r + " && " + g + " init -q sub && cd sub && echo sub > sub.txt && " + g +
       " add . && " + g + " commit -qm sub && cd .. && " + g + " clone -q --bare sub sub.git");
    sh("cd " + r + " && " + g + " init -q src && cd src && echo one > a.txt && " + g + " add . && " +
       g + " commit -qm one && " + g + " tag -a v1 -m v1 && " + g + " checkout -qb feature && " +
       "echo f > f.txt && " + g + " add . && " + g + " commit -qm f && " + g + " checkout -q main && " +
       g + " submodule -q add " + r + "/sub.git libs/sub && echo two > a.txt && " + g +
       " commit -qam two && cd .. && " + g + " clone -q --bare src repo.git");
    url = r + "/repo.git";
  }
  void TearDown() override { fs::remove_all(root); }

  CheckoutRequest request(const std::string& ws) {
    CheckoutRequest req;
    req.url = url;
    req.data_dir = root / "data";
    req.workspace = root / "ws" / ws;
    return req;
  }
  std::string rev(const std::string& what) {
    return sh("git -C " + (root / "repo.git").string() + " rev-parse " + what);
  }

  fs::path root;
  std::string url;
};

TEST_F(CheckoutTest, BranchTipWithSubmodule) {
  auto req = request("a");
  req.ref = "main";
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("main"));
  EXPECT_EQ(r->ref, "refs/heads/main");
  EXPECT_EQ(read(req.workspace / "a.txt"), "two\n");
  EXPECT_EQ(read(req.workspace / "libs/sub/sub.txt"), "sub\n");
  EXPECT_EQ(r->submodules, 1u);
  EXPECT_TRUE(r->fetched);
  EXPECT_TRUE(fs::exists(mirror_path(req.data_dir, url) / "HEAD"));
  EXPECT_EQ(sh("git -C " + req.workspace.string() + " rev-parse --abbrev-ref HEAD"), "main");
}

TEST_F(CheckoutTest, ExactCommitTagAndBranch) {
  auto req = request("commit");
  req.commit = rev("main~1");
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("main~1"));
  EXPECT_EQ(read(req.workspace / "a.txt"), "one\n");
  EXPECT_FALSE(fs::exists(req.workspace / "libs"));

  auto tag = request("tag");
  tag.ref = "v1";
  r = checkout(tag);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("v1^{commit}"));
  EXPECT_EQ(r->ref, "refs/tags/v1");

  auto branch = request("branch");
  branch.ref = "refs/heads/feature";
  r = checkout(branch);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("feature"));
  EXPECT_TRUE(fs::exists(branch.workspace / "f.txt"));

  auto dflt = request("default");  // neither ref nor commit: the default branch
  r = checkout(dflt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("main"));
}

TEST_F(CheckoutTest, SecondCheckoutFetchesOnlyWhatIsNew) {
  auto first = request("1");
  first.ref = "main";
  auto r1 = checkout(first);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  ASSERT_GT(r1->received_objects, 5u);

  std::string g = kGit;
  sh("cd " + root.string() + "/src && echo three > a.txt && " + g + " commit -qam three && " + g +
     " push -q " + url + " main");
  auto second = request("2");
  second.ref = "main";
  auto r2 = checkout(second);
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r2->commit, rev("main"));
  EXPECT_EQ(read(second.workspace / "a.txt"), "three\n");
  EXPECT_TRUE(r2->fetched);
  EXPECT_GT(r2->received_objects, 0u);
  EXPECT_LT(r2->received_objects, r1->received_objects);  // a commit, a tree, a blob

  auto third = request("3");  // a commit already in the mirror: no fetch at all
  third.commit = r1->commit;
  auto r3 = checkout(third);
  ASSERT_TRUE(r3.ok()) << r3.error().message;
  EXPECT_FALSE(r3->fetched);
  EXPECT_EQ(read(third.workspace / "a.txt"), "two\n");
}

TEST_F(CheckoutTest, FileUrl) {
  auto req = request("file");
  req.url = "file://" + url;
  req.ref = "feature";
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("feature"));
}

TEST_F(CheckoutTest, MissingCommitSaysSo) {
  auto req = request("x");
  req.commit = "0123456789abcdef0123456789abcdef01234567";
  auto r = checkout(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "commit 0123456789abcdef0123456789abcdef01234567 is not in " + url + " (fetched refs/*)");
  req.commit = "";
  req.ref = "nope";
  r = checkout(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "ref \"nope\" is not in " + url + " (no branch or tag of that name)");
}

TEST_F(CheckoutTest, WrongUrlSaysCannotFetch) {
  auto req = request("x");
  req.url = root.string() + "/missing.git";
  req.ref = "main";
  auto r = checkout(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("cannot fetch " + req.url + ": ", 0), 0u) << r.error().message;
}

TEST(RedactUrl, DropsCredentials) {
  EXPECT_EQ(redact_url("https://user:pw@example.com/a.git"), "https://example.com/a.git");
  EXPECT_EQ(redact_url("https://example.com/a@b.git"), "https://example.com/a@b.git");
  EXPECT_EQ(redact_url("/srv/git/a.git"), "/srv/git/a.git");
}

}  // namespace
}  // namespace boxcar::agent
