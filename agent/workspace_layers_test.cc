#include "agent/workspace_layers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace boxcar::agent {
namespace {

namespace fs = std::filesystem;

class WorkspaceLayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/boxcar-layers-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    fs::create_directories(root_ / "checkout");
    // build, test needs [build]; lint on its own.
    for (const char* name : {"build", "test", "lint"}) {
      pipeline::ConcreteStep cs;
      cs.name = name;
      pipeline_.steps.push_back(cs);
    }
    pipeline_.steps[1].needs = {0};
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  pipeline::ExpandedPipeline pipeline_;
};

TEST_F(WorkspaceLayersTest, ADirectoryInsideTheCheckoutIsRefusedBesideOneOutside) {
  auto inside = WorkspaceLayers::make(pipeline_, root_ / "checkout", root_ / "checkout" / "layers");
  ASSERT_FALSE(inside.ok());
  EXPECT_NE(inside.error().message.find("is inside the workspace"), std::string::npos) << inside.error().message;
  auto outside = WorkspaceLayers::make(pipeline_, root_ / "checkout", root_ / "layers");
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  outside->reset();
  EXPECT_FALSE(fs::exists(root_ / "layers")) << "removed with the object";
}

TEST_F(WorkspaceLayersTest, StacksNeedsThenCachesThenTheCheckoutAndARetryStartsFresh) {
  auto layers = WorkspaceLayers::make(pipeline_, root_ / "checkout", root_ / "layers");
  ASSERT_TRUE(layers.ok()) << layers.error().message;
  auto build = (*layers)->workspace(0);
  ASSERT_TRUE(build.ok()) << build.error().message;
  EXPECT_EQ(build->target, "/workspace");
  EXPECT_EQ(build->lowers, (std::vector<fs::path>{root_ / "checkout"}));
  fs::create_directories((*layers)->upper(0));  // what the executor makes
  auto test = (*layers)->workspace(1, {root_ / "cache"});
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(test->lowers, (std::vector<fs::path>{(*layers)->upper(0), root_ / "cache", root_ / "checkout"}));
  auto lint = (*layers)->workspace(2);
  EXPECT_EQ(lint->lowers, (std::vector<fs::path>{root_ / "checkout"})) << "never a sibling's layer";
  // A retry of build: its failed attempt's writes are gone.
  std::ofstream((*layers)->upper(0) / "half-written") << "x";
  auto again = (*layers)->workspace(0);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(fs::exists(again->layer / "upper" / "half-written"));
}

}  // namespace
}  // namespace boxcar::agent
