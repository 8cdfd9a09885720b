#include "agent/daemon/job_runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <atomic>
#include <cerrno>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "agent/daemon/cache_client.h"
#include "agent/daemon/reuse_client.h"
#include "git/checkout.h"
#include "agent/daemon/job_outbox.h"
#include "agent/daemon/remote_errors.h"
#include "agent/daemon/preview_reporter.h"
#include "agent/daemon/remote_observer.h"
#include "agent/daemon/secret_fetch.h"
#include "agent/daemon/triggers.h"
#include "agent/pipeline_run.h"
#include "base/beneath.h"
#include "base/utf8.h"
#include "pipeline/load.h"
#include "pipeline/plan.h"
#include "protocol/agent_paths.h"

namespace boxcar::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// Where the job's artifacts are collected before upload: beside, never inside, the workspace.
fs::path artifact_dir_of(const AgentConfig& o, const protocol::JobSpec& j) {
  return o.data_dir / "artifacts" / (std::to_string(j.id) + "-" + std::to_string(j.attempt));
}

// The pipeline's name as the server takes it (protocol::kMaxPipelineName), cut between
// characters: a TOML string is UTF-8, and JSON must stay so.
std::string reported_name(const std::string& name) {
  size_t end = 0;
  while (end < name.size()) {
    size_t n = utf8_sequence(name, end);
    if (n == 0 || end + n > protocol::kMaxPipelineName) break;
    end += n;
  }
  return name.substr(0, end);
}

// What each expanded step needs, by the full names of the cells (what StepUpdate::needs carries).
std::vector<std::vector<std::string>> expanded_needs(const pipeline::ExpandedPipeline& p) {
  std::vector<std::vector<std::string>> out(p.steps.size());
  for (size_t i = 0; i < p.steps.size(); ++i) {
    for (size_t need : p.steps[i].needs) {
      if (out[i].size() == protocol::kMaxStepNeeds) break;
      out[i].push_back(p.steps[need].name);
    }
  }
  return out;
}

}  // namespace

struct JobRunner::Impl : std::enable_shared_from_this<Impl> {
  enum class Phase { idle, checkout, running, completing, over };

  asio::io_context& io;
  HttpClient& client;
  const AgentConfig& options;
  JobRunnerWiring wiring;
  protocol::JobSpec spec;
  JobOutbox outbox;
  PreviewReporter reporter;
  RemoteObserver observer;
  std::function<void(JobEnd)> done;
  std::function<void()> released;
  fs::path workspace;
  fs::path layers;  // the steps' own layers of it (workspace_layers.h)
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
  git::CheckoutResult checked;
  std::unique_ptr<CacheClient> cache_client;  // the server's copy of the caches; outlives run
  std::unique_ptr<ReuseClient> reuse_client;  // a re-run of failed steps; outlives run
  std::unique_ptr<PipelineRun> run;
  bool holding = false;  // completed, previews still open
  // The server's answer for the secrets the steps declare (asked once, after parsing).
  std::unique_ptr<SecretFetch> secret_fetch;
  std::optional<std::map<std::string, std::string>> kept_secrets;
  bool was_released = false;

  Impl(asio::io_context& io_, HttpClient& client_, const AgentConfig& config, JobRunnerWiring w,
       protocol::JobSpec job)
      : io(io_),
        client(client_),
        options(config),
        wiring(std::move(w)),
        spec(std::move(job)),
        outbox(io_, client_, spec.id, spec.lease_token,
               {[this](const RemoteOutcome& o) { on_fatal(o); },
                [this](const std::string& line) { if (wiring.log) wiring.log(line); }}),
        reporter(io_, client_, outbox, spec.id, spec.lease_token, options.preview_report_interval,
                 {[this](Grace g) { if (run) run->cancel(g); },
                  [this](const std::string& line) { log(line); }}),
        observer(io_, outbox,
                 {options.log_flush_interval, 256 * 1024,
                  artifact_dir_of(options, spec),
                  [this](size_t step, std::string_view name, std::string_view url,
                         std::string_view path_url, Timestamp until) {
                    preview_opened(step, name, url, path_url, until);
                  },
                  [this](size_t step, std::string_view name) { reporter.closed(step, name); }}) {}

