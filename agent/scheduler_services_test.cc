// Services, exposed ports and previews of a step, through the Scheduler's public interface
// against the FakeExecutor: ports open when the test says so, so every test waits for events
// (a command started, a ready check tried) and none races a clock. The end-to-end versions,
// with real servers in real sandboxes, are in tests/cli (preview_test, run_test).
#include "agent/scheduler.h"

#include <gtest/gtest.h>

#include <csignal>

#include <boost/asio/io_context.hpp>

#include "pipeline/load.h"
#include "testing/fake_executor.h"
#include "testing/recording_observer.h"

namespace boxcar::agent {
namespace {

using executors::Outcome;
using pipeline::StepState;
using boxcar::testing::FakeCommand;
using boxcar::testing::FakeExecutor;
using boxcar::testing::RecordingObserver;

// What the scheduler asks of whatever serves previews.
class RecordingPublisher : public PreviewPublisher {
 public:
  PreviewUrls publish(executors::Sandbox& sandbox, std::string_view job, uint16_t port) override {
    published.push_back(&sandbox);
    std::string url = "http://" + std::to_string(port) + "-" + std::string(job) + "-tok.example/";
    return {url, "http://127.0.0.1:1/preview/tok/", "tok"};
  }
  void expire_at(executors::Sandbox&, std::chrono::steady_clock::time_point until) override {
    expiries.push_back(until);
  }
  void withdraw(executors::Sandbox& sandbox) override { withdrawn.push_back(&sandbox); }

