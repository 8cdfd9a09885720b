#include "agent/daemon/agent_daemon.h"

#include <algorithm>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "agent/daemon/agent_credential.h"
#include "agent/daemon/agent_heartbeat.h"
#include "agent/daemon/background_removal.h"
#include "http/http_client.h"
#include "agent/daemon/job_runner.h"
#include "agent/daemon/remote_errors.h"
#include "agent/daemon/sandbox_sync.h"
#include "base/connection_limits.h"
#include "base/private_dir.h"
#include "base/random_token.h"
#include "base/size.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

namespace asio = boost::asio;

Result<std::string> default_agent_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "agent");
  auto suffix = random_token(3);
  if (!suffix) return suffix.error();
  return std::string(host) + "-" + std::to_string(::getpid()) + "-" + *suffix;
}

struct AgentDaemon::Impl : std::enable_shared_from_this<Impl> {
  struct Running {
    std::unique_ptr<JobRunner> runner;
    std::unique_ptr<Heartbeat> heartbeat;
  };

  asio::io_context& io;
  AgentConfig options;  // the daemon's own copy
  AgentWiring wiring;
  std::string name;  // registered under; the stored registration's, or options.name
  std::unique_ptr<HttpClient> client;
  std::unique_ptr<executors::Executor> executor;
  std::unique_ptr<WorkspaceWatch> workspace_watch;
  std::unique_ptr<BackgroundRemoval> removal;  // finished jobs' trees, off the io_context
  std::optional<CacheStore> caches;  // [[step.cache]] entries, data_dir/caches; outlives the jobs
  std::unique_ptr<SandboxSource> sandboxes;  // the sandbox API's, when hosting is on
  std::unique_ptr<SandboxSync> sandbox_sync;  // after `sandboxes`: destroyed first
  std::map<int64_t, Running> jobs;
  std::map<int64_t, std::unique_ptr<JobRunner>> held;  // completed, previews still open
  std::set<int64_t> closing;  // of those, closed by cap_previews(), not yet released
  asio::steady_timer retry_timer{io};
  Backoff backoff;
  bool claiming = false;
  uint64_t claim_request = 0;
  // Registration: the credential from the data directory, or from POST /register. A stored one
  // the server refuses before it ever accepted it (a new server, say) is replaced by
  // registering again; once accepted, a refusal (revocation) is fatal.
  bool registered = false;
  bool credential_from_disk = false;
  bool credential_accepted = false;
  bool draining = false;
  bool stopping = false;
  Grace stop_grace = Grace::step;  // how stop() cancels jobs, also one claimed meanwhile
  bool exited = false;
  std::string last_failure;  // the claim failure last logged, to log a recovery once

  Impl(asio::io_context& io_, const AgentConfig& config, AgentWiring w)
      : io(io_), options(config), wiring(std::move(w)), name(config.name) {
    // 0 means a sandbox-only agent only where it hosts sandboxes; elsewhere it meant 1.
    if (options.concurrency == 0 && (options.sandbox_slots == 0 || !wiring.make_sandboxes)) options.concurrency = 1;
    if (options.step_jobs == 0) options.step_jobs = std::max(1u, std::thread::hardware_concurrency());
  }

  void log(const std::string& line) {
    if (wiring.log) {
      wiring.log(line);
    } else {
      std::fprintf(stderr, "boxcar agent: %s\n", line.c_str());
    }
  }

