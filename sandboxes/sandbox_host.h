// SandboxHost: the sandboxes of the sandbox API that one agent holds (shared/SANDBOXES.md
// §1.2-1.3). One API sandbox is one executor Job (its own workspace directory and network)
// holding one long-lived Sandbox; its directory <data>/sandboxes/<id>/ has workspace/ (seen as
// /workspace), logs/ (process output) and meta.json (the create spec), the last two outside the
// sandbox's view. A restarted agent re-adopts every directory it finds as `stopped`; the next
// request starts the sandbox again (same /workspace). Everything runs on one io_context.
//
// The data plane: an HttpServer of the agent's (--sandbox-listen) whose router gets
//   add_lifecycle_routes (this piece: POST/DELETE /agent/v1/sandboxes[/{id}]),
//   add_exec_routes (exec, sessions, processes), add_file_routes (files, fs), add_port_routes.
// Every route but the lifecycle ones starts with SandboxHost::resolve().
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "executors/executor.h"
#include "http/http_server.h"
#include "protocol/sandbox_api.h"

namespace boxcar::sandboxes {

class ApiSandbox;
class DiskMeter;

struct SandboxHostOptions {
  std::filesystem::path data_dir;  // <agent data>/sandboxes is made under it (0700)
  size_t slots = 1000;             // sandboxes at most (--sandbox-slots; 0: hosting is off)
  int64_t memory_budget_bytes = 0; // for placement; 0 = MemAvailable at start
  std::string key;                 // the data plane's bearer secret (random when empty)
  // Ports: the preview proxy of the process (cli wires PreviewProxy::publish, and its new
  // withdraw(sandbox, port)); unset: the ports routes answer 501 unsupported.
  // `token`: the one the port had before the sandbox stopped or the agent restarted (its URLs
  // stay the same); "" for a new exposure.
  std::function<protocol::SandboxPort(executors::Sandbox& sandbox, const std::string& sandbox_id,
                                      uint16_t port, const std::string& token)> publish_port;
  std::function<void(executors::Sandbox& sandbox, uint16_t port)> withdraw_port;
  // The job network of a sandbox with network "job" (egress by the agent's policy): made per
  // sandbox by the agent (null: loopback only, as "none").
  std::function<Result<int>(const std::string& sandbox_id)> make_netns;
  std::function<void(const std::string& sandbox_id)> release_netns;
  std::function<void(std::string_view)> log;  // one line per event worth telling
  // Called after every change of a sandbox's state or ports (the sync goes out at once).
  std::function<void()> on_change;
  // POST /git/checkout (routes_git.cc): local paths and file:// URLs may be fetched
  // (--allow-local-repos), and hosts resolving to loopback, private or link-local addresses
  // (--sandbox-git-allow-private). Mirrors are <data_dir>/mirrors, shared with jobs.
  bool git_allow_local = false;
  bool git_allow_private = false;
  // Checkout threads alive on the agent at once, counted until each thread really ends (not
  // when its sandbox gives the slot up): libgit2 1.5 has no read timeout, so a silent server
  // pins a thread until it hangs up, and create/checkout/delete loops would pile them up.
  size_t git_max_threads = 8;
  // How often every running sandbox's /workspace is measured against its disk quota
  // (sandboxes/disk_quota.h); 0: never by itself (tests call check_disks()).
  std::chrono::milliseconds disk_check_every{5000};
  // Sandboxes of the default spec kept ready (--sandbox-warm; sandboxes/warm_pool.h). Each holds
  // a slot (a cold create gives one up when it needs the slot) and counts against the memory
  // budget; free_slots() still counts them free, since any default create takes one.
  size_t warm = 0;
  // Names a warm sandbox (its hostname) when a create takes it: the executor's own
  // (executors/native/sandbox_rename.h). Unset: no warm pool.
  std::function<Status(executors::Sandbox& sandbox, const std::string& name)> rename_sandbox;
};

class SandboxHost {
 public:
  SandboxHost(boost::asio::io_context& io, executors::Executor& executor, SandboxHostOptions options);
  ~SandboxHost();
  SandboxHost(const SandboxHost&) = delete;
  SandboxHost& operator=(const SandboxHost&) = delete;

  // Re-adopts the sandboxes found under the data directory as stopped. Call once, first.
  Status adopt();

  // Creates and starts a sandbox: 201 report, or an error answer (409 exists: that id is
  // here already; 429 limit_reached: no slot; 500 with the executor's reason).
  Result<protocol::SandboxReport> create(const protocol::SandboxCreate& spec);
  // Kills everything in it and removes its directory, previews and network. false: unknown.
  bool remove(const std::string& id);

