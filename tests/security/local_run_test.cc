// `boxcar run` on a real git repository: a secret reaches only the step that declares it, and
// no step can change what the host's git will run (.git is read-only inside steps). Each attack
// sits beside a control where the same probe succeeds.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

CommandResult git(const fs::path& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/git", "-c", "user.name=boxcar test", "-c", "user.email=test@boxcar.invalid",
                                   "-c", "protocol.file.allow=always"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, dir);
}

CommandResult boxcar_run(const fs::path& workspace, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {boxcar_binary(), "run"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_command(argv, workspace);
}

// A secret's value is searched for in every /proc file the step can read and in /workspace
// (the run's logs live there) with the pattern "[S]..." so that the probe never finds itself.
TEST(LocalRunSecrets, OnlyTheDeclaringStepCanFindTheValue) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  std::random_device rd;
  std::string value = "SECRETVALUE" + std::to_string(rd()) + std::to_string(rd());
  std::string pattern = "[S]" + value.substr(1);
  std::string probe = "set +e\nfor f in /proc/[0-9]*/* /proc/[0-9]*/task/*/*; do\n"
                      "  [ -f \"$f\" ] && [ -r \"$f\" ] || continue\n"
                      "  case \"$f\" in */mem|*/pagemap|*/clear_refs) continue;; esac\n"
                      "  head -c 4000000 \"$f\" 2>/dev/null | grep -a -q '" + pattern + "' && echo \"hit: $f\"\n"
                      "done | sed 's#/proc/[0-9]*/#/proc/PID/#' | sort -u\n"
                      "grep -r -a -l '" + pattern + "' /workspace /tmp 2>/dev/null | sed 's/^/hit: /'\n"
                      "echo probed\n";
  std::string toml = "version = 1\n"
                     "[[step]]\nname = \"declares\"\nsecrets = [\"A\"]\nrun = '''\n" + probe + "'''\n"
                     "[[step]]\nname = \"undeclared\"\nneeds = [\"declares\"]\nrun = '''\n" + probe + "'''\n";
  make_git_repo(work / "ws", toml);
  auto r = boxcar_run(work / "ws", {"--secret", "A=" + value});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Control: the step that declares A finds it (its own environment).
  EXPECT_NE(r.out.find("[declares] hit: /proc/PID/environ"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[undeclared] probed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("[undeclared] hit:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(value), std::string::npos) << r.out;
}

// What the step tries: set core.fsmonitor, plant a hook, repoint a submodule's gitdir, remove
// or move .git, plant a .git in a submodule that is not checked out; then write a plain file.
constexpr const char* kGitAttack = R"(set +e
cd /workspace
git config core.fsmonitor 'touch /tmp/pwned-fsmonitor' 2>/dev/null && echo set-fsmonitor
printf '#!/bin/sh\ntouch /tmp/pwned-hook\n' > .git/hooks/pre-commit 2>/dev/null && echo planted-hook
echo 'gitdir: ../evil' > sub/.git 2>/dev/null && echo repointed-submodule
mkdir -p empty-sub/.git 2>/dev/null && echo planted-in-empty-sub
rm -rf .git 2>/dev/null; test -d .git/objects || echo removed-git
mv .git moved-git 2>/dev/null && echo moved-git
echo ok > other-file && echo wrote-other
git log --oneline | wc -l | sed 's/^/commits /'
)";

// A repository with a checked-out submodule ("sub") and one that is not ("empty-sub").
void make_repository(const fs::path& ws, const fs::path& origin) {
  make_git_repo(origin, "", {{"lib.txt", "library\n"}});
  make_git_repo(ws, std::string("version = 1\n[[step]]\nname = \"attack\"\nrun = '''\n") + kGitAttack + "'''\n");
  ASSERT_EQ(git(ws, {"submodule", "add", "-q", origin.string(), "sub"}).exit_code, 0);
  ASSERT_EQ(git(ws, {"submodule", "add", "-q", origin.string(), "empty-sub"}).exit_code, 0);
  ASSERT_EQ(git(ws, {"commit", "-q", "-m", "submodules"}).exit_code, 0);
  ASSERT_EQ(git(ws, {"submodule", "deinit", "-q", "-f", "empty-sub"}).exit_code, 0);
  ASSERT_TRUE(fs::is_regular_file(ws / "sub/.git"));
  ASSERT_FALSE(fs::exists(ws / "empty-sub/.git"));
}

TEST(LocalRunGit, StepsCannotChangeWhatTheHostsGitRuns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  make_repository(work / "ws", work / "origin");
  if (HasFatalFailure()) return;
  std::string sub_git = read_file(work / "ws/sub/.git");
  auto r = boxcar_run(work / "ws", {});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Control inside: a plain file of the workspace is writable, and git can read the history.
  EXPECT_NE(r.out.find("[attack] wrote-other"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("[attack] commits 2"), std::string::npos) << r.out;
  for (const char* attack : {"set-fsmonitor", "planted-hook", "repointed-submodule", "planted-in-empty-sub",
                             "removed-git", "moved-git"}) {
    EXPECT_EQ(r.out.find(attack), std::string::npos) << attack << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("boxcar: .git was read-only to steps"), std::string::npos) << r.out;
  // The step wrote to its own layer (docs/pipeline.md, "What a step sees"): the checkout is as it was.
  EXPECT_FALSE(fs::exists(work / "ws/other-file"));
  EXPECT_EQ(git(work / "ws", {"config", "--get", "core.fsmonitor"}).out, "");
  EXPECT_FALSE(fs::exists(work / "ws/.git/hooks/pre-commit"));
  EXPECT_EQ(read_file(work / "ws/sub/.git"), sub_git);
  EXPECT_FALSE(fs::exists(work / "ws/empty-sub/.git"));
  // The host's git runs and nothing planted runs with it.
  auto status = git(work / "ws", {"status", "--porcelain"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_FALSE(fs::exists("/tmp/pwned-fsmonitor"));
  EXPECT_FALSE(fs::exists("/tmp/pwned-hook"));
}

// Control: the same attack with the host executor succeeds, and the run says it could.
TEST(LocalRunGit, TheHostExecutorCannotProtectGitAndSaysSo) {
  TempDir work;
  make_repository(work / "ws", work / "origin");
  if (HasFatalFailure()) return;
  // /workspace does not exist on the host: run the attack in the workspace itself.
  std::string toml = read_file(work / "ws/.boxcar.toml");
  toml.replace(toml.find("cd /workspace"), 13, "cd \"$BOXCAR_WORKSPACE\"");
  // Without the destructive lines, so that the planted config can be checked afterwards.
  for (const std::string line : {"rm -rf .git", "mv .git"}) {
    size_t at = toml.find(line);
    toml.erase(at, toml.find('\n', at) + 1 - at);
  }
  write_file(work / "ws/.boxcar.toml", toml);
  auto r = boxcar_run(work / "ws", {"--executor", "host"});
  EXPECT_NE(r.out.find("[attack] set-fsmonitor"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("[attack] planted-hook"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[attack] repointed-submodule"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the host executor cannot protect .git"), std::string::npos) << r.out;
  EXPECT_EQ(git(work / "ws", {"config", "--get", "core.fsmonitor"}).out, "touch /tmp/pwned-fsmonitor\n");
}

}  // namespace
}  // namespace boxcar::service_test
