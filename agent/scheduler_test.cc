// Scheduler against a fake executor: the order of events without real processes.
#include "agent/scheduler.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace boxcar::agent {
namespace {

using executors::Outcome;
using pipeline::StepState;

// A fake executor whose sandboxes run nothing: the test decides when and how each exec ends.
struct FakeWorld {
  struct Exec {
    std::string step;
    executors::ExecHandlers handlers;
    bool ended = false;
    std::optional<Outcome::Kind> stopped;
  };
  std::vector<std::shared_ptr<Exec>> execs;
  int running = 0;
  int max_running = 0;
  bool fail_start = false;
  // When set, stop() ends the exec at once with the stop reason.
  bool stop_ends = true;

  void end(size_t i, Outcome o) {
    auto& e = execs.at(i);
    ASSERT_FALSE(e->ended);
    e->ended = true;
    --running;
    e->handlers.on_output(executors::OutputStream::out, "output of " + e->step + "\n");
    e->handlers.on_exit(o);
  }
};

class FakeSandbox : public executors::Sandbox {
 public:
  FakeSandbox(FakeWorld& w, std::string name) : w_(w), name_(std::move(name)) {}
  Status exec(const executors::ExecRequest&, executors::ExecHandlers h) override {
    auto e = std::make_shared<FakeWorld::Exec>();
    e->step = name_;
    e->handlers = std::move(h);
    w_.execs.push_back(e);
    mine_ = w_.execs.size() - 1;
    w_.max_running = std::max(w_.max_running, ++w_.running);
    return {};
  }
  void stop(Outcome::Kind reason, Millis) override {
    auto& e = w_.execs.at(mine_);
    e->stopped = reason;
    if (w_.stop_ends && !e->ended) w_.end(mine_, Outcome::of(reason));
  }
  void destroy() override {}
  Result<unique_fd> connect_tcp(uint16_t) override { return Error{"fake: nothing listens"}; }

 private:
  FakeWorld& w_;
  std::string name_;
  size_t mine_ = 0;
};

class FakeJob : public executors::Job {
 public:
  explicit FakeJob(FakeWorld& w) : w_(w) {}
  Result<std::unique_ptr<executors::Sandbox>> start(const executors::SandboxSpec& spec) override {
    if (w_.fail_start) return Error{"no sandbox for you", 1};
    return std::unique_ptr<executors::Sandbox>(std::make_unique<FakeSandbox>(w_, spec.name));
  }
  std::string workspace_path() const override { return "/workspace"; }
  void destroy() override {}

 private:
  FakeWorld& w_;
};

class NullObserver : public RunObserver {
 public:
  void notice(std::string_view) override {}
  void step_started(size_t, std::string_view name, int) override { started.emplace_back(name); }
  void step_line(size_t, std::string_view, Timestamp, std::string_view line, bool) override {
    lines.emplace_back(line);
  }
  void step_finished(size_t, const StepSummary& s) override { finished.push_back(s); }
  void artifact(size_t, std::string_view, std::string_view, uint64_t) override {}
  void pipeline_finished(bool ok, const std::vector<StepSummary>&, Millis) override {
    result = ok;
  }
  std::vector<std::string> started, lines;
  std::vector<StepSummary> finished;
  std::optional<bool> result;
};

pipeline::ExpandedPipeline make_pipeline(int n, int retry = 0, Millis timeout = Millis(3'600'000)) {
  pipeline::ExpandedPipeline p;
  for (int i = 0; i < n; ++i) {
    pipeline::ConcreteStep cs;
    cs.name = cs.base_name = "s" + std::to_string(i);
    cs.step.name = cs.name;
    cs.step.run = "true";
    cs.step.retry = retry;
    cs.step.timeout = timeout;
    p.steps.push_back(cs);
  }
  return p;
}

struct Harness {
  explicit Harness(pipeline::ExpandedPipeline p, size_t jobs = 2)
      : pipeline(std::move(p)), plan(pipeline, {}), job(world) {
    SchedulerOptions o;
    o.jobs = jobs;
    scheduler = std::make_unique<Scheduler>(io, job, pipeline, plan, o, observer);
    scheduler->start([this](bool ok) { done = ok; });
    io.poll();
  }
  void settle() {
    io.restart();
    io.poll();
  }
  boost::asio::io_context io;
  FakeWorld world;
  pipeline::ExpandedPipeline pipeline;
  pipeline::Plan plan;
  FakeJob job;
  NullObserver observer;
  std::unique_ptr<Scheduler> scheduler;
  std::optional<bool> done;
};

TEST(SchedulerTest, ParallelismIsBoundedByJobs) {
  Harness h(make_pipeline(5), 2);
  EXPECT_EQ(h.world.running, 2);
  for (size_t i = 0; i < 5; ++i) {
    h.world.end(i, Outcome{});
    h.settle();
  }
  EXPECT_EQ(h.world.max_running, 2);
  ASSERT_TRUE(h.done.has_value());
  EXPECT_TRUE(*h.done);
  EXPECT_EQ(h.observer.lines.size(), 5u);
}

TEST(SchedulerTest, RetriesAFailedStep) {
  Harness h(make_pipeline(1, /*retry=*/1));
  h.world.end(0, Outcome::exited(2));
  h.settle();
  ASSERT_EQ(h.world.execs.size(), 2u);
  h.world.end(1, Outcome{});
  h.settle();
  ASSERT_TRUE(h.done.has_value());
  EXPECT_TRUE(*h.done);
  EXPECT_EQ(h.scheduler->summaries()[0].attempts, 2);
  EXPECT_EQ(h.observer.started.size(), 2u);
}

TEST(SchedulerTest, SetupErrorEndsTheStepAsError) {
  FakeWorld w;
  w.fail_start = true;
  FakeJob job(w);
  auto pipe = make_pipeline(1);
  pipeline::Plan plan(pipe, {});
  NullObserver obs;
  boost::asio::io_context io;
  Scheduler s(io, job, pipe, plan, SchedulerOptions{}, obs);
  std::optional<bool> done;
  int calls = 0;
  s.start([&](bool ok) {
    done = ok;
    ++calls;
  });
  io.poll();
  ASSERT_TRUE(done.has_value());
  EXPECT_FALSE(*done);
  // Once: a runner tears its scheduler down on the first call (boxcar serve crashed on a
  // second one, for a job whose only step could not be set up).
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.summaries()[0].state, StepState::error);
  EXPECT_NE(s.summaries()[0].reason.find("no sandbox for you"), std::string::npos);
}

