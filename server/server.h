// Server: the assembled boxcar server. REST API, agent protocol, webhooks, metrics and the web
// UI on one HttpServer, over one Store, with the sweeper on a timer (lease expiry, artifact
// and job retention). Its own io_context runs on `threads` threads between start() and stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "http/http_server.h"
#include "server/api_tokens.h"
#include "server/metrics.h"
#include "server/store/store.h"

namespace boxcar::server {

// The HTTP server's defaults, with room for log uploads in a request body.
inline HttpServerOptions default_listener() {
  HttpServerOptions http;
  http.body_limit = 16 << 20;
  return http;
}

// Everything the server is told, built once (by `boxcar serve` from its flag table, or by a
// test) and read where it is needed, never copied field by field into other structs.
struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;                 // 0: any free port (see Server::port())
  // The listener, handed to the HTTP server as it is: http.tls set (load_tls_server_context)
  // means HTTPS only; http.limits caps connections per listener and per client address;
  // http.header_timeout and http.idle_timeout bound slow clients; http.body_limit caps every
  // request but webhooks (log uploads are the big ones).
  HttpServerOptions http = default_listener();
  std::string webhook_secret;           // empty: every webhook is refused (401)
  // GitLab sends its token in clear (X-Gitlab-Token), so it may differ from the HMAC secret of
  // GitHub and Gitea: a leaked GitLab token then forges no signature. Empty: webhook_secret.
  std::string gitlab_webhook_token;
  std::string agent_token;              // registers agents; empty: registration is refused (401)
  // Who may use the user API and the web UI (DESIGN.md section 6, server/auth.h). Empty: every
  // /api/v1 route but the agent protocol answers 401, and nobody can log in to the web UI.
  std::vector<ApiToken> api_tokens;
  bool public_read = false;             // anonymous GETs of jobs, logs, artifacts and UI pages
  // "https://ci.example.com": the name this server is reached by (its host passes the Host
  // allow-list; https makes the UI's cookie Secure). Empty: addresses and localhost only.
  std::string public_url;
  int64_t lease_ms = 60'000;            // a claim's lease; the sweeper runs every lease_ms/4
  int64_t max_claim_wait_ms = 30'000;   // cap on a claim's long poll
  int64_t recheck_ms = 1'000;           // held claims and log followers re-read the store this often
  size_t max_webhook_body = 1 << 20;    // larger deliveries get 413
  int threads = 2;
  // Also listen on a loopback port of its own (agent_url()) for in-process agents, with caps of
  // its own: a flood of the public listener cannot starve them.
  bool agent_listener = false;
  // Artifacts: blobs under artifact_dir/sha256/<ab>/<hash>, uploads spooled in artifact_dir/tmp.
  // Empty: artifact uploads are refused (503).
  std::filesystem::path artifact_dir;
  uint64_t artifact_max_file = 1ull << 30;        // per file (413 above)
  uint64_t artifact_max_job = 4ull << 30;         // per job, all files together (413 above)
  int64_t artifact_retention_ms = 30LL * 24 * 3600 * 1000;  // records older than this expire
  int64_t artifact_sweep_ms = 60'000;             // how often retention runs
  // [[step.cache]] entries agents saved, so another agent can restore them (api_caches.cc):
  // cache_dir/<repository id>/{keys,sha256}. Empty: cache routes answer 503. Past
  // cache_max_bytes (all repositories together) the least recently used entries go; a larger
  // entry is refused (413).
  std::filesystem::path cache_dir;
  uint64_t cache_max_bytes = 10ull << 30;
  // The queue and the logs (DESIGN.md section 6, "Queue semantics" and "Limits").
  int max_attempts = 3;                 // a new job's lost attempts before it ends as an error
  // A push to the repository's default branch does not cancel the older jobs of that branch
  // (supersede.h); other branches' and pull requests' are cancelled all the same.
  bool keep_superseded_on_default = false;
  // Finished jobs (with steps, logs, previews, artifacts) and webhook deliveries older than
  // this are deleted in batches by a sweep that runs twice per window, and at least every
  // artifact_sweep_ms. 0: kept forever.
  int64_t job_retention_ms = 90LL * 24 * 3600 * 1000;
  int64_t max_job_log = 64ll << 20;     // bytes of log per job; past it, a note and no more
  // Live log followers (GET .../logs?follow=1) held at once by this server: per job and per
  // client address; one more gets 429. 0: no cap.
  int max_followers_per_job = 100;
  int max_followers_per_client = 20;
  // Secrets kept by the server (api_secrets.cc): the AES-256-GCM key (32 bytes; empty: the
  // secret routes answer 503) and how many secrets one scope (server-wide, a repository) holds.
  std::string secrets_key;
  int max_secrets_per_scope = 100;
  // Commit statuses (forge_status_sender.h): each forge's token ("": its jobs' statuses are
  // given up, the job page saying why), GitHub's API root, and the origins ("https://host[:port]")
  // Gitea's and GitLab's tokens may go to. Their API roots come from the signed webhook, so
  // without a list a holder of the webhook secret could aim the token at a host of theirs
  // (SECURITY.md). Each request is bounded by status_timeout_ms; at most
  // status_max_in_flight go at once.
  std::string github_token, gitea_token, gitlab_token;
  std::string github_api_url = "https://api.github.com";
  std::vector<std::string> gitea_urls, gitlab_urls;
  int64_t status_timeout_ms = 10'000;
  int status_max_in_flight = 8;
  // The sandbox API (SANDBOXES.md §1.5): sandboxes at most on this server and per API token (a
  // token's max_sandboxes overrides the latter), and the cap on a sandbox's ttl_ms (also its
  // default; 0 asks for none, which the cap then refuses unless it is 0 too).
  int64_t max_sandboxes = 1000;
  int64_t max_sandboxes_per_token = 100;
  int64_t sandbox_max_ttl_ms = 24LL * 3600 * 1000;
  // An agent whose last sandbox sync is older than this is lost (--sandbox-lost-after): its
  // sandboxes read `lost`, get 503, and no new one is placed on it.
  int64_t sandbox_lost_after_ms = 15'000;
};

class Server {
 public:
  // The store must outlive the server, and be migrated. The server keeps its own copy of
  // `config`.
  Server(Store& store, const ServerConfig& config);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listen address and starts serving; an Error says why it could not.
  Status start();
  // Closes every connection, stops the sweeper and joins the threads. Idempotent.
  void stop();

  uint16_t port() const;      // the bound port, after start()
  std::string url() const;    // "http[s]://127.0.0.1:PORT": the listener's loopback URL
  // Where in-process agents connect: the agent listener's URL with options.agent_listener,
  // else url().
  std::string agent_url() const;
  Metrics& metrics();

  // Wakes held claims (use after enqueueing straight into the store, e.g. from the CLI).
  void notify_enqueued();

  struct State;  // opaque

 private:
  std::unique_ptr<State> state_;
};

}  // namespace boxcar::server
