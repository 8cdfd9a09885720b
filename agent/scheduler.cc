#include "agent/scheduler.h"

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/artifacts.h"
#include "agent/log_file_name.h"
#include "agent/step_attempt.h"
#include "agent/step_output.h"
#include "base/unique_fd.h"

namespace boxcar::agent {

namespace asio = boost::asio;
using executors::Outcome;
using pipeline::StepState;

namespace {

StepState state_of(const Outcome& o) {
  switch (o.kind) {
    case Outcome::Kind::ok: return StepState::success;
    case Outcome::Kind::failed:
    case Outcome::Kind::signaled: return StepState::failed;
    case Outcome::Kind::timeout: return StepState::timeout;
    case Outcome::Kind::oom: return StepState::oom;
    case Outcome::Kind::cancelled: return StepState::cancelled;
    case Outcome::Kind::setup_error: return StepState::error;
    case Outcome::Kind::quota_exceeded: return StepState::failed;  // only sandbox API commands
  }
  return StepState::error;
}

}  // namespace

struct Scheduler::Impl {
  asio::io_context& io;
  executors::Job& job;
  const pipeline::ExpandedPipeline& pipeline;
  pipeline::Plan& plan;
  SchedulerOptions options;
  RunObserver& observer;
  StepAttempt::Context attempt_context;
  std::function<void(bool)> done;
  std::map<size_t, std::unique_ptr<StepAttempt>> running;   // by step
  std::map<size_t, std::unique_ptr<StepAttempt>> previews;  // succeeded, still serving
  std::map<size_t, std::vector<std::string>> preview_env;   // by step: "BOXCAR_PREVIEW_X=url"
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
  // Artifact bytes kept by the run so far, against artifact_total_limit. Read and written on the
  // copy pool's one thread only: steps that end together must not each start from the same total.
  uint64_t artifact_bytes = 0;
  bool cancelling = false;
  bool killing = false;  // cancelled with Grace::none: when.status = always steps stop too
  std::string abort_reason;  // set by abort(): the steps it stops end failed, saying this
  bool finished = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(asio::io_context& io_, executors::Job& job_, const pipeline::ExpandedPipeline& p,
       pipeline::Plan& plan_, SchedulerOptions opts, RunObserver& obs)
      : io(io_),
        job(job_),
        pipeline(p),
        plan(plan_),
        options(std::move(opts)),
        observer(obs),
        attempt_context{io_, job_, obs, options.previews, options.job_id, options.network, options.layers} {
    summaries.resize(pipeline.steps.size());
    for (size_t i = 0; i < pipeline.steps.size(); ++i) {
      summaries[i].name = pipeline.steps[i].name;
      summaries[i].allow_failure = pipeline.steps[i].step.allow_failure;
    }
    for (const auto& [name, value] : options.secrets) secret_values.push_back(value);
    open_directories();
  }

  ~Impl() {
    *alive = false;
    running.clear();   // each attempt destroys its sandbox
    previews.clear();  // and withdraws its previews
    copy_pool.join();
  }

  void open_directories();
  void pump();
  void sync_settled();
  void launch(size_t i, int attempt);
  void reuse(size_t i);
  void start_attempt(size_t i, StepAttempt* attempt);
  void saved_caches(size_t i, StepState state);
  StepSetup setup_of(size_t i);
  void attempt_ended(size_t i, const AttemptEnd& end);
  void step_serving(size_t i, Millis elapsed, std::vector<std::string> env);
  void preview_closed(size_t i);
  void collect(size_t i, StepState state);
  void complete(size_t i, StepState state);
  void hold_previews(std::function<void()> closed);
  void cancel(Grace grace);
  void abort(const std::string& reason);
};

void Scheduler::Impl::pump() {
  if (finished) return;
  while (running.size() < options.jobs) {
    auto ready = plan.ready();
    if (ready.empty()) break;
    size_t i = ready.front();
    plan.start(i);
    summaries[i].state = StepState::running;
    if (i < options.reused.size() && options.reused[i] && options.reuse) {
      reuse(i);
      continue;
    }
    launch(i, 1);
  }
  sync_settled();
  // launch() may settle a step at once (a sandbox that cannot be set up) and pump() again from
  // inside this loop: that inner call may already have finished the run.
  if (!finished && plan.done() && running.empty() && copies_in_flight == 0) {
    finished = true;
    bool ok = !plan.failed();
    auto elapsed = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - run_started);
    observer.pipeline_finished(ok, summaries, elapsed);
    if (done) done(ok);
  }
}