  Status start() {
    // No default: which executor runs jobs (and whether they are isolated) is the CLI's choice.
    if (!wiring.make_executor) return Error{"the agent has no executor to run jobs on"};
    auto base = parse_server_url(options.connect_url.empty() ? options.server : options.connect_url);
    if (!base.ok()) return base.error();
    if (Status st = check_token_transport(*base, "agent token"); !st.ok()) return st;
    // Steps leave files in these (owned by root on disk, through the idmapped workspace) and
    // mirrors hold private repositories: no other local user may reach them.
    for (const char* sub : {"", "workspaces", "mirrors", "artifacts", "trash"}) {
      std::filesystem::path dir = *sub ? options.data_dir / sub : options.data_dir;
      if (Status st = make_private_dir(dir); !st.ok()) return st;
    }
    removal = std::make_unique<BackgroundRemoval>(options.data_dir / "trash");
    auto store = CacheStore::open({options.data_dir / "caches", options.cache_max_bytes});
    if (!store.ok()) return store.error();
    caches.emplace(std::move(*store));
    workspace_watch = std::make_unique<WorkspaceWatch>(io, options.workspace_limits);
    // Each queued artifact upload holds its file open until sent (so a step cannot swap it):
    // a job with thousands of artifacts behind a slow upload must not run into the soft limit.
    raise_open_file_limit();
    auto stored = load_credential(options.data_dir, options.server);
    if (!stored.ok()) return stored.error();
    // Claims are the largest answers the agent takes; anything larger is refused unread.
    client = std::make_unique<HttpClient>(io, *base, options.token, options.tls,
                                          HttpClientOptions{"boxcar-agent", protocol::kMaxClaimBytes});
    if (*stored) {
      if (!name.empty() && name != (*stored)->name) {
        log("registered as \"" + (*stored)->name + "\" (" + credential_path(options.data_dir).string() +
            "), not \"" + name + "\": remove that file to register under a new name");
      }
      name = (*stored)->name;
      client->set_token((*stored)->credential);
      registered = credential_from_disk = true;
    } else if (name.empty()) {
      auto made = default_agent_name();
      if (!made) return made.error();
      name = *made;
    }
    executor = wiring.make_executor(io);
    if (Status st = start_sandboxes(); !st.ok()) return st;
    if (options.concurrency == 0) {
      log(name + ": hosting sandboxes only, claiming no jobs (--concurrency 0)");
    } else {
      log(name + ": polling " + options.server + " for jobs (" + std::to_string(options.concurrency) +
          " at once, executor " + std::string(executor->name()) + ")");
    }
    claim();
    if (registered && sandbox_sync) sandbox_sync->start();
    return {};
  }

  // The sandbox API's sandboxes on this agent's executor. One that cannot host them (the host
  // executor isolates nothing) is answered ErrorCode::unavailable: hosting is off, said once.
  Status start_sandboxes() {
    if (options.sandbox_slots == 0 || !wiring.make_sandboxes) return {};
    std::weak_ptr<Impl> weak = weak_from_this();
    auto made = wiring.make_sandboxes(io, *executor, options, [weak] {
      if (auto self = weak.lock(); self && self->sandbox_sync) self->sandbox_sync->changed();
    });
    if (!made.ok() && made.error().code == ErrorCode::unavailable && options.concurrency > 0) {
      log("sandbox hosting is off: " + made.error().message + " (--sandbox-slots 0 turns it off without this notice)");
      return {};
    }
    if (!made.ok() && made.error().code == ErrorCode::unavailable) {
      return Error{"--concurrency 0 makes a sandbox-only agent, but this agent cannot host sandboxes: " +
                   made.error().message, 0, ErrorCode::usage};
    }
    if (!made.ok()) return Error{"cannot host sandboxes: " + made.error().message, made.error().err, made.error().code};
    sandboxes = std::move(made.value());
    SandboxSyncHandlers h;
    h.ready = [weak] {
      auto self = weak.lock();
      return self && self->registered && !self->exited;
    };
    h.on_accepted = [weak] {
      if (auto self = weak.lock()) self->credential_accepted = true;
    };
    h.on_auth = [weak](const RemoteOutcome& o) {
      if (auto self = weak.lock()) self->sync_refused(o);
    };
    h.log = [weak](const std::string& line) {
      if (auto self = weak.lock()) self->log(line);
    };
    sandbox_sync = std::make_unique<SandboxSync>(io, *client, *sandboxes, options.sandbox_sync_interval, std::move(h));
    return {};
  }

  // The server refused the credential a sync carried. A sandbox-only agent sends no claims, so
  // this is where it learns that its stored credential means nothing to this server.
  void sync_refused(const RemoteOutcome& o) {
    if (exited || !registered || claiming) return;  // a claim in flight hears the same and decides
    if (credential_from_disk && !credential_accepted && jobs.empty()) {
      log("the server refused the stored credential (" + o.message + "); registering again");
      forget_credential(options.data_dir);
      registered = credential_from_disk = false;
      return claim();
    }
    fatal(o.message);
  }

