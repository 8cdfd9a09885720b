// ExecControl in real native sandboxes (one executor, job and sandbox for the suite): stdin,
// the started pid, signals to the command or its tree, kill_tree against a setsid() daemon,
// and the commands' cgroups cleaned up. Attacks stand beside the control that shows the probe works.
#include "executors/native/exec_control.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "executors/native/native_executor.h"
#include "testing/sandbox_run.h"

namespace boxcar::executors {
namespace {

namespace fs = std::filesystem;
using boxcar::testing::Ran;

// One command under test: its control, output and outcome, and whether output came first.
struct Command {
  std::shared_ptr<ExecControl> control;
  Ran ran;
  bool done = false;
  bool output_before_started = false;
};

class ExecControlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (Status s = native_available(); !s) return;
    char tmpl[] = "/tmp/boxcar-exec-control-XXXXXX";
    workspace_ = new fs::path(::mkdtemp(tmpl));
    io_ = new boost::asio::io_context;
    executor_ = make_native_executor(*io_).release();
    auto job = executor_->prepare(JobSpec{"exec-control", *workspace_});
    if (!job) return;
    job_ = job->release();
    SandboxSpec spec;
    spec.name = "control";
    auto sb = job_->start(spec);
    if (sb) sandbox_ = sb->release();
  }
  static void TearDownTestSuite() {
    delete sandbox_;
    if (job_) job_->destroy();
    if (io_) {
      io_->restart();
      io_->run_for(std::chrono::milliseconds(50));
    }
    delete job_;
    delete executor_;
    delete io_;
    if (workspace_) fs::remove_all(*workspace_);
    delete workspace_;
    sandbox_ = nullptr, job_ = nullptr, executor_ = nullptr, io_ = nullptr, workspace_ = nullptr;
  }
  void SetUp() override {
    if (Status s = native_available(); !s) GTEST_SKIP() << s.error().message;
    ASSERT_NE(sandbox_, nullptr);
  }

  template <typename Pred>
  static void run_until(Pred pred) {
    while (!pred()) {
      io_->restart();
      io_->run_one();
    }
  }

  // Starts `script` (sh -c) and runs the io_context until on_started (or the end).
  static std::unique_ptr<Command> launch(const std::string& script, bool stdin_pipe, bool own_tree,
                                         Sandbox* sandbox = nullptr) {
    auto c = std::make_unique<Command>();
    Command* p = c.get();
    ExecHandlers h;
    h.on_started = [p](std::shared_ptr<ExecControl> control) { p->control = std::move(control); };
    h.on_output = [p](OutputStream s, std::string_view data) {
      if (!p->control) p->output_before_started = true;
      (s == OutputStream::out ? p->ran.out : p->ran.err).append(data);
    };
    h.on_exit = [p](const Outcome& o) {
      p->ran.outcome = o;
      p->done = true;
    };
    ExecRequest req{{"bash", "-c", script}, {"PATH=/usr/bin:/bin"}, "."};
    req.stdin_pipe = stdin_pipe;
    req.own_tree = own_tree;
    Status st = (sandbox ? sandbox : sandbox_)->exec(req, std::move(h));
    EXPECT_TRUE(st.ok()) << st.error().message;
    if (!st) return c;
    run_until([p] { return p->control || p->done; });
    return c;
  }
  static void wait_output(Command& c, const std::string& text) {
    run_until([&] { return c.ran.out.find(text) != std::string::npos || c.done; });
  }
  static void wait_exit(Command& c) {
    run_until([&] { return c.done; });
  }
  // A one-off probe in the sandbox.
  static std::string probe(const std::string& script) {
    return boxcar::testing::run_in(*io_, *sandbox_, ExecRequest{{"bash", "-c", script}, {"PATH=/usr/bin:/bin"}, "."}).out;
  }
  // The host directory of the sandbox's cgroup `inner` ("/c3", as /proc/self/cgroup shows it
  // inside), below this test process's own instance of the executor.
  static fs::path host_cgroup(const std::string& inner) {
    for (const auto& instance : fs::directory_iterator(native_tree_root())) {
      if (!instance.path().filename().string().starts_with(std::to_string(::getpid()) + "-")) continue;
      for (const auto& sandbox : fs::directory_iterator(instance.path())) {
        if (sandbox.is_directory() && fs::exists(sandbox.path() / inner.substr(1))) return sandbox.path() / inner.substr(1);
      }
    }
    return {};
  }
  static fs::path native_tree_root() {
    std::ifstream mounts("/proc/self/mounts");
    for (std::string dev, dir, type, rest; mounts >> dev >> dir >> type && std::getline(mounts, rest);) {
      if (type == "cgroup2") return fs::path(dir) / "boxcar";
    }
    return {};
  }
  bool cgroups() const { return native_tree_fallback(*executor_).empty(); }

  static inline boost::asio::io_context* io_ = nullptr;
  static inline fs::path* workspace_ = nullptr;
  static inline Executor* executor_ = nullptr;
  static inline Job* job_ = nullptr;
  static inline Sandbox* sandbox_ = nullptr;
};

