#include "pipeline/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/load.h"

namespace boxcar::pipeline {
namespace {

using Steps = std::vector<size_t>;

// Builds an ExpandedPipeline by hand: needs by name, resolved to indices in build().
class PipelineBuilder {
 public:
  Step& step(const std::string& name, std::vector<std::string> needs = {}) {
    ConcreteStep cs;
    cs.name = name;
    cs.base_name = name;
    cs.step.name = name;
    cs.step.run = "true";
    cs.step.needs = std::move(needs);
    p_.steps.push_back(std::move(cs));
    return p_.steps.back().step;
  }

  ExpandedPipeline build() {
    for (ConcreteStep& cs : p_.steps) {
      cs.needs.clear();
      for (const std::string& need : cs.step.needs)
        for (size_t i = 0; i < p_.steps.size(); ++i)
          if (p_.steps[i].name == need) cs.needs.push_back(i);
    }
    return p_;
  }

 private:
  ExpandedPipeline p_;
};

When status(WhenStatus s) {
  When w;
  w.status = s;
  return w;
}

RunContext on_branch(std::string branch, std::string event = "push") {
  RunContext ctx;
  ctx.branch = std::move(branch);
  ctx.event = std::move(event);
  return ctx;
}

// Plays the scheduler: starts every ready step, finishes each with outcome(step), until done.
// Returns the steps in the order they started.
std::vector<size_t> drive(Plan& plan, const std::function<StepState(size_t)>& outcome) {
  std::vector<size_t> started;
  while (!plan.done()) {
    std::vector<size_t> ready = plan.ready();
    if (ready.empty()) break;  // stuck: the test's expectations will say so
    for (size_t s : ready) {
      plan.start(s);
      started.push_back(s);
    }
    for (size_t s : ready) plan.finish(s, outcome(s));
  }
  return started;
}

Steps sorted(Steps v) {
  std::sort(v.begin(), v.end());
  return v;
}

StepState all_succeed(size_t) { return StepState::success; }

TEST(StepStateTest, Names) {
  EXPECT_STREQ(to_string(StepState::pending), "pending");
  EXPECT_STREQ(to_string(StepState::running), "running");
  EXPECT_STREQ(to_string(StepState::success), "success");
  EXPECT_STREQ(to_string(StepState::failed), "failed");
  EXPECT_STREQ(to_string(StepState::skipped), "skipped");
  EXPECT_STREQ(to_string(StepState::cancelled), "cancelled");
  EXPECT_STREQ(to_string(StepState::timeout), "timeout");
  EXPECT_STREQ(to_string(StepState::oom), "oom");
  EXPECT_STREQ(to_string(StepState::error), "error");
}

TEST(StepStateTest, TerminalAndFailure) {
  EXPECT_FALSE(is_terminal(StepState::pending));
  EXPECT_FALSE(is_terminal(StepState::running));
  for (StepState s : {StepState::success, StepState::failed, StepState::skipped,
                      StepState::cancelled, StepState::timeout, StepState::oom, StepState::error})
    EXPECT_TRUE(is_terminal(s)) << to_string(s);
  for (StepState s : {StepState::failed, StepState::timeout, StepState::oom, StepState::error})
    EXPECT_TRUE(is_failure(s)) << to_string(s);
  for (StepState s : {StepState::pending, StepState::running, StepState::success,
                      StepState::skipped, StepState::cancelled})
    EXPECT_FALSE(is_failure(s)) << to_string(s);
}

TEST(WhenTest, BranchGlobs) {
  When w;
  w.branch = {"main", "release/*"};
  EXPECT_TRUE(when_admits(w, on_branch("main")));
  EXPECT_TRUE(when_admits(w, on_branch("release/1.2")));
  EXPECT_FALSE(when_admits(w, on_branch("release/1.2/hotfix")));
  EXPECT_FALSE(when_admits(w, on_branch("feature/x")));
  EXPECT_EQ(when_rejection(w, on_branch("feature/x")),
            "when.branch does not match \"feature/x\"");
}

TEST(WhenTest, UnknownBranchIsNotFilteredOut) {
  When w;
  w.branch = {"main"};
  EXPECT_TRUE(when_admits(w, on_branch("")));
}

TEST(WhenTest, NoBranchAdmitsNoBranchFilterAndSaysWhy) {
  When w;
  w.branch = {"*"};
  RunContext ctx = on_branch("");
  ctx.no_branch = "commit abc is not on refs/heads/main";
  EXPECT_EQ(when_rejection(w, ctx), "when.branch: commit abc is not on refs/heads/main");
  // Control: a step without when.branch still runs.
  EXPECT_TRUE(when_admits(When{}, ctx));
}

TEST(WhenTest, Events) {
  When w;
  w.event = {"push", "tag"};
  EXPECT_TRUE(when_admits(w, on_branch("main", "push")));
  EXPECT_TRUE(when_admits(w, on_branch("main", "tag")));
  EXPECT_FALSE(when_admits(w, on_branch("main", "pull_request")));
  EXPECT_EQ(when_rejection(w, on_branch("main", "pull_request")),
            "when.event does not include \"pull_request\"");
}

TEST(WhenTest, EmptyAdmitsEverything) {
  EXPECT_TRUE(when_admits(When{}, on_branch("anything", "manual")));
}

TEST(PlanTest, EmptyPipelineIsDoneAndGreen) {
  Plan plan(ExpandedPipeline{}, RunContext{});
  EXPECT_TRUE(plan.done());
  EXPECT_FALSE(plan.failed());
  EXPECT_TRUE(plan.ready().empty());
}

TEST(PlanTest, IndependentStepsStartTogether) {
  PipelineBuilder b;
  b.step("a");
  b.step("b");
  b.step("c");
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(plan.ready(), (Steps{0, 1, 2}));
}

TEST(PlanTest, FanOutFanIn) {
  PipelineBuilder b;
  b.step("build");
  b.step("unit", {"build"});
  b.step("lint", {"build"});
  b.step("docs", {"build"});
  b.step("merge", {"unit", "lint", "docs"});
  Plan plan(b.build(), RunContext{});

  EXPECT_EQ(plan.ready(), (Steps{0}));
  plan.start(0);
  EXPECT_TRUE(plan.ready().empty());
  EXPECT_FALSE(plan.done());
  plan.finish(0, StepState::success);
  EXPECT_EQ(plan.ready(), (Steps{1, 2, 3}));
  for (size_t s : {1, 2, 3}) plan.start(s);
  plan.finish(2, StepState::success);
  plan.finish(1, StepState::success);
  EXPECT_TRUE(plan.ready().empty());  // merge still waits for docs
  plan.finish(3, StepState::success);
  EXPECT_EQ(plan.ready(), (Steps{4}));
  EXPECT_FALSE(plan.done());
  plan.start(4);
  EXPECT_FALSE(plan.done());
  plan.finish(4, StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_FALSE(plan.failed());
}

TEST(PlanTest, ReadyDoesNotChangeState) {
  PipelineBuilder b;
  b.step("a");
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(plan.ready(), (Steps{0}));
  EXPECT_EQ(plan.ready(), (Steps{0}));
  EXPECT_EQ(plan.state(0), StepState::pending);
}

TEST(PlanTest, FailureSkipsAChainTransitively) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  b.step("c", {"b"});
  b.step("d", {"c"});
  b.step("other");
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.start(4);
  plan.finish(0, StepState::failed);
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.state(2), StepState::skipped);
  EXPECT_EQ(plan.state(3), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "needs \"a\" failed");
  EXPECT_EQ(plan.reason(2), "needs \"b\" was skipped");
  EXPECT_EQ(plan.reason(3), "needs \"c\" was skipped");
  EXPECT_FALSE(plan.done());  // "other" still runs
  EXPECT_TRUE(plan.failed());
  plan.finish(4, StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, SkipReasonsNameTheOutcome) {
  PipelineBuilder b;
  b.step("slow");
  b.step("big");
  b.step("after_slow", {"slow"});
  b.step("after_big", {"big"});
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.start(1);
  plan.finish(0, StepState::timeout);
  plan.finish(1, StepState::oom);
  EXPECT_EQ(plan.reason(2), "needs \"slow\" timed out");
  EXPECT_EQ(plan.reason(3), "needs \"big\" ran out of memory");
}

TEST(PlanTest, AllowFailureKeepsDependentsRunningAndPipelineGreen) {
  PipelineBuilder b;
  b.step("lint").allow_failure = true;
  b.step("report", {"lint"});
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::failed);
  EXPECT_FALSE(plan.failed());
  EXPECT_EQ(plan.ready(), (Steps{1}));
  plan.start(1);
  plan.finish(1, StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_FALSE(plan.failed());
}

TEST(PlanTest, AllowFailureCoversTimeout) {
  PipelineBuilder b;
  b.step("flaky").allow_failure = true;
  b.step("next", {"flaky"});
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::timeout);
  EXPECT_EQ(plan.ready(), (Steps{1}));
  EXPECT_FALSE(plan.failed());
}

TEST(PlanTest, FailureStatusSkippedWhenAllSucceed) {
  PipelineBuilder b;
  b.step("build");
  b.step("notify", {"build"}).when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::success);
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "no earlier step failed");
  EXPECT_TRUE(plan.done());
  EXPECT_FALSE(plan.failed());
}

