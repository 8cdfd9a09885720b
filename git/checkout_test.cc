#include "git/checkout.h"

#include <git2.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace boxcar::git {
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
    req.allow_local = true;  // the fixture's repositories are local
    return req;
  }
  std::string rev(const std::string& what) {
    return sh("git -C " + (root / "repo.git").string() + " rev-parse " + what);
  }

  // A mirror of repo.git as if it had been fetched from `remote`: a checkout of a commit in it
  // fetches nothing, so a remote URL can be checked out offline.
  CheckoutRequest from_seeded_mirror(const std::string& remote, const std::string& ws) {
    CheckoutRequest req = request(ws);
    req.url = remote;
    req.allow_local = false;
    fs::path mirror = mirror_path(req.data_dir, remote);
    fs::create_directories(mirror.parent_path());
    sh("git clone -q --mirror " + url + " " + mirror.string() + " && git -C " + mirror.string() +
       " remote set-url origin " + remote);
    return req;
  }

  fs::path root;
  std::string url;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

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

TEST_F(CheckoutTest, CommitIsCheckedAgainstItsRef) {
  // On its ref: the tip, or an ancestor of it.
  for (const char* commit : {"main", "main~1"}) {
    auto req = request(std::string("on-") + (commit[4] ? "old" : "tip"));
    req.ref = "main";
    req.commit = rev(commit);
    auto r = checkout(req);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->off_ref, "") << commit;
  }
  // Not on it: feature's commit with ref main, and any commit with a ref that does not exist.
  auto off = request("off");
  off.ref = "main";
  off.commit = rev("feature");
  auto r = checkout(off);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->commit, rev("feature"));  // checked out all the same: the caller decides
  EXPECT_NE(r->off_ref.find("is not on refs/heads/main"), std::string::npos) << r->off_ref;
  auto missing = request("missing");
  missing.ref = "no-such-branch";
  missing.commit = rev("main");
  r = checkout(missing);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->off_ref.find("no-such-branch"), std::string::npos) << r->off_ref;
  // No commit, or no ref: nothing to check.
  auto tip = request("tip-only");
  tip.ref = "main";
  r = checkout(tip);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->off_ref, "");
}

TEST_F(CheckoutTest, CommitNewerThanTheMirrorsRefIsFetchedBeforeItIsJudged) {
  // The mirror has the commit (from feature) but its main is older: main then fast-forwards to
  // it upstream. The check must not trust the mirror's stale main.
  auto first = request("1");
  first.ref = "main";
  ASSERT_TRUE(checkout(first).ok());
  std::string g = kGit;
  sh("cd " + root.string() + "/src && " + g + " checkout -q feature && echo g > g.txt && " + g +
     " add g.txt && " + g + " commit -qm g && " + g + " push -q " + url + " feature");
  auto warm = request("2");
  warm.ref = "feature";
  ASSERT_TRUE(checkout(warm).ok());  // the mirror now holds feature's new commit
  std::string commit = rev("feature");
  sh("git -C " + url + " update-ref refs/heads/main " + commit);  // main moves onto it upstream
  auto req = request("3");
  req.ref = "main";
  req.commit = commit;
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->off_ref, "");
  EXPECT_TRUE(r->fetched);
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

TEST_F(CheckoutTest, LocalRepositoryNeedsAllowLocal) {
  for (std::string local : {url, "file://" + url}) {
    auto req = request("local");
    req.url = local;
    req.ref = "main";
    req.allow_local = false;
    auto r = checkout(req);
    ASSERT_FALSE(r.ok()) << local;
    EXPECT_EQ(r.error().message, local + " is a local path or file:// URL: the agent fetches those "
                                         "only when started with --allow-local-repos");
    EXPECT_FALSE(fs::exists(req.workspace));
  }
}

