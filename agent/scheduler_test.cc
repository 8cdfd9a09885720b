// Scheduler against the fake executor: the order of events without real processes. Each step
// runs "run-<name>", which runs until the test ends it (FakeExecutor::exit).
#include "agent/scheduler.h"
#include "agent/step_setup.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "testing/fake_executor.h"
#include "testing/recording_observer.h"

namespace boxcar::agent {
namespace {

using boxcar::testing::FakeCommand;
using boxcar::testing::FakeExecutor;
using boxcar::testing::RecordingObserver;
using executors::Outcome;
using pipeline::StepState;

pipeline::ExpandedPipeline make_pipeline(int n, int retry = 0, Millis timeout = Millis(3'600'000)) {
  pipeline::ExpandedPipeline p;
  for (int i = 0; i < n; ++i) {
    pipeline::ConcreteStep cs;
    cs.name = cs.base_name = "s" + std::to_string(i);
    cs.step.name = cs.name;
    cs.step.run = "run-" + cs.name;
    cs.step.retry = retry;
    cs.step.timeout = timeout;
    p.steps.push_back(cs);
  }
  return p;
}

struct Harness {
  explicit Harness(pipeline::ExpandedPipeline p, size_t jobs = 2, bool fail_starts = false,
                   bool ignore_sigterm = false)
      : fake(io), pipeline(std::move(p)), plan(pipeline, {}) {
    job = std::move(fake.prepare({"job-1", "/nonexistent"})).value();
    for (const auto& cs : pipeline.steps) {
      FakeCommand runs = FakeCommand::forever();
      runs.output = {"output of " + cs.name};
      runs.ignores_sigterm = ignore_sigterm;
      fake.script(cs.step.run, runs);
    }
    fake.fail_starts(fail_starts);
    SchedulerOptions o;
    o.jobs = jobs;
    scheduler = std::make_unique<Scheduler>(io, *job, pipeline, plan, o, observer);
    scheduler->start([this](bool ok) {
      done = ok;
      ++done_calls;
    });
  }
  bool finished() {
    return fake.run_until([&] { return done.has_value(); });
  }
  // Ends step `name`'s running attempt with `o` once it runs.
  void end(const std::string& name, Outcome o, size_t attempt = 1) {
    ASSERT_TRUE(fake.run_until([&] { return fake.started("run-" + name) == attempt; }));
    fake.exit("run-" + name, o);
  }
  boost::asio::io_context io;
  FakeExecutor fake;
  pipeline::ExpandedPipeline pipeline;
  pipeline::Plan plan;
  RecordingObserver observer;
  std::unique_ptr<executors::Job> job;
  std::unique_ptr<Scheduler> scheduler;
  std::optional<bool> done;
  int done_calls = 0;
};

TEST(SchedulerTest, ParallelismIsBoundedByJobs) {
  Harness h(make_pipeline(5), 2);
  EXPECT_EQ(h.fake.running(), 2u);
  for (int i = 0; i < 5; ++i) h.end("s" + std::to_string(i), Outcome{});
  ASSERT_TRUE(h.finished());
  EXPECT_EQ(h.fake.max_running(), 2u);
  EXPECT_TRUE(*h.done);
  EXPECT_EQ(h.observer.lines.size(), 5u);
}

TEST(SchedulerTest, RetriesAFailedStep) {
  Harness h(make_pipeline(1, /*retry=*/1));
  h.end("s0", Outcome::exited(2));
  h.end("s0", Outcome{}, 2);
  ASSERT_TRUE(h.finished());
  EXPECT_TRUE(*h.done);
  EXPECT_EQ(h.scheduler->summaries()[0].attempts, 2);
  EXPECT_EQ(h.observer.started.size(), 2u);
}

TEST(SchedulerTest, SetupErrorEndsTheStepAsError) {
  Harness h(make_pipeline(1), 2, /*fail_starts=*/true);
  ASSERT_TRUE(h.finished());
  EXPECT_FALSE(*h.done);
  h.io.restart();
  h.io.poll();  // a second call would be queued by now
  // Once: a runner tears its scheduler down on the first call (boxcar serve crashed on a
  // second one, for a job whose only step could not be set up).
  EXPECT_EQ(h.done_calls, 1);
  EXPECT_EQ(h.scheduler->summaries()[0].state, StepState::error);
  EXPECT_NE(h.scheduler->summaries()[0].reason.find("the sandbox could not be set up"),
            std::string::npos);
}

TEST(SchedulerTest, CancelStopsRunningAndCancelsPending) {
  Harness h(make_pipeline(3), 1);
  ASSERT_TRUE(h.fake.run_until([&] { return h.fake.started("run-s0") == 1; }));
  h.scheduler->cancel(Grace::step);
  ASSERT_TRUE(h.finished());
  EXPECT_FALSE(*h.done);
  EXPECT_EQ(h.fake.last("run-s0")->stopped, Outcome::Kind::cancelled);
  for (const auto& s : h.scheduler->summaries()) EXPECT_EQ(s.state, StepState::cancelled) << s.name;
  EXPECT_EQ(h.fake.execs().size(), 1u) << "pending steps never start";
}

// A step that ignores SIGTERM: Grace::step leaves it its grace period (the run waits), and
// Grace::none ends it at once, without waiting for the sandbox.
TEST(SchedulerTest, CancelWithoutGraceEndsRunningStepsAtOnce) {
  auto p = make_pipeline(2);
  for (auto& cs : p.steps) cs.step.grace = Millis(600'000);
  Harness h(std::move(p), 2, false, /*ignore_sigterm=*/true);
  ASSERT_TRUE(h.fake.run_until([&] { return h.fake.running() == 2; }));
  h.scheduler->cancel(Grace::step);
  // Waits for what must not happen: with ten minutes of grace nothing ends soon.
  EXPECT_FALSE(h.fake.run_until([&] { return h.done.has_value(); }, std::chrono::milliseconds(300)))
      << "with a grace period the run waits for its steps";
  EXPECT_EQ(h.fake.last("run-s0")->stopped, Outcome::Kind::cancelled);
  h.scheduler->cancel(Grace::none);
  ASSERT_TRUE(h.finished());
  EXPECT_FALSE(*h.done);
  for (const auto& s : h.scheduler->summaries()) EXPECT_EQ(s.state, StepState::cancelled) << s.name;
}

// abort(): the running step ends failed with the reason, is not retried, and nothing else starts.
TEST(SchedulerTest, AbortFailsTheRunningStepWithTheReasonAndNoRetry) {
  auto p = make_pipeline(2, /*retry=*/2);
  for (auto& cs : p.steps) cs.step.grace = Millis(600'000);
  Harness h(std::move(p), 1, false, /*ignore_sigterm=*/true);
  ASSERT_TRUE(h.fake.run_until([&] { return h.fake.started("run-s0") == 1; }));
  h.scheduler->abort("the workspace is over its size");
  ASSERT_TRUE(h.finished());
  EXPECT_FALSE(*h.done);
  EXPECT_EQ(h.fake.execs().size(), 1u);
  EXPECT_EQ(h.scheduler->summaries()[0].state, StepState::failed);
  EXPECT_EQ(h.scheduler->summaries()[0].reason, "the workspace is over its size");
  EXPECT_EQ(h.scheduler->summaries()[1].state, StepState::cancelled);
}

TEST(SchedulerTest, TimeoutStopsTheSandboxWithTimeout) {
  Harness h(make_pipeline(1, 0, Millis(1)));
  ASSERT_TRUE(h.finished());
  EXPECT_EQ(h.fake.last("run-s0")->stopped, Outcome::Kind::timeout);
  EXPECT_EQ(h.scheduler->summaries()[0].state, StepState::timeout);
  EXPECT_NE(h.scheduler->summaries()[0].reason.find("timed out"), std::string::npos);
}

TEST(SchedulerTest, StepEnvironmentIsExplicit) {
  pipeline::ConcreteStep cs;
  cs.name = "build (cc=gcc)";
  cs.matrix_values = {{"cc", "gcc"}};
  cs.step.env = {{"CC", "gcc"}, {"PATH", "/opt/bin:/usr/bin"}};
  cs.step.secrets = {"TOKEN"};
  SchedulerOptions o;
  o.secrets = {{"TOKEN", "s3cret"}, {"OTHER", "not-declared"}};
  o.job_id = "j1";
  auto env = step_environment(cs, o, "/workspace");
  auto has = [&](const std::string& kv) { return std::find(env.begin(), env.end(), kv) != env.end(); };
  EXPECT_TRUE(has("CI=true"));
  EXPECT_TRUE(has("BOXCAR_STEP=build (cc=gcc)"));
  EXPECT_TRUE(has("BOXCAR_JOB_ID=j1"));
  EXPECT_TRUE(has("BOXCAR_WORKSPACE=/workspace"));
  EXPECT_TRUE(has("BOXCAR_MATRIX_cc=gcc"));
  EXPECT_TRUE(has("PATH=/opt/bin:/usr/bin"));
  EXPECT_TRUE(has("TOKEN=s3cret"));
  EXPECT_FALSE(has("OTHER=not-declared"));
}

}  // namespace
}  // namespace boxcar::agent
