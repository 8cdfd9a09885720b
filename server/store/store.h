// Store: the server's durable state (jobs, steps, logs, artifacts, previews, webhook deliveries,
// agents and their leases) behind
// one interface with two real backends: SQLite (embedded default) and PostgreSQL (shared by
// several server replicas). Every method is safe to call from several threads; each backend
// serialises or pools connections as it needs. Times are unix milliseconds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/run_state.h"

namespace boxcar::server {

using UnixMillis = int64_t;

// Job and step states (contract, DESIGN.md section 6) are base/run_state.h's: kJobStates,
// is_final_job_state, kStepStates. Records keep them as their names, as the database does.

struct StepRecord {
  std::string name;
  std::string state = "pending";  // pending|running|success|failed|skipped|cancelled|timeout|oom|error
  std::optional<int> exit_code;
  std::optional<UnixMillis> started_at;
  std::optional<UnixMillis> finished_at;
  std::string reason;
  // The steps it waits for, as the agent expanded them (migration 9; the UI draws the graph
  // from them). An update that carries none keeps the ones stored.
  std::vector<std::string> needs;
};

// Where a job's commit lives on its forge (see NewJob::forge). A webhook's job always names
// its forge; the rest is there when the payload said it.
struct ForgeLink {
  std::string forge, repo, api, web_url;
  // Enough to post a commit status: GitHub's API root is the server's, the others' the job's.
  bool can_post_status() const {
    return !forge.empty() && !repo.empty() && (forge == "github" || !api.empty());
  }
  // The commit's page on the forge ("" without a web URL).
  std::string commit_url(const std::string& sha) const {
    if (web_url.empty() || sha.empty()) return "";
    return web_url + (forge == "gitlab" ? "/-/commit/" : "/commit/") + sha;
  }
};

struct NewJob {
  std::string repo;    // clone URL or local path
  std::string ref;     // "refs/heads/main", "main", or "" (the default branch)
  std::string commit;  // full sha, or "" (the tip of ref at checkout time)
  std::string file;    // pipeline file path in the repo, "" = .boxcar.toml then boxcar.toml
  std::map<std::string, std::string> env;
  std::string event = "manual";        // push | pull_request | tag | manual
  std::vector<std::string> labels;     // an agent must have all of them to claim the job
  int max_attempts = 3;                // lease expiries tolerated before the job is an error
  bool fork = false;                   // a pull request whose head is another repository
  std::string base_repo;               // a fork's pull request: the repository it proposes into
  // Where the job's commit statuses go and its commit links point (migration 9), from the
  // webhook; empty for jobs submitted through the API. forge: "github" | "gitea" | "gitlab".
  // forge_repo: "owner/name" (GitLab: the project's numeric id). forge_api: the API root for
  // Gitea and GitLab ("https://git.example.com/api/v1", ".../api/v4"); GitHub's is the server's
  // --github-api-url. web_url: the repository's web page ("https://github.com/o/r").
  ForgeLink forge;
  std::string default_branch;          // the repository's default branch, as the webhook said
  std::string status_context;          // "boxcar/<pipeline>": the commit status's context
  std::optional<int64_t> rerun_of;     // a re-run: the job it re-runs
  bool rerun_failed = false;           // ... only that job's failed steps and their dependents
};

struct JobRecord {
  int64_t id = 0;
  std::string state = "queued";
  std::string repo, ref, commit, file, event;
  std::map<std::string, std::string> env;
  std::vector<std::string> labels;
  int attempt = 1;
  int max_attempts = 3;
  UnixMillis created_at = 0;
  std::optional<UnixMillis> started_at;
  std::optional<UnixMillis> finished_at;
  std::string agent;                         // who holds the lease ("" when none)
  std::optional<UnixMillis> lease_expires_at;
  bool cancel_requested = false;
  std::string reason;                        // why it ended as it did (error, skipped, cancelled)
  int64_t log_bytes = 0;                     // bytes of log stored, every attempt together
  bool log_truncated = false;                // the log reached the server's cap: the rest dropped
  bool fork = false;                         // from a fork's pull request: gets no secrets
  std::string base_repo;                     // a fork's: the base's repository (its caches restore)
  // Migration 9, as NewJob's (forge statuses, re-runs), plus what the agent reported once it
  // parsed the pipeline (its `name`, `[on] cancel_superseded`; unset until then) and the newer
  // push that cancelled this job, if one did.
  ForgeLink forge;
  std::string default_branch;
  std::string status_context;
  std::optional<int64_t> rerun_of;
  bool rerun_failed = false;
  std::string pipeline_name;
  std::optional<bool> cancel_superseded;
  std::optional<int64_t> superseded_by;
  std::vector<StepRecord> steps;             // in the order the agent reported them
};

struct LogChunk {
  std::string step;
  int64_t seq = 0;       // per (job attempt, step, attempt) sequence number from the agent, from 0
  int attempt = 1;       // the step's attempt; 0 for the server's own notes
  std::string data;      // raw, already masked text
  UnixMillis at = 0;
  int64_t offset = 0;    // position of this chunk in the job's whole log, for ?offset=
};

// One stored artifact of a job: its bytes live content-addressed under the server's artifact
// directory (sha256/<ab>/<hash>), so identical files are stored once.
struct ArtifactRecord {
  std::string path;    // relative to the workspace, '/'-separated
  std::string sha256;  // lowercase hex
  int64_t size = 0;
  std::string step;
  UnixMillis created_at = 0;
  // Set: a symlink to this target text (read from the link's directory, never absolute, never
  // above the job's artifacts); sha256 is then empty and size 0, and no blob is kept.
  std::string link_target;
};

// A port a step exposed ([[step.expose]]) that an agent serves under a preview URL. Its agent
// keeps serving it after the job completed (until its TTL or a cancel), so the row names the
// agent: complete() clears the job's.
struct PreviewRecord {
  std::string step, name;
  int port = 0;
  std::string url, path_url, agent;
  UnixMillis opened_at = 0, seen_at = 0;  // first listed; last listed by the agent
  std::optional<UnixMillis> expires_at, closed_at;
};

struct PreviewSyncResult {
  bool accepted = false;          // false: not this agent's job (nothing was changed)
  bool close_requested = false;   // the user cancelled the job: close every preview
};

// A registered agent (DESIGN.md section 6, "Auth"): the shared agent token only registers
// one; from then on it authenticates with its own credential, of which only a hash is kept.
struct AgentRecord {
  int64_t id = 0;
  std::string name;                       // unique, also once revoked (until forgotten)
  std::vector<std::string> labels;        // as the agent last claimed with them
  std::string credential_hash;            // sha256 hex of the credential's secret
  UnixMillis created_at = 0;
  std::optional<UnixMillis> last_seen_at;
  std::optional<UnixMillis> revoked_at;   // set: its credential is refused
};

// Who reports for a job: an agent as its record says (never as a request's body says) and the
// sha256 of the lease token its claim was given. Every report for a job needs both to match the
// job's current lease, so a re-queued job's previous holder is refused once the job is claimed
// again, and one agent cannot report for another's job.
struct LeaseHolder {
  int64_t agent_id = 0;
  std::string agent;       // the agent's registered name: the job's `agent` while it holds it
  std::string lease_hash;  // sha256 hex of the claim's lease token; never empty
};

// A secret kept by the server (migration 6): its value only as AES-256-GCM ciphertext (the
// server's secret_box.h seals and opens it); the store never sees a plain value.
struct SecretRecord {
  std::string scope;       // "" = server-wide, else a repository as jobs store it
  std::string name;
  std::string nonce;       // 12 bytes
  std::string ciphertext;  // with its 16-byte tag
  UnixMillis created_at = 0, updated_at = 0;
};

enum class SecretPut { created, updated, scope_full };

// One commit status for a job's commit, in the store's outbox (forge_statuses): queued when the
// job changed state, delivered by the server's status sender with retries and backoff.
struct ForgeStatusRecord {
  int64_t id = 0;
  int64_t job_id = 0;
  std::string state;        // as the forge takes it: pending|success|failure|error (GitLab: running|failed|canceled)
  std::string description;
  UnixMillis created_at = 0;
  int attempts = 0;                          // deliveries tried
  std::optional<UnixMillis> next_attempt_at; // unset once it is delivered, given up or superseded
  std::optional<UnixMillis> delivered_at;
  std::string result;       // queued | delivered | failed (given up) | superseded (a newer one went)
  std::string last_error;   // why the last try failed ("" after a success)
  int last_http_status = 0; // the forge's answer to the last try (0: none)
};

// How one delivery of a claimed status ended (Store::finish_forge_status).
struct ForgeStatusOutcome {
  enum Kind { delivered, retry, failed } kind = failed;  // failed: given up, never sent again
  bool attempted = true;         // a request was sent (false: e.g. no token for that forge)
  int http_status = 0;           // the forge's answer (0: none came)
  std::string error;             // why it did not go ("" when delivered); never a token
  UnixMillis next_attempt_at = 0;  // retry: when