TEST_F(CheckoutTest, LocalSubmoduleOfARemoteRepositoryIsRefused) {
  auto req = from_seeded_mirror("https://git.example.invalid/repo.git", "remote");
  req.commit = rev("main");  // its .gitmodules: url = <root>/sub.git
  auto r = checkout(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "submodule \"libs/sub\" (" + root.string() +
                                   "/sub.git) is a local path or file:// URL: the agent fetches "
                                   "those only when started with --allow-local-repos");
  EXPECT_FALSE(fs::exists(req.workspace / "libs/sub/sub.txt"));

  auto first = from_seeded_mirror("https://git.example.invalid/other.git", "first");
  first.commit = rev("main~1");  // no submodule yet: the remote repository itself is fine
  r = checkout(first);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(first.workspace / "a.txt"), "one\n");
}

// The mirror is shared: a commit in it must not reach a caller the remote would refuse.
TEST_F(CheckoutTest, AlwaysFetchAsksTheRemoteEvenForACommitInTheMirror) {
  // Port 1 on loopback refuses connections: the remote says no to everyone.
  auto job = from_seeded_mirror("https://127.0.0.1:1/private.git", "job");
  job.commit = rev("main~1");
  auto control = checkout(job);  // a job's checkout: the commit comes from the mirror
  ASSERT_TRUE(control.ok()) << control.error().message;
  EXPECT_FALSE(control->fetched);

  auto sandbox = request("sandbox");
  sandbox.url = job.url;
  sandbox.allow_local = false;
  sandbox.commit = job.commit;
  sandbox.always_fetch = true;
  auto r = checkout(sandbox);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::unavailable);
  EXPECT_EQ(r.error().message.rfind("cannot fetch https://127.0.0.1:1/private.git: ", 0), 0u) << r.error().message;
  EXPECT_FALSE(fs::exists(sandbox.workspace / "a.txt"));
}

TEST_F(CheckoutTest, RelativeSubmoduleUrlIsResolvedBeforeTheCheck) {
  // "../../sub.git" against git@host:repo.git backs out of the host: libgit2 resolves it to
  // "../sub.git", a path relative to the agent's working directory.
  std::string g = kGit;
  sh("cd " + root.string() + "/src && " + g + " config -f .gitmodules submodule.libs/sub.url "
     "../../sub.git && " + g + " commit -qam relative && " + g + " push -q " + url + " main");
  auto req = from_seeded_mirror("git@git.example.invalid:repo.git", "relative");
  req.commit = rev("main");
  auto r = checkout(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "submodule \"libs/sub\" (../sub.git) is a local path or file:// "
                               "URL: the agent fetches those only when started with --allow-local-repos");
}

TEST_F(CheckoutTest, WorkspaceSharesNoFileWithTheMirror) {
  auto req = request("copy");
  req.ref = "main";
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(req.workspace / ".git/objects")) {
    if (!e.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(fs::hard_link_count(e.path()), 1u) << e.path();
  }
  EXPECT_GT(files, 0u);
}

