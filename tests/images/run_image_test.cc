// `boxcar run` with image steps and image services, through the real binary, against
// docker-registry on loopback: what a step in an image sees (its layers, Env, User, not the
// host's /usr), a sidecar from its own image reached on the job's loopback, an image that is not
// there failing its step (exit 3) while a host step of the same run still succeeds, and the
// same pipeline on `--executor oci`.
#include <gtest/gtest.h>

#include <fstream>

#include "testing/registry_server.h"
#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

// busybox, a user "app" (uid 1000), an Env of its own, and an index.html for httpd.
TestImage app_image() {
  TestImage image;
  TestLayer tools = busybox_layer();
  TestLayer app;
  app.entries = {TarEntry::dir("etc"),
                 TarEntry::file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"),
                 TarEntry::file("etc/group", "root:x:0:\napp:x:1000:\n"),
                 TarEntry::dir("home"),
                 TarEntry::dir("home/app", 0755, 1000, 1000),
                 TarEntry::dir("srv"),
                 TarEntry::file("srv/index.html", "hello from the sidecar\n"),
                 TarEntry::file("image-marker", "in-the-image\n")};
  image.layers = {tools, app};
  image.env = {"PATH=/usr/local/bin:/bin", "GREETING=from-image"};
  return image;
}

class RunImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
    auto r = RegistryServer::start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = std::move(*r);
    auto pushed = registry_->push("ci/app:1", app_image());
    ASSERT_TRUE(pushed.ok()) << pushed.error().message;
    ref_ = pushed->reference;
    TestImage server = app_image();
    server.entrypoint = {"httpd", "-f", "-p"};
    server.cmd = {"8080"};
    server.working_dir = "/srv";
    auto web = registry_->push("ci/web:1", server);
    ASSERT_TRUE(web.ok()) << web.error().message;
    web_ref_ = web->reference;
  }
  ProcessResult run(const std::string& pipeline, std::vector<std::string> extra = {}) {
    std::ofstream(dir_.path() / ".boxcar.toml") << pipeline;
    std::vector<std::string> args = {"run", "--image-cache", (dir_.path() / ".cache").string(),
                                     "--insecure-registry", registry_->address()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_boxcar(args, dir_.path(), {"HOME=" + dir_.path().string()});
  }
  TempDir dir_;
  std::unique_ptr<RegistryServer> registry_;
  std::string ref_, web_ref_;
};

constexpr const char* kProbe = R"(
cat /image-marker
echo "greeting=$GREETING path=$PATH home=$HOME"
id
test -e /usr/bin/apt-get && echo HOST-USR-VISIBLE || echo no-host-usr
echo written > /image-marker && cat /image-marker
pwd
)";

TEST_F(RunImageTest, StepRunsInTheImageWithItsEnvAndUser) {
  auto r = run("version = 1\n"
               "[[step]]\nname = \"in-image\"\nimage = \"" + ref_ + "\"\nrun = '''" + kProbe + "'''\n"
               "[[step]]\nname = \"as-app\"\nimage = \"" + ref_ + "\"\nrun = \"id -u; echo home=$HOME\"\n"
               "env = { X = \"1\" }\n"
               // Control: the same probe on the host image sees the host's /usr.
               "[[step]]\nname = \"on-host\"\nrun = \"test -e /usr/bin/apt-get && echo HOST-USR-VISIBLE\"\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("in-the-image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("greeting=from-image path=/usr/local/bin:/bin home=/root"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uid=0(root)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no-host-usr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("written"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/workspace"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[on-host] HOST-USR-VISIBLE"), std::string::npos) << r.out;
  // The image in the store is untouched by the step's write.
  auto again = run("version = 1\n[[step]]\nname = \"again\"\nimage = \"" + ref_ + "\"\nrun = \"cat /image-marker\"\n");
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("in-the-image"), std::string::npos) << again.out;
  EXPECT_EQ(again.out.find("written"), std::string::npos) << again.out;
}