  // POST /register with the shared token; the answer's credential is saved, then used.
  void register_agent() {
    claiming = true;
    client->set_token(options.token);
    protocol::RegisterRequest req{name, options.labels};
    std::weak_ptr<Impl> weak = weak_from_this();
    claim_request = client->post_json(
        std::string(protocol::kAgentRegisterPath), protocol::to_json(req), Millis(30'000),
        [weak](const boost::system::error_code& ec, HttpReply res) {
          if (auto self = weak.lock()) self->registered_answer(ec, std::move(res));
        });
  }

  void registered_answer(const boost::system::error_code& ec, HttpReply res) {
    claiming = false;
    if (exited) return;
    RemoteOutcome o = classify(ec, res.status, res.body);
    if (o.verdict == RemoteVerdict::retry) return retry("cannot register with", o.message);
    if (o.verdict == RemoteVerdict::auth_refused) {
      return fatal("the server refused the registration token (--token): " + o.message);
    }
    if (o.verdict != RemoteVerdict::ok) {  // 409: the name is taken or was revoked
      return fatal("cannot register as \"" + name + "\" with " + options.server + ": HTTP " +
                   std::to_string(res.status) + ": " + res.body);
    }
    auto answer = protocol::from_json_text<protocol::RegisterResponse>(res.body);
    if (!answer.ok()) return retry("cannot register with", "unreadable answer: " + answer.error().message);
    AgentCredential c{options.server, answer->agent_id, answer->name, answer->credential};
    if (Status st = save_credential(options.data_dir, c); !st.ok()) {
      return fatal("cannot keep the agent credential: " + st.error().message);
    }
    name = answer->name;
    client->set_token(answer->credential);
    registered = true;
    credential_from_disk = false;
    log("registered with " + options.server + " as \"" + name + "\" (agent " +
        std::to_string(answer->agent_id) + ")");
    backoff.reset();
    if (sandbox_sync) sandbox_sync->start();
    claim();
  }

  void claim() {
    if (claiming || draining || exited) return;
    if (!registered) return register_agent();  // also a sandbox-only agent (concurrency 0)
    if (jobs.size() >= options.concurrency) return;
    claiming = true;
    protocol::ClaimRequest req{options.labels, options.claim_wait_ms};
    std::weak_ptr<Impl> weak = weak_from_this();
    claim_request = client->post_json(
        std::string(protocol::kAgentClaimPath), protocol::to_json(req), Millis(options.claim_wait_ms + 15'000),
        [weak](const boost::system::error_code& ec, HttpReply res) {
          if (auto self = weak.lock()) self->claimed(ec, std::move(res));
        });
  }

  // The job and lease a claim answer names in its headers, for when its body is of no use;
  // nullopt from a server that does not send them.
  static std::optional<protocol::JobSpec> claim_from_headers(const HttpReply& res) {
    if (res.status != 200) return std::nullopt;
    std::string id = res.header(protocol::kJobHeader);
    protocol::JobSpec job;
    job.lease_token = res.header(protocol::kLeaseHeader);
    auto [end, err] = std::from_chars(id.data(), id.data() + id.size(), job.id);
    if (err != std::errc() || end != id.data() + id.size() || job.id <= 0 || job.lease_token.empty()) {
      return std::nullopt;
    }
    return job;
  }

  // A claimed job the agent cannot run from what it got: failed with `why`, not left to
  // expire and come back to the head of the queue.
  bool fail_unusable_claim(const HttpReply& res, const std::string& why) {
    auto job = claim_from_headers(res);
    if (!job) return false;
    credential_accepted = true;
    backoff.reset();
    run(std::move(*job), why);
    claim();
    return true;
  }

  void claimed(const boost::system::error_code& ec, HttpReply res) {
    claiming = false;
    if (exited) return;
    if (ec == boost::beast::http::error::body_limit &&
        fail_unusable_claim(res, "the claim answer is larger than " + format_size(protocol::kMaxClaimBytes) +
                                     ", the most an agent reads")) {
      return;
    }
    RemoteOutcome o = classify(ec, res.status, res.body);
    if (o.verdict == RemoteVerdict::auth_refused && credential_from_disk && !credential_accepted &&
        jobs.empty()) {
      // The stored credential means nothing to this server (its database is new, or the
      // agent was revoked): register again. A revoked agent's name is refused there.
      log("the server refused the stored credential (" + o.message + "); registering again");
      forget_credential(options.data_dir);
      registered = credential_from_disk = false;
      return claim();
    }
    if (o.verdict == RemoteVerdict::auth_refused) return fatal(o.message);
    if (o.verdict != RemoteVerdict::ok) return retry_claim(o.message);
    credential_accepted = true;
    if (!last_failure.empty()) log("reached " + options.server + " again");
    last_failure.clear();
    backoff.reset();
    if (res.status == 204 || res.body.empty()) return claim();  // no work within the wait
    boost::system::error_code pec;
    auto json = boost::json::parse(res.body, pec);
    auto answer = pec ? Result<protocol::ClaimResponse>(Error{pec.message()})
                      : protocol::from_json<protocol::ClaimResponse>(json);
    if (!answer.ok()) {
      std::string why = "unreadable claim answer: " + answer.error().message;
      if (fail_unusable_claim(res, why)) return;
      return retry_claim(why);
    }
    run(std::move(answer->job));
    claim();
  }

  void retry_claim(const std::string& why) { retry("cannot claim from", why); }

  void retry(const std::string& what, const std::string& why) {
    Millis delay = backoff.next();
    log(what + " " + options.server + ": " + why + "; retrying in " + format_duration(delay));
    last_failure = why;
    std::weak_ptr<Impl> weak = weak_from_this();
    retry_timer.expires_after(delay);
    retry_timer.async_wait([weak](const boost::system::error_code& tec) {
      if (tec) return;
      if (auto self = weak.lock()) self->claim();
    });
  }

  // Runs a claimed job, or, with a `setup_error`, only completes it as error with that reason.
  void run(protocol::JobSpec spec, const std::string& setup_error = {}) {
    int64_t id = spec.id;
    if (jobs.count(id)) return;  // already ours (a re-sent claim answer)
    if (!setup_error.empty()) {
      log("job " + std::to_string(id) + ": cannot run it: " + setup_error);
    } else {
      log("job " + std::to_string(id) + " (attempt " + std::to_string(spec.attempt) + "): " + spec.repo +
          (spec.ref.empty() ? "" : " " + spec.ref) + (spec.commit.empty() ? "" : " " + spec.commit));
    }
    JobRunnerWiring ro;
    ro.agent = name;
    ro.executor = executor.get();
    ro.previews = wiring.previews;
    ro.images = wiring.images;
    ro.networks = wiring.networks;
    ro.workspace_watch = workspace_watch.get();
    ro.removal = removal.get();
    ro.caches = caches ? &*caches : nullptr;
    std::weak_ptr<Impl> weak = weak_from_this();
    ro.log = [weak](const std::string& line) {
      if (auto self = weak.lock()) self->log(line);
    };
    // Well inside the lease, and often enough that a cancel (delivered in the heartbeat's
    // answer) reaches the step within a few seconds even with a long lease.
    Millis interval(std::clamp<int64_t>(spec.lease_ms / 3, 100, 3'000));
    Running& r = jobs[id];
    r.runner = std::make_unique<JobRunner>(io, *client, options, std::move(ro), spec);
    HeartbeatHandlers hh;
    hh.on_cancel = [weak, id] {
      if (auto self = weak.lock()) self->job_cancelled(id);
    };
    hh.on_lost = [weak, id] {
      if (auto self = weak.lock()) self->job_lost(id);
    };
    hh.on_auth = [weak](const RemoteOutcome& o) {
      if (auto self = weak.lock()) self->fatal(o.message);
    };
    hh.log = ro.log;
    r.heartbeat = std::make_unique<Heartbeat>(io, *client, id, spec.lease_token, interval, std::move(hh));
    r.heartbeat->start();
    auto ended = [weak, id](JobEnd end) {
      if (auto self = weak.lock()) self->job_ended(id, end);
    };
    auto released = [weak, id] {
      if (auto self = weak.lock()) self->job_released(id);
    };
    if (setup_error.empty()) {
      r.runner->start(ended, released);
    } else {
      r.runner->fail(setup_error, ended, released);
    }
    if (stopping) r.runner->cancel(stop_grace);
  }

  void job_cancelled(int64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    log("job " + std::to_string(id) + ": cancelled by the server");
    it->second.runner->cancel(Grace::step);
  }

  void job_lost(int64_t id) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    log("job " + std::to_string(id) + ": the lease is lost; stopping the job without completing it");
    it->second.runner->abandon();
  }

  void job_ended(int64_t id, JobEnd end) {
    auto it = jobs.find(id);
    if (it == jobs.end()) return;
    it->second.heartbeat->stop();
    // Destroyed from a fresh handler: the runner's own callback may still be on the stack.
    auto gone = std::make_shared<Running>(std::move(it->second));
    jobs.erase(it);
    if (gone->runner->holding_previews()) {
      held[id] = std::move(gone->runner);
      if (draining || exited) held[id]->abandon();
      cap_previews();
    }
    asio::post(io, [gone] {});
    if (end == JobEnd::auth_refused) return fatal("the server refused the agent credential");
    if (draining || exited) return exit_when_idle();
    claim();
  }

  // The last preview of a completed job closed.
  void job_released(int64_t id) {
    auto it = held.find(id);
    if (it == held.end()) return;
    auto gone = std::make_shared<std::unique_ptr<JobRunner>>(std::move(it->second));
    held.erase(it);
    asio::post(io, [gone] {});
    closing.erase(id);
    if (draining || exited) exit_when_idle();
  }

  // At most max_previews completed jobs keep previews open: past it, the oldest close.
  void cap_previews() {
    size_t cap = options.max_previews > 0 ? options.max_previews : options.concurrency;
    for (auto it = held.begin(); it != held.end() && held.size() - closing.size() > cap; ++it) {
      if (closing.count(it->first)) continue;
      log("job " + std::to_string(it->first) + ": closing its previews: more than " + std::to_string(cap) +
          " completed job(s) with open previews (--max-previews)");
      closing.insert(it->first);
      it->second->abandon();
    }
  }

  void exit_when_idle() {
    if (jobs.empty() && held.empty()) exit({});
  }

  void fatal(const std::string& why) {
    if (exited) return;
    log(why + "; stopping");
    draining = true;
    stop_sandboxes();
    for (auto& [id, r] : jobs) {
      r.heartbeat->stop();
      r.runner->abandon();
    }
    for (auto& [id, runner] : held) runner->abandon();
    exit(Error{why});
  }

  // The data plane closes and the sandboxes stop; their directories stay for the next start.
  void stop_sandboxes() {
    if (sandbox_sync) sandbox_sync->stop();
    if (sandboxes) sandboxes->shutdown();
  }

  void drain() {
    if (draining) return;
    draining = true;
    stop_sandboxes();
    if (claiming) {
      client->cancel(claim_request);
      claiming = false;
    }
    retry_timer.cancel();
    if (!held.empty()) {
      log("draining: closing the previews of " + std::to_string(held.size()) + " completed job(s)");
      for (auto& [id, runner] : held) runner->abandon();
    }
    if (jobs.empty() && held.empty()) {
      exit({});
    } else if (!jobs.empty()) {
      log("draining: waiting for " + std::to_string(jobs.size()) + " running job(s)");
    }
  }

  void stop(Grace grace) {
    drain();
    stopping = true;
    stop_grace = grace;
    for (auto& [id, r] : jobs) r.runner->cancel(grace);
  }

  void exit(Status st) {
    if (exited) return;
    exited = true;
    retry_timer.cancel();
    auto cb = wiring.on_exit;
    asio::post(io, [cb, st] {
      if (cb) cb(st);
    });
  }
};

AgentDaemon::AgentDaemon(asio::io_context& io, const AgentConfig& config, AgentWiring wiring)
    : impl_(std::make_shared<Impl>(io, config, std::move(wiring))) {}

AgentDaemon::~AgentDaemon() {
  impl_->exited = true;
  // A held long poll would otherwise stay open as long as something keeps impl_ alive, and the
  // server could hand it a job that nobody will run (until the lease expires).
  if (impl_->claiming && impl_->client) impl_->client->cancel(impl_->claim_request);
  impl_->claiming = false;
  impl_->retry_timer.cancel();
  impl_->stop_sandboxes();
  impl_->jobs.clear();
  impl_->held.clear();
}

Status AgentDaemon::start() { return impl_->start(); }
void AgentDaemon::drain() { impl_->drain(); }
void AgentDaemon::stop(Grace grace) { impl_->stop(grace); }
const std::string& AgentDaemon::name() const { return impl_->name; }
size_t AgentDaemon::running_jobs() const { return impl_->jobs.size(); }

}  // namespace boxcar::agent
