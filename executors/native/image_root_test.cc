// Image roots and users in real native sandboxes (the layers: image_root_fixture.h).
#include <sys/stat.h>
#include <unistd.h>

#include "executors/native/image_root_fixture.h"

namespace boxcar::executors {
namespace {

using namespace image_root_testing;  // NOLINT: the fixture's helpers

TEST_F(ImageRootTest, StepSeesTheMergedImageNotTheHost) {
  auto image = start(image_spec());
  Ran r = run(*image, "ls /usr; ls /opt/data; cat /etc/removed 2>/dev/null || echo removed-is-gone");
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
  EXPECT_EQ(r.out, "marker-image\nnew\nremoved-is-gone\n");
  // Control: the same probe in a "host" sandbox sees the host's /usr.
  SandboxSpec host;
  host.name = "host-step";
  auto hosted = start(host);
  Ran h = run(*hosted, "ls /usr");
  EXPECT_EQ(h.outcome.kind, Outcome::Kind::ok) << h.err;
  EXPECT_NE(h.out.find("bin\n"), std::string::npos) << h.out;
}

TEST_F(ImageRootTest, WritesStayInTheSandboxesOwnUpper) {
  auto a = start(image_spec());
  auto b = start(image_spec());
  Ran w = run(*a, "echo a > /etc/written && rm /bin/cat && echo shared > /workspace/shared && echo ok");
  EXPECT_EQ(w.out, "ok\n") << w.err;
  Ran seen = run(*b, "cat /workspace/shared; cat /etc/written 2>/dev/null || echo not-in-b; ls /bin/cat");
  EXPECT_EQ(seen.out, "shared\nnot-in-b\n/bin/cat\n") << seen.err;
  fs::path upper = upper_holding("etc/written");
  ASSERT_FALSE(upper.empty());
  struct stat st{};
  ASSERT_EQ(::stat((upper / "upper/etc/written").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kIdBase);  // root inside, not the host's root
  // The lower layers are as they were.
  EXPECT_TRUE(fs::is_symlink(base_ / "bin/cat"));
  EXPECT_FALSE(fs::exists(base_ / "etc/written"));
  EXPECT_FALSE(fs::exists(top_ / "etc/written"));
}

TEST_F(ImageRootTest, UpperDirIsRemovedWithTheSandbox) {
  auto sb = start(image_spec());
  EXPECT_EQ(run(*sb, "touch /upper-marker && echo ok").out, "ok\n");
  fs::path upper = upper_holding("upper-marker");
  ASSERT_FALSE(upper.empty());
  sb->destroy();
  EXPECT_TRUE(gone_within(upper, io_, 10s)) << upper;
}

TEST_F(ImageRootTest, DeadAgentsUpperDirsAreRemovedLiveOnesKept) {
  // A live sandbox of this executor is the control: its upper must survive.
  auto live = start(image_spec());
  EXPECT_EQ(run(*live, "touch /live-marker && echo ok").out, "ok\n");
  fs::path live_upper = upper_holding("live-marker");
  ASSERT_FALSE(live_upper.empty());
  // What a dead agent leaves: an instance directory and its lock file, nobody holding it.
  fs::path uppers = "/var/lib/boxcar/uppers";
  fs::path dead = uppers / "1-1-deadbeef";
  write_file(dead / "s1/upper/etc/leftover", "x");
  write_file(uppers / "1-1-deadbeef.lock", "");
  boost::asio::io_context other_io;
  auto next = make_native_executor(other_io);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(uppers / "1-1-deadbeef.lock"));
  EXPECT_TRUE(fs::exists(live_upper / "upper/live-marker"));
  EXPECT_EQ(run(*live, "cat /live-marker && echo still").out, "still\n");
}

TEST_F(ImageRootTest, HostileMountPointsAreReplaced) {
  // An image whose /dev, /tmp and /etc point at a host directory, /proc and /workspace files.
  fs::path hostile = layers_ / "hostile", host_dir = layers_ / "host-dir";
  fs::create_directories(host_dir);
  fs::create_directories(hostile / "bin");
  fs::copy_file("/bin/busybox", hostile / "bin/busybox");
  for (const char* applet : kApplets) fs::create_symlink("busybox", hostile / "bin" / applet);
  for (const char* name : {"dev", "tmp", "etc"}) fs::create_symlink(host_dir, hostile / name);
  write_file(hostile / "proc", "not a directory\n");
  write_file(hostile / "workspace", "not a directory\n");
  chown_tree(hostile, kIdBase);
  auto sb = start(image_spec({hostile}));
  Ran r = run(*sb,
              "echo x > /dev/null && head -c 4 /dev/zero | wc -c; grep -c Name /proc/self/status; "
              "touch /tmp/t /etc/e && echo wrote; stat -c %F /dev /proc /tmp /etc /workspace; "
              "grep -c localhost /etc/hosts");
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::ok) << describe(r.outcome) << r.err;
  EXPECT_NE(r.out.find("1\nwrote\ndirectory\ndirectory\ndirectory\ndirectory\ndirectory\n2\n"), std::string::npos)
      << r.out << r.err;
  EXPECT_TRUE(fs::is_empty(host_dir));  // nothing landed on the host
  EXPECT_TRUE(fs::is_symlink(hostile / "dev"));
}

TEST_F(ImageRootTest, UsersFromTheImage) {
  auto sb = start(image_spec());
  Ran numeric = run(*sb, "id", "1000:1000");
  EXPECT_EQ(numeric.out, "uid=1000(app) gid=1000(app) groups=1000(app)\n") << numeric.err;
  Ran named = run(*sb, "id -u; id -G; echo $HOME", "app");
  EXPECT_EQ(named.out, "1000\n1000 2000\n/home/app\n") << named.err;
  Ran bare = run(*sb, "id -u; id -g; echo $HOME", "4242");
  EXPECT_EQ(bare.out, "4242\n0\n/\n") << bare.err;
  // Control: no user is root, as before.
  EXPECT_EQ(run(*sb, "id -u").out, "0\n");
  Ran unknown = run(*sb, "id", "ghost");
  EXPECT_EQ(unknown.outcome.kind, Outcome::Kind::failed);
  EXPECT_EQ(unknown.outcome.exit_code, 127);
  EXPECT_NE(unknown.err.find("user \"ghost\" not found in /etc/passwd of the image"), std::string::npos)
      << unknown.err;
  Ran bad_group = run(*sb, "id", "app:nogroup");
  EXPECT_EQ(bad_group.outcome.exit_code, 127);
  EXPECT_NE(bad_group.err.find("group \"nogroup\" not found"), std::string::npos) << bad_group.err;
}

TEST_F(ImageRootTest, SetuidRootFileDoesNotElevateAUser) {
  // Control: the probe does report a working setuid bit (a setuid-root copy on the host's
  // disk, run as uid 1000 on the host).
  fs::path host_copy = layers_ / "suid-ids-host";
  fs::copy_file(PRINT_IDS_PROBE, host_copy);
  ::chmod(host_copy.c_str(), 04755);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    if (::setresgid(1000, 1000, 1000) != 0 || ::setresuid(1000, 1000, 1000) != 0) ::_exit(2);
    ::execl(host_copy.c_str(), "suid-ids", nullptr);
    ::_exit(3);
  }
  ::close(pipefd[1]);
  char buf[64] = {};
  ssize_t n = ::read(pipefd[0], buf, sizeof buf - 1);
  ::close(pipefd[0]);
  int status;
  ::waitpid(pid, &status, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf), "1000 0 0\n");

  auto sb = start(image_spec());
  EXPECT_EQ(run(*sb, "stat -c '%a %u' /bin/suid-ids").out, "4755 0\n");
  Ran r = run(*sb, "/bin/suid-ids; grep CapEff /proc/self/status", "1000");
  EXPECT_EQ(r.out, "1000 1000 1000\nCapEff:\t0000000000000000\n") << r.err;
  // Control: root inside keeps its (small) capability set.
  Ran root = run(*sb, "grep CapEff /proc/self/status");
  EXPECT_NE(root.out, "CapEff:\t0000000000000000\n");
}