TEST(SchedulerTest, CancelStopsRunningAndCancelsPending) {
  Harness h(make_pipeline(3), 1);
  h.scheduler->cancel(Grace::step);
  h.settle();
  ASSERT_TRUE(h.done.has_value());
  EXPECT_FALSE(*h.done);
  EXPECT_EQ(h.world.execs[0]->stopped, Outcome::Kind::cancelled);
  for (const auto& s : h.scheduler->summaries()) EXPECT_EQ(s.state, StepState::cancelled) << s.name;
  EXPECT_EQ(h.world.execs.size(), 1u) << "pending steps never start";
}

// A step that ignores SIGTERM: Grace::step leaves it its grace period (the run waits), and
// Grace::none ends it at once, without waiting for the sandbox.
TEST(SchedulerTest, CancelWithoutGraceEndsRunningStepsAtOnce) {
  Harness h(make_pipeline(2), 2);
  h.world.stop_ends = false;
  h.scheduler->cancel(Grace::step);
  h.settle();
  EXPECT_EQ(h.world.execs[0]->stopped, Outcome::Kind::cancelled);
  EXPECT_FALSE(h.done.has_value()) << "with a grace period the run waits for its steps";
  h.scheduler->cancel(Grace::none);
  h.settle();
  ASSERT_TRUE(h.done.has_value());
  EXPECT_FALSE(*h.done);
  for (const auto& s : h.scheduler->summaries()) EXPECT_EQ(s.state, StepState::cancelled) << s.name;
}

// abort(): the running step ends failed with the reason, is not retried, and nothing else starts.
TEST(SchedulerTest, AbortFailsTheRunningStepWithTheReasonAndNoRetry) {
  Harness h(make_pipeline(2, /*retry=*/2), 1);
  h.world.stop_ends = false;
  h.scheduler->abort("the workspace is over its size");
  h.settle();
  ASSERT_TRUE(h.done.has_value());
  EXPECT_FALSE(*h.done);
  EXPECT_EQ(h.world.execs.size(), 1u);
  EXPECT_EQ(h.scheduler->summaries()[0].state, StepState::failed);
  EXPECT_EQ(h.scheduler->summaries()[0].reason, "the workspace is over its size");
  EXPECT_EQ(h.scheduler->summaries()[1].state, StepState::cancelled);
}

TEST(SchedulerTest, TimeoutStopsTheSandboxWithTimeout) {
  Harness h(make_pipeline(1, 0, Millis(1)));
  h.io.restart();
  h.io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(h.done.has_value());
  EXPECT_EQ(h.world.execs[0]->stopped, Outcome::Kind::timeout);
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
