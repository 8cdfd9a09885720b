// AgentConfig: what an agent is told to be, from the flags of `boxcar agent` (or of `boxcar
// serve`, for its in-process agents): built once by the CLI and passed by const reference to
// the daemon, which keeps one copy and hands it on to each job's runner. What the process
// wires in besides (the executor, the preview proxy, the log) is AgentWiring, in agent_daemon.h.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/daemon/repo_pipeline.h"
#include "agent/daemon/workspace_watch.h"
#include "agent/step_limits.h"
#include "base/duration.h"
#include "base/tls_client.h"
#include "pipeline/limits.h"

namespace boxcar::agent {

struct AgentConfig {
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
  size_t concurrency = 1;                // jobs at once; 0 only with sandbox_slots: a sandbox-only agent
  // Completed jobs whose previews stay open, at most; 0 = `concurrency`. A lingering preview
  // holds a sandbox, a network and a workspace: without a cap, a few jobs with previews took
  // all the memory of a machine sized for `concurrency` jobs. The cap closes the oldest
  // previews rather than holding a job slot, which would stall the queue for up to a
  // preview_ttl behind every job with a preview.
  size_t max_previews = 0;
  size_t step_jobs = 0;                  // steps at once within a job; 0 = the CPU count
  std::filesystem::path data_dir;        // mirrors/, workspaces/, artifacts/, trash/ (all 0700),
                                         // agent-credential.json (0600)
  StepLimits step_limits;                // every step's memory, pids, cpus, /tmp; preview_ttl
  // [[step.cache]] entries kept in data_dir/caches (--cache-size): least recently used go past it.
  uint64_t cache_max_bytes = 10ull << 30;
  WorkspaceLimits workspace_limits;      // each job's workspace: size and inodes
  bool keep_failed_workspaces = false;   // keep the workspace of a job that did not succeed
  std::string git_token;                 // https checkout token (user "x-access-token"),
  std::vector<std::string> git_token_hosts;  // sent only to https:// URLs of these hosts
  std::filesystem::path ssh_key;         // ssh checkout key
  bool allow_local_repos = false;        // jobs may check out local paths and file:// URLs
  int claim_wait_ms = 25'000;            // how long the server may hold a claim
  Millis log_flush_interval{200};
  Millis preview_report_interval{3'000};  // after a job completed, while its previews are open
  pipeline::Limits pipeline_limits;      // what a repository's pipeline file may ask for
  // The sandbox API (shared/SANDBOXES.md §1.1): sandboxes at most (--sandbox-slots; 0: hosting
  // off), the data plane's listen address (--sandbox-listen, validated by the CLI), the URL the
  // server reaches it at (--sandbox-advertise; "": http:// the bound listen address), and how
  // often the sync goes out when nothing changes.
  size_t sandbox_slots = 0;
  std::string sandbox_listen = "127.0.0.1:0";
  std::string sandbox_advertise;
  bool sandbox_git_allow_private = false;  // git checkouts may reach private addresses
  Millis sandbox_sync_interval{5'000};
  size_t sandbox_warm = 0;  // sandboxes of the default spec kept ready (--sandbox-warm)
  ParserLimits parser_limits;            // the child process that parses it first
};

}  // namespace boxcar::agent
