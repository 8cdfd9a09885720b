#include "agent/daemon/triggers.h"

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

TEST(JobBranch, PullRequestRunsForItsBaseNotItsHead) {
  // A fork's branch named "main" proposed into dev: the job's branch is dev.
  auto b = job_branch("pull_request", "main", "refs/heads/main", "c0ffee",
                      {{"BOXCAR_PR_BASE", "dev"}, {"BOXCAR_PR_HEAD", "main"}}, "");
  EXPECT_EQ(b.branch, "dev");
  EXPECT_EQ(b.ref, "refs/heads/dev");
  EXPECT_EQ(b.no_branch, "");
  // Without a base there is no branch, never the head's.
  b = job_branch("pull_request", "main", "refs/heads/main", "c0ffee", {}, "");
  EXPECT_EQ(b.branch, "");
  EXPECT_NE(b.no_branch, "");
}

TEST(JobBranch, ACommitOnItsRefHasTheRefsBranch) {
  auto b = job_branch("push", "refs/heads/main", "refs/heads/main", "c0ffee", {}, "");
  EXPECT_EQ(b.branch, "main");
  EXPECT_EQ(b.no_branch, "");
  b = job_branch("manual", "main", "refs/heads/main", "c0ffee", {}, "");
  EXPECT_EQ(b.branch, "main");
  b = job_branch("manual", "", "refs/heads/master", "", {}, "");  // the default branch
  EXPECT_EQ(b.branch, "master");
}

TEST(JobBranch, ACommitOffItsRefOrWithoutOneHasNoBranch) {
  auto b = job_branch("manual", "main", "refs/heads/main", "c0ffee", {},
                      "commit c0ffee is not on refs/heads/main of x");
  EXPECT_EQ(b.branch, "");
  EXPECT_EQ(b.no_branch, "commit c0ffee is not on refs/heads/main of x");
  b = job_branch("manual", "", "", "c0ffee", {{"BOXCAR_PR_BASE", "main"}}, "");
  EXPECT_EQ(b.branch, "");
  EXPECT_EQ(b.no_branch, "the job names commit c0ffee but no ref");
}

}  // namespace
}  // namespace boxcar::agent