TEST_F(ExecControlTest, StdinReachesTheCommandAndCloseGivesEof) {
  auto c = launch("cat", true, true);
  ASSERT_TRUE(c->control);
  std::string big(200000, 'b');  // more than a pipe holds: the write waits for cat to read
  std::string sent;
  int ok = 0, failed = 0;
  for (const std::string& piece : {std::string("one\n"), big, std::string("two\n")}) {
    sent += piece;
    c->control->write_stdin(piece, [&](bool good) { good ? ++ok : ++failed; });
  }
  c->control->close_stdin();
  wait_exit(*c);
  EXPECT_EQ(c->ran.outcome.kind, Outcome::Kind::ok) << describe(c->ran.outcome) << c->ran.err;
  EXPECT_EQ(c->ran.out.size(), sent.size());
  EXPECT_TRUE(c->ran.out == sent);
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(failed, 0);
}

TEST_F(ExecControlTest, WritesFailOnceTheCommandClosedStdinOrEnded) {
  // The command closes its end while it runs: EPIPE is done(false), and no SIGPIPE ends us.
  auto c = launch("exec 0<&-; echo closed; exec sleep 1000", true, true);
  ASSERT_TRUE(c->control);
  wait_output(*c, "closed");
  int answered = 0;
  bool result = true;
  c->control->write_stdin("x", [&](bool good) { result = good, ++answered; });
  run_until([&] { return answered == 1; });
  EXPECT_FALSE(result);
  ASSERT_TRUE(c->control->kill_tree().ok());
  wait_exit(*c);
  // After on_exit: refused at once, and signals are an Error.
  bool late = true;
  c->control->write_stdin("late", [&](bool good) { late = good, ++answered; });
  run_until([&] { return answered == 2; });
  EXPECT_FALSE(late);
  EXPECT_FALSE(c->control->signal(SIGTERM, true).ok());
  EXPECT_FALSE(c->control->kill_tree().ok());
  // Control: with the pipe open, the same write is accepted (and the command gets EOF without a writer).
  auto open = launch("head -c 1", true, true);
  ASSERT_TRUE(open->control);
  bool accepted = false;
  open->control->write_stdin("y", [&](bool good) { accepted = good; });
  wait_exit(*open);
  EXPECT_TRUE(accepted);
  EXPECT_EQ(open->ran.out, "y");
}

TEST_F(ExecControlTest, StartedComesFirstWithTheCommandsPid) {
  for (bool own_tree : {true, false}) {
    auto c = launch("echo $$", false, own_tree);
    ASSERT_TRUE(c->control);
    wait_exit(*c);
    EXPECT_FALSE(c->output_before_started);
    EXPECT_EQ(c->ran.out, std::to_string(c->control->pid()) + "\n") << c->ran.err;
    EXPECT_EQ(c->control->tree_is_cgroup(), own_tree && cgroups());
  }
}

TEST_F(ExecControlTest, SignalToTheLeaderOnly) {
  // The child traps USR1 too: it must not hear it. The leader's trap then ends them all.
  auto c = launch("(trap 'echo child-usr1; exit 0' USR1; echo child-ready; sleep 1000 >/dev/null 2>&1 & wait) & "
                  "trap 'echo usr1; kill -9 0' USR1; echo leader-up; wait",
                  false, true);
  ASSERT_TRUE(c->control);
  wait_output(*c, "child-ready");
  wait_output(*c, "leader-up");
  ASSERT_TRUE(c->control->signal(SIGUSR1, false).ok());
  wait_exit(*c);
  EXPECT_NE(c->ran.out.find("usr1\n"), std::string::npos) << c->ran.out;
  EXPECT_EQ(c->ran.out.find("child-usr1"), std::string::npos) << c->ran.out;
}

TEST_F(ExecControlTest, SignalToTheTreeReachesAChild) {
  // Through the cgroup, and through the process group where the command has no tree.
  for (bool own_tree : {true, false}) {
    auto c = launch("(trap 'echo child-term; exit 0' TERM; echo child-ready; sleep 1000 >/dev/null 2>&1 & wait) & "
                    "echo leader-up; wait",
                    false, own_tree);
    ASSERT_TRUE(c->control);
    wait_output(*c, "child-ready");
    wait_output(*c, "leader-up");
    ASSERT_TRUE(c->control->signal(SIGTERM, true).ok());
    wait_exit(*c);
    EXPECT_NE(c->ran.out.find("child-term\n"), std::string::npos) << c->ran.out << c->ran.err;
    EXPECT_EQ(c->ran.outcome.kind, Outcome::Kind::signaled) << describe(c->ran.outcome);
    EXPECT_EQ(c->ran.outcome.signal, SIGTERM);
  }
}

