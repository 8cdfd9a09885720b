// POST /git/checkout over real HTTP into a real sandbox: a repository the test makes with git,
// fetched over file:// (the host allows local repositories) through the agent's mirror cache,
// placed in /workspace where the sandbox's root owns it. The attacks: a dir outside /workspace,
// a symlink the sandbox plants at the destination or on the way to it (the host must never
// follow it), a loopback or link-local URL (the SSRF guard), a token in the URL; each beside
// a control that shows the same request works when it is not an attack.
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>
#include <cstdio>
#include <filesystem>

#include <boost/json.hpp>

#include "sandboxes/host_fixture.h"
#include "sandboxes/sandbox_suite.h"

namespace boxcar::sandboxes {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string sh(const std::string& cmd) {
  std::string full = "set -e; " + cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  EXPECT_EQ(::pclose(p), 0) << cmd << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

constexpr const char* kGit = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";

class GitCheckoutTest : public SandboxSuite {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/boxcar-sbgit-XXXXXX";
    repos_ = ::mkdtemp(tmpl);
    const std::string g = kGit, r = repos_.string();
    // main: "one" then "two"; the bare copy is what the sandbox fetches.
    sh("cd " + r + " && " + g + " init -q src && cd src && echo one > a.txt && " + g + " add . && " + g +
       " commit -qm one && echo two > a.txt && " + g + " commit -qam two && cd .. && " + g + " clone -q --bare src app.git");
    url_ = "file://" + r + "/app.git";
    first_ = sh("git -C " + r + "/app.git rev-parse main~1");
    SandboxHostOptions options;
    options.git_allow_local = true;
    auto f = HostFixture::make(std::move(options));
    if (!f) {
      skip_ = f.error().message;
      return;
    }
    f_ = std::move(*f).release();
    auto id = f_->create_sandbox("alice");
    if (id) id_ = *id;
    else skip_ = id.error().message;
  }
  static void TearDownTestSuite() {
    SandboxSuite::TearDownTestSuite();
    std::error_code ec;
    fs::remove_all(repos_, ec);
  }
  static HttpReply checkout(json::object body) {
    if (!body.contains("url")) body["url"] = url_;
    return post("/git/checkout", body);
  }
  static json::object answer(const HttpReply& r) {
    auto v = parse(r.body);
    return v.is_object() ? v.as_object() : json::object{};
  }
  static std::string out(const std::string& command) { return str(exec({{"command", command}}), "stdout"); }

