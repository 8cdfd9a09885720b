#include "agent/daemon/job_runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "agent/daemon/checkout.h"
#include "agent/daemon/job_outbox.h"
#include "agent/daemon/remote_errors.h"
#include "agent/daemon/remote_observer.h"
#include "agent/scheduler.h"
#include "agent/daemon/triggers.h"
#include "base/beneath.h"
#include "pipeline/load.h"
#include "pipeline/plan.h"

namespace boxcar::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// Where the job's artifacts are collected before upload: beside, never inside, the workspace.
fs::path artifact_dir_of(const JobRunnerOptions& o, const protocol::JobSpec& j) {
  return o.data_dir / "artifacts" / (std::to_string(j.id) + "-" + std::to_string(j.attempt));
}

// Why a finished run did not succeed, in one line.
std::string failure_reason(const std::vector<StepSummary>& steps) {
  for (const auto& s : steps) {
    if (s.allow_failure || !pipeline::is_failure(s.state)) continue;
    return "step \"" + s.name + "\" " + pipeline::to_string(s.state) +
           (s.reason.empty() ? "" : ": " + s.reason);
  }
  return "";
}

}  // namespace

struct JobRunner::Impl : std::enable_shared_from_this<Impl> {
  enum class Phase { idle, checkout, running, completing, over };

  asio::io_context& io;
  HttpClient& client;
  JobRunnerOptions options;
  protocol::JobSpec spec;
  JobOutbox outbox;
  RemoteObserver observer;
  std::function<void(JobEnd)> done;
  std::function<void()> released;
  fs::path workspace;
  Phase phase = Phase::idle;
  bool cancel_requested = false;
  bool abandoned = false;
  JobEnd end = JobEnd::completed;
  std::string final_state;
  bool workspace_handled = false;

  std::unique_ptr<WorkspaceWatch::Handle> watched;  // the workspace under its limits
  std::string over_reason;  // the workspace went past a limit: why

  std::atomic<bool> checkout_cancelled{false};
  std::thread checkout_thread;
  CheckoutResult checked;
  std::optional<pipeline::ExpandedPipeline> expanded;
  std::unique_ptr<pipeline::Plan> plan;
  std::unique_ptr<executors::Job> exec_job;
  std::unique_ptr<Scheduler> scheduler;

  // Previews: the open ones by (step, expose name), as the server is told.
  std::map<std::pair<size_t, std::string>, protocol::PreviewWire> open_previews;
  bool holding = false;        // completed, previews still open
  bool was_released = false;
  asio::steady_timer report_timer{io};
  bool report_in_flight = false;
  bool report_again = false;   // the set changed while a report was on its way
  bool server_sees_open = false;  // the last report sent listed some open preview

  Impl(asio::io_context& io_, HttpClient& client_, JobRunnerOptions opts, protocol::JobSpec job)
      : io(io_),
        client(client_),
        options(std::move(opts)),
        spec(std::move(job)),
        outbox(io_, client_, spec.id, spec.lease_token,
               {[this](const RemoteOutcome& o) { on_fatal(o); },
                [this](const std::string& line) { if (options.log) options.log(line); }}),
        observer(io_, outbox,
                 {options.log_flush_interval, 256 * 1024,
                  artifact_dir_of(options, spec),
                  [this](size_t step, std::string_view name, std::string_view url,
                         std::string_view path_url, Timestamp until) {
                    preview_opened(step, name, url, path_url, until);
                  },
                  [this](size_t step, std::string_view name) { preview_closed(step, name); }}) {}

  ~Impl() {
    checkout_cancelled = true;
    if (checkout_thread.joinable()) checkout_thread.join();
    report_timer.cancel();
    scheduler.reset();
    if (exec_job) exec_job->destroy();
  }

  void log(const std::string& line) {
    if (options.log) options.log("job " + std::to_string(spec.id) + ": " + line);
  }

