// Scheduler::Impl: the scheduler's state, shared by scheduler.cc (the step lifecycle) and
// step_services.cc (services, exposed ports and previews of a step). Private to agent/.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/scheduler.h"
#include "agent/step_output.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

namespace asio = boost::asio;
using executors::Outcome;
using pipeline::StepState;

struct Scheduler::Impl {
  struct Running {
    size_t index = 0;
    int attempt = 1;
    std::unique_ptr<executors::Sandbox> sandbox;
    std::unique_ptr<StepOutput> output;
    std::unique_ptr<asio::steady_timer> timer;
    std::chrono::steady_clock::time_point started;
    // Services of the step: the next one whose ready check is pending. Each service's check has
    // its own deadline, counted from services_started (they all start together).
    size_t service = 0;
    std::chrono::steady_clock::time_point services_started;
    std::chrono::steady_clock::time_point ready_deadline;  // [[step.expose]]: the pending port's
    std::unique_ptr<asio::steady_timer> ready_timer;
    bool run_started = false;
    size_t expose = 0;  // [[step.expose]]: the next port whose ready check is pending
  };

  // A service step whose ports all answered: counted as a success, its sandbox kept serving.
  struct Preview {
    int attempt = 1;
    std::unique_ptr<executors::Sandbox> sandbox;
    std::unique_ptr<StepOutput> output;
    std::unique_ptr<asio::steady_timer> ttl;
    std::vector<std::pair<std::string, PreviewUrls>> urls;  // by expose name
    bool closing = false;
  };

  // True while attempt `attempt` of step i is the one running (callbacks of an earlier
  // attempt, or of a step that already ended, find it false).
  bool current(size_t i, int attempt) const {
    auto it = running.find(i);
    return it != running.end() && it->second.attempt == attempt;
  }

  asio::io_context& io;
  executors::Job& job;
  const pipeline::ExpandedPipeline& pipeline;
  pipeline::Plan& plan;
  SchedulerOptions options;
  RunObserver& observer;
  std::function<void(bool)> done;
  std::map<size_t, Running> running;
  std::map<size_t, Preview> previews;
  std::map<size_t, std::vector<std::string>> preview_env;  // by step: "BOXCAR_PREVIEW_X=url"
  std::function<void()> previews_closed;
  std::vector<StepSummary> summaries;
  std::vector<std::string> secret_values;
  std::chrono::steady_clock::time_point run_started;
  // The log and artifact directories, opened before any step runs: in `boxcar run` they are
  // inside the workspace, where a step could swap them (or a part of their path) for symlinks.
  unique_fd log_dir;
  unique_fd artifact_dir;
  std::string artifact_dir_error;  // why artifact_dir could not be opened
  asio::thread_pool copy_pool{1};  // artifact copies: file I/O off the io_context
  size_t copies_in_flight = 0;
  uint64_t artifact_bytes = 0;
  int cancel_requests = 0;
  std::string abort_reason;  // set by abort(): the steps it stops end failed, saying this
  bool finished = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(asio::io_context& io_, executors::Job& job_, const pipeline::ExpandedPipeline& p,
       pipeline::Plan& plan_, SchedulerOptions opts, RunObserver& obs)
      : io(io_), job(job_), pipeline(p), plan(plan_), options(std::move(opts)), observer(obs) {
    summaries.resize(pipeline.steps.size());
    for (size_t i = 0; i < pipeline.steps.size(); ++i) {
      summaries[i].name = pipeline.steps[i].name;
      summaries[i].allow_failure = pipeline.steps[i].step.allow_failure;
    }
    for (const auto& [name, value] : options.secrets) secret_values.push_back(value);
    open_directories();
  }

  void open_directories();

  ~Impl() {
    *alive = false;
    for (auto& [i, r] : running) {
      if (r.sandbox) r.sandbox->destroy();
    }
    for (auto& [i, p] : previews) {
      if (options.previews) options.previews->withdraw(*p.sandbox);
      p.sandbox->destroy();
    }
    copy_pool.join();
  }

  void pump();
  // Reports steps the Plan settled without running them (skipped, cancelled).
  void sync_settled();
  void launch(size_t i, int attempt);
  executors::ExecRequest request_for(const pipeline::ConcreteStep& cs, const std::string& script);
  // Dependents, direct or not, of a step with previews see their URLs.
  void add_preview_env(const pipeline::ConcreteStep& cs, std::vector<std::string>& env);
  // Output of the step's script and of its services goes to the step's log.
  std::function<void(executors::OutputStream, std::string_view)> output_of(size_t i);
  void run_script(size_t i, int attempt);
  // [[step.expose]]: each port in turn must answer its ready check within its timeout.
  void poll_expose(size_t i, int attempt);
  // Every exposed port answered: the step succeeds for its dependents, its URLs are published
  // and its sandbox keeps serving until the preview closes.
  void open_previews(size_t i, int attempt);
  // The preview's server exited, by itself or because the preview was closed.
  void server_exited(size_t i, const Outcome& o);
  // SIGTERM to the preview's sandbox; server_exited finishes the job.
  void close_preview(size_t i, std::string_view why, bool at_once);
  void hold_previews(std::function<void()> closed);
  // [[step.service]]: started in the step's sandbox before its script, which runs once every
  // service with a ready check answers it. A service that exits first fails the step.
  void start_services(size_t i, int attempt);
  void poll_ready(size_t i, int attempt);
  void end_attempt(size_t i, int attempt, const Outcome& outcome);
  // Copies artifacts on the copy pool, then finishes the step back on the io_context.
  void collect(size_t i, StepState state);
  void complete(size_t i, StepState state);
  void cancel();
  void abort(const std::string& reason);
};

}  // namespace boxcar::agent
