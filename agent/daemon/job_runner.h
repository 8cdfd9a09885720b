// JobRunner: runs one claimed job end to end: checkout into <data>/workspaces/<id>-<attempt>,
// read and parse the pipeline file, apply its [on] filters, run it as a PipelineRun on the
// shared io_context (logs and step updates stream to the server through a RemoteObserver,
// previews are reported by a PreviewReporter), then POST complete and remove the workspace. Heartbeats are the daemon's business; it tells
// the runner to cancel() (the user asked) or abandon() (the lease is gone).
//
// A workspace that grows past its limits (see workspace_watch.h) ends the job: during the
// checkout, as an error; while steps run, they are killed and fail with the reason.
//
// Previews ([[step.expose]]) outlive the job: the runner reports the open ones to the server
// (POST previews), completes the job, and then keeps their sandboxes, the job's network and
// the workspace until each preview's preview_ttl passed or the server says the user cancelled
// (it asks every few seconds); only then is it `released`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/cache_store.h"
#include "agent/daemon/agent_config.h"
#include "agent/daemon/background_removal.h"
#include "http/http_client.h"
#include "agent/daemon/workspace_watch.h"
#include "agent/grace.h"
#include "agent/image_source.h"
#include "network/job_network.h"
#include "agent/preview_publisher.h"
#include "executors/executor.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

// What the agent shares with each of its job runners besides its AgentConfig.
struct JobRunnerWiring {
  std::string agent;                            // the agent's registered name, for its log lines
  executors::Executor* executor = nullptr;
  PreviewPublisher* previews = nullptr;         // the agent's preview proxy; null: localhost URLs
  ImageSource* images = nullptr;                // the machine's layer store; null: no images
  network::NetworkHost* networks = nullptr;  // job networks with egress; null: loopback only
  // Keeps the workspace under its size and inode limits, from the checkout on; null: unwatched.
  WorkspaceWatch* workspace_watch = nullptr;
  // Removes the workspace and the artifact copies off the io_context; null: in place, blocking.
  BackgroundRemoval* removal = nullptr;
  // The machine's [[step.cache]] store (data_dir/caches); null: caches are off.
  CacheStore* caches = nullptr;
  std::function<void(const std::string&)> log;  // the agent's own one-line log
};

enum class JobEnd {
  completed,     // the server took the final state
  abandoned,     // the lease was lost: stopped, nothing completed
  auth_refused,  // the server refused the agent token mid-job
};

class JobRunner {
 public:
  // `config` (data_dir, step_jobs, limits, checkout credentials...) must outlive the runner.
  JobRunner(boost::asio::io_context& io, HttpClient& client, const AgentConfig& config,
            JobRunnerWiring wiring, protocol::JobSpec job);
  ~JobRunner();

  // `done` runs once, on the io_context, when the job is over for the server (completed, or
  // abandoned): it no longer takes a slot. `released` runs once after it, when the runner holds
  // nothing more (at once, or when the last preview closed); the runner may be destroyed then.
  void start(std::function<void(JobEnd)> done, std::function<void()> released = {});

  // Instead of start(), for a claim the agent cannot run (its body unreadable, say; the job and
  // lease came in its headers): completes the job as `error` with `reason`, also in its log.
  void fail(const std::string& reason, std::function<void(JobEnd)> done,
            std::function<void()> released = {});

  // Stops the job and completes it as cancelled: running steps get SIGTERM and their grace
  // period (Grace::step), or are killed at once (Grace::none; also after a Grace::step).
  // After completion: closes the open previews.
  void cancel(Grace grace);

  // The job is no longer ours: stops every step at once and ends without completing it.
  // After completion: closes the open previews at once.
  void abandon();

  // True between `done` and `released`: the job completed, some of its previews are open.
  bool holding_previews() const;

  int64_t id() const;
  const protocol::JobSpec& spec() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
