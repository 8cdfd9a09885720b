// ApiSandbox: one live sandbox of the sandbox API on this agent (SandboxHost holds them): its
// executor Job and Sandbox, the create spec, and the state of each concern, owned here and
// defined by its piece (sessions.h, process_table.h, port_table.h).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "executors/executor.h"
#include "protocol/sandbox_api.h"
#include "sandboxes/disk_quota.h"
#include "sandboxes/event_bus.h"
#include "sandboxes/git_slot.h"
#include "sandboxes/port_table.h"
#include "sandboxes/process_table.h"
#include "sandboxes/sessions.h"
#include "sandboxes/watch.h"

namespace boxcar::sandboxes {

class ApiSandbox {
 public:
  const std::string& id() const { return spec_.id; }
  const std::string& owner() const { return spec_.owner; }
  const protocol::SandboxCreate& spec() const { return spec_; }
  // <data>/sandboxes/<id>/: workspace/ (the sandbox's /workspace), logs/, meta.json.
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path workspace_dir() const { return dir_ / "workspace"; }
  std::filesystem::path logs_dir() const { return dir_ / "logs"; }

  // Running (SandboxHost::resolve made sure): the executor's sandbox.
  executors::Sandbox& sandbox() { return *sandbox_; }
  bool running() const { return sandbox_ != nullptr; }

  // The environment every command starts from (PATH, HOME=/root, LANG, TERM, HOSTNAME,
  // BOXCAR_SANDBOX=<id>, and the create spec's env), as "NAME=value".
  std::vector<std::string> base_env() const;

  Sessions& sessions() { return sessions_; }
  ProcessTable& processes() { return processes_; }
  PortTable& ports() { return ports_; }
  // The /workspace quota (resources.disk_bytes): the file API asks it, SandboxHost measures.
  DiskQuota& disk() { return disk_; }
  GitSlot& git() { return git_; }
  const PortTable& ports() const { return ports_; }
  // GET /events: state changes, process exits, OOM kills, port changes.
  EventBus& events() { return events_; }
  // `process_exit {id, exit_code, outcome}` on events(), and `oom {process}` before it when the
  // OOM killer ended it.
  void publish_exit(const std::string& process, const executors::Outcome& outcome);

  // Activity (SANDBOXES.md §1.3) keeps it from pausing: a request is activity at once (touch),
  // and an open stream or preview connection holds a lease for as long as it lasts. Safe to
  // release after the sandbox is gone.
  void touch();
  std::shared_ptr<void> activity_lease();
  int leases() const { return activity_->leases; }
  std::chrono::steady_clock::time_point idle_since() const { return activity_->last; }
  std::chrono::system_clock::time_point last_active() const { return activity_->last_wall; }

  const protocol::SandboxTimers& timers() const { return spec_.timers; }
  // SandboxHost: PATCH /agent/v1/sandboxes/{id} (meta.json is rewritten by the host).
  void set_timers(const protocol::SandboxTimers& t) { spec_.timers = t; }
  SandboxWatches& watches() { return watches_; }

  // For SandboxHost.
  ApiSandbox(protocol::SandboxCreate spec, std::filesystem::path dir)
      : spec_(std::move(spec)), dir_(std::move(dir)), disk_(spec_.resources.disk_bytes) {}
  std::unique_ptr<executors::Job> job_;
  std::unique_ptr<executors::Sandbox> sandbox_;
  std::string state_ = "creating";
  std::string error_;  // state "error": why (the sandbox's init died, it could not start again)
  int64_t create_ms_ = 0;
  std::chrono::steady_clock::time_point paused_at_{};
  std::unique_ptr<boost::asio::steady_timer> idle_timer_;  // lifecycle_timers.h
  int netns_ = -1;     // from SandboxHostOptions::make_netns, released with the sandbox
  std::string netns_key_;  // what make_netns was called with: the id, or the warm sandbox's name

 private:
  protocol::SandboxCreate spec_;
  std::filesystem::path dir_;
  Sessions sessions_;
  ProcessTable processes_;
  PortTable ports_;
  DiskQuota disk_;
  GitSlot git_;
  SandboxWatches watches_;
  struct Activity {
    int leases = 0;
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point last_wall = std::chrono::system_clock::now();
  };
  std::shared_ptr<Activity> activity_ = std::make_shared<Activity>();
  EventBus events_;  // last: closed (its streams ended) before the rest goes
};

}  // namespace boxcar::sandboxes
