// SandboxSync: the agent's half of the sandbox control plane (shared/SANDBOXES.md §1.1): POST
// /api/v1/agent/sandboxes/sync with the agent credential, every `interval` and at once after a
// change (changes made in one handler coalesce into one sync; one sync in flight at a time).
// The answer's `deleted` sandboxes are removed. While the server is unreachable, syncs back off
// as the claims do, and a change waits for the next attempt instead of hammering it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/daemon/remote_errors.h"
#include "agent/daemon/sandbox_source.h"
#include "base/duration.h"
#include "http/http_client.h"

namespace boxcar::agent {

struct SandboxSyncHandlers {
  // The client holds the agent's credential (registered, not re-registering): a sync may go.
  std::function<bool()> ready;
  std::function<void()> on_accepted;                  // the server took a sync
  std::function<void(const RemoteOutcome&)> on_auth;  // 401/403: the credential was refused
  std::function<void(const std::string&)> log;
};

class SandboxSync {
 public:
  SandboxSync(boost::asio::io_context& io, HttpClient& client, SandboxSource& source, Millis interval,
              SandboxSyncHandlers handlers);
  ~SandboxSync();
  SandboxSync(const SandboxSync&) = delete;
  SandboxSync& operator=(const SandboxSync&) = delete;

  // A sync now (the agent just got its credential), then every interval.
  void start();
  // Something changed: a sync at once (coalesced), unless backing off.
  void changed();
  // Nothing more is sent; a sync in flight is cancelled.
  void stop();

 private:
  void send();
  void answered(const boost::system::error_code& ec, const HttpReply& res);
  void arm(Millis delay);

  boost::asio::io_context& io_;
  HttpClient& client_;
  SandboxSource& source_;
  Millis interval_;
  SandboxSyncHandlers handlers_;
  boost::asio::steady_timer timer_;
  Backoff backoff_;
  uint64_t request_ = 0;
  bool in_flight_ = false;
  bool again_ = false;   // a change while a sync was in flight: another one follows at once
  bool posted_ = false;  // a coalesced sync is queued on the io_context
  bool stopped_ = true;
  std::string last_failure_;  // logged once until the server is reached again
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
