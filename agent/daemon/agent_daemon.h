// AgentDaemon: the long-running agent. Registers with the server once (the shared token buys
// an agent credential, kept in the data directory and reused on restart), long-polls for jobs (a claim is sent again
// as soon as one is answered, and only while a slot is free), runs up to `concurrency` jobs at
// once with JobRunner, keeps their leases with Heartbeat, backs off while the server is
// unreachable, and drains on request. The same class runs inside `boxcar serve`, over
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

#include "agent/preview_publisher.h"
#include "agent/daemon/repo_pipeline.h"
#include "agent/step_limits.h"
#include "agent/daemon/workspace_watch.h"
#include "base/result.h"
#include "base/tls_client.h"
#include "executors/executor.h"

namespace boxcar::agent {

struct AgentOptions {
  std::string server;                    // "https://host:port" (http:// only to loopback)
  // Where to connect instead, when set: `boxcar serve` points its in-process agents at a
  // listener of their own. `server` still names the server (logs, the stored credential).
  std::string connect_url;
  std::string token;                     // the server's registration token (its --agent-token)
  std::shared_ptr<TlsClient> tls;        // how an https server is verified; null: system CAs
  // The name to register under; a stored registration keeps its own. "" = the stored one, or
  // <hostname>-<pid>-<random>.
  std::string name;
  std::vector<std::string> labels;       // a job's labels must all be among these
  size_t concurrency = 1;                // jobs at once
  // Completed jobs whose previews stay open, at most; 0 = `concurrency`. A lingering preview
  // holds a sandbox, a network and a workspace: without a cap, a few jobs with previews took
  // all the memory of a machine sized for `concurrency` jobs. The cap closes the oldest
  // previews rather than holding a job slot, which would stall the queue for up to a
  // preview_ttl behind every job with a preview.
  size_t max_previews = 0;
  size_t step_jobs = 0;                  // steps at once within a job; 0 = the CPU count
  std::filesystem::path data_dir;        // mirrors/, workspaces/, artifacts/, trash/ (all 0700),
                                         // agent-credential.json (0600)
  // Makes the executor the agent's jobs run on; empty = the host executor.
  std::function<std::unique_ptr<executors::Executor>(boost::asio::io_context&)> make_executor;
  StepLimits step_limits;                // every step's memory, pids, cpus, /tmp; preview_ttl
  WorkspaceLimits workspace_limits;      // each job's workspace: size and inodes
  bool keep_failed_workspaces = false;
  std::string git_token;                 // https checkout token (user "x-access-token"),
  std::vector<std::string> git_token_hosts;  // sent only to https:// URLs of these hosts
  std::filesystem::path ssh_key;         // ssh checkout key
  bool allow_local_repos = false;        // jobs may check out local paths and file:// URLs
  int claim_wait_ms = 25'000;            // how long the server may hold a claim
  Millis log_flush_interval{200};
  // Publishes the ports of [[step.expose]] steps (shared by every agent of a process; it must
  // outlive the daemon); null: jobs get plain http://localhost:PORT/ URLs.
  PreviewPublisher* previews = nullptr;
  pipeline::Limits pipeline_limits;      // what a repository's pipeline file may ask for
  ParserLimits parser_limits;            // the child process that parses it first
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
  AgentDaemon(boost::asio::io_context& io, AgentOptions options);
  ~AgentDaemon();
  AgentDaemon(const AgentDaemon&) = delete;
  AgentDaemon& operator=(const AgentDaemon&) = delete;

  // Starts claiming. An error (a bad server URL, a data directory that cannot be made) and
  // nothing started.
  Status start();

  // Claims no more; running jobs finish; open previews of completed jobs close; on_exit(Ok)
  // once none is left.
  void drain();

  // drain(), and running jobs are cancelled and completed as cancelled (a second call kills
  // their steps at once).
  void stop();

  const std::string& name() const;
  size_t running_jobs() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace boxcar::agent