// Uid of the host process whose command line is `argv0 arg`, or -1.
long host_uid_of(const std::string& cmdline) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream cmd(e.path() / "cmdline");
    std::string got((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (got != cmdline) continue;
    std::ifstream status(e.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) == 0) return std::stol(line.substr(4));
    }
  }
  return -1;
}

TEST_F(ImageRootTest, StepProcessesAreUnprivilegedOnTheHost) {
  auto sb = start(image_spec());
  auto seen_as = [&](const std::string& user, const std::string& tag) {
    bool done = false;
    ExecRequest request{{"sleep", tag}, {"PATH=/bin"}, ".", user};
    EXPECT_TRUE(sb->exec(request, ExecHandlers{{}, [&](const Outcome&) { done = true; }}).ok());
    std::string cmdline = std::string("sleep") + '\0' + tag + '\0';
    long uid = -1;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((uid = host_uid_of(cmdline)) < 0 && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
    }
    return uid;
  };
  EXPECT_EQ(seen_as("1000", "4711"), static_cast<long>(kIdBase + 1000));
  EXPECT_EQ(seen_as("", "4712"), static_cast<long>(kIdBase));  // root inside: id_base outside
  sb->destroy();
}

TEST_F(ImageRootTest, EtcHostsNamesTheSandbox) {
  auto sb = start(image_spec());
  Ran r = run(*sb, "cat /etc/hosts; hostname");
  std::string name = native::hostname_for("image-step");
  EXPECT_EQ(r.out, "127.0.0.1\tlocalhost " + name + "\n::1\tlocalhost " + name + "\n" + name + "\n") << r.err;
}

