#include "pipeline/workspace_stack.h"

#include <gtest/gtest.h>

namespace boxcar::pipeline {
namespace {

ExpandedPipeline graph(const std::vector<std::vector<size_t>>& needs) {
  ExpandedPipeline p;
  for (size_t i = 0; i < needs.size(); ++i) {
    ConcreteStep cs;
    cs.name = "s" + std::to_string(i);
    cs.needs = needs[i];
    p.steps.push_back(cs);
  }
  return p;
}

TEST(WorkspaceStack, NoNeedsSeesOnlyTheCheckout) {
  auto p = graph({{}, {}});
  EXPECT_TRUE(workspace_stack(p, 0).empty());
  EXPECT_TRUE(workspace_stack(p, 1).empty());  // a parallel sibling is never in the stack
}

TEST(WorkspaceStack, AChainStacksEveryAncestorNearestHighest) {
  auto p = graph({{}, {0}, {1}});
  EXPECT_EQ(workspace_stack(p, 2), (std::vector<size_t>{1, 0}));
}

TEST(WorkspaceStack, TheNeedNamedLaterIsHigher) {
  auto p = graph({{}, {}, {0, 1}, {1, 0}});
  EXPECT_EQ(workspace_stack(p, 2), (std::vector<size_t>{1, 0}));
  EXPECT_EQ(workspace_stack(p, 3), (std::vector<size_t>{0, 1}));
}

TEST(WorkspaceStack, ADiamondHasEachLayerOnceAtItsHighestPlace) {
  // 0 <- 1, 0 <- 2, 3 needs [1, 2]: 2 over 1, and 0 once, under both (they were made on it).
  auto p = graph({{}, {0}, {0}, {1, 2}});
  EXPECT_EQ(workspace_stack(p, 3), (std::vector<size_t>{2, 1, 0}));
  // 4 needs [3, 0]: 0 is already in 3's stack, and stays below what was made on it.
  p = graph({{}, {0}, {0}, {1, 2}, {3, 0}});
  EXPECT_EQ(workspace_stack(p, 4), (std::vector<size_t>{3, 2, 1, 0}));
}

}  // namespace
}  // namespace boxcar::pipeline