  // The metrics' label and the stored word for a kind: "delivered", "retry", "failed".
  static const char* name(Kind k) {
    return k == delivered ? "delivered" : k == retry ? "retry" : "failed";
  }
};

// Which jobs a list shows (GET /api/v1/jobs, the web UI's list), newest first.
struct JobQuery {
  std::string state;                 // "" = every state
  std::string repo;                  // "" = every repository (as jobs store it)
  std::string ref;                   // "" = every ref; "main" also matches "refs/heads/main"
  std::optional<int64_t> before_id;  // paging: only jobs with a smaller id
  int limit = 50;                    // <= 0: no limit
};

// What copy_reused_artifacts did.
struct ReuseCopy {
  enum class Outcome { copied, lease_lost, not_rerun_of, over_limit } outcome = Outcome::copied;
  std::vector<ArtifactRecord> records;  // copied: the job's new records, by path
  int64_t job_bytes = 0;                // over_limit: what the job would have held
};

struct PurgeResult {
  int64_t jobs = 0;                  // deleted
  int64_t deliveries = 0;            // deleted
  std::vector<std::string> unreferenced_hashes;  // artifact blobs no record refers to any more
};

struct HeartbeatResult {
  bool lease_held = false;        // false: the job is no longer this agent's: stop it
  bool cancel_requested = false;  // the user asked to cancel: stop it, complete as cancelled
  std::optional<UnixMillis> lease_expires_at;
};

// A sandbox of the sandbox API (migration 11, SANDBOXES.md §1.1): the server's record of what
// an agent hosts. `spec` is the create request as protocol::SandboxCreate's JSON (the store does
// not read it); `ports` the agent's last reported ports as a JSON array.
struct SandboxRecord {
  std::string id;          // [a-z2-7]{12}
  std::string owner;       // the API token's name
  std::string name;        // "" = unnamed; else unique per owner
  std::string state = "creating";  // creating | running | paused | stopped | error
  int64_t agent_id = 0;    // the agent hosting it (agents.id)
  std::string spec = "{}";
  std::map<std::string, std::string> labels;
  UnixMillis created_at = 0;
  UnixMillis last_active_at = 0;
  std::optional<UnixMillis> expires_at;  // created_at + ttl_ms; none when ttl_ms is 0
  int64_t ttl_ms = 0;
  int64_t sleep_after_ms = 0;
  int64_t stop_after_ms = 0;
  bool keep_alive = false;
  int64_t create_ms = 0;
  std::string ports = "[]";
  std::string error;
  std::string idempotency_key;  // "" = none; else unique per owner
};

// An agent's data plane as its last sandbox sync reported it.
struct SandboxAgentRecord {
  int64_t agent_id = 0;
  std::string endpoint;    // http://host:port
  std::string key;         // the data plane's bearer secret
  int64_t slots_free = 0;
  int64_t memory_free_bytes = 0;
  UnixMillis synced_at = 0;
  std::vector<std::string> labels;  // the agent's (agents.labels), read only
};

// What a sandbox insert is held to (SANDBOXES.md §1.5): sandboxes on the server, and per owner.
struct SandboxLimits {
  int64_t server = INT64_MAX;
  int64_t owner = INT64_MAX;
};
enum class SandboxInsert { inserted, exists, server_full, owner_full };

// GET /api/v1/sandboxes's filters; empty strings match everything.
struct SandboxQuery {
  std::string owner;       // "" = every owner (an admin token)
  std::string state;
  std::string name;
  std::string label_key, label_value;  // label_key set: labels[label_key] == label_value
  std::string after_id;    // paging: ids greater than this, ascending
  int limit = 100;
};

// One sandbox as an agent's sync reports it (the store's view of protocol::SandboxReport).
struct SandboxSyncItem {
  std::string id;
  std::string state;
  UnixMillis last_active_at = 0;
  std::string ports = "[]";
  std::string error;
};

class Store {
 public:
  virtual ~Store() = default;