  void start() {
    workspace = options.data_dir / "workspaces" /
                (std::to_string(spec.id) + "-" + std::to_string(spec.attempt));
    remove_tree_of_job(workspace);  // a leftover of a dead agent
    remove_tree_of_job(artifact_dir_of(options, spec));
    if (options.workspace_watch) {
      std::weak_ptr<Impl> weak = weak_from_this();
      watched = options.workspace_watch->watch(workspace, [weak](const std::string& why) {
        if (auto self = weak.lock()) self->workspace_over(why);
      });
    }
    observer.job_line("agent " + options.agent + ": job " + std::to_string(spec.id) + ", attempt " +
                      std::to_string(spec.attempt));
    observer.job_line("checking out " + redact_url(spec.repo) +
                      (spec.ref.empty() ? "" : " " + spec.ref) +
                      (spec.commit.empty() ? "" : " at " + spec.commit));
    CheckoutRequest req;
    req.url = spec.repo;
    req.ref = spec.ref;
    req.commit = spec.commit;
    req.data_dir = options.data_dir;
    req.workspace = workspace;
    req.token = options.git_token;
    req.token_hosts = options.git_token_hosts;
    req.ssh_key = options.ssh_key;
    req.allow_local = options.allow_local_repos;
    req.cancelled = &checkout_cancelled;
    phase = Phase::checkout;
    std::weak_ptr<Impl> weak = weak_from_this();
    asio::io_context* ctx = &io;
    // libgit2 blocks: the checkout gets a thread of its own; the result comes back by post.
    checkout_thread = std::thread([weak, ctx, req] {
      auto result = checkout(req);
      asio::post(*ctx, [weak, result = std::move(result)]() mutable {
        auto self = weak.lock();
        if (!self) return;
        // Also when the checkout got to its end: the watch reports a workspace once.
        if (!self->over_reason.empty()) result = Error{"checkout: " + self->over_reason};
        self->checked_out(std::move(result));
      });
    });
  }

  void checked_out(Result<CheckoutResult> r) {
    if (checkout_thread.joinable()) checkout_thread.join();
    if (abandoned) return finish();
    if (!r.ok()) {
      if (cancel_requested) return complete("cancelled", "cancelled during checkout");
      observer.job_line(r.error().message);
      return complete("error", r.error().message);
    }
    checked = std::move(*r);
    observer.job_line("checked out " + checked.commit + (checked.ref.empty() ? "" : " (" + checked.ref + ")") +
                      (checked.fetched ? ", fetched " + std::to_string(checked.received_objects) + " objects" : ", from the mirror"));
    if (cancel_requested) return complete("cancelled", "cancelled before the pipeline started");

    // The repository's file is parsed in a child process, which this thread waits for.
    std::weak_ptr<Impl> weak = weak_from_this();
    asio::io_context* ctx = &io;
    checkout_thread = std::thread([weak, ctx, ws = workspace, file = spec.file, commit = checked.commit,
                                   limits = options.pipeline_limits, parser = options.parser_limits,
                                   cancelled = &checkout_cancelled] {
      auto result = load_repo_pipeline(ws, file, commit, limits, parser, cancelled);
      asio::post(*ctx, [weak, result = std::move(result)]() mutable {
        if (auto self = weak.lock()) self->parsed(std::move(result));
      });
    });
  }

  void parsed(Result<RepoPipeline> file) {
    if (checkout_thread.joinable()) checkout_thread.join();
    if (abandoned) return finish();
    if (cancel_requested) return complete("cancelled", "cancelled before the pipeline started");
    if (!file.ok()) {
      observer.job_line(file.error().message);
      return complete("error", file.error().message);
    }
    pipeline::LoadResult& loaded = file->loaded;
    if (!loaded.errors.empty()) {
      std::istringstream lines(pipeline::render_diagnostics(loaded.errors, file->text));
      for (std::string line; std::getline(lines, line);) observer.job_line(line);
      std::string reason = std::to_string(loaded.errors.size()) + " error" +
                           (loaded.errors.size() == 1 ? "" : "s") + " in " + file->name + ": " +
                           loaded.errors.front().to_string();
      return complete("error", reason);
    }
    JobBranch branch = job_branch(spec.event, spec.ref, checked.ref, checked.commit, spec.env,
                                  checked.off_ref);
    if (std::string why = trigger_rejection(loaded.pipeline->on, spec.event, branch.ref); !why.empty()) {
      observer.job_line(why);
      return complete("skipped", why);
    }
    if (spec.event == "pull_request") {
      observer.job_line("pull request into " + (branch.branch.empty() ? "?" : branch.branch) +
                        ": the job's branch is the base, not the head");
    }
    if (!branch.no_branch.empty()) {
      observer.job_line("no branch: " + branch.no_branch + " (steps with when.branch are skipped)");
    }
    run(*loaded.pipeline, branch);
  }

  void fail(const std::string& reason) {
    observer.job_line("agent " + options.agent + ": job " + std::to_string(spec.id) + ": " + reason);
    complete("error", reason);
  }

