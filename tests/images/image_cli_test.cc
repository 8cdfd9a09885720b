// `boxcar image` through the real binary against docker-registry on loopback: pull, ls, rm and
// prune; two `image pull` processes at once fetch each layer once; exit codes and messages for
// an unknown tag, a registry that is down, a registry that never answers (--image-pull-timeout)
// and a registry that wants credentials.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "base/base64.h"
#include "testing/registry_server.h"
#include "tests/cli/boxcar_process.h"

namespace boxcar::testing {
namespace {

namespace fs = std::filesystem;

TestImage cli_image(const std::string& marker) {
  TestImage image;
  TestLayer base;
  base.entries = {TarEntry::dir("etc"), TarEntry::file("etc/marker", marker)};
  TestLayer big;
  big.entries = {TarEntry::file("data", std::string(256 << 10, 'd'))};
  image.layers = {base, big};
  return image;
}

class ImageCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = RegistryServer::start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    registry_ = std::move(*r);
  }
  ProcessResult boxcar(std::vector<std::string> args) {
    args.insert(args.end(), {"--image-cache", (dir_.path() / "cache").string(), "--insecure-registry",
                             registry_->address()});
    return run_boxcar(args, dir_.path(), {"HOME=" + dir_.path().string()});
  }
  TempDir dir_;
  std::unique_ptr<RegistryServer> registry_;
};

TEST_F(ImageCliTest, PullLsRmPrune) {
  auto pushed = registry_->push("cli/app:1", cli_image("cli"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto pulled = boxcar({"image", "pull", pushed->reference});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_NE(pulled.out.find(pushed->reference + " " + pushed->manifest_digest), std::string::npos) << pulled.out;
  EXPECT_NE(pulled.out.find("pulling " + pushed->reference), std::string::npos) << pulled.out;  // plain progress

  auto ls = boxcar({"image", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(pushed->reference), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(pushed->manifest_digest.substr(0, 7 + 12)), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("just now"), std::string::npos) << ls.out;
  auto ls_json = boxcar({"image", "ls", "--json"});
  ASSERT_EQ(ls_json.exit_code, 0);
  auto rows = ls_json.events();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("digest").as_string(), pushed->manifest_digest);
  EXPECT_GT(rows[0].at("size").to_number<int64_t>(), 256 << 10);

  auto layers = dir_.path() / "cache" / "layers";
  EXPECT_EQ(std::distance(fs::directory_iterator(layers), fs::directory_iterator()), 2);
  auto rm = boxcar({"image", "rm", pushed->reference});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  auto again = boxcar({"image", "rm", pushed->reference});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("is not in the cache"), std::string::npos) << again.err;
  auto prune = boxcar({"image", "prune"});
  ASSERT_EQ(prune.exit_code, 0) << prune.err;
  EXPECT_NE(prune.out.find("freed"), std::string::npos) << prune.out;
  EXPECT_EQ(std::distance(fs::directory_iterator(layers), fs::directory_iterator()), 0);
  EXPECT_EQ(boxcar({"image", "ls", "--json"}).out, "");
}

TEST_F(ImageCliTest, TwoPullProcessesAtOnceFetchEachLayerOnce) {
  auto pushed = registry_->push("both:1", cli_image("both"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  ProcessResult a, b;
  std::thread ta([&] { a = boxcar({"image", "pull", "--json", pushed->reference}); });
  std::thread tb([&] { b = boxcar({"image", "pull", "--json", pushed->reference}); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  size_t starts = 0;
  for (const auto* r : {&a, &b}) {
    auto events = r->events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().at("event").as_string(), "done");
    for (const auto& e : events) starts += e.at("event").as_string() == "layer_start";
  }
  EXPECT_EQ(starts, 2u);  // two layers, each downloaded by one of the two
  for (const auto& d : pushed->layer_digests) EXPECT_EQ(registry_->blob_gets(d), 1u) << registry_->access_log();
}

TEST_F(ImageCliTest, AnUnknownTagIsExit2AndARegistryDownExit3) {
  auto pushed = registry_->push("known:1", cli_image("known"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto unknown = boxcar({"image", "pull", registry_->address() + "/known:2"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("known:2\" not found in registry " + registry_->address() + ": MANIFEST_UNKNOWN"),
            std::string::npos)
      << unknown.err;
  ASSERT_EQ(boxcar({"image", "pull", pushed->reference}).exit_code, 0);  // control
  registry_->stop();
  auto down = boxcar({"image", "pull", pushed->reference});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("unreachable at " + registry_->address()), std::string::npos) << down.err;
}

// A registry that accepts the connection and never answers (a socket nobody accepts from)
// would hold `image pull` for minutes of per-request timeouts; --image-pull-timeout ends it,
// exit 2, naming the flag. Control: the same command and timeout pull from the live registry.
TEST_F(ImageCliTest, APullTimeoutEndsASilentRegistry) {
  int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
  std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto hung = boxcar({"image", "pull", address + "/x:1", "--insecure-registry", address, "--image-pull-timeout", "2s"});
  ::close(silent);
  EXPECT_EQ(hung.exit_code, 2) << hung.err;
  EXPECT_NE(hung.err.find("did not finish within 2.0s"), std::string::npos) << hung.err;
  EXPECT_NE(hung.err.find("--image-pull-timeout"), std::string::npos) << hung.err;

  auto pushed = registry_->push("cli/app:1", cli_image("timely"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  auto ok = boxcar({"image", "pull", pushed->reference, "--image-pull-timeout", "2s"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(ImageCliAuthTest, CredentialsComeFromTheRegistryAuthFile) {
  auto r = RegistryServer::start(RegistryServer::Options::htpasswd("bob", "pw-of-bob"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto registry = std::move(*r);
  auto pushed = registry->push("secret:1", cli_image("secret"));
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  TempDir dir;
  dir.write("auth.json", R"({"auths":{")" + registry->address() + R"(":{"auth":")" + base64_encode("bob:pw-of-bob") +
                             R"("}}})");
  std::vector<std::string> common = {"image", "pull", pushed->reference, "--image-cache",
                                     (dir.path() / "cache").string(), "--insecure-registry", registry->address()};
  auto without = run_boxcar(common, dir.path(), {"HOME=" + dir.path().string()});
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_NE(without.err.find("requires credentials"), std::string::npos) << without.err;
  auto args = common;
  args.insert(args.end(), {"--registry-auth", (dir.path() / "auth.json").string()});
  auto with = run_boxcar(args, dir.path(), {"HOME=" + dir.path().string()});
  EXPECT_EQ(with.exit_code, 0) << with.err;
}

}  // namespace
}  // namespace boxcar::testing