  // Creates the schema or migrates it to the current version (versioned, idempotent).
  virtual Status migrate() = 0;

  virtual Result<int64_t> enqueue(const NewJob& job) = 0;
  // Records a job that is final at once (e.g. skipped by the pipeline's [on] filters).
  virtual Result<int64_t> record_final(const NewJob& job, const std::string& state,
                                       const std::string& reason) = 0;

  // Webhook delivery ids: true the first time (provider, id) is seen, false for a replay.
  virtual Result<bool> record_delivery(const std::string& provider, const std::string& delivery_id,
                                       const std::string& result) = 0;
  // What a delivery asks for, by content (e.g. "push <repo> <ref> <commit>"): true, and `key` is
  // stamped `now`, unless `key` was stamped less than `window_ms` before `now` (false: a replay,
  // whatever its delivery id or endpoint). Shares the deliveries table (provider "content").
  virtual Result<bool> record_webhook_content(const std::string& key, UnixMillis now,
                                              int64_t window_ms) = 0;

  virtual Result<std::optional<JobRecord>> job(int64_t id) = 0;
  // Newest first, with their steps; `state` empty = every state; `limit` <= 0 = no limit.
  Result<std::vector<JobRecord>> jobs(const std::string& state, int limit) {
    JobQuery query;
    query.state = state;
    query.limit = limit;
    return jobs(query);
  }
  virtual Result<std::map<std::string, int64_t>> count_by_state() = 0;