  ~Impl() {
    checkout_cancelled = true;
    if (checkout_thread.joinable()) checkout_thread.join();
    run.reset();
  }

  void log(const std::string& line) {
    if (wiring.log) wiring.log("job " + std::to_string(spec.id) + ": " + line);
  }

  void start() {
    workspace = options.data_dir / "workspaces" /
                (std::to_string(spec.id) + "-" + std::to_string(spec.attempt));
    remove_tree_of_job(workspace);  // a leftover of a dead agent
    // Beside the workspace, never inside it (the checkout is every step's lowest layer).
    layers = workspace;
    layers += ".layers";
    remove_tree_of_job(layers);
    remove_tree_of_job(artifact_dir_of(options, spec));
    if (wiring.workspace_watch) {
      std::weak_ptr<Impl> weak = weak_from_this();
      watched = wiring.workspace_watch->watch({workspace, layers}, [weak](const std::string& why) {
        if (auto self = weak.lock()) self->workspace_over(why);
      });
    }
    observer.job_line("agent " + wiring.agent + ": job " + std::to_string(spec.id) + ", attempt " +
                      std::to_string(spec.attempt));
    observer.job_line("checking out " + redact_url(spec.repo) +
                      (spec.ref.empty() ? "" : " " + spec.ref) +
                      (spec.commit.empty() ? "" : " at " + spec.commit));
    git::CheckoutRequest req;
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
      auto result = git::checkout(req);
      asio::post(*ctx, [weak, result = std::move(result)]() mutable {
        auto self = weak.lock();
        if (!self) return;
        // Also when the checkout got to its end: the watch reports a workspace once.
        if (!self->over_reason.empty()) result = Error{"checkout: " + self->over_reason};
        self->checked_out(std::move(result));
      });
    });
  }

  void checked_out(Result<git::CheckoutResult> r) {
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
    // Before anything else is reported: a newer push's supersede check reads it.
    outbox.post(std::string(protocol::kPipeline),
                protocol::to_json(protocol::PipelineReport{reported_name(loaded.pipeline->name),
                                                           loaded.pipeline->on.cancel_superseded}));
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
    run_pipeline(*loaded.pipeline, branch);
  }

  void fail(const std::string& reason) {
    observer.job_line("agent " + wiring.agent + ": job " + std::to_string(spec.id) + ": " + reason);
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

  void run_pipeline(const pipeline::Pipeline& p, const JobBranch& branch) {
    pipeline::ExpandedPipeline expanded = pipeline::expand(p);
    observer.set_needs(expanded_needs(expanded));
    // A step asking for more than this agent allows fails the job before any step runs.
    if (auto errors = step_limit_errors(expanded, options.step_limits); !errors.empty()) {
      for (const auto& e : errors) observer.job_line(e.message);
      return complete("error", errors.front().message);
    }
    PipelineRunConfig rc;
    rc.id = "job-" + std::to_string(spec.id) + "-" + std::to_string(spec.attempt);
    rc.workspace = workspace;
    rc.layers = layers;
    // Off the io_context, like the workspace: a step may leave a million files in its layer.
    rc.remove_layers = [removal = wiring.removal](const fs::path& dir) {
      std::error_code ec;
      if (removal) return removal->remove(dir);
      fs::remove_all(dir, ec);
    };
    SchedulerOptions& opts = rc.scheduler;
    opts.limits = options.step_limits;
    opts.jobs = options.step_jobs;
    opts.artifact_dir = artifact_dir_of(options, spec);
    opts.job_id = std::to_string(spec.id);
    opts.commit = checked.commit;
    rc.context = pipeline::RunContext{branch.branch, spec.event.empty() ? "manual" : spec.event,
                                      branch.no_branch};
    opts.run_env = run_env();
    opts.previews = wiring.previews;
    rc.images = wiring.images;
    rc.networks = wiring.networks;
    if (wiring.caches) {
      if (!cache_client) {
        cache_client = std::make_unique<CacheClient>(client, outbox, spec.id, spec.lease_token,
                                                     wiring.caches->options().dir, wiring.caches->options().max_bytes);
      }
      // Kept by the repository as the server names it; a fork's pull request restores, never saves.
      rc.caches = CacheRunOptions{wiring.caches, spec.repo, branch.branch, !spec.fork, cache_client.get()};
    }
    // The job's env: a name some step declares as a secret is a secret (masked everywhere,
    // given to the steps that declare it); the rest is env for every step, under the file's.
    std::set<std::string> declared;
    for (const auto& cs : expanded.steps) declared.insert(cs.step.secrets.begin(), cs.step.secrets.end());
    for (const auto& [k, v] : spec.env) {
      if (k.rfind("BOXCAR_PR_", 0) == 0) continue;  // in run_env, for pull requests only
      if (declared.count(k)) {
        opts.secrets[k] = v;
      } else {
        for (auto& cs : expanded.steps) cs.step.env.emplace(k, v);
      }
    }
    if (!declared.empty() && !kept_secrets) return ask_secrets(declared, p, branch);
    if (kept_secrets) {
      for (const auto& [k, v] : *kept_secrets) opts.secrets[k] = v;  // the server's over env
    }
    if (spec.rerun_of) plan_reuse(expanded, opts);
    run = std::make_unique<PipelineRun>(io, *wiring.executor, std::move(expanded), std::move(rc), observer);
    if (Status st = run->prepare(); !st.ok()) {
      observer.job_line(st.error().message);
      return complete("error", st.error().message);
    }
    if (!wiring.executor->isolated()) {
      observer.job_line("executor \"" + std::string(wiring.executor->name()) +
                        "\": steps run as plain processes on the agent's machine, with no isolation "
                        "and no memory, pids, cpu or /tmp limits");
    }
    phase = Phase::running;
    reporter.through_outbox();
    std::weak_ptr<Impl> weak = weak_from_this();
    run->start(
        [weak](bool ok) {
          if (auto self = weak.lock()) self->ran(ok);
        },
        [weak] {
          if (auto self = weak.lock()) self->all_previews_closed();
        });
  }

  // A re-run of job `rerun_of`'s failed steps: the steps that succeeded there, and need none
  // that runs again, are reused (agent/step_reuse.h).
  void plan_reuse(const pipeline::ExpandedPipeline& expanded, SchedulerOptions& opts) {
    if (!reuse_client) {
      reuse_client = std::make_unique<ReuseClient>(client, spec.id, spec.lease_token, *spec.rerun_of);
    }
    opts.reused = reused_steps(expanded, spec.previous_steps);
    opts.reuse = reuse_client.get();
    std::string reused, rerun;
    for (size_t i = 0; i < expanded.steps.size(); ++i) {
      (opts.reused[i] ? reused : rerun) += (opts.reused[i] ? reused : rerun).empty() ? "" : ", ";
      (opts.reused[i] ? reused : rerun) += expanded.steps[i].name;
    }
    observer.job_line("re-running the failed steps of job #" + std::to_string(*spec.rerun_of) + ": " +
                      (rerun.empty() ? "none" : rerun) + "; reused: " + (reused.empty() ? "none" : reused));
  }

  // A declared secret without a value fails its step before it runs (step_setup.cc), naming it.
  void ask_secrets(const std::set<std::string>& names, const pipeline::Pipeline& p,
                   const JobBranch& branch) {
    std::weak_ptr<Impl> weak = weak_from_this();
    secret_fetch = std::make_unique<SecretFetch>(
        io, client, spec.id, spec.lease_token, std::vector<std::string>(names.begin(), names.end()),
        [weak, p, branch](Result<protocol::SecretsResponse> r, RemoteVerdict verdict) {
          if (auto self = weak.lock()) self->got_secrets(std::move(r), verdict, p, branch);
        });
    secret_fetch->start();
  }

  void got_secrets(Result<protocol::SecretsResponse> r, RemoteVerdict verdict,
                   const pipeline::Pipeline& p, const JobBranch& branch) {
    if (!r.ok() && (verdict == RemoteVerdict::lease_lost || verdict == RemoteVerdict::auth_refused)) {
      on_fatal(RemoteOutcome{verdict, r.error().message});
    }
    if (abandoned) return finish();
    if (cancel_requested) return complete("cancelled", "cancelled before the pipeline started");
    if (!r.ok()) {
      observer.job_line(r.error().message);
      return complete("error", r.error().message);
    }
    for (const auto& e : r->errors) observer.job_line(e);
    std::string given;
    for (const auto& [name, value] : r->secrets) given += (given.empty() ? "" : ", ") + name;
    if (r->fork) {
      observer.job_line("a pull request from another repository (a fork): its steps get no secrets");
    } else {
      observer.job_line(given.empty() ? "the server keeps none of the secrets the steps declare"
                                      : "secrets from the server: " + given);
    }
    kept_secrets = std::move(r->secrets);
    run_pipeline(p, branch);
  }

  // Every step settled; the open previews were reported again with their closing times
  // (through the outbox, so before complete).
  void ran(bool ok) {
    holding = run->holding_previews();
    if (abandoned) return finish();
    if (cancel_requested) return complete("cancelled", "cancelled");
    if (ok) return complete("success", "");
    complete("failed", failure_reason(run->summaries()));
  }

  // The workspace went past a limit (from the watch, on the io_context).
  void workspace_over(const std::string& why) {
    if (!over_reason.empty() || abandoned) return;
    over_reason = why;
    log(why);
    if (phase == Phase::checkout) {
      checkout_cancelled = true;  // checked_out() completes the job with the reason
    } else if (run && (phase == Phase::running || holding)) {
      observer.job_line(why + ": stopping the job's steps");
      run->abort(why);
    }
  }

  // Off the io_context when the agent has a BackgroundRemoval: a tree of a million files
  // takes seconds to delete.
  void remove_tree_of_job(const fs::path& tree) {
    if (wiring.removal) return wiring.removal->remove(tree);
    std::error_code ec;
    fs::remove_all(tree, ec);
  }

  void preview_opened(size_t step, std::string_view name, std::string_view url,
                      std::string_view path_url, Timestamp until) {
    protocol::PreviewWire w;
    const pipeline::ConcreteStep& cs = run->pipeline().steps[step];
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
    reporter.opened(step, std::move(w));
  }

  // The run let go of its last preview and tore the job down.
  void all_previews_closed() {
    if (!holding) return;
    holding = false;
    remove_workspace();
    if (phase == Phase::over) {
      reporter.all_closed();
      release();
    }
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
    reporter.pause();  // the outbox takes nothing after complete
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
    remove_tree_of_job(layers);  // the run removed it; a run that never started did not
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
      reporter.all_closed();  // they closed while the job was completing
      return release();
    }
    if (abandoned) return close_previews(Grace::none);
    log("completed; " + std::to_string(run->open_previews()) + " preview(s) stay open");
    reporter.direct();
  }

  void close_previews(Grace grace) {
    if (!holding || !run) return;
    run->cancel(grace);
  }

  void cancel(Grace grace) {
    if (holding) return close_previews(grace);
    if (abandoned || phase == Phase::completing || phase == Phase::over) return;
    cancel_requested = true;
    checkout_cancelled = true;
    if (phase == Phase::running && run) run->cancel(grace);
  }

  void abandon(JobEnd why) {
    if (holding) close_previews(Grace::none);
    if (abandoned || phase == Phase::over) return;
    abandoned = true;
    end = why;
    outbox.stop();
    reporter.stop();
    checkout_cancelled = true;
    switch (phase) {
      case Phase::idle:
      case Phase::completing: finish(); break;
      case Phase::checkout: break;  // checked_out() finishes
      case Phase::running:
        if (run) run->cancel(Grace::none);
        break;
      case Phase::over: break;
    }
  }

  void on_fatal(const RemoteOutcome& o) {
    log(o.message);
    abandon(o.verdict == RemoteVerdict::auth_refused ? JobEnd::auth_refused : JobEnd::abandoned);
  }
};

JobRunner::JobRunner(asio::io_context& io, HttpClient& client, const AgentConfig& config,
                     JobRunnerWiring wiring, protocol::JobSpec job)
    : impl_(std::make_shared<Impl>(io, client, config, std::move(wiring), std::move(job))) {}

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

void JobRunner::cancel(Grace grace) { impl_->cancel(grace); }
void JobRunner::abandon() { impl_->abandon(JobEnd::abandoned); }
bool JobRunner::holding_previews() const { return impl_->holding; }
int64_t JobRunner::id() const { return impl_->spec.id; }
const protocol::JobSpec& JobRunner::spec() const { return impl_->spec; }

}  // namespace boxcar::agent