TEST_F(ExecControlTest, KillTreeKillsASetsidDaemon) {
  if (!cgroups()) GTEST_SKIP() << "commands' trees are process groups here: " << native_tree_fallback(*executor_);
  // The command reports the daemon once it has its own session (setsid(1) runs before it).
  auto c = launch("setsid sleep 1000 & d=$!; until [ \"$(cut -d' ' -f6 /proc/$d/stat)\" = $d ]; do :; done; "
                  "echo $d; wait",
                  false, true);
  ASSERT_TRUE(c->control);
  wait_output(*c, "\n");
  std::string daemon = c->ran.out.substr(0, c->ran.out.find('\n'));
  // Control: the daemon runs and has left the command's process group (and session).
  std::string stat = probe("cut -d' ' -f3,5,6 /proc/" + daemon + "/stat");
  ASSERT_FALSE(stat.empty()) << "the daemon " << daemon << " is not running";
  EXPECT_NE(stat.substr(0, 1), "Z") << stat;
  EXPECT_EQ(stat.substr(2), daemon + " " + daemon + "\n") << "pgid and sid: " << stat;
  EXPECT_NE(stat.substr(2), std::to_string(c->control->pid()) + " " + std::to_string(c->control->pid()) + "\n");
  // Attack: it holds the command's stdout, so on_exit means it is gone too.
  ASSERT_TRUE(c->control->kill_tree().ok());
  wait_exit(*c);
  EXPECT_EQ(c->ran.outcome.kind, Outcome::Kind::signaled) << describe(c->ran.outcome);
  EXPECT_EQ(probe("s=$(cut -d' ' -f3 /proc/" + daemon + "/stat 2>/dev/null); echo ${s:-gone}"), "gone\n");
}

TEST_F(ExecControlTest, AnotherCommandsKillTreeLeavesABystander) {
  auto bystander = launch("echo up; exec sleep 1000", false, false);
  ASSERT_TRUE(bystander->control);
  wait_output(*bystander, "up");
  std::string pid = std::to_string(bystander->control->pid());
  auto killer = launch("echo ready; sleep 1000 & wait", false, true);
  ASSERT_TRUE(killer->control);
  wait_output(*killer, "ready");
  ASSERT_TRUE(killer->control->kill_tree().ok());
  wait_exit(*killer);
  EXPECT_FALSE(bystander->done);
  EXPECT_EQ(probe("kill -0 " + pid + " && echo alive"), "alive\n");
  // Control: the probe sees a killed command as gone.
  ASSERT_TRUE(bystander->control->kill_tree().ok());
  wait_exit(*bystander);
  EXPECT_EQ(probe("kill -0 " + pid + " 2>/dev/null && echo alive || echo gone"), "gone\n");
}

TEST_F(ExecControlTest, NoTreeIsLeftBehind) {
  if (!cgroups()) GTEST_SKIP() << "commands' trees are process groups here: " << native_tree_fallback(*executor_);
  // A command's tree is there while it runs, and gone once it ended.
  auto c = launch("cut -d: -f3 /proc/self/cgroup | tail -1; read line", true, true);
  ASSERT_TRUE(c->control);
  wait_output(*c, "\n");
  std::string inner = c->ran.out.substr(0, c->ran.out.find('\n'));
  ASSERT_TRUE(inner.starts_with("/c")) << inner;
  fs::path dir = host_cgroup(inner);
  ASSERT_FALSE(dir.empty()) << "no host directory for " << inner;
  c->control->close_stdin();
  wait_exit(*c);
  EXPECT_FALSE(fs::exists(dir)) << dir;

  // A daemon keeps its tree past the command; destroying the sandbox removes it and the sandbox's own.
  SandboxSpec spec;
  spec.name = "other";
  auto other = job_->start(spec);
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto d = launch("cut -d: -f3 /proc/self/cgroup | tail -1; sleep 1000 >/dev/null 2>&1 &", false, true, other->get());
  wait_exit(*d);
  std::string daemon_inner = d->ran.out.substr(0, d->ran.out.find('\n'));
  fs::path daemon_dir = host_cgroup(daemon_inner);
  ASSERT_FALSE(daemon_dir.empty()) << "the daemon's tree " << daemon_inner << " is already gone";
  fs::path sandbox_dir = daemon_dir.parent_path();
  (*other)->destroy();
  for (int i = 0; i < 200 && fs::exists(sandbox_dir); ++i) {
    io_->restart();
    io_->run_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(fs::exists(daemon_dir)) << daemon_dir;
  EXPECT_FALSE(fs::exists(sandbox_dir)) << sandbox_dir;
}

TEST_F(ExecControlTest, CommandsStillCannotUseClone3) {
  // init may use clone3 (CLONE_INTO_CGROUP), but the filter cannot read its flags: commands get ENOSYS.
  const std::string script = "perl -e '$r = syscall(435, 0, 0); print \"$r \", $! + 0, \"\\n\"'";
  auto c = launch(script, false, true);
  wait_exit(*c);
  EXPECT_EQ(c->ran.out, "-1 38\n") << c->ran.err;  // ENOSYS
  // Control: on the host the call reaches the kernel, which refuses the empty arguments.
  std::string host;
  if (FILE* f = ::popen(script.c_str(), "r")) {
    char buf[64];
    while (size_t n = ::fread(buf, 1, sizeof buf, f)) host.append(buf, n);
    ::pclose(f);
  }
  EXPECT_EQ(host, "-1 22\n");  // EINVAL
}

}  // namespace
}  // namespace boxcar::executors