  // Atomically takes the oldest queued job whose labels the agent has: state running, lease
  // until now+lease_ms held by `holder` (its agent id, name and lease token hash), started_at
  // set on the first attempt. Two agents never get one job.
  virtual Result<std::optional<JobRecord>> claim(const LeaseHolder& holder,
                                                 const std::vector<std::string>& agent_labels,
                                                 int64_t lease_ms, UnixMillis now) = 0;
  // Extends the lease if `holder` still holds it.
  virtual Result<HeartbeatResult> heartbeat(int64_t id, const LeaseHolder& holder, int64_t lease_ms,
                                            UnixMillis now) = 0;
  // A running job whose lease expired goes back to queued with attempt+1, or to error once
  // attempt == max_attempts (reason "lease expired N times: agent lost"). A re-queued job's
  // steps are dropped (the next attempt reports its own); a job whose cancel was requested ends
  // cancelled instead. Either way the job's open previews are closed (the agent's sandboxes are
  // gone), and a note in the job's log (kJobLogStep, attempt 0) says which attempt was lost, on
  // which agent, and what happens next. Returns the ids re-queued or ended.
  virtual Result<std::vector<int64_t>> expire_leases(UnixMillis now) = 0;

  // queued -> cancelled at once; running -> cancel_requested (the agent learns it from its next
  // heartbeat). A final job with open previews (closed_at unset) gets cancel_requested too, its
  // state unchanged: its agent learns it from its next preview sync and closes them. Any other
  // final job is left as it is. Returns false if the job does not exist.
  virtual Result<bool> request_cancel(int64_t id, UnixMillis now) = 0;

  // Final state from the agent holding the lease; ignored (false) when it no longer holds it.
  // `state` must be success|failed|cancelled|error|skipped (skipped: the pipeline's [on] filters
  // did not match); anything else is an Error. Clears the lease (its holder and token hash stay
  // recorded, for the previews the agent still serves).
  virtual Result<bool> complete(int64_t id, const LeaseHolder& holder, const std::string& state,
                                const std::string& reason, UnixMillis now) = 0;