TEST_F(CheckoutTest, MirrorsDirectoryIsPrivate) {
  auto req = request("a");
  req.ref = "main";
  fs::create_directories(req.data_dir / "mirrors");
  fs::permissions(req.data_dir / "mirrors", fs::perms(0755));
  auto r = checkout(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(mode_of(req.data_dir / "mirrors"), 0700u);
}

TEST(IsLocalUrl, PathsAndFileUrlsAreLocal) {
  EXPECT_TRUE(is_local_url("/abs/path"));
  EXPECT_TRUE(is_local_url("/abs/path.git"));
  EXPECT_TRUE(is_local_url("relative/repo"));
  EXPECT_TRUE(is_local_url("../relative"));
  EXPECT_TRUE(is_local_url("./x:y"));  // git: a path, since '/' comes before ':'
  EXPECT_TRUE(is_local_url("file:///x"));
  EXPECT_TRUE(is_local_url("FILE:///x"));
  EXPECT_TRUE(is_local_url("file:/x"));
  EXPECT_TRUE(is_local_url(""));
  EXPECT_FALSE(is_local_url("https://host/x.git"));
  EXPECT_FALSE(is_local_url("http://host/x.git"));
  EXPECT_FALSE(is_local_url("ssh://git@host/x.git"));
  EXPECT_FALSE(is_local_url("git://host/x.git"));
  EXPECT_FALSE(is_local_url("git@host:x"));
  EXPECT_FALSE(is_local_url("host:x/y.git"));
}

// Submodule URLs are checked as libgit2 resolves them against the parent's origin.
TEST(IsLocalUrl, RelativeSubmoduleUrlsResolvedByLibgit2) {
  git_libgit2_init();
  char tmpl[] = "/tmp/boxcar-resolve-XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  sh("git init -q " + dir.string());
  auto resolve = [&](const std::string& origin, const std::string& rel) {
    sh("git -C " + dir.string() + " remote remove origin 2>/dev/null || true; git -C " +
       dir.string() + " remote add origin " + origin);
    git_repository* repo = nullptr;
    EXPECT_EQ(git_repository_open(&repo, dir.c_str()), 0);
    git_buf out = GIT_BUF_INIT;
    EXPECT_EQ(git_submodule_resolve_url(&out, repo, rel.c_str()), 0);
    std::string resolved(out.ptr ? out.ptr : "", out.size);
    git_buf_dispose(&out);
    git_repository_free(repo);
    return resolved;
  };
  std::string local = resolve("/srv/git/parent.git", "../relative.git");
  EXPECT_EQ(local, "/srv/git/relative.git");
  EXPECT_TRUE(is_local_url(local));
  std::string remote = resolve("https://host/org/parent.git", "../relative.git");
  EXPECT_EQ(remote, "https://host/org/relative.git");
  EXPECT_FALSE(is_local_url(remote));
  std::string escaped = resolve("git@host:parent.git", "../../relative.git");
  EXPECT_TRUE(is_local_url(escaped)) << escaped;
  fs::remove_all(dir);
  git_libgit2_shutdown();
}

TEST(TokenAllowed, OnlyHttpsToListedHosts) {
  std::vector<std::string> hosts = {"github.com", "git.example.com"};
  EXPECT_TRUE(token_allowed("https://github.com/o/r.git", hosts));
  EXPECT_TRUE(token_allowed("https://GitHub.COM/o/r.git", hosts));
  EXPECT_TRUE(token_allowed("https://github.com:8443/o/r.git", hosts));
  EXPECT_TRUE(token_allowed("HTTPS://git.example.com", hosts));
  EXPECT_TRUE(token_allowed("https://github.com/o/r@v1.git", hosts));  // '@' in the path
  EXPECT_TRUE(token_allowed("https://github.com/o/r.git", {"GITHUB.com"}));

  EXPECT_FALSE(token_allowed("http://github.com/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("ssh://github.com/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("git@github.com:o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://evil.example/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://github.com.evil.example/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://evilgithub.com/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://github.com@evil.example/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://github.com:443@evil.example/", hosts));
  EXPECT_FALSE(token_allowed("https://user:pw@github.com/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://evil.example#@github.com/", hosts));
  EXPECT_FALSE(token_allowed("https://evil.example?@github.com/", hosts));
  EXPECT_FALSE(token_allowed("https://github.com\\@evil.example/", hosts));
  EXPECT_FALSE(token_allowed("https://github.com:x/o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https:///o/r.git", hosts));
  EXPECT_FALSE(token_allowed("https://github.com/o/r.git", {}));
  EXPECT_FALSE(token_allowed("/srv/github.com", hosts));
}

TEST(RedactUrl, DropsCredentials) {
  EXPECT_EQ(redact_url("https://user:pw@example.com/a.git"), "https://example.com/a.git");
  EXPECT_EQ(redact_url("https://example.com/a@b.git"), "https://example.com/a@b.git");
  EXPECT_EQ(redact_url("/srv/git/a.git"), "/srv/git/a.git");
}

}  // namespace
}  // namespace boxcar::git
