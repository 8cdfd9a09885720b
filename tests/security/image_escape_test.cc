// The usual escapes, tried from a step in an image root (busybox, built here as the layer store
// would unpack it), each beside a control where the same probe works.
#include <sys/stat.h>

#include <fstream>

#include "tests/security/security_fixture.h"

namespace boxcar::executors {
namespace {

constexpr uid_t kIdBase = 100000;  // NativeOptions' default

class ImageEscapeTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    char tmpl[] = "/tmp/boxcar-security-image-XXXXXX";
    layer_ = ::mkdtemp(tmpl);
    ::chmod(layer_.c_str(), 0755);
    fs::create_directories(layer_ / "bin");
    fs::copy_file("/bin/busybox", layer_ / "bin/busybox");
    for (const char* applet : {"sh", "echo", "mount", "unshare", "ls", "cat", "mkdir", "touch", "readlink"}) {
      fs::create_symlink("busybox", layer_ / "bin" / applet);
    }
    fs::create_directories(layer_ / "etc");
    std::ofstream(layer_ / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n";
    for (const auto& e : fs::recursive_directory_iterator(layer_)) ::lchown(e.path().c_str(), kIdBase, kIdBase);
    ::lchown(layer_.c_str(), kIdBase, kIdBase);
  }
  void TearDown() override {
    SecurityTest::TearDown();
    if (!layer_.empty()) fs::remove_all(layer_);
  }

  Ran in_image(const std::string& script) {
    SandboxSpec s = spec("image-probe");
    s.image = "test/busybox:1";
    s.layers = {layer_};
    auto sb = start(s);
    if (!sb) return {};
    return boxcar::testing::run_in(io_, *sb, ExecRequest{{"sh", "-c", script}, {"PATH=/bin"}, "."});
  }

  fs::path layer_;
};

TEST_P(ImageEscapeTest, MountAndUnshareAreDenied) {
  Ran control = on_host("unshare -r true && echo unshare-r; unshare -m true && echo unshare-m");
  EXPECT_EQ(control.out, "unshare-r\nunshare-m\n");
  Ran attack = in_image(
      "unshare -r true 2>/dev/null && echo unshare-r; unshare -m true 2>/dev/null && echo unshare-m; "
      "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mounted; "
      "mount -t proc proc /tmp/m 2>/dev/null && echo proc; "
      "touch /written && echo wrote-root; echo end");
  // Control inside: the image's root is writable (its own upper), so the probe runs at all.
  EXPECT_EQ(attack.out, "wrote-root\nend\n") << attack.err;
}

TEST_P(ImageEscapeTest, HostRootIsUnreachableThroughProc) {
  Ran attack = in_image(
      "ls /proc/1/root/ 2>/dev/null && echo init-root; readlink /proc/1/exe 2>/dev/null && echo init-exe; "
      "ls /proc/self/root/ ; ls /root /home /usr/bin 2>/dev/null && echo host-dirs; echo end");
  // Control: the step's own root is listable through /proc/self/root; init's and the host's are not.
  EXPECT_NE(attack.out.find("bin\n"), std::string::npos) << attack.out;
  EXPECT_EQ(attack.out.find("init-root"), std::string::npos) << attack.out;
  EXPECT_EQ(attack.out.find("init-exe"), std::string::npos) << attack.out;
  EXPECT_EQ(attack.out.find("host-dirs"), std::string::npos) << attack.out;
  EXPECT_NE(attack.out.find("end\n"), std::string::npos) << attack.err;
}

INSTANTIATE_TEST_SUITE_P(Executors, ImageEscapeTest, ::testing::Values("native", "oci"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace boxcar::executors