  // Inserts or updates a step by name (only from the agent holding the lease).
  virtual Result<bool> update_step(int64_t id, const LeaseHolder& holder, const StepRecord& step) = 0;

  // Appends a chunk; a chunk with the same (job, step, attempt, seq) is stored once, so a
  // retried upload is harmless. Returns false for a duplicate. `max_log_bytes` > 0 caps the job's
  // log: a chunk that would take log_bytes past it is dropped (false), and the first one dropped
  // is replaced by a note saying so (true; the job gets log_truncated).
  virtual Result<bool> append_log(int64_t id, const LeaseHolder& holder, const LogChunk& chunk,
                                  int64_t max_log_bytes) = 0;
  // Chunks in arrival order from byte `offset` of the job's log (all steps, or one step); a
  // chunk that straddles `offset` comes back cut to start there. `limit` <= 0 = no limit.
  virtual Result<std::vector<LogChunk>> logs(int64_t id, const std::string& step, int64_t offset,
                                             int limit) = 0;

  // True while `holder` holds the lease on running job `id` (checked before an upload's body).
  virtual Result<bool> holds_lease(int64_t id, const LeaseHolder& holder) = 0;
  // Records an artifact (only from the agent holding the lease; false otherwise). The same
  // path uploaded again replaces the record, so a retried upload is harmless.
  virtual Result<bool> add_artifact(int64_t id, const LeaseHolder& holder,
                                    const ArtifactRecord& artifact) = 0;
  // The job's artifacts, by path.
  virtual Result<std::vector<ArtifactRecord>> artifacts(int64_t id) = 0;
  virtual Result<std::optional<ArtifactRecord>> artifact(int64_t id, const std::string& path) = 0;
  // Deletes the records created before `older_than`; returns the hashes that no record refers
  // to any more (their blobs can go).
  virtual Result<std::vector<std::string>> expire_artifacts(UnixMillis older_than) = 0;

  // Retention: deletes up to `batch` final jobs that finished before `jobs_before`, with all
  // that is theirs (steps, log chunks, previews, artifact records), and up to `batch` webhook
  // deliveries received before `deliveries_before`, in one short transaction. Call it again
  // while it deletes whole batches. Queued and running jobs are never deleted.
  virtual Result<PurgeResult> purge(UnixMillis jobs_before, UnixMillis deliveries_before,
                                    int batch) = 0;

  // `open` is every preview `holder.agent` still serves for job `id` (the full state, not a
  // delta; the records' `agent`, `opened_at`, `seen_at` and `closed_at` are ignored). Accepted
  // while the holder holds the lease on the running job, or once the job is final when the
  // holder had its last lease (same agent, same token) and some preview row of the job names
  // this agent. Accepted, in one transaction: each listed preview is inserted or
  // updated by (step, name) with seen_at = now and closed_at cleared (opened_at kept, else now);
  // the job's other open previews get closed_at = now. Not accepted: nothing changes.
  virtual Result<PreviewSyncResult> sync_previews(int64_t id, const LeaseHolder& holder,
                                                  const std::vector<PreviewRecord>& open,
                                                  UnixMillis now) = 0;
  // Every preview of the job, open or closed, by step then name.
  virtual Result<std::vector<PreviewRecord>> previews(int64_t id) = 0;

  // Agents (migration 4). Registers an agent with the hash of its new credential; nullopt when
  // `name` is taken, by an active or a revoked agent (agent_named() tells which).
  virtual Result<std::optional<AgentRecord>> add_agent(const std::string& name,
                                                       const std::vector<std::string>& labels,
                                                       const std::string& credential_hash,
                                                       UnixMillis now) = 0;
  virtual Result<std::optional<AgentRecord>> agent(int64_t id) = 0;
  virtual Result<std::optional<AgentRecord>> agent_named(const std::string& name) = 0;
  // Every agent, revoked ones too, by id.
  virtual Result<std::vector<AgentRecord>> agents() = 0;
  // Records that the agent was heard from, with the labels it claims with.
  virtual Status agent_seen(int64_t id, const std::vector<std::string>& labels, UnixMillis now) = 0;
  // Revokes agent `id` (revoked_at = now; a second revoke keeps the first time) and ends its
  // leases: its running jobs' leases expire at `now`, so expire_leases(now) re-queues them (or
  // ends them past max_attempts). False when there is no such agent.
  virtual Result<bool> revoke_agent(int64_t id, UnixMillis now) = 0;
  // Deletes a revoked agent's record, which frees its name. False unless `id` is revoked.
  virtual Result<bool> forget_agent(int64_t id) = 0;