TEST(PlanTest, FailureStatusRunsOnFailure) {
  PipelineBuilder b;
  b.step("build");
  b.step("notify", {"build"}).when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::failed);
  EXPECT_EQ(plan.ready(), (Steps{1}));
  plan.start(1);
  plan.finish(1, StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());  // notifying does not make the pipeline green
}

TEST(PlanTest, FailureStatusSeesFailuresBehindSkippedSteps) {
  PipelineBuilder b;
  b.step("build");
  b.step("test", {"build"});
  b.step("notify", {"test"}).when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::failed);
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.ready(), (Steps{2}));
}

TEST(PlanTest, FailureStatusIgnoresAllowedFailures) {
  PipelineBuilder b;
  b.step("lint").allow_failure = true;
  b.step("notify", {"lint"}).when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::failed);
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "no earlier step failed");
}

TEST(PlanTest, AlwaysRunsEitherWay) {
  for (StepState outcome : {StepState::success, StepState::failed}) {
    PipelineBuilder b;
    b.step("build");
    b.step("test", {"build"});
    b.step("collect", {"test"}).when = status(WhenStatus::always);
    Plan plan(b.build(), RunContext{});
    plan.start(0);
    plan.finish(0, outcome);
    if (outcome == StepState::success) {
      EXPECT_EQ(plan.ready(), (Steps{1}));
      plan.start(1);
      plan.finish(1, StepState::success);
    }
    EXPECT_EQ(plan.ready(), (Steps{2})) << to_string(outcome);
    plan.start(2);
    plan.finish(2, StepState::success);
    EXPECT_TRUE(plan.done());
    EXPECT_EQ(plan.failed(), outcome == StepState::failed);
  }
}