  // BOXCAR_REF, BOXCAR_TAG, BOXCAR_REPO and a pull request's BOXCAR_PR_*: from the job itself,
  // never from the job's env, which an API caller writes.
  std::map<std::string, std::string> run_env() const {
    std::map<std::string, std::string> env;
    std::string ref = spec.ref.empty() ? checked.ref : spec.ref;
    env["BOXCAR_REF"] = ref;
    env["BOXCAR_TAG"] = ref.rfind("refs/tags/", 0) == 0 ? ref.substr(10) : (spec.event == "tag" ? ref : "");
    env["BOXCAR_REPO"] = redact_url(spec.repo);
    for (const char* k : {"BOXCAR_PR_NUMBER", "BOXCAR_PR_BASE", "BOXCAR_PR_HEAD"}) {
      auto it = spec.env.find(k);
      env[k] = spec.event == "pull_request" && it != spec.env.end() ? it->second : "";
    }
    return env;
  }

  void run(const pipeline::Pipeline& p, const JobBranch& branch) {
    expanded = pipeline::expand(p);
    // A step asking for more than this agent allows fails the job before any step runs.
    if (auto errors = step_limit_errors(*expanded, options.limits); !errors.empty()) {
      for (const auto& e : errors) observer.job_line(e.message);
      return complete("error", errors.front().message);
    }
    SchedulerOptions opts;
    opts.limits = options.limits;
    opts.jobs = options.step_jobs;
    opts.workspace = workspace;
    opts.artifact_dir = artifact_dir_of(options, spec);
    opts.job_id = std::to_string(spec.id);
    opts.commit = checked.commit;
    opts.branch = branch.branch;
    opts.event = spec.event.empty() ? "manual" : spec.event;
    opts.run_env = run_env();
    opts.previews = options.previews;
    // The job's env: a name some step declares as a secret is a secret (masked everywhere,
    // given to the steps that declare it); the rest is env for every step, under the file's.
    std::set<std::string> declared;
    for (const auto& cs : expanded->steps) declared.insert(cs.step.secrets.begin(), cs.step.secrets.end());
    for (const auto& [k, v] : spec.env) {
      if (k.rfind("BOXCAR_PR_", 0) == 0) continue;  // in run_env, for pull requests only
      if (declared.count(k)) {
        opts.secrets[k] = v;
      } else {
        for (auto& cs : expanded->steps) cs.step.env.emplace(k, v);
      }
    }
    for (const auto& name : declared) {
      if (!opts.secrets.count(name)) observer.job_line("secret " + name + " is not set for this job");
    }
    pipeline::RunContext ctx{opts.branch, opts.event, branch.no_branch};
    plan = std::make_unique<pipeline::Plan>(*expanded, ctx);

    auto job = options.executor->prepare({"job-" + std::to_string(spec.id) + "-" + std::to_string(spec.attempt), workspace});
    if (!job.ok()) {
      std::string why = "cannot prepare the job: " + job.error().message;
      observer.job_line(why);
      return complete("error", why);
    }
    exec_job = std::move(job.value());
    if (!options.executor->isolated()) {
      observer.job_line("executor \"" + std::string(options.executor->name()) +
                        "\": steps run as plain processes on the agent's machine, with no isolation "
                        "and no memory, pids, cpu or /tmp limits");
    }
    scheduler = std::make_unique<Scheduler>(io, *exec_job, *expanded, *plan, opts, observer);
    phase = Phase::running;
    std::weak_ptr<Impl> weak = weak_from_this();
    scheduler->start([this, weak](bool ok) {
      // May run inside cancel(): leave the scheduler's stack first.
      asio::post(io, [weak, ok] {
        if (auto self = weak.lock()) self->ran(ok);
      });
    });
  }

  void ran(bool ok) {
    auto summaries = scheduler->summaries();
    if (!abandoned && !cancel_requested && scheduler->open_previews() > 0) {
      // Reported again with their closing times (through the outbox, so before complete).
      holding = true;
      std::weak_ptr<Impl> weak = weak_from_this();
      scheduler->hold_previews([weak] {
        if (auto self = weak.lock()) self->all_previews_closed();
      });
    } else {
      teardown();
    }
    if (abandoned) return finish();
    if (cancel_requested) return complete("cancelled", "cancelled");
    if (ok) return complete("success", "");
    complete("failed", failure_reason(summaries));
  }