TEST_F(RunImageTest, ImageUserRunsTheCommands) {
  TestImage image = app_image();
  image.user = "app";
  auto pushed = registry_->push("ci/as-app:1", image);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto r = run("version = 1\n[[step]]\nname = \"user\"\nimage = \"" + pushed->reference +
               "\"\nrun = \"id -u; echo home=$HOME\"\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[user] 1000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("home=/home/app"), std::string::npos) << r.out;
}

// A sidecar's /workspace is a layer of its own over what its step sees: it reads the checkout
// (control) but what it writes there reaches neither the checkout nor its step (attack).
TEST_F(RunImageTest, SidecarFromItsOwnImageIsReachedOnLoopback) {
  std::ofstream(dir_.path() / "seen.txt") << "from-the-checkout\n";
  auto r = run("version = 1\n[[step]]\nname = \"client\"\nimage = \"" + ref_ + "\"\n"
               "run = \"wget -q -O - http://127.0.0.1:8080/index.html; cat seen.txt\"\n"
               "[[step.service]]\nname = \"web\"\nimage = \"" + web_ref_ + "\"\nready = { tcp = 8080 }\n"
               "[[step.service]]\nname = \"writer\"\nimage = \"" + ref_ + "\"\nready = { tcp = 8081 }\n"
               "run = \"cat /workspace/seen.txt; echo tampered > /workspace/seen.txt && echo sidecar-wrote; "
               "exec httpd -f -p 8081\"\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("hello from the sidecar"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sidecar-wrote"), std::string::npos) << r.out;
  size_t first = r.out.find("from-the-checkout");
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("from-the-checkout", first + 1), std::string::npos) << "the sidecar and the step read it: " << r.out;
  EXPECT_EQ(r.out.find("tampered"), std::string::npos) << r.out;
  std::ifstream in(dir_.path() / "seen.txt");
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "from-the-checkout\n");
}

TEST_F(RunImageTest, UnknownImageFailsItsStepOnlyWithExit3) {
  std::string missing = registry_->address() + "/ci/nope:1";
  auto r = run("version = 1\n[[step]]\nname = \"bad\"\nimage = \"" + missing + "\"\nrun = \"true\"\n"
               "[[step]]\nname = \"good\"\nrun = \"echo host-step-ran\"\n");
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  std::string all = r.out + r.err;
  EXPECT_NE(all.find("ci/nope:1"), std::string::npos) << all;
  EXPECT_NE(all.find("not found"), std::string::npos) << all;
  EXPECT_NE(r.out.find("host-step-ran"), std::string::npos) << r.out;
}

TEST_F(RunImageTest, ImageStepOnTheOciExecutor) {
  if (::access("/usr/sbin/runc", X_OK) != 0 && ::access("/usr/bin/runc", X_OK) != 0) GTEST_SKIP() << "no runc";
  auto r = run("version = 1\n[[step]]\nname = \"oci\"\nimage = \"" + ref_ +
                   "\"\nrun = \"cat /image-marker; echo greeting=$GREETING; id -u\"\n",
               {"--executor", "oci"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("in-the-image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("greeting=from-image"), std::string::npos) << r.out;
}

// examples/images as written, with Docker Hub's busybox:1.36 served by the local registry (the
// test machine has no internet): the only change is the registry's address.
TEST_F(RunImageTest, TheImagesExampleRuns) {
  TestImage busybox;
  busybox.layers = {busybox_layer({"sh", "echo", "ls", "wc", "head", "pwd", "wget", "mkdir", "httpd"})};
  busybox.cmd = {"sh"};
  auto pushed = registry_->push("library/busybox:1.36", busybox);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  std::ifstream in(fs::path(BOXCAR_SOURCE_DIR) / "examples/images/.boxcar.toml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(text.find("image = \"busybox:1.36\""), std::string::npos);
  std::string local = "image = \"" + registry_->address() + "/library/busybox:1.36\"";
  for (size_t at; (at = text.find("image = \"busybox:1.36\"")) != std::string::npos;) {
    text.replace(at, std::string("image = \"busybox:1.36\"").size(), local);
  }
  auto r = run(text);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("the host's /usr is not here: 0 entries"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the workspace is: /workspace"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the sidecar answers"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace boxcar::testing