  // The sandbox a data-plane request names ({id} in its path), when it carries the data-plane
  // key and X-Boxcar-Owner owns it (or is "*"), running (a stopped one is started again): counts
  // as activity. Otherwise nullptr and `error` is the answer (401, 404 sandbox_not_found, 503
  // sandbox_unavailable when it cannot be started).
  // With `wake` false (metrics, pause, stop, resume: routes that must not count as activity nor
  // thaw): only the key, owner and error checks; the sandbox may be paused or stopped.
  ApiSandbox* resolve(const server::HttpRequest& request, server::HttpResponse& error, bool wake = true);
  // running -> paused: every process frozen, memory kept (SANDBOXES.md §1.3). An Error (errno
  // ENOTSUP: this host cannot freeze) leaves it running; a paused one stays paused.
  Status pause(ApiSandbox& sandbox, const std::string& why);
  // paused -> running (thawed, same processes), stopped -> running (started again); activity.
  Status resume(ApiSandbox& sandbox);
  // PATCH /agent/v1/sandboxes/{id}: the new timers, kept in meta.json (a restarted agent keeps
  // them) and acted on from now.
  Status set_timers(ApiSandbox& sandbox, const protocol::SandboxTimers& timers);
  // The preview proxy is about to connect into `sandbox`: a paused one of ours is thawed first.
  // The answer is an activity lease for the connection's life; null when `sandbox` is not one
  // of ours (a pipeline step's) or cannot be thawed.
  std::shared_ptr<void> wake(executors::Sandbox& sandbox);
  protocol::SandboxReport report(const ApiSandbox& sandbox) const;
  // The sandbox cannot serve (its init died, a command could not be started): state error with
  // `why`, requests get 503 until it is deleted.
  void failed(ApiSandbox& sandbox, const std::string& why);
  // Its processes and mounts go, /workspace stays; the next request starts it again.
  void stopped(ApiSandbox& sandbox, const std::string& why);
  // Only the key check (the lifecycle routes).
  bool key_ok(const server::HttpRequest& request) const;

  ApiSandbox* find(const std::string& id);
  std::vector<protocol::SandboxReport> reports() const;
  size_t free_slots() const;
  // Warm sandboxes ready now (SandboxHostOptions::warm).
  size_t warm_ready() const;
  int64_t memory_free_bytes() const;
  const std::string& key() const;
  boost::asio::io_context& io();
  // What it was made with: the port routes publish through publish_port / withdraw_port and
  // announce the change with on_change.
  const SandboxHostOptions& options() const;
  // Checkout threads alive (git_max_threads; routes_git.cc). Shared: a thread may outlive the host.
  const std::shared_ptr<std::atomic<size_t>>& git_threads() const;

  // Measures every running sandbox's /workspace off the io_context (what the timer of
  // disk_check_every does); one past its quota gets its commands stopped (quota_exceeded) and
  // refuses new ones until it is back under. `done` runs on the io_context when all are measured.
  void check_disks(std::function<void()> done = {});
  // The same for one sandbox (the file routes, after a removal that may bring it back under).
  // Coalesced: while one walk of its workspace runs, callers share the one after it.
  void measure_disk(const std::string& id, std::function<void()> done);
  // A walk of `id`'s workspace is queued or running (GET /metrics then answers with the figure
  // held rather than queue another).
  bool measuring_disk(const std::string& id) const;
  // Walks started since the host was made, and the meter (tests count the one, hold the other).
  uint64_t disk_walks() const;
  DiskMeter& disk_meter();

  // Removes every sandbox's processes and mounts (the directories stay): at agent shutdown.
  void shutdown();

  struct Impl;

 private:
  void start_measure(const std::string& id, std::vector<std::function<void()>> waiting);
  std::unique_ptr<Impl> impl_;
};

// POST /agent/v1/sandboxes (SandboxCreate -> 201 SandboxReport), PATCH /agent/v1/sandboxes/{id}
// (SandboxTimers -> 200 SandboxReport) and DELETE /agent/v1/sandboxes/{id} (204; 404 unknown),
// all behind the key; and the state routes of routes_state.cc.
void add_lifecycle_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_state.cc: POST /pause, /resume, /stop, GET /metrics and /events.
void add_state_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_exec.cc, routes_sessions.cc, routes_processes.cc.
void add_exec_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_files.cc: /files/{path...} and /fs/*.
void add_file_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_watch.cc: /fs/watch and /fs/changes (add_file_routes adds them).
void add_watch_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_ports.cc: /ports.
void add_port_routes(server::Router& router, SandboxHost& host);
// sandboxes/routes_git.cc: POST /git/checkout.
void add_git_routes(server::Router& router, SandboxHost& host);

}  // namespace boxcar::sandboxes