TEST(PlanTest, FinallyStepWaitsForEverythingElse) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  b.step("cleanup").when = status(WhenStatus::always);
  b.step("c");
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(sorted(plan.waits(2)), (Steps{0, 1, 3}));
  EXPECT_EQ(plan.ready(), (Steps{0, 3}));
  plan.start(0);
  plan.start(3);
  plan.finish(0, StepState::success);
  plan.finish(3, StepState::success);
  EXPECT_EQ(plan.ready(), (Steps{1}));
  plan.start(1);
  plan.finish(1, StepState::failed);
  EXPECT_EQ(plan.ready(), (Steps{2}));
}

TEST(PlanTest, FinallyStepsDoNotWaitForEachOtherOrTheirDependents) {
  PipelineBuilder b;
  b.step("build");
  b.step("cleanup").when = status(WhenStatus::always);
  b.step("on_fail").when = status(WhenStatus::failure);
  b.step("after_cleanup", {"cleanup"});
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(plan.waits(1), (Steps{0}));     // not on_fail, not after_cleanup
  EXPECT_EQ(plan.waits(2), (Steps{0, 3}));  // after_cleanup does not depend on on_fail
  std::vector<size_t> started = drive(plan, [](size_t s) {
    return s == 0 ? StepState::failed : StepState::success;
  });
  EXPECT_EQ(started, (Steps{0, 1, 3, 2}));
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, FinallyFailureStepSkippedOnSuccess) {
  PipelineBuilder b;
  b.step("build");
  b.step("on_fail").when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(plan.ready(), (Steps{0}));
  plan.start(0);
  plan.finish(0, StepState::success);
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "no earlier step failed");
  EXPECT_TRUE(plan.done());
}

TEST(PlanTest, FinallyStepAloneRunsAtOnce) {
  PipelineBuilder b;
  b.step("cleanup").when = status(WhenStatus::always);
  b.step("on_fail").when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  EXPECT_EQ(plan.ready(), (Steps{0}));
  EXPECT_EQ(plan.state(1), StepState::skipped);
}