// Reports steps the Plan settled without running them (skipped, cancelled).
void Scheduler::Impl::sync_settled() {
  for (size_t i = 0; i < summaries.size(); ++i) {
    StepState s = plan.state(i);
    if ((s == StepState::skipped || s == StepState::cancelled) && summaries[i].state != s &&
        summaries[i].state == StepState::pending) {
      summaries[i].state = s;
      summaries[i].reason = plan.reason(i);
      observer.step_finished(i, summaries[i]);
    }
  }
}

// A step reused from the job re-run: its artifacts come back into its layer (where the steps
// that need it look), off the io thread; it holds the run open meanwhile, like a copy.
void Scheduler::Impl::reuse(size_t i) {
  ++copies_in_flight;
  const std::string& name = pipeline.steps[i].name;
  std::filesystem::path into = options.workspace;
  if (options.layers) {
    into = options.layers->upper(i);
    std::error_code ec;
    std::filesystem::create_directories(into, ec);
  }
  std::weak_ptr<bool> weak = alive;
  options.reuse->restore(name, into, [this, weak, i](size_t restored, std::string error) {
    if (weak.expired()) return;
    --copies_in_flight;
    StepSummary& s = summaries[i];
    std::string origin = options.reuse->origin();
    if (error.empty()) {
      s.state = StepState::success;
      s.reason = "reused from " + origin;
      observer.notice(s.name + ": reused from " + origin + ", not run: " + std::to_string(restored) +
                      " artifact" + (restored == 1 ? "" : "s") + " put back for the steps that need it");
    } else {
      s.state = StepState::error;
      s.reason = "cannot reuse its results from " + origin + ": " + error;
    }
    complete(i, s.state);
  });
}

void Scheduler::Impl::launch(size_t i, int number) {
  const pipeline::ConcreteStep& cs = pipeline.steps[i];
  summaries[i].attempts = number;
  observer.step_started(i, cs.name, number);

  StepOutputOptions out;
  out.step = i;
  out.name = cs.name;
  if (log_dir) {
    out.log_file = options.log_dir / log_file_name(cs.name, number);
    out.log_dir = log_dir.get();
  }
  out.secrets = secret_values;
  out.limit = options.log_limit;
  StepAttempt::Events events;
  events.ended = [this, i](const AttemptEnd& end) { attempt_ended(i, end); };
  events.serving = [this, i](Millis elapsed, std::vector<std::string> env) {
    step_serving(i, elapsed, std::move(env));
  };
  events.closed = [this, i] { preview_closed(i); };
  auto& slot = running[i];
  slot = std::make_unique<StepAttempt>(attempt_context, i, cs, number, std::move(out), std::move(events));
  StepAttempt* attempt = slot.get();

  if (options.caches && options.caches->wanted(i) && number == 1) {
    // Its caches first (keys hashed and entries unpacked off the io thread); a cancel meanwhile
    // is seen once the attempt starts.
    std::weak_ptr<bool> weak = alive;
    options.caches->restore(i, [this, weak, i, attempt] {
      if (weak.expired()) return;
      if (auto it = running.find(i); it != running.end() && it->second.get() == attempt) start_attempt(i, attempt);
    });
    return;
  }
  start_attempt(i, attempt);
}

void Scheduler::Impl::start_attempt(size_t i, StepAttempt* attempt) {
  size_t more = 0;
  for (size_t j = 0; j < plan.size(); ++j) more += j != i && plan.state(j) == StepState::pending;
  job.expect(more);
  StepSetup setup = setup_of(i);
  if (options.caches && options.caches->wanted(i)) {
    attempt->caches = options.caches->workspace_lowers(i);
    std::string home;
    for (const std::string& e : setup.env) {
      if (e.starts_with("HOME=")) home = e.substr(5);
    }
    attempt->extra_layers = options.caches->home_layers(i, home);
  }
  attempt->start(std::move(setup));
  // start() may have ended it already (a setup error).
  // After a cancel only an `always` step starts (cleanup), and runs until its own end.
  const pipeline::Step& step = pipeline.steps[i].step;
  bool spared = !killing && step.when && step.when->status == pipeline::WhenStatus::always;
  if (auto it = running.find(i); cancelling && !spared && it != running.end() && it->second.get() == attempt) {
    attempt->cancel(Grace::step);
  }
}

// The step's setup; its environment gets the preview URLs of the steps it needs, directly or not.
StepSetup Scheduler::Impl::setup_of(size_t i) {
  const pipeline::ConcreteStep& cs = pipeline.steps[i];
  StepSetup setup = step_setup(pipeline, cs, options, job.workspace_path(), options.images);
  std::vector<std::string>& env = setup.env;
  std::vector<size_t> todo = cs.needs;
  std::vector<bool> seen(pipeline.steps.size());
  while (!todo.empty()) {
    size_t j = todo.back();
    todo.pop_back();
    if (seen[j]) continue;
    seen[j] = true;
    for (const std::string& var : preview_env[j]) {
      std::string prefix = var.substr(0, var.find('=') + 1);
      std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
      env.push_back(var);
    }
    for (size_t k : pipeline.steps[j].needs) todo.push_back(k);
  }
  return setup;
}