  bool is_withdrawn(executors::Sandbox* s) const {
    return std::find(withdrawn.begin(), withdrawn.end(), s) != withdrawn.end();
  }
  std::vector<executors::Sandbox*> published, withdrawn;
  std::vector<std::chrono::steady_clock::time_point> expiries;
};

pipeline::ExpandedPipeline expanded(const std::string& text) {
  auto loaded = pipeline::parse_pipeline(text, ".boxcar.toml");
  EXPECT_TRUE(loaded.errors.empty()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
  return loaded.pipeline ? pipeline::expand(*loaded.pipeline) : pipeline::ExpandedPipeline{};
}

// One run of `toml` on the fake executor: script the commands, then start(). Members in the order they must die: the scheduler
// first (it destroys its sandboxes and withdraws their previews), the io_context last.
struct FakeRun {
  explicit FakeRun(const std::string& toml) : fake(io), pipeline(expanded(toml)), plan(pipeline, {}) {
    job = std::move(fake.prepare({"job-1", "/nonexistent"})).value();
    SchedulerOptions o;
    o.jobs = 4;
    o.job_id = "job-1";
    o.previews = &publisher;
    scheduler = std::make_unique<Scheduler>(io, *job, pipeline, plan, o, observer);
  }
  // After the test scripted its commands: the first steps start at once.
  void start() {
    scheduler->start([this](bool ok) { result = ok; });
  }
  bool finished() {
    return fake.run_until([&] { return result.has_value(); });
  }
  const StepSummary& step(std::string_view name) const {
    for (const auto& s : scheduler->summaries()) {
      if (s.name == name) return s;
    }
    throw std::runtime_error("no step " + std::string(name));
  }

  boost::asio::io_context io;
  FakeExecutor fake;
  pipeline::ExpandedPipeline pipeline;
  pipeline::Plan plan;
  RecordingPublisher publisher;
  RecordingObserver observer;
  std::unique_ptr<executors::Job> job;
  std::unique_ptr<Scheduler> scheduler;
  std::optional<bool> result;
};

// A step with a service `db` ("serve-db") ready on tcp 5432 within `timeout`, whose script is
// "use-db", beside an independent step "other" that must succeed whatever the service does.
std::string service_pipeline(const std::string& timeout = "30s") {
  return "version = 1\n"
         "[[step]]\nname = \"app\"\nrun = \"use-db\"\n"
         "[[step.service]]\nname = \"db\"\nrun = \"serve-db\"\n"
         "ready = { tcp = 5432, timeout = \"" + timeout + "\" }\n"
         "[[step]]\nname = \"other\"\nrun = \"other-step\"\n";
}

TEST(SchedulerServices, TheScriptWaitsForTheServiceToBeReady) {
  FakeRun run(service_pipeline());
  run.fake.script("serve-db", FakeCommand::forever());
  run.start();
  // Attack: the ready check has tried and failed twice; the script must not have started.
  ASSERT_TRUE(run.fake.run_until([&] { return run.fake.connects("app") >= 2; }));
  EXPECT_EQ(run.fake.started("use-db"), 0u);
  EXPECT_FALSE(run.result.has_value());
  // Control: once the port listens, the script runs and the step succeeds.
  run.fake.listen("serve-db", 5432);
  ASSERT_TRUE(run.finished());
  EXPECT_TRUE(*run.result);
  EXPECT_EQ(run.fake.started("use-db"), 1u);
  EXPECT_EQ(run.step("app").state, StepState::success);
  // The service went with the step's sandbox.
  EXPECT_FALSE(run.fake.listening("app", 5432));
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);
}

TEST(SchedulerServices, AServiceNeverReadyFailsTheStepAtItsDeadline) {
  FakeRun run(service_pipeline("300ms"));
  run.fake.script("serve-db", FakeCommand::forever());
  run.start();
  ASSERT_TRUE(run.finished());
  EXPECT_FALSE(*run.result);
  const StepSummary& app = run.step("app");
  EXPECT_EQ(app.state, StepState::failed);
  EXPECT_EQ(app.reason, "service \"db\" not ready after 300ms");
  EXPECT_EQ(run.fake.started("use-db"), 0u);
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);  // the hung service did not outlive its step
  // Control: the step beside it, on the same scheduler, succeeded.
  EXPECT_EQ(run.step("other").state, StepState::success);
}

TEST(SchedulerServices, AServiceThatExitsFirstFailsTheStepSayingSo) {
  FakeRun run(service_pipeline());
  run.fake.script("serve-db", FakeCommand::exits(Outcome::exited(3)));
  run.start();
  ASSERT_TRUE(run.finished());
  const StepSummary& app = run.step("app");
  EXPECT_EQ(app.state, StepState::failed);
  EXPECT_EQ(app.reason, "service \"db\" exited (exit code 3) before the step's script ran");
  EXPECT_EQ(run.fake.started("use-db"), 0u);
  EXPECT_EQ(run.step("other").state, StepState::success);
}

TEST(SchedulerServices, AnHttpReadyCheckNeedsA2xxAnswer) {
  const std::string toml =
      "version = 1\n[[step]]\nname = \"app\"\nrun = \"use-api\"\n"
      "[[step.service]]\nname = \"api\"\nrun = \"serve-api\"\n"
      "ready = { http = \"/health\", timeout = \"30s\" }\n";
  FakeRun run(toml);
  run.fake.script("serve-api", FakeCommand::forever());
  run.start();
  ASSERT_TRUE(run.fake.run_until([&] { return run.fake.started("serve-api") == 1; }));
  // Attack: the port (80: a service's http check has no port of its own) accepts but answers
  // 503; the check connects again and again.
  run.fake.listen("serve-api", 80, 503);
  ASSERT_TRUE(run.fake.run_until([&] { return run.fake.connects("app") >= 3; }));
  EXPECT_EQ(run.fake.started("use-api"), 0u);
  // Control: the same port answering 200 is ready.
  run.fake.listen("serve-api", 80, 200);
  ASSERT_TRUE(run.finished());
  EXPECT_EQ(run.step("app").state, StepState::success);
}

// A step "web" exposing 8080 ("serve-web"), and "check" (script "check-web") that needs it.
std::string expose_pipeline(const std::string& extra = "") {
  return "version = 1\n"
         "[[step]]\nname = \"web\"\nrun = \"serve-web\"\n" + extra +
         "[[step.expose]]\nport = 8080\nready = { tcp = 8080, timeout = \"30s\" }\n"
         "[[step]]\nname = \"check\"\nrun = \"check-web\"\nneeds = [\"web\"]\n";
}

std::string env_of(const FakeExecutor::Exec* e, std::string_view name) {
  for (const auto& var : e->env) {
    if (var.starts_with(std::string(name) + "=")) return var.substr(name.size() + 1);
  }
  return "";
}

TEST(SchedulerPreviews, AnExposedPortIsPublishedOnceItAnswersAndDependentsSeeItsUrl) {
  FakeRun run(expose_pipeline());
  run.fake.script("serve-web", FakeCommand::forever());
  run.start();
  // Attack: not listening yet: nothing published, the dependent waits.
  ASSERT_TRUE(run.fake.run_until([&] { return run.fake.connects("web") >= 2; }));
  EXPECT_TRUE(run.publisher.published.empty());
  EXPECT_EQ(run.fake.started("check-web"), 0u);
  // Control: it listens: published, the dependent runs with the URL in its environment.
  run.fake.listen("serve-web", 8080);
  ASSERT_TRUE(run.finished());
  EXPECT_TRUE(*run.result);
  ASSERT_EQ(run.publisher.published.size(), 1u);
  EXPECT_EQ(env_of(run.fake.last("check-web"), "BOXCAR_PREVIEW_WEB"),
            "http://8080-job-1-tok.example/");
  EXPECT_EQ(run.observer.previews, std::vector<std::string>{"web http://8080-job-1-tok.example/"});
  // The server keeps serving after the run: its sandbox is alive and still listening.
  EXPECT_EQ(run.scheduler->open_previews(), 1u);
  EXPECT_TRUE(run.fake.listening("web", 8080));
  EXPECT_TRUE(run.publisher.withdrawn.empty());
}

TEST(SchedulerPreviews, APreviewIsWithdrawnWhenItsServerExits) {
  FakeRun run(expose_pipeline());
  run.fake.script("serve-web", FakeCommand::server(8080));
  run.start();
  ASSERT_TRUE(run.finished());
  ASSERT_EQ(run.publisher.published.size(), 1u);
  run.fake.exit("serve-web", Outcome::killed_by(SIGSEGV));
  ASSERT_TRUE(run.fake.run_until([&] { return run.scheduler->open_previews() == 0; }));
  EXPECT_TRUE(run.publisher.is_withdrawn(run.publisher.published[0]));
  EXPECT_EQ(run.observer.closed, std::vector<std::string>{"web"});
  EXPECT_TRUE(run.observer.noticed("web: preview closed: the server exited (killed by SIGSEGV)"));
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);
}