  // The workspace went past a limit (from the watch, on the io_context).
  void workspace_over(const std::string& why) {
    if (!over_reason.empty() || abandoned) return;
    over_reason = why;
    log(why);
    if (phase == Phase::checkout) {
      checkout_cancelled = true;  // checked_out() completes the job with the reason
    } else if (scheduler && (phase == Phase::running || holding)) {
      observer.job_line(why + ": stopping the job's steps");
      scheduler->abort(why);
    }
  }

  // Off the io_context when the agent has a BackgroundRemoval: a tree of a million files
  // takes seconds to delete.
  void remove_tree_of_job(const fs::path& tree) {
    if (options.removal) return options.removal->remove(tree);
    std::error_code ec;
    fs::remove_all(tree, ec);
  }

  void teardown() {
    scheduler.reset();
    if (exec_job) exec_job->destroy();
    exec_job.reset();
  }

  // --- previews ------------------------------------------------------------------------

  void preview_opened(size_t step, std::string_view name, std::string_view url,
                      std::string_view path_url, Timestamp until) {
    protocol::PreviewWire w;
    const pipeline::ConcreteStep& cs = expanded->steps[step];
    w.step = cs.name;
    w.name = std::string(name);
    for (const auto& e : cs.step.expose) {
      if (e.name == name) w.port = e.port;
    }
    w.url = std::string(url);
    w.path_url = std::string(path_url);
    if (until != Timestamp{}) {
      w.expires_at = std::chrono::duration_cast<Millis>(until.time_since_epoch()).count();
    }
    open_previews[{step, std::string(name)}] = std::move(w);
    report_previews();
  }

  void preview_closed(size_t step, std::string_view name) {
    open_previews.erase({step, std::string(name)});
    report_previews();
  }

  protocol::PreviewSync preview_sync() const {
    protocol::PreviewSync sync{{}};
    for (const auto& [key, w] : open_previews) sync.previews.push_back(w);
    return sync;
  }