void Scheduler::Impl::attempt_ended(size_t i, const AttemptEnd& end) {
  auto it = running.find(i);
  int number = it->second->number();
  running.erase(it);  // the attempt calls nothing after this event

  const pipeline::Step& step = pipeline.steps[i].step;
  Outcome ended = end.outcome;
  if (!abort_reason.empty() && ended.kind == Outcome::Kind::cancelled) {
    ended = Outcome::of(Outcome::Kind::failed);
    ended.exit_code = -1;
    ended.message = abort_reason;
  }
  StepState state = state_of(ended);
  // A step failed before it ran (exit_code -1: a declared secret without a value) would fail
  // the same way again.
  bool never_ran = state == StepState::failed && ended.exit_code < 0;
  bool retryable = (state == StepState::failed || state == StepState::oom ||
                    (state == StepState::timeout && step.retry_on_timeout)) && !never_ran;
  if (retryable && number <= step.retry && !cancelling) {
    observer.notice(pipeline.steps[i].name + ": attempt " + std::to_string(number) + " " +
                    executors::describe(end.outcome) + ", retrying");
    launch(i, number + 1);
    return;
  }

  StepSummary& s = summaries[i];
  s.state = state;
  s.duration = end.elapsed;
  s.exit_code = ended.kind == Outcome::Kind::ok       ? 0
                : ended.kind == Outcome::Kind::failed ? ended.exit_code
                                                      : -1;
  s.reason = ended.ok() ? "" : executors::describe(ended);
  if (ended.kind == Outcome::Kind::failed && !ended.message.empty()) s.reason = ended.message;
  if (state == StepState::timeout) s.reason = "timed out after " + format_duration(step.timeout);
  if (end.log_truncated) s.reason += s.reason.empty() ? "log truncated" : "; log truncated";
  s.egress_refused += end.egress_refused;
  if (!end.shell.empty()) s.shell = end.shell;

  if (state == StepState::success && options.caches && options.caches->wanted(i)) {
    ++copies_in_flight;  // the run does not end while an entry is being saved
    std::weak_ptr<bool> weak = alive;
    options.caches->save(i, [this, weak, i, state] {
      if (weak.expired()) return;
      --copies_in_flight;
      saved_caches(i, state);
    });
    return;
  }
  saved_caches(i, state);
}

void Scheduler::Impl::saved_caches(size_t i, StepState state) {
  if (!pipeline.steps[i].step.artifacts.empty() && !options.artifact_dir.empty() && state != StepState::cancelled) {
    collect(i, state);
    return;
  }
  complete(i, state);
}

// Every exposed port answered: the step succeeded; its attempt keeps serving as a preview.
void Scheduler::Impl::step_serving(size_t i, Millis elapsed, std::vector<std::string> env) {
  auto it = running.find(i);
  previews[i] = std::move(it->second);
  running.erase(it);
  preview_env[i] = std::move(env);
  StepSummary& s = summaries[i];
  s.state = StepState::success;
  s.duration = elapsed;
  s.exit_code = -1;
  s.reason = "";
  if (!pipeline.steps[i].step.artifacts.empty() && !options.artifact_dir.empty()) {
    return collect(i, StepState::success);
  }
  complete(i, StepState::success);
}

void Scheduler::Impl::preview_closed(size_t i) {
  previews.erase(i);  // the attempt calls nothing after this event
  if (previews.empty() && previews_closed) {
    auto closed = std::move(previews_closed);
    previews_closed = nullptr;
    asio::post(io, closed);
  }
}

void Scheduler::Impl::open_directories() {
  auto open_dir = [](const std::filesystem::path& dir, std::string& why) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    unique_fd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) why = "cannot open " + dir.string() + ": " + std::strerror(errno);
    return fd;
  };
  std::string why;
  if (!options.log_dir.empty()) {
    log_dir = open_dir(options.log_dir, why);
    if (!log_dir) observer.notice("step logs are not kept: " + why);
  }
  bool any_artifacts = false;
  for (const auto& cs : pipeline.steps) any_artifacts = any_artifacts || !cs.step.artifacts.empty();
  if (any_artifacts && !options.artifact_dir.empty()) {
    artifact_dir = open_dir(options.artifact_dir, artifact_dir_error);
  }
}

