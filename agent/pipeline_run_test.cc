// PipelineRun on the host executor: real processes, the whole assembly (Plan, prepare,
// Scheduler, teardown) as `boxcar run` and the job runner use it.
#include "agent/pipeline_run.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <optional>

#include "executors/host/host_executor.h"

namespace boxcar::agent {
namespace {

using pipeline::StepState;

class Quiet : public RunObserver {
 public:
  void notice(std::string_view) override {}
  void step_started(size_t, std::string_view, int) override {}
  void step_line(size_t, std::string_view, Timestamp, std::string_view, bool) override {}
  void step_finished(size_t, const StepSummary&) override {}
  void artifact(size_t, std::string_view, std::string_view, uint64_t) override {}
  void pipeline_finished(bool, const std::vector<StepSummary>&, Millis) override {}
};

pipeline::ConcreteStep step(const std::string& name, const std::string& run) {
  pipeline::ConcreteStep cs;
  cs.name = cs.base_name = cs.step.name = name;
  cs.step.run = run;
  cs.step.grace = Millis(120'000);  // longer than any wait below: only Grace::none ends it sooner
  return cs;
}

struct Fixture {
  Fixture() : workspace(std::filesystem::temp_directory_path() / ("boxcar-pipeline-run-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(workspace);
    executor = executors::make_host_executor(io);
  }
  ~Fixture() { std::filesystem::remove_all(workspace); }

  std::unique_ptr<PipelineRun> make(pipeline::ExpandedPipeline p, SchedulerOptions o = {}) {
    PipelineRunConfig c;
    c.id = "test-run";
    c.workspace = workspace;
    c.scheduler = std::move(o);
    c.scheduler.jobs = 2;
    auto run = std::make_unique<PipelineRun>(io, *executor, std::move(p), std::move(c), observer);
    EXPECT_TRUE(run->prepare().ok());
    return run;
  }

  // Runs the io_context until `released` (a generous deadline, not a measurement).
  void run_until_released(PipelineRun& run) {
    run.start(
        [&](bool ok) {
          EXPECT_FALSE(released) << "finished comes first";
          finished = ok;
        },
        [&] { released = true; });
    // Held: the io_context has no work of its own while an artifact copy is on the copy pool.
    auto work = boost::asio::make_work_guard(io);
    for (int i = 0; i < 600 && !released; ++i) io.run_for(std::chrono::milliseconds(100));
  }

  boost::asio::io_context io;
  std::filesystem::path workspace;
  std::unique_ptr<executors::Executor> executor;
  Quiet observer;
  std::optional<bool> finished;
  bool released = false;
};

TEST(PipelineRun, RunsEveryStepThenReleasesWithTheFirstFailure) {
  Fixture f;
  pipeline::ExpandedPipeline p;
  p.steps = {step("ok", "true"), step("bad", "exit 3")};
  auto run = f.make(std::move(p));
  f.run_until_released(*run);
  ASSERT_TRUE(f.released);
  ASSERT_TRUE(f.finished.has_value());
  EXPECT_FALSE(*f.finished);
  EXPECT_EQ(run->summaries()[0].state, StepState::success);
  EXPECT_EQ(run->summaries()[1].state, StepState::failed);
  EXPECT_EQ(failure_reason(run->summaries()), "step \"bad\" failed: exit code 3");
  EXPECT_FALSE(run->holding_previews());
}

// A step that ignores SIGTERM under a 2-minute grace period: cancel(Grace::none) kills it at
// once (the wait would otherwise outlast the test's deadline); the same run's other step, done
// before, keeps its success.
TEST(PipelineRun, CancelWithoutGraceKillsAStepThatIgnoresSigterm) {
  Fixture f;
  pipeline::ExpandedPipeline p;
  p.steps = {step("quick", "true"), step("stubborn", "trap '' TERM; touch started; while :; do sleep 1; done")};
  auto run = f.make(std::move(p));
  run->start([&](bool ok) { f.finished = ok; }, [&] { f.released = true; });
  for (int i = 0; i < 300 && !std::filesystem::exists(f.workspace / "started"); ++i) {
    f.io.run_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(f.workspace / "started"));
  run->cancel(Grace::none);
  for (int i = 0; i < 300 && !f.released; ++i) f.io.run_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(f.released);
  ASSERT_TRUE(f.finished.has_value());
  EXPECT_FALSE(*f.finished);
  EXPECT_EQ(run->summaries()[0].state, StepState::success);
  EXPECT_EQ(run->summaries()[1].state, StepState::cancelled);
}

// Artifact bytes kept by one run, against artifact_total_limit: two parallel steps that end
// together (each waits for the other's file) each keep a 48 MiB artifact, a copy long enough
// for the other step to end during it. Under an 80 MiB total only one may be kept: the second
// copy must not start from the total as it was before the first copy ended (it did, and both
// were kept). The control, with room for both, keeps both.
uint64_t kept_artifact_bytes(uint64_t total_limit) {
  Fixture f;
  auto dest = f.workspace / "kept";
  std::filesystem::create_directories(dest);
  pipeline::ExpandedPipeline p;
  for (std::string name : {"a", "b"}) {
    std::string other = name == "a" ? "b" : "a";
    auto s = step(name, "head -c 48M /dev/zero > " + name + ".bin; touch " + name + ".done; "
                        "while [ ! -e " + other + ".done ]; do sleep 0.01; done");
    s.step.artifacts = {name + ".bin"};
    p.steps.push_back(s);
  }
  SchedulerOptions o;
  o.artifact_dir = dest;
  o.artifact_total_limit = total_limit;
  auto run = f.make(std::move(p), o);
  f.run_until_released(*run);
  EXPECT_TRUE(f.released);
  for (const auto& s : run->summaries()) EXPECT_EQ(s.state, StepState::success) << s.name << ": " << s.reason;
  uint64_t kept = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dest)) {
    if (e.is_regular_file()) kept += e.file_size();
  }
  return kept;
}

TEST(PipelineRun, ParallelStepsEndingTogetherShareOneArtifactTotal) {
  EXPECT_EQ(kept_artifact_bytes(100ull << 20), 96ull << 20) << "control: room for both";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(kept_artifact_bytes(80ull << 20), 48ull << 20) << "only one 48 MiB file fits in 80 MiB";
  }
}

}  // namespace
}  // namespace boxcar::agent