  // While the job runs, in order with its other reports; after it completed, straight to the
  // server (the outbox is done), where the answer also says whether the user cancelled.
  void report_previews() {
    if (phase == Phase::running) {
      server_sees_open = !open_previews.empty();
      outbox.post("previews", protocol::to_json(preview_sync()));
      return;
    }
    if (phase != Phase::over || abandoned) return;  // finish() starts the reports
    if (report_in_flight) {
      report_again = true;
      return;
    }
    report_in_flight = true;
    report_again = false;
    server_sees_open = !open_previews.empty();
    report_timer.cancel();
    std::weak_ptr<Impl> weak = weak_from_this();
    client.post_json("/api/v1/agent/jobs/" + std::to_string(spec.id) + "/previews",
                     protocol::to_json(preview_sync()), Millis(10'000),
                     [weak](const boost::system::error_code& ec, HttpReply res) {
                       if (auto self = weak.lock()) self->previews_reported(ec, res);
                     },
                     {{protocol::kLeaseHeader, spec.lease_token}});
  }

  void previews_reported(const boost::system::error_code& ec, const HttpReply& res) {
    report_in_flight = false;
    if (!holding) return;
    RemoteOutcome o = classify(ec, res.status, res.body);
    if (o.verdict == RemoteVerdict::ok) {
      auto answer = protocol::from_json_text<protocol::PreviewSyncResponse>(res.body);
      if (answer.ok() && answer->close) {
        log("closing its previews: cancelled on the server");
        scheduler->cancel();
      }
    } else if (o.verdict == RemoteVerdict::lease_lost || o.verdict == RemoteVerdict::auth_refused) {
      // The server no longer lists them: nobody could find or cancel them.
      log("closing its previews: the server refused the report (" + o.message + ")");
      scheduler->cancel();
      scheduler->cancel();
    }
    if (!holding) return;
    if (report_again) return report_previews();
    std::weak_ptr<Impl> weak = weak_from_this();
    report_timer.expires_after(options.preview_report_interval);
    report_timer.async_wait([weak](const boost::system::error_code& tec) {
      if (tec) return;
      if (auto self = weak.lock()) self->report_previews();
    });
  }

  void all_previews_closed() {
    if (!holding) return;
    holding = false;
    report_timer.cancel();
    teardown();
    remove_workspace();
    if (phase == Phase::over) {
      report_all_closed();
      release();
    }
  }

  // Best effort, once the job completed: without it the server calls them closed only when
  // the reports have stopped for a while.
  void report_all_closed() {
    if (abandoned || !server_sees_open) return;
    server_sees_open = false;
    client.post_json("/api/v1/agent/jobs/" + std::to_string(spec.id) + "/previews",
                     protocol::to_json(protocol::PreviewSync{{}}), Millis(10'000),
                     [](const boost::system::error_code&, HttpReply) {},
                     {{protocol::kLeaseHeader, spec.lease_token}});
  }

  void release() {
    if (was_released) return;
    was_released = true;
    auto cb = std::move(released);
    asio::post(io, [cb] {
      if (cb) cb();
    });
  }

  void complete(const std::string& state, const std::string& reason) {
    phase = Phase::completing;
    final_state = state;
    remove_workspace();  // before the server hears the job is over
    observer.flush_logs();
    protocol::CompleteRequest c{state, reason};
    outbox.post("complete", protocol::to_json(c));
    observer.seal();
    log(state + (reason.empty() ? "" : ": " + reason));
    std::weak_ptr<Impl> weak = weak_from_this();
    outbox.when_drained([weak] {
      if (auto self = weak.lock()) self->finish();
    });
  }

  void remove_workspace() {
    if (workspace.empty() || workspace_handled || holding) return;
    workspace_handled = true;
    watched.reset();
    if (options.keep_failed_workspaces && !final_state.empty() && final_state != "success") {
      log("workspace kept: " + workspace.string());
      return;
    }
    remove_tree_of_job(workspace);
  }

  void finish() {
    if (phase == Phase::over) return;
    phase = Phase::over;
    remove_workspace();
    remove_tree_of_job(artifact_dir_of(options, spec));  // every upload is done (or dropped) by now
    JobEnd e = abandoned ? end : JobEnd::completed;
    auto cb = std::move(done);
    asio::post(io, [cb, e] {
      if (cb) cb(e);
    });
    if (!holding) {
      report_all_closed();  // they closed while the job was completing
      return release();
    }
    if (abandoned) return close_previews(true);
    log("completed; " + std::to_string(scheduler->open_previews()) + " preview(s) stay open");
    report_previews();
  }

  void close_previews(bool at_once) {
    if (!holding || !scheduler) return;
    scheduler->cancel();
    if (at_once) scheduler->cancel();
  }

  void cancel() {
    if (holding) return close_previews(false);
    if (abandoned || phase == Phase::completing || phase == Phase::over) return;
    cancel_requested = true;
    checkout_cancelled = true;
    if (phase == Phase::running && scheduler) scheduler->cancel();
  }

  void abandon(JobEnd why) {
    if (holding) close_previews(true);
    if (abandoned || phase == Phase::over) return;
    abandoned = true;
    end = why;
    outbox.stop();
    checkout_cancelled = true;
    switch (phase) {
      case Phase::idle:
      case Phase::completing: finish(); break;
      case Phase::checkout: break;  // checked_out() finishes
      case Phase::running:
        if (scheduler) {
          scheduler->cancel();
          scheduler->cancel();  // twice: no grace period
        }
        break;
      case Phase::over: break;
    }
  }

  void on_fatal(const RemoteOutcome& o) {
    log(o.message);
    abandon(o.verdict == RemoteVerdict::auth_refused ? JobEnd::auth_refused : JobEnd::abandoned);
  }
};

JobRunner::JobRunner(asio::io_context& io, HttpClient& client, JobRunnerOptions options,
                     protocol::JobSpec job)
    : impl_(std::make_shared<Impl>(io, client, std::move(options), std::move(job))) {}

JobRunner::~JobRunner() = default;

void JobRunner::start(std::function<void(JobEnd)> done, std::function<void()> released) {
  impl_->done = std::move(done);
  impl_->released = std::move(released);
  impl_->start();
}

void JobRunner::fail(const std::string& reason, std::function<void(JobEnd)> done,
                     std::function<void()> released) {
  impl_->done = std::move(done);
  impl_->released = std::move(released);
  impl_->fail(reason);
}

void JobRunner::cancel() { impl_->cancel(); }
void JobRunner::abandon() { impl_->abandon(JobEnd::abandoned); }
bool JobRunner::holding_previews() const { return impl_->holding; }
int64_t JobRunner::id() const { return impl_->spec.id; }
const protocol::JobSpec& JobRunner::spec() const { return impl_->spec; }

}  // namespace boxcar::agent
