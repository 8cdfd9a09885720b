// SqliteStore: the embedded store, one SQLite file in WAL mode behind one connection and a mutex.
// Claims take the database's write lock (BEGIN IMMEDIATE), so even two processes sharing the
// file never get one job.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace boxcar::server {

class SqliteStore final : public Store {
 public:
  // Opens (creating it and its parent directories) the database at `path`; ":memory:" works too.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status migrate() override;
  Result<int64_t> enqueue(const NewJob& job) override;
  Result<int64_t> record_final(const NewJob& job, const std::string& state,
                               const std::string& reason) override;
  Result<bool> record_delivery(const std::string& provider, const std::string& delivery_id,
                               const std::string& result) override;
  Result<bool> record_webhook_content(const std::string& key, UnixMillis now,
                                      int64_t window_ms) override;
  Result<std::optional<JobRecord>> job(int64_t id) override;
  using Store::jobs;  // jobs(state, limit), built on the override below
  Result<std::vector<JobRecord>> jobs(const JobQuery& query) override;  // *_lists.cc
  Result<std::map<std::string, int64_t>> count_by_state() override;
  Result<std::optional<JobRecord>> claim(const LeaseHolder& holder,
                                         const std::vector<std::string>& agent_labels,
                                         int64_t lease_ms, UnixMillis now) override;
  Result<HeartbeatResult> heartbeat(int64_t id, const LeaseHolder& holder, int64_t lease_ms,
                                    UnixMillis now) override;
  Result<std::vector<int64_t>> expire_leases(UnixMillis now) override;
  Result<bool> request_cancel(int64_t id, UnixMillis now) override;
  Result<bool> complete(int64_t id, const LeaseHolder& holder, const std::string& state,
                        const std::string& reason, UnixMillis now) override;
  Result<bool> update_step(int64_t id, const LeaseHolder& holder, const StepRecord& step) override;
  Result<bool> set_job_pipeline(int64_t id, const LeaseHolder& holder, const std::string& name,
                                bool cancel_superseded) override;
  Result<std::vector<int64_t>> supersede(int64_t newer, const std::string& reason,
                                         UnixMillis now) override;
  Result<ReuseCopy> copy_reused_artifacts(int64_t id, const LeaseHolder& holder, int64_t from,
                                          const std::string& step, int64_t max_job_bytes,
                                          UnixMillis now) override;
  Result<bool> append_log(int64_t id, const LeaseHolder& holder, const LogChunk& chunk,
                          int64_t max_log_bytes) override;
  Result<std::vector<LogChunk>> logs(int64_t id, const std::string& step, int64_t offset,
                                     int limit) override;
  Result<bool> holds_lease(int64_t id, const LeaseHolder& holder) override;
  Result<bool> add_artifact(int64_t id, const LeaseHolder& holder,
                            const ArtifactRecord& artifact) override;
  Result<std::vector<ArtifactRecord>> artifacts(int64_t id) override;
  Result<std::optional<ArtifactRecord>> artifact(int64_t id, const std::string& path) override;
  Result<std::vector<std::string>> expire_artifacts(UnixMillis older_than) override;
  Result<PurgeResult> purge(UnixMillis jobs_before, UnixMillis deliveries_before,
                            int batch) override;
  Result<PreviewSyncResult> sync_previews(int64_t id, const LeaseHolder& holder,
                                          const std::vector<PreviewRecord>& open,
                                          UnixMillis now) override;
  Result<std::vector<PreviewRecord>> previews(int64_t id) override;
  Result<std::optional<AgentRecord>> add_agent(const std::string& name,
                                               const std::vector<std::string>& labels,
                                               const std::string& credential_hash,
                                               UnixMillis now) override;
  Result<std::optional<AgentRecord>> agent(int64_t id) override;
  Result<std::optional<AgentRecord>> agent_named(const std::string& name) override;
  Result<std::vector<AgentRecord>> agents() override;
  Status agent_seen(int64_t id, const std::vector<std::string>& labels, UnixMillis now) override;
  Result<bool> revoke_agent(int64_t id, UnixMillis now) override;
  Result<bool> forget_agent(int64_t id) override;
  Result<SecretPut> put_secret(const SecretRecord& secret, int max_per_scope) override;
  Result<bool> delete_secret(const std::string& scope, const std::string& name) override;
  Result<std::vector<SecretRecord>> secrets(const std::string& scope) override;
  Result<std::vector<ForgeStatusRecord>> forge_statuses(int64_t job_id) override;
  Result<std::vector<ForgeStatusRecord>> claim_forge_statuses(const std::string& claimer, int limit,
                                                              int64_t hold_ms,
                                                              UnixMillis now) override;
  Result<bool> finish_forge_status(int64_t id, const std::string& claimer,
                                   const ForgeStatusOutcome& outcome, UnixMillis now) override;
  Result<int64_t> undelivered_forge_statuses() override;
  Result<std::string> last_pipeline_name(const std::string& repo, const std::string& file) override;

  // Sandboxes: *_sandboxes.cc.
  using Store::insert_sandbox;
  Result<SandboxInsert> insert_sandbox(const SandboxRecord& sandbox, const SandboxLimits& limits) override;
  Result<std::optional<SandboxRecord>> sandbox(const std::string& id) override;
  Result<std::optional<SandboxRecord>> sandbox_named(const std::string& owner,
                                                     const std::string& name) override;
  Result<std::optional<SandboxRecord>> sandbox_by_key(const std::string& owner,
                                                      const std::string& key) override;
  Result<std::vector<SandboxRecord>> sandboxes(const SandboxQuery& query) override;
  Result<bool> update_sandbox(const SandboxRecord& sandbox) override;
  Result<bool> delete_sandbox(const std::string& id) override;
  Result<int64_t> count_sandboxes(const std::string& owner) override;
  Result<std::vector<std::string>> sync_sandboxes(const SandboxAgentRecord& agent,
                                                  const std::vector<SandboxSyncItem>& items,
                                                  UnixMillis now) override;
  Result<std::optional<SandboxAgentRecord>> sandbox_agent(int64_t agent_id) override;
  Result<std::vector<SandboxAgentRecord>> sandbox_agents(UnixMillis since) override;
  Result<std::vector<SandboxRecord>> expired_sandboxes(UnixMillis now, int limit) override;

 private:
  friend class SqliteQuery;
  explicit SqliteStore(sqlite3* db) : db_(db) {}

  // Prepared once per SQL text and reused; callers hold mu_.
  sqlite3_stmt* statement(const char* sql);
  Result<std::optional<JobRecord>> load_job(int64_t id);
  Result<int64_t> insert_job(const NewJob& job, const std::string& state,
                             const std::string& reason);
  // Appends one of the server's notes (log_notes.h) to the job's log; callers hold mu_, in a
  // transaction.
  Status append_note(int64_t id, int64_t job_attempt, int64_t seq, const std::string& text,
                     UnixMillis now);
  // True while `holder` holds the lease on running job `id`; callers hold mu_.
  Result<bool> lease_held(int64_t id, const LeaseHolder& holder);

  std::mutex mu_;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace boxcar::server
