// A server's in-process agent runs a job whose steps are in an image from a registry on
// loopback: the image is pulled into the agent's layer store (<data>/images) and used again by
// the next job without a second download; a job naming an image that is not there ends as an
// error naming it, and the server's next job still runs.
#include <gtest/gtest.h>

#include "testing/registry_server.h"
#include "tests/service/harness.h"

namespace boxcar::service_test {
namespace {

using boxcar::testing::busybox_layer;
using boxcar::testing::RegistryServer;
using boxcar::testing::TarEntry;
using boxcar::testing::TestImage;
using boxcar::testing::TestLayer;

TEST(ServeImages, AgentPullsOnceAndRunsStepsInTheImage) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for the native executor";
  TempDir work;
  auto registry = RegistryServer::start();
  ASSERT_TRUE(registry.ok()) << registry.error().message;
  TestImage image;
  TestLayer marker;
  marker.entries = {TarEntry::file("served-marker", "from-the-registry\n")};
  image.layers = {busybox_layer({"sh", "cat", "echo"}), marker};
  auto pushed = (*registry)->push("ci/served:1", image);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;

  Server server(work.path(), {"--agents", "1", "--insecure-registry", (*registry)->address()});
  ASSERT_TRUE(server.ok());
  std::string pipeline = "version = 1\n[[step]]\nname = \"probe\"\nimage = \"" + pushed->reference +
                         "\"\nrun = \"cat /served-marker\"\n";
  make_git_repo(work / "repo", pipeline);
  for (int round = 0; round < 2; ++round) {
    long id = server.submit({{"repo", (work / "repo").string()}});
    ASSERT_GT(id, 0);
    auto job = server.wait_final(id);
    ASSERT_TRUE(job);
    EXPECT_EQ(str(*job, "state"), "success") << server.logs(id);
    EXPECT_NE(server.logs(id, "probe").find("from-the-registry"), std::string::npos) << server.logs(id);
  }
  // Pulled once, into the agent side of the server's data directory.
  for (const auto& digest : pushed->layer_digests) EXPECT_EQ((*registry)->blob_gets(digest), 1u) << digest;
  EXPECT_TRUE(fs::is_directory(server.data_dir() / "images" / "layers"));

  // A missing image fails its job as an error that names it; the next job still runs.
  make_git_repo(work / "missing", "version = 1\n[[step]]\nname = \"x\"\nimage = \"" + (*registry)->address() +
                                      "/ci/absent:1\"\nrun = \"true\"\n");
  long bad = server.submit({{"repo", (work / "missing").string()}});
  auto failed = server.wait_final(bad);
  ASSERT_TRUE(failed);
  EXPECT_NE(str(*failed, "state"), "success");
  EXPECT_NE(server.logs(bad).find("ci/absent:1"), std::string::npos) << server.logs(bad);
  long after = server.submit({{"repo", (work / "repo").string()}});
  auto ok = server.wait_final(after);
  ASSERT_TRUE(ok);
  EXPECT_EQ(str(*ok, "state"), "success");
}

}  // namespace
}  // namespace boxcar::service_test