// Copies artifacts on the copy pool, then finishes the step back on the io_context.
void Scheduler::Impl::collect(size_t i, StepState state) {
  ++copies_in_flight;
  std::weak_ptr<bool> weak = alive;
  const auto& globs = pipeline.steps[i].step.artifacts;
  ArtifactLimits limits{options.artifact_file_limit, options.artifact_total_limit};
  // With layers, the step's own view (its layer over what it saw), held by the copy: the
  // files are the step's, whatever its parallel siblings wrote.
  std::shared_ptr<unique_fd> view;
  std::filesystem::path from = options.workspace;
  if (options.layers) {
    auto v = options.layers->view(i);
    if (!v.ok()) {
      observer.notice(pipeline.steps[i].name + ": artifacts: " + v.error().message);
      --copies_in_flight;
      return complete(i, state);
    }
    view = std::make_shared<unique_fd>(std::move(*v));
    from = "/proc/self/fd/" + std::to_string(view->get());
  }
  asio::post(copy_pool, [this, weak, i, state, globs, limits, view, from]() {
    auto result = artifact_dir
                      ? collect_artifacts(from, globs, artifact_dir.get(), limits, artifact_bytes)
                      : Result<CollectResult>(Error{artifact_dir_error});
    asio::post(io, [this, weak, i, state, result = std::move(result)]() {
      if (weak.expired()) return;
      --copies_in_flight;
      const std::string& name = pipeline.steps[i].name;
      if (!result.ok()) {
        observer.notice(name + ": artifacts: " + result.error().message);
      } else {
        for (const auto& w : result->warnings) observer.notice(name + ": artifacts: " + w);
        // A refused link is the step's own doing: said in its log, where its author looks.
        for (const auto& r : result->refused) {
          observer.step_line(i, name, std::chrono::system_clock::now(), "boxcar: artifacts: " + r, false);
        }
        for (const auto& f : result->files) observer.artifact(i, name, f.path, f.bytes);
      }
      complete(i, state);
    });
  });
}

void Scheduler::Impl::complete(size_t i, StepState state) {
  plan.finish(i, state);
  observer.step_finished(i, summaries[i]);
  pump();
}

void Scheduler::Impl::hold_previews(std::function<void()> closed) {
  if (previews.empty()) {
    asio::post(io, std::move(closed));
    return;
  }
  previews_closed = std::move(closed);
  for (auto& [i, attempt] : previews) attempt->hold(preview_ttl_of(pipeline.steps[i], options.limits));
}

void Scheduler::Impl::cancel(Grace grace) {
  cancelling = true;
  killing = killing || grace == Grace::none;
  // With Grace::none an attempt ends (and leaves its map) inside the call.
  auto each = [&](std::map<size_t, std::unique_ptr<StepAttempt>>& attempts, auto&& f) {
    std::vector<size_t> ids;
    for (auto& [i, a] : attempts) ids.push_back(i);
    for (size_t i : ids) {
      if (auto it = attempts.find(i); it != attempts.end()) f(*it->second);
    }
  };
  each(previews, [&](StepAttempt& a) { a.close_preview("cancelled", grace); });
  plan.cancel(/*spare_always=*/!killing);
  sync_settled();
  each(running, [&](StepAttempt& a) { a.cancel(grace); });
  pump();
}

void Scheduler::Impl::abort(const std::string& reason) {
  if (finished && previews.empty()) return;
  if (abort_reason.empty()) abort_reason = reason;
  // No grace period: whatever broke the limit must not keep going for another 10 s.
  cancel(Grace::none);
}

Scheduler::Scheduler(asio::io_context& io, executors::Job& job,
                     const pipeline::ExpandedPipeline& pipeline, pipeline::Plan& plan,
                     SchedulerOptions options, RunObserver& observer)
    : impl_(std::make_unique<Impl>(io, job, pipeline, plan, std::move(options), observer)) {}

Scheduler::~Scheduler() = default;

void Scheduler::start(std::function<void(bool)> done) {
  impl_->done = std::move(done);
  impl_->run_started = std::chrono::steady_clock::now();
  if (impl_->options.jobs == 0) impl_->options.jobs = 1;
  impl_->pump();
}

void Scheduler::cancel(Grace grace) { impl_->cancel(grace); }

void Scheduler::abort(const std::string& reason) { impl_->abort(reason); }

void Scheduler::hold_previews(std::function<void()> closed) { impl_->hold_previews(std::move(closed)); }

size_t Scheduler::open_previews() const { return impl_->previews.size(); }

const std::vector<StepSummary>& Scheduler::summaries() const { return impl_->summaries; }

}  // namespace boxcar::agent
