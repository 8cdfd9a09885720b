#include "agent/triggers.h"

#include <gtest/gtest.h>

namespace boxcar::agent {
namespace {

pipeline::Triggers on_push(std::vector<std::string> branches, std::vector<std::string> tags) {
  pipeline::Triggers t;
  t.declared = true;
  t.push = pipeline::PushFilter{std::move(branches), std::move(tags)};
  return t;
}

TEST(Triggers, AbsentOnAdmitsEverything) {
  pipeline::Triggers none;
  EXPECT_EQ(trigger_rejection(none, "push", "refs/heads/x"), "");
  EXPECT_EQ(trigger_rejection(none, "pull_request", "refs/heads/x"), "");
}

TEST(Triggers, PushBranchesAndTags) {
  auto t = on_push({"main", "release/*"}, {"v*"});
  EXPECT_EQ(trigger_rejection(t, "push", "refs/heads/main"), "");
  EXPECT_EQ(trigger_rejection(t, "push", "main"), "");
  EXPECT_EQ(trigger_rejection(t, "push", "refs/heads/release/1.0"), "");
  EXPECT_EQ(trigger_rejection(t, "push", "refs/tags/v1.2"), "");
  EXPECT_EQ(trigger_rejection(t, "push", "refs/heads/feature/x"),
            "[on] does not match push to refs/heads/feature/x");
  EXPECT_NE(trigger_rejection(t, "push", "refs/tags/nightly"), "");
  EXPECT_EQ(trigger_rejection(t, "manual", "refs/heads/feature/x"), "");
  EXPECT_NE(trigger_rejection(t, "pull_request", "refs/heads/main"), "");  // no pull_request filter
}

TEST(Triggers, TagsOnlyAdmitsNoBranch) {
  auto t = on_push({}, {"v*"});
  EXPECT_NE(trigger_rejection(t, "push", "refs/heads/main"), "");
  EXPECT_EQ(trigger_rejection(t, "tag", "v2"), "");
}

TEST(Triggers, PullRequestBranches) {
  pipeline::Triggers t;
  t.declared = true;
  t.pull_request = pipeline::PullRequestFilter{{"main"}};
  EXPECT_EQ(trigger_rejection(t, "pull_request", "refs/heads/main"), "");
  EXPECT_EQ(trigger_rejection(t, "pull_request", "dev"), "[on] does not match pull_request to dev");
  EXPECT_NE(trigger_rejection(t, "push", "refs/heads/main"), "");
}

}  // namespace
}  // namespace boxcar::agent
