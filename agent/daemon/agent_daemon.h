// AgentDaemon: the long-running agent. Registers with the server once (the shared token buys
// an agent credential, kept in the data directory and reused on restart), long-polls for jobs (a claim is sent again
// as soon as one is answered, and only while a slot is free), runs up to `concurrency` jobs at
// once with JobRunner, keeps their leases with Heartbeat, backs off while the server is
// unreachable, and drains on request. With sandbox slots it also hosts sandboxes of the sandbox
// API (AgentWiring::make_sandboxes) and syncs them with the server (SandboxSync); with
// concurrency 0 it claims no jobs at all (a sandbox-only agent). The same class runs inside `boxcar serve`, over
// loopback HTTP: an in-process agent speaks the protocol exactly as a remote one does.
// A completed job whose previews are still open no longer takes a slot, but its runner is
// kept until they close; at most `max_previews` such jobs are kept (the oldest one's previews
// close when one more would pass the cap), and a drain closes them all.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/daemon/agent_config.h"
#include "agent/daemon/sandbox_source.h"
#include "agent/grace.h"
#include "agent/image_source.h"
#include "network/job_network.h"
#include "agent/preview_publisher.h"
#include "base/result.h"
#include "executors/executor.h"

namespace boxcar::agent {

// What the process wires into an agent besides its configuration.
struct AgentWiring {
  // Makes the executor the agent's jobs run on (the CLI chooses it: native or host). Required.
  std::function<std::unique_ptr<executors::Executor>(boost::asio::io_context&)> make_executor;
  // Publishes the ports of [[step.expose]] steps (shared by every agent of a process; it must
  // outlive the daemon); null: jobs get plain http://localhost:PORT/ URLs.
  PreviewPublisher* previews = nullptr;
  // Where the images of steps and services come from (the machine's layer store, on the same
  // io_context; it must outlive the daemon); null: a step with an image fails to set up.
  ImageSource* images = nullptr;
  network::NetworkHost* networks = nullptr;  // job networks with egress; null: loopback only
  // Hosts the sandbox API's sandboxes on the agent's executor when config.sandbox_slots > 0
  // (the CLI wires sandbox_service_factory()); the daemon syncs them with the server. Null, or
  // an executor that does not isolate (host, oci): hosting is off, and the agent says so once.
  SandboxFactory make_sandboxes;
  // One line per event worth telling (claims, failures, job ends); empty = stderr.
  std::function<void(std::string_view)> log;
  // Called once, on the io_context, when the daemon has stopped: Ok after a drain, an Error
  // when the server refused the registration token or the agent's credential (revoked), or
  // the name is taken. Nothing of the daemon is pending on the io_context then.
  std::function<void(Status)> on_exit;
};

// "<hostname>-<pid>-<6 random hex digits>"; an error only when the CSPRNG fails.
Result<std::string> default_agent_name();

class AgentDaemon {
 public:
  // Keeps a copy of `config`.
  AgentDaemon(boost::asio::io_context& io, const AgentConfig& config, AgentWiring wiring);
  ~AgentDaemon();
  AgentDaemon(const AgentDaemon&) = delete;
  AgentDaemon& operator=(const AgentDaemon&) = delete;

  // Starts claiming. An error (a bad server URL, a data directory that cannot be made) and
  // nothing started.
  Status start();

  // Claims no more; running jobs finish; open previews of completed jobs close; on_exit(Ok)
  // once none is left.
  void drain();

  // drain(), and running jobs are cancelled and completed as cancelled: their steps get their
  // grace period (Grace::step) or are killed at once (Grace::none).
  void stop(Grace grace);

  const std::string& name() const;
  size_t running_jobs() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