  // Secrets (migration 6). Inserts or replaces (scope, name) (created_at kept on a replace);
  // scope_full, with nothing written, when it is new and the scope already holds
  // `max_per_scope`.
  virtual Result<SecretPut> put_secret(const SecretRecord& secret, int max_per_scope) = 0;
  // False when there was no such secret.
  virtual Result<bool> delete_secret(const std::string& scope, const std::string& name) = 0;
  // The scope's secrets by name, ciphertexts included.
  virtual Result<std::vector<SecretRecord>> secrets(const std::string& scope) = 0;

  // ---- Forge statuses (issue 15; forge_statuses.*). The job's statuses, oldest first.
  virtual Result<std::vector<ForgeStatusRecord>> forge_statuses(int64_t job_id) = 0;
  // Rows are queued by the store itself (migration 10's triggers), in the transaction that
  // changes the job's state; a job's older queued rows become "superseded" then, and retention
  // deletes a job's rows with it. Takes up to `limit` queued statuses due by `now` for
  // `claimer` (a random token per sender) until now + `hold_ms`: each the newest of its job,
  // none of a job with another row still held, so servers sharing a database send each row
  // once and a job's statuses in order. Oldest due first.
  virtual Result<std::vector<ForgeStatusRecord>> claim_forge_statuses(const std::string& claimer,
                                                                      int limit, int64_t hold_ms,
                                                                      UnixMillis now) = 0;
  // Records how `claimer`'s delivery of status `id` went and releases it. A row superseded
  // meanwhile is not retried. False when `claimer` no longer holds it (nothing changed).
  virtual Result<bool> finish_forge_status(int64_t id, const std::string& claimer,
                                           const ForgeStatusOutcome& outcome, UnixMillis now) = 0;
  // Queued statuses, every job's (the /metrics gauge).
  virtual Result<int64_t> undelivered_forge_statuses() = 0;
  // The pipeline name (jobs.pipeline_name) last reported for a job of `repo` and `file`; "" when
  // none was: a webhook's job takes its status context from it before its own run reports one.
  virtual Result<std::string> last_pipeline_name(const std::string& repo,
                                                 const std::string& file) = 0;

  // ---- Re-runs (issue 15; sqlite_store_rerun.cc, postgres_store_rerun.cc).
  // A step of job `id` that the agent holding its lease reused from job `from` instead of
  // running it (a re-run of failed steps): copies `from`'s artifact records of step `step` to
  // `id` (the same content-addressed blobs: no bytes move; created_at = now, so retention counts
  // from the copy), in one transaction. Refused, with nothing copied, unless `id` is a re-run of
  // `from`'s failed steps (jobs.rerun_of = from, rerun_failed), or when the job's artifacts
  // would pass `max_job_bytes` (the same cap uploads have; a record replaced by path counts once).
  virtual Result<ReuseCopy> copy_reused_artifacts(int64_t id, const LeaseHolder& holder, int64_t from,
                                                  const std::string& step, int64_t max_job_bytes,
                                                  UnixMillis now) = 0;

  // ---- Superseded jobs and what the agent reports of the pipeline (issue 15).
  // What the agent holding the lease read in the job's pipeline: its `name` ("" when it has
  // none) and `[on] cancel_superseded`. False (nothing changed) unless it holds the lease.
  virtual Result<bool> set_job_pipeline(int64_t id, const LeaseHolder& holder,
                                        const std::string& name, bool cancel_superseded) = 0;
  // Cancels what webhook job `newer` (just queued, event push or pull_request) supersedes:
  // the queued and running jobs with a smaller id, the same event, repository and ref (a pull
  // request's also the same BOXCAR_PR_BASE), that are no re-run, unless their pipeline said
  // `[on] cancel_superseded = false` (a job not parsed yet: the value last reported for its
  // repository and file; none reported: true). In one transaction, each gets superseded_by =
  // `newer`, `reason` and a note in its log (kJobLogStep, attempt 0, kSupersededNoteSeq); a
  // queued one ends cancelled at once, a running one gets cancel_requested (its agent learns it
  // from its next heartbeat; when it completes as cancelled, `reason` stays). A job that ended
  // meanwhile is left as it ended. Returns the ids cancelled or asked to cancel, ascending.
  virtual Result<std::vector<int64_t>> supersede(int64_t newer, const std::string& reason,
                                                 UnixMillis now) = 0;