namespace boxcar::agent {
namespace {

// Answers when told to (or never): how a slow registry looks to a run.
class HeldImages : public ImageSource {
 public:
  std::shared_ptr<void> fetch(std::vector<std::string> refs, std::function<void(RunImages)> done) override {
    asked = refs;
    pending = std::move(done);
    return std::make_shared<int>(0);
  }
  std::vector<std::string> asked;
  std::function<void(RunImages)> pending;
};

// A run of a step in an image and one on the host, started, its images asked of `images`.
struct ImageRun {
  explicit ImageRun(Fixture& fixture) : f(fixture) {
    pipeline::ExpandedPipeline p;
    p.steps = {step("in-image", "true"), step("on-host", "true")};
    p.steps[0].step.image = "example.test/app:1";
    PipelineRunConfig c;
    c.id = "test-run";
    c.workspace = f.workspace;
    c.images = &images;
    run = std::make_unique<PipelineRun>(f.io, *f.executor, std::move(p), std::move(c), f.observer);
    EXPECT_TRUE(run->prepare().ok());
    run->start([this](bool ok) { finished = ok; }, [this] { released = true; });
  }
  void run_until_released() {
    for (int i = 0; i < 200 && !released; ++i) f.io.run_for(std::chrono::milliseconds(20));
  }
  Fixture& f;
  HeldImages images;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
      boost::asio::make_work_guard(f.io);
  std::unique_ptr<PipelineRun> run;
  std::optional<bool> finished;
  bool released = false;
};

TEST(PipelineRun, CancelWhileImagesArePulledEndsTheRunAtOnce) {
  Fixture f;
  ImageRun r(f);
  f.io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(r.images.asked, std::vector<std::string>{"example.test/app:1"});
  EXPECT_FALSE(r.finished.has_value()) << "nothing runs before the images are there";
  r.run->cancel(Grace::step);
  EXPECT_FALSE(r.finished.has_value()) << "never inside cancel()";
  r.run_until_released();
  ASSERT_TRUE(r.released);
  EXPECT_EQ(r.finished, false);
  for (const auto& s : r.run->summaries()) EXPECT_EQ(s.state, StepState::cancelled) << s.name;
  // The pull answering late changes nothing.
  if (r.images.pending) r.images.pending({});
}

TEST(PipelineRun, AnImageThatCouldNotBePulledFailsOnlyItsSteps) {
  Fixture f;
  ImageRun r(f);
  f.io.run_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(r.images.pending);
  RunImages answer;
  answer.emplace("example.test/app:1", Error{"image \"example.test/app:1\" not found in registry example.test",
                                             0, ErrorCode::not_found});
  r.images.pending(std::move(answer));
  r.run_until_released();
  ASSERT_TRUE(r.released);
  EXPECT_EQ(r.finished, false);
  const auto& s = r.run->summaries();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].state, StepState::error);
  EXPECT_NE(s[0].reason.find("not found in registry example.test"), std::string::npos) << s[0].reason;
  EXPECT_EQ(s[1].state, StepState::success);
}

}  // namespace
}  // namespace boxcar::agent