TEST(PlanTest, CancelMarksPendingStepsOnly) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  b.step("c", {"b"});
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.cancel();
  EXPECT_EQ(plan.state(0), StepState::running);
  EXPECT_EQ(plan.state(1), StepState::cancelled);
  EXPECT_EQ(plan.state(2), StepState::cancelled);
  EXPECT_EQ(plan.reason(1), "cancelled");
  EXPECT_FALSE(plan.done());
  EXPECT_TRUE(plan.ready().empty());
  EXPECT_TRUE(plan.failed());
  plan.finish(0, StepState::cancelled);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, CancelAlsoCancelsFinallySteps) {
  PipelineBuilder b;
  b.step("a");
  b.step("cleanup").when = status(WhenStatus::always);
  Plan plan(b.build(), RunContext{});
  plan.cancel();
  EXPECT_EQ(plan.state(1), StepState::cancelled);
  EXPECT_TRUE(plan.done());
}

// A cancel with a grace period spares the cleanup: it runs once what it waits for has ended.
TEST(PlanTest, CancelSparingAlwaysStepsRunsThemAfterTheRest) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  b.step("on-failure").when = status(WhenStatus::failure);
  b.step("cleanup").when = status(WhenStatus::always);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.cancel(/*spare_always=*/true);
  EXPECT_EQ(plan.state(1), StepState::cancelled);
  EXPECT_EQ(plan.state(2), StepState::cancelled);
  EXPECT_EQ(plan.state(3), StepState::pending);
  EXPECT_TRUE(plan.ready().empty());  // "a" still runs
  plan.finish(0, StepState::cancelled);
  EXPECT_EQ(plan.ready(), (std::vector<size_t>{3}));
  plan.start(3);
  plan.finish(3, StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, BranchFilterSkipsAndPropagates) {
  PipelineBuilder b;
  b.step("build");
  When w;
  w.branch = {"main", "release/*"};
  b.step("deploy", {"build"}).when = w;
  b.step("announce", {"deploy"});
  ExpandedPipeline p = b.build();

  Plan feature(p, on_branch("feature/x"));
  EXPECT_EQ(feature.state(1), StepState::skipped);
  EXPECT_EQ(feature.reason(1), "when.branch does not match \"feature/x\"");
  EXPECT_EQ(feature.state(2), StepState::skipped);
  EXPECT_EQ(feature.reason(2), "needs \"deploy\" was skipped");
  EXPECT_EQ(feature.ready(), (Steps{0}));
  drive(feature, all_succeed);
  EXPECT_TRUE(feature.done());
  EXPECT_FALSE(feature.failed());

  for (const char* branch : {"main", "release/2.0", ""}) {
    Plan plan(p, on_branch(branch));
    EXPECT_EQ(drive(plan, all_succeed), (Steps{0, 1, 2})) << "branch " << branch;
  }
}

TEST(PlanTest, EventFilter) {
  PipelineBuilder b;
  When w;
  w.event = {"push"};
  b.step("publish").when = w;
  ExpandedPipeline p = b.build();

  Plan pr(p, on_branch("main", "pull_request"));
  EXPECT_EQ(pr.state(0), StepState::skipped);
  EXPECT_EQ(pr.reason(0), "when.event does not include \"pull_request\"");
  EXPECT_TRUE(pr.done());

  Plan push(p, on_branch("main", "push"));
  EXPECT_EQ(push.ready(), (Steps{0}));
}

TEST(PlanTest, FilteredFinallyStepIsSkipped) {
  PipelineBuilder b;
  b.step("build");
  When w;
  w.status = WhenStatus::always;
  w.branch = {"main"};
  b.step("cleanup").when = w;
  Plan plan(b.build(), on_branch("dev"));
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "when.branch does not match \"dev\"");
  drive(plan, all_succeed);
  EXPECT_TRUE(plan.done());
}