  // ---- Job lists with filters and paging (issue 15; the web UI and GET /api/v1/jobs).
  virtual Result<std::vector<JobRecord>> jobs(const JobQuery& query) = 0;

  // ---- Sandboxes (issue 16, migration 11; sqlite_store_sandboxes.cc, postgres_store_sandboxes.cc).
  // Inserts `sandbox` (its state as given, normally creating) when the server holds fewer than
  // limits.server sandboxes and its owner fewer than limits.owner: the counts and the insert are
  // one atomic step, so concurrent creates never overshoot a limit. Nothing is written unless
  // the answer is `inserted`; `exists`: its id, its owner's name or idempotency key is taken.
  virtual Result<SandboxInsert> insert_sandbox(const SandboxRecord& sandbox, const SandboxLimits& limits) = 0;
  // The same without limits: true when inserted.
  Result<bool> insert_sandbox(const SandboxRecord& sandbox) {
    auto r = insert_sandbox(sandbox, SandboxLimits{});
    if (!r) return r.error();
    return *r == SandboxInsert::inserted;
  }
  virtual Result<std::optional<SandboxRecord>> sandbox(const std::string& id) = 0;
  // The owner's sandbox named `name`, or the one created with idempotency key `key`.
  virtual Result<std::optional<SandboxRecord>> sandbox_named(const std::string& owner,
                                                             const std::string& name) = 0;
  virtual Result<std::optional<SandboxRecord>> sandbox_by_key(const std::string& owner,
                                                              const std::string& key) = 0;
  // Matching sandboxes by id, ascending, at most query.limit.
  virtual Result<std::vector<SandboxRecord>> sandboxes(const SandboxQuery& query) = 0;
  // Writes the mutable fields (state, agent_id, labels, last_active_at, expires_at, ttl_ms,
  // sleep_after_ms, stop_after_ms, keep_alive, create_ms, ports, error). False: no such id.
  virtual Result<bool> update_sandbox(const SandboxRecord& sandbox) = 0;
  // False: no such id.
  virtual Result<bool> delete_sandbox(const std::string& id) = 0;
  // How many sandboxes `owner` has ("" = everyone's).
  virtual Result<int64_t> count_sandboxes(const std::string& owner) = 0;
  // An agent's sync, in one transaction: its data-plane row is upserted (synced_at = now) and
  // each listed sandbox that the store has on this agent takes the reported state (a sandbox
  // still creating stays so: its create call decides), last_active_at, ports and error.
  // Returns the listed ids the store does not have on this agent: the agent deletes them.
  virtual Result<std::vector<std::string>> sync_sandboxes(const SandboxAgentRecord& agent,
                                                          const std::vector<SandboxSyncItem>& items,
                                                          UnixMillis now) = 0;
  // The data plane of one agent, or of every agent synced at or after `since`, with labels.
  virtual Result<std::optional<SandboxAgentRecord>> sandbox_agent(int64_t agent_id) = 0;
  virtual Result<std::vector<SandboxAgentRecord>> sandbox_agents(UnixMillis since) = 0;
  // Up to `limit` sandboxes whose expires_at passed by `now`, oldest first.
  virtual Result<std::vector<SandboxRecord>> expired_sandboxes(UnixMillis now, int limit) = 0;
};

// Opens a store from a --db URL: "sqlite:PATH" or "postgres://..." / "postgresql://...".
// Does not migrate.
Result<std::unique_ptr<Store>> open_store(const std::string& url);

}  // namespace boxcar::server
