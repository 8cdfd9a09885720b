// StepAttempt: one attempt of one step, read top to bottom as it happens: its sandbox starts,
// its [[step.service]]s start and are waited for (ready checks), its script runs under the
// step's timeout, its [[step.expose]] ports are waited for, and then either it ends (an
// Outcome) or it keeps serving as a preview until its server exits or the preview is closed.
// It owns the sandbox, the timers and the step's log pipeline (StepOutput) for that whole
// time; the Scheduler keeps the DAG and the parallelism and only starts and cancels attempts.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/grace.h"
#include "agent/preview_publisher.h"
#include "agent/run_observer.h"
#include "agent/step_limits.h"
#include "agent/step_output.h"
#include "agent/step_setup.h"
#include "agent/workspace_layers.h"
#include "base/result.h"
#include "executors/executor.h"
#include "network/job_network.h"
#include "pipeline/pipeline.h"

namespace boxcar::agent {

// How an attempt ended; its sandbox is gone by then.
struct AttemptEnd {
  executors::Outcome outcome;
  Millis elapsed{0};
  bool log_truncated = false;
  uint64_t egress_refused = 0;
  std::string shell;  // the command line the step's script ran under, "" without a script
};

class StepAttempt {
 public:
  // What every attempt of a run shares; outlives them all.
  struct Context {
    boost::asio::io_context& io;
    executors::Job& job;
    RunObserver& observer;
    PreviewPublisher* previews = nullptr;  // null: plain http://localhost:PORT/ URLs
    std::string job_id;                     // a run id or a job id, for preview URLs
    // The job's network: each sandbox on it gets the step's net_cls class (its egress list),
    // and what the policy refused ends the step's log. Null: no egress policy to apply.
    network::JobNetwork* network = nullptr;
    // Each step's own layer of the workspace; null: the sandbox gets the shared workspace.
    WorkspaceLayers* layers = nullptr;
  };

  // Each is called from the io_context (or from inside start()/cancel(), which say so). The
  // owner may destroy the attempt inside `ended` and `closed`: the attempt does nothing after.
  struct Events {
    std::function<void(const AttemptEnd&)> ended;
    // Every exposed port answered: the step succeeded after `elapsed`; `env` holds the
    // BOXCAR_PREVIEW_<NAME>=url of its previews for its dependents. The attempt keeps serving.
    std::function<void(Millis elapsed, std::vector<std::string> env)> serving;
    // After `serving`: the server exited (by itself, or because the preview was closed).
    std::function<void()> closed;
  };

  StepAttempt(const Context& context, size_t step, const pipeline::ConcreteStep& cs, int number,
              StepOutputOptions output, Events events);
  // Destroys the sandbox at once (withdrawing its previews); no event is called.
  ~StepAttempt();
  StepAttempt(const StepAttempt&) = delete;
  StepAttempt& operator=(const StepAttempt&) = delete;

  // Starts the sandbox from the setup's spec (an error ends the attempt as a setup error), then
  // the services (a sidecar sandbox for each that has an image) or the script, with the setup's
  // environment and user. May call `ended` before returning.
  void start(StepSetup setup);

  // Stops a running attempt as cancelled: SIGTERM and the step's grace period (`ended` comes
  // when it exited), or at once (`ended` is called before this returns). A serving attempt's
  // preview is closed instead.
  void cancel(Grace grace);

  // Serving: the preview stays up for `ttl` from now (reported again with its closing time).
  void hold(const PreviewTtl& ttl);
  // Serving: withdraws the preview and stops its server (`closed` follows; before this returns
  // with Grace::none).
  void close_preview(std::string_view why, Grace grace);

  int number() const { return number_; }

  // The directories restored for this attempt's [[step.cache]]s, highest first, stacked under
  // its workspace layer (WorkspaceLayers::workspace). Filled by the cache restore before
  // start(); empty until then.
  std::vector<std::filesystem::path> caches;
  // More layered directories of this attempt's (a cache's home layer, agent/step_caches.h),
  // mounted after its /workspace.
  std::vector<executors::LayeredDir> extra_layers;

 private:
  enum class Phase { services, script, serving, over };

  executors::ExecRequest request(const std::string& script) const;
  // Where service `index` runs: its sidecar's sandbox, or the step's own.
  executors::Sandbox& sandbox_of(size_t index);
  void stop_all(executors::Outcome::Kind reason);
  void destroy_all();
  std::function<void(executors::OutputStream, std::string_view)> output_sink();
  void start_services();
  void poll_services();
  void run_script();
  void script_exited(const executors::Outcome& o);
  void poll_exposed();
  // The next ready check of the same phase, kReadyPollInterval later.
  void poll_later(void (StepAttempt::*next)());
  void open_previews();
  void server_exited(const executors::Outcome& o);
  // The attempt is over: timers off, log closed, sandbox destroyed, then `ended`.
  void end(const executors::Outcome& o);
  // Once the step's sandboxes are gone: the line of what its egress policy refused ("" when
  // nothing), its count in `total`; the step leaves the job network.
  std::string egress_refusals(uint64_t* total);
  Millis elapsed() const;

  Context ctx_;
  size_t step_;
  const pipeline::ConcreteStep& cs_;
  int number_;
  Events events_;
  Phase phase_ = Phase::services;
  std::vector<std::string> env_;
  std::string user_;
  std::vector<std::string> shell_;
  std::map<size_t, Result<Sidecar>> sidecar_setups_;
  std::unique_ptr<executors::Sandbox> sandbox_;
  std::map<size_t, std::unique_ptr<executors::Sandbox>> sidecars_;  // by service index
  // What the step's own /workspace layer is stacked on (needs' layers, caches, the checkout):
  // each sidecar gets a fresh layer of its own over the same.
  std::vector<std::filesystem::path> workspace_lowers_;
  std::unique_ptr<StepOutput> output_;
  uint32_t net_class_ = 0;  // the step's class on the job network; 0: not on it
  boost::asio::steady_timer timeout_;  // the step's timeout
  boost::asio::steady_timer poll_;     // between two ready checks
  boost::asio::steady_timer ttl_;      // serving: the preview's preview_ttl
  std::chrono::steady_clock::time_point started_;
  // Ready checks: the next service or exposed port whose check is pending, and its deadline.
  size_t next_ = 0;
  std::chrono::steady_clock::time_point services_started_;  // each service's deadline counts from it
  std::chrono::steady_clock::time_point deadline_;          // the pending exposed port's
  std::vector<std::pair<std::string, PreviewUrls>> urls_;  // by expose name, while serving
  bool closing_ = false;
  // Callbacks of the executor and of the ready checks run later: they find it expired once the
  // attempt is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// `BOXCAR_PREVIEW_<NAME>` for an expose named `name`: upper case, every other character '_'.
std::string preview_env_name(std::string_view name);

}  // namespace boxcar::agent