TEST(SchedulerPreviews, AHeldPreviewClosesWhenItsTtlEnds) {
  FakeRun run(expose_pipeline("preview_ttl = \"300ms\"\n"));
  run.fake.script("serve-web", FakeCommand::server(8080));
  run.start();
  ASSERT_TRUE(run.finished());
  bool closed = false;
  run.scheduler->hold_previews([&] { closed = true; });
  // Held: the publisher got an expiry and the observer the preview again, with its end.
  ASSERT_EQ(run.publisher.expiries.size(), 1u);
  EXPECT_EQ(run.observer.previews.back(), "web http://8080-job-1-tok.example/ (held)");
  ASSERT_TRUE(run.fake.run_until([&] { return closed; }));
  EXPECT_TRUE(run.publisher.is_withdrawn(run.publisher.published[0]));
  EXPECT_EQ(run.fake.last("serve-web")->stopped, Outcome::Kind::cancelled);
  EXPECT_TRUE(run.observer.noticed("web: closing preview: preview_ttl 300ms reached"));
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);
}

TEST(SchedulerPreviews, CancelClosesAHeldPreviewBeforeItsTtl) {
  FakeRun run(expose_pipeline());  // the default preview_ttl: 30 minutes
  run.fake.script("serve-web", FakeCommand::server(8080));
  run.start();
  ASSERT_TRUE(run.finished());
  bool closed = false;
  run.scheduler->hold_previews([&] { closed = true; });
  EXPECT_FALSE(closed);
  EXPECT_EQ(run.scheduler->open_previews(), 1u);
  run.scheduler->cancel(Grace::step);
  ASSERT_TRUE(run.fake.run_until([&] { return closed; }));
  EXPECT_TRUE(run.publisher.is_withdrawn(run.publisher.published[0]));
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);
}

TEST(SchedulerPreviews, AServerThatExitsBeforeItsPortIsReadyFailsTheStep) {
  FakeRun run(expose_pipeline());
  run.fake.script("serve-web", FakeCommand::exits(Outcome::exited(2)));
  run.start();
  ASSERT_TRUE(run.finished());
  EXPECT_FALSE(*run.result);
  EXPECT_EQ(run.step("web").state, StepState::failed);
  EXPECT_EQ(run.step("web").reason, "the server exited (exit code 2) before port 8080 was ready");
  EXPECT_EQ(run.step("check").state, StepState::skipped);
  EXPECT_TRUE(run.publisher.published.empty());
}

TEST(SchedulerPreviews, APortNeverReadyFailsTheStepAtItsDeadlineAndPublishesNothing) {
  const std::string toml =
      "version = 1\n[[step]]\nname = \"web\"\nrun = \"serve-web\"\n"
      "[[step.expose]]\nport = 8080\nready = { tcp = 8080, timeout = \"300ms\" }\n"
      "[[step]]\nname = \"other\"\nrun = \"other-step\"\n";
  FakeRun run(toml);
  run.fake.script("serve-web", FakeCommand::forever());
  run.start();
  ASSERT_TRUE(run.finished());
  EXPECT_EQ(run.step("web").state, StepState::failed);
  EXPECT_EQ(run.step("web").reason, "port 8080 (web) not ready after 300ms");
  EXPECT_TRUE(run.publisher.published.empty());
  EXPECT_EQ(run.fake.live_sandboxes(), 0u);
  EXPECT_EQ(run.step("other").state, StepState::success);
}

// Outcomes other than an exit code, as the executor reports them.
TEST(SchedulerOutcomes, OomAndACrashAreReportedAsSuch) {
  FakeRun run("version = 1\n[[step]]\nname = \"big\"\nrun = \"eat-memory\"\n"
          "[[step]]\nname = \"crash\"\nrun = \"segfault\"\n"
          "[[step]]\nname = \"fine\"\nrun = \"echo-hi\"\n");
  run.fake.script("eat-memory", FakeCommand::exits(Outcome::of(Outcome::Kind::oom)));
  run.fake.script("segfault", FakeCommand::exits(Outcome::killed_by(SIGSEGV)));
  FakeCommand hi;
  hi.output = {"hi"};
  run.fake.script("echo-hi", hi);
  run.start();
  ASSERT_TRUE(run.finished());
  EXPECT_EQ(run.step("big").state, StepState::oom);
  EXPECT_EQ(run.step("crash").state, StepState::failed);
  EXPECT_EQ(run.step("crash").reason, "killed by SIGSEGV");
  EXPECT_EQ(run.step("fine").state, StepState::success);
  EXPECT_EQ(run.observer.lines, std::vector<std::string>{"hi"});
}

}  // namespace
}  // namespace boxcar::agent