TEST(PlanTest, FinishFromPendingIsAccepted) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  Plan plan(b.build(), RunContext{});
  plan.finish(0, StepState::error);  // the scheduler could not even start it
  EXPECT_EQ(plan.state(1), StepState::skipped);
  EXPECT_EQ(plan.reason(1), "needs \"a\" failed (error)");
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, DoneAndFailedAtEachStage) {
  PipelineBuilder b;
  b.step("a");
  b.step("b", {"a"});
  b.step("flaky").allow_failure = true;
  Plan plan(b.build(), RunContext{});
  EXPECT_FALSE(plan.done());
  EXPECT_FALSE(plan.failed());
  plan.start(0);
  plan.start(2);
  EXPECT_FALSE(plan.done());
  EXPECT_FALSE(plan.failed());
  plan.finish(2, StepState::oom);
  EXPECT_FALSE(plan.done());
  EXPECT_FALSE(plan.failed());
  plan.finish(0, StepState::success);
  EXPECT_FALSE(plan.done());
  EXPECT_FALSE(plan.failed());
  plan.start(1);
  plan.finish(1, StepState::failed);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, ThousandStepChain) {
  PipelineBuilder b;
  b.step("s0");
  for (int i = 1; i < 1000; ++i)
    b.step("s" + std::to_string(i), {"s" + std::to_string(i - 1)});
  b.step("cleanup").when = status(WhenStatus::always);
  Plan plan(b.build(), RunContext{});
  std::vector<size_t> started = drive(plan, all_succeed);
  ASSERT_EQ(started.size(), 1001u);
  for (size_t i = 0; i < started.size(); ++i) EXPECT_EQ(started[i], i);
  EXPECT_TRUE(plan.done());
  EXPECT_FALSE(plan.failed());
}

TEST(PlanTest, ThousandStepChainFailingEarlySkipsTheRest) {
  PipelineBuilder b;
  b.step("s0");
  for (int i = 1; i < 1000; ++i)
    b.step("s" + std::to_string(i), {"s" + std::to_string(i - 1)});
  b.step("on_fail").when = status(WhenStatus::failure);
  Plan plan(b.build(), RunContext{});
  plan.start(0);
  plan.finish(0, StepState::failed);
  EXPECT_EQ(plan.state(999), StepState::skipped);
  EXPECT_EQ(plan.ready(), (Steps{1000}));
}

TEST(PlanTest, ThousandWideFanOut) {
  PipelineBuilder b;
  b.step("setup");
  std::vector<std::string> all;
  for (int i = 0; i < 1000; ++i) {
    all.push_back("w" + std::to_string(i));
    b.step(all.back(), {"setup"});
  }
  b.step("gather", all);
  b.step("cleanup").when = status(WhenStatus::always);
  Plan plan(b.build(), RunContext{});
  std::vector<size_t> started = drive(plan, [](size_t s) {
    return s == 500 ? StepState::failed : StepState::success;
  });
  EXPECT_EQ(started.size(), 1002u);  // setup, 1000 workers, cleanup; gather skipped
  EXPECT_EQ(plan.state(1001), StepState::skipped);
  EXPECT_EQ(plan.reason(1001), "needs \"w499\" failed");
  EXPECT_EQ(plan.state(1002), StepState::success);
  EXPECT_TRUE(plan.done());
  EXPECT_TRUE(plan.failed());
}

TEST(PlanTest, FromTheParserMatrixNeedsWaitForEveryExpansion) {
  LoadResult loaded = parse_pipeline(R"(
version = 1
[[step]]
name = "build"
run = "make"
[[step]]
name = "test"
run = "make CC=${matrix.cc} test"
needs = ["build"]
matrix = { cc = ["gcc", "clang"] }
[[step]]
name = "package"
run = "make dist"
needs = ["test"]
)", "inline.toml");
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0].to_string();
  ExpandedPipeline p = expand(*loaded.pipeline);
  ASSERT_EQ(p.steps.size(), 4u);
  Plan plan(p, RunContext{});
  EXPECT_EQ(plan.ready(), (Steps{0}));
  plan.start(0);
  plan.finish(0, StepState::success);
  Steps tests = plan.ready();
  ASSERT_EQ(tests.size(), 2u);
  plan.start(tests[0]);
  plan.start(tests[1]);
  plan.finish(tests[0], StepState::success);
  EXPECT_TRUE(plan.ready().empty());  // package waits for the other expansion too
  plan.finish(tests[1], StepState::failed);
  EXPECT_EQ(plan.state(3), StepState::skipped);
  EXPECT_EQ(plan.reason(3), "needs \"" + p.steps[tests[1]].name + "\" failed");
}

TEST(PlanTest, PlanOutlivesItsPipeline) {
  std::unique_ptr<Plan> plan;
  {
    PipelineBuilder b;
    b.step("a");
    b.step("b", {"a"});
    plan = std::make_unique<Plan>(b.build(), RunContext{});
  }
  plan->start(0);
  plan->finish(0, StepState::failed);
  EXPECT_EQ(plan->reason(1), "needs \"a\" failed");
}

}  // namespace
}  // namespace boxcar::pipeline