  static inline fs::path repos_;
  static inline std::string url_, first_;
};

TEST_F(GitCheckoutTest, ChecksOutIntoWorkspaceOwnedBySandboxRoot) {
  // The agent runs with umask 077 (boxcar serve and agent set it): the tree must still read as
  // a clone in the sandbox would (0644 files, 0755 directories).
  mode_t old_umask = ::umask(077);
  HttpReply r = checkout({});
  ::umask(old_umask);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(out("stat -c %a /workspace/app /workspace/app/a.txt /workspace/app/.git"), "755\n644\n755\n");
  auto a = answer(r);
  EXPECT_EQ(str(a, "dir"), "/workspace/app") << "named after the repository";
  EXPECT_EQ(str(a, "ref"), "refs/heads/main");
  EXPECT_EQ(str(a, "commit"), sh("git -C " + repos_.string() + "/app.git rev-parse main"));
  EXPECT_EQ(a.at("shallow"), false);
  EXPECT_EQ(out("cat /workspace/app/a.txt"), "two\n");
  // The sandbox's root owns the tree: it can edit it, and git in it sees a clean checkout.
  auto touched = exec({{"command", "touch /workspace/app/new && echo x >> /workspace/app/a.txt && stat -c %u:%g /workspace/app/a.txt"}});
  EXPECT_EQ(touched.at("exit_code"), 0) << str(touched, "stderr");
  EXPECT_EQ(str(touched, "stdout"), "0:0\n");
  // Nothing of the staging is left beside the workspace.
  EXPECT_FALSE(fs::exists(f_->data_dir() / "sandboxes" / id_ / "git-staging"));
}

TEST_F(GitCheckoutTest, PinsACommitAndMakesParentDirectories) {
  HttpReply r = checkout({{"commit", first_}, {"dir", "pinned/deep/app"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(str(answer(r), "commit"), first_);
  EXPECT_EQ(str(answer(r), "dir"), "/workspace/pinned/deep/app");
  EXPECT_EQ(out("cat /workspace/pinned/deep/app/a.txt; stat -c %u /workspace/pinned/deep"), "one\n0\n");
}

// The mirror is shared with jobs and other tenants: a commit in it is given out only after the
// remote has been asked (and has said yes).
TEST_F(GitCheckoutTest, ACommitInTheMirrorStillNeedsTheRemote) {
  HttpReply control = checkout({{"commit", first_}, {"dir", "mirrored"}});  // now in the mirror
  ASSERT_EQ(control.status, 200u) << control.body;
  const std::string repo = repos_.string() + "/app.git", away = repos_.string() + "/away.git";
  fs::rename(repo, away);  // the remote refuses everyone now
  HttpReply r = checkout({{"commit", first_}, {"dir", "mirrored-again"}});
  fs::rename(away, repo);
  EXPECT_EQ(r.status, 502u) << r.body;
  EXPECT_NE(r.body.find("fetch_failed"), std::string::npos) << r.body;
  EXPECT_EQ(out("test -e /workspace/mirrored-again && echo there || echo absent"), "absent\n");
}

TEST_F(GitCheckoutTest, BadRefOrUnknownFieldIs400NamingTheField) {
  HttpReply r = checkout({{"ref", "no-such-branch"}, {"dir", "badref"}});
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(str(answer(r), "field"), "ref");
  EXPECT_NE(str(answer(r), "error").find("no-such-branch"), std::string::npos) << r.body;
  EXPECT_EQ(out("test -e /workspace/badref && echo there || echo absent"), "absent\n");

  HttpReply typo = checkout({{"refs", "main"}});
  EXPECT_EQ(typo.status, 400u) << typo.body;
  EXPECT_NE(typo.body.find("did you mean \\\"ref\\\""), std::string::npos) << typo.body;
}

TEST_F(GitCheckoutTest, ExistingDirNeedsReplace) {
  exec({{"command", "mkdir -p /workspace/busy && echo mine > /workspace/busy/keep"}});
  HttpReply refused = checkout({{"dir", "busy"}});
  EXPECT_EQ(refused.status, 409u) << refused.body;
  EXPECT_EQ(str(answer(refused), "code"), "exists");
  EXPECT_EQ(out("cat /workspace/busy/keep"), "mine\n") << "left as it was";

  exec({{"command", "mkdir -p /workspace/empty"}});
  EXPECT_EQ(checkout({{"dir", "empty"}}).status, 200u) << "an empty directory is taken";

  HttpReply replaced = checkout({{"dir", "busy"}, {"replace", true}});
  ASSERT_EQ(replaced.status, 200u) << replaced.body;
  EXPECT_EQ(out("ls /workspace/busy"), "a.txt\n");
}

TEST_F(GitCheckoutTest, DirOutsideWorkspaceIs400) {
  for (const char* dir : {"../etc/x", "/etc/x", "/workspace", "/workspace/../x", "/tmp/x"}) {
    HttpReply r = checkout({{"dir", dir}});
    EXPECT_EQ(r.status, 400u) << dir << ": " << r.body;
    EXPECT_EQ(str(answer(r), "field"), "dir") << dir;
  }
  EXPECT_EQ(checkout({{"dir", "/workspace/inside"}}).status, 200u) << "control";
}

// The sandbox plants symlinks to / where the tree is to land, and on the way there: the host
// (root) must replace or refuse, never write through them.
TEST_F(GitCheckoutTest, SymlinksThatSandboxPlantsAreNeverFollowed) {
  ASSERT_FALSE(fs::exists("/a.txt"));
  ASSERT_FALSE(fs::exists("/boxcar-git-escape"));
  exec({{"command", "ln -s / /workspace/x && ln -s / /workspace/up"}});
  HttpReply at = checkout({{"dir", "/workspace/x"}});
  EXPECT_EQ(at.status, 409u) << at.body;
  HttpReply on_the_way = checkout({{"dir", "/workspace/up/boxcar-git-escape"}});
  EXPECT_EQ(on_the_way.status, 400u) << on_the_way.body;
  EXPECT_EQ(str(answer(on_the_way), "code"), "bad_path");
  HttpReply replaced = checkout({{"dir", "/workspace/x"}, {"replace", true}});
  ASSERT_EQ(replaced.status, 200u) << replaced.body;
  EXPECT_FALSE(fs::exists("/a.txt")) << "the clone landed on the host's /";
  EXPECT_FALSE(fs::exists("/boxcar-git-escape"));
  EXPECT_TRUE(fs::exists("/etc/passwd")) << "the replaced symlink was removed without following it";
  // Control: the same paths as plain directories take the checkout.
  EXPECT_EQ(out("test -d /workspace/x -a ! -L /workspace/x && cat /workspace/x/a.txt"), "two\n");
  exec({{"command", "rm /workspace/up && mkdir /workspace/up"}});
  EXPECT_EQ(checkout({{"dir", "/workspace/up/boxcar-git-escape"}}).status, 200u);
}

TEST_F(GitCheckoutTest, PrivateHostsRefusedNamingTheFlag) {
  for (const char* url : {"http://user:s3cret@127.0.0.1:9/x.git", "https://169.254.169.254/x.git", "http://[::1]:9/x.git",
                          "http://localhost:9/x.git", "http://10.1.2.3/x.git"}) {
    HttpReply r = checkout({{"url", url}, {"dir", "ssrf"}});
    EXPECT_EQ(r.status, 400u) << url << ": " << r.body;
    EXPECT_EQ(str(answer(r), "field"), "url") << url;
    EXPECT_NE(r.body.find("--sandbox-git-allow-private"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("s3cret"), std::string::npos) << "the token in the URL leaked: " << r.body;
  }
}

// A host that allows private addresses but not local repositories; a "git server" on loopback
// that accepts and never answers.
TEST(GitCheckoutHostTest, TimeoutLocalRefusalAndOneAtATime) {
  SandboxHostOptions options;
  options.git_allow_private = true;
  auto made = HostFixture::make(std::move(options));
  if (!made) GTEST_SKIP() << made.error().message;
  auto& f = **made;
  auto id = f.create_sandbox("alice");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto post = [&](const json::object& body) { return f.call_json("POST", HostFixture::path(*id, "/git/checkout"), body); };

  HttpReply local = post({{"url", "file:///srv/x.git"}});
  EXPECT_EQ(local.status, 400u) << local.body;
  EXPECT_NE(local.body.find("--allow-local-repos"), std::string::npos) << local.body;

  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.git";

  HttpReply slow = post({{"url", url}, {"timeout_ms", 300}});
  EXPECT_EQ(slow.status, 504u) << slow.body;
  EXPECT_NE(slow.body.find("\"timeout\""), std::string::npos) << slow.body;
  // The transfer is still stuck in its read: the slot is taken until it ends.
  HttpReply second = post({{"url", url}, {"timeout_ms", 300}});
  EXPECT_EQ(second.status, 429u) << second.body;
  ::close(listener);  // the stuck fetch fails now; its thread cleans up alone
}

// The agent-wide cap on checkout threads: a transfer stuck in a read keeps its thread after the
// 504 and after its sandbox is deleted, so create/checkout/delete loops must meet a limit.
TEST(GitCheckoutHostTest, CheckoutThreadsAreCappedAgentWideUntilTheyEnd) {
  SandboxHostOptions options;
  options.git_allow_private = true;
  options.git_max_threads = 1;
  auto made = HostFixture::make(std::move(options));
  if (!made) GTEST_SKIP() << made.error().message;
  auto& f = **made;
  auto first = f.create_sandbox("alice"), second = f.create_sandbox("alice");
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto post = [&](const std::string& id, const json::object& body) {
    return f.call_json("POST", HostFixture::path(id, "/git/checkout"), body);
  };

  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // accepts, never answers
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.git";

  HttpReply stuck = post(*first, {{"url", url}, {"timeout_ms", 300}});
  EXPECT_EQ(stuck.status, 504u) << stuck.body;
  ASSERT_TRUE(f.remove_sandbox(*first));  // its slot goes; its thread is still in the read

  // Attack: another sandbox's checkout while the stuck thread lives.
  HttpReply refused = post(*second, {{"url", "file:///srv/x.git"}});
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_NE(refused.body.find("agent-wide"), std::string::npos) << refused.body;

  // Control: once the stuck transfer fails (the listener goes, its connection is reset) the
  // thread ends and the same request is taken (400: local URLs are off on this host). Waits for
  // the thread to end, with a bound only so a broken count cannot hang the suite.
  ::close(listener);
  HttpReply taken;
  for (int i = 0; i < 1000; ++i) {
    taken = post(*second, {{"url", "file:///srv/x.git"}});
    if (taken.status != 429u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(taken.status, 400u) << taken.body;
  EXPECT_NE(taken.body.find("--allow-local-repos"), std::string::npos) << taken.body;
}

}  // namespace
}  // namespace boxcar::sandboxes