// The sandboxes set up under this test's executor (one directory each, with its upper).
size_t upper_count() {
  size_t n = 0;
  for (const auto& inst : fs::directory_iterator("/var/tmp/boxcar/uppers")) {
    if (!inst.is_directory()) continue;
    for (const auto& sb : fs::directory_iterator(inst.path())) n += sb.is_directory() ? 1 : 0;
  }
  return n;
}

// Image sandboxes are prepared ahead like "host" ones (keyed on the layers): the one taken
// names the step that takes it, not the placeholder it was set up under.
TEST_F(ImageRootTest, APrewarmedImageSandboxIsNamedForTheStepThatTakesIt) {
  auto first = start(image_spec());
  EXPECT_EQ(run(*first, "hostname").out, native::hostname_for("image-step") + "\n");
  io_.restart();
  io_.poll();  // the warm one is set up by now
  size_t before = upper_count();
  SandboxSpec spec = image_spec();
  spec.name = "second-step";
  auto second = start(spec);
  EXPECT_EQ(upper_count(), before) << "the second step should take the prewarmed sandbox";
  Ran r = run(*second, "cat /etc/hosts; hostname");
  std::string name = native::hostname_for("second-step");
  EXPECT_EQ(r.out, "127.0.0.1\tlocalhost " + name + "\n::1\tlocalhost " + name + "\n" + name + "\n") << r.err;
}

// A warm sandbox is never taken by a step of another image, nor when a layer directory was
// replaced since (collected and pulled again into the same path).
TEST_F(ImageRootTest, AWarmImageSandboxServesOnlyItsOwnLayers) {
  auto first = start(image_spec());
  EXPECT_EQ(run(*first, "cat /opt/data/new").out, "new\n");
  io_.restart();
  io_.poll();
  // Another image (the base alone): the opaque directory of the top layer is not there.
  auto other = start(image_spec({base_}));
  EXPECT_EQ(run(*other, "ls /opt/data").out, "old\n");
  io_.restart();
  io_.poll();  // now warm for {base_}
  // The same path, new content: a fresh overlay sees it.
  fs::remove_all(base_ / "opt/data");
  fs::path replaced = layers_ / "replaced";
  fs::rename(base_, replaced);
  fs::create_directories(base_);
  fs::copy(replaced, base_, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  write_file(base_ / "opt/data/fresh", "pulled again\n");
  chown_tree(base_, kIdBase);
  auto again = start(image_spec({base_}));
  EXPECT_EQ(run(*again, "ls /opt/data").out, "fresh\n");
  // Control: with the layers unchanged, the warm sandbox serves the same image.
  io_.restart();
  io_.poll();
  size_t before = upper_count();
  auto same = start(image_spec({base_}));
  EXPECT_EQ(upper_count(), before);
  EXPECT_EQ(run(*same, "ls /opt/data").out, "fresh\n");
}

TEST_F(ImageRootTest, ImageWithoutLayersFailsToSetUp) {
  SandboxSpec spec = image_spec();
  spec.layers.clear();
  auto sb = start(spec);
  Ran r = run(*sb, "true");
  EXPECT_EQ(r.outcome.kind, Outcome::Kind::setup_error);
  EXPECT_NE(describe(r.outcome).find("not pulled"), std::string::npos) << describe(r.outcome);
}

// --max-image-write: an image step's upper is a filesystem of that size (loop_fs.h). Each
// attack runs in a fresh sandbox of a 32 MiB limit and must end with ENOSPC inside while the
// file holding the upper on the agent's disk stays within the limit; the controls show that
// writes under the limit work and that the host-side measure sees them.

}  // namespace
}  // namespace boxcar::executors
