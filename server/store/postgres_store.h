// PostgresStore: the store shared by several server replicas, over libpq with a small pool of
// connections opened on demand. Claims lock the chosen row with FOR UPDATE SKIP LOCKED, so
// agents on different servers never get one job and never wait on each other's claims.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/store/store.h"

namespace boxcar::server {

class PgConnection;
class PgSession;

class PostgresStore final : public Store {
 public:
  // `url` goes to PQconnectdb as it is. Opens one connection now, so a server that is down or a
  // bad URL is reported here; up to `max_connections` more are opened as callers need them.
  static Result<std::unique_ptr<PostgresStore>> open(const std::string& url,
                                                     int max_connections = 8);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

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
  friend class PgSession;
  PostgresStore(std::string url, std::string where, int max_connections);

  // Waits for an idle connection, or opens one while fewer than max_connections are open.
  Result<PgSession> session();
  void give_back(std::unique_ptr<PgConnection> connection);
  Result<int64_t> insert_job(const NewJob& job, const std::string& state,
                             const std::string& reason);

  const std::string url_;
  const std::string where_;  // "host:port", for error messages (never the password)
  const int max_connections_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_ = 0;
};

}  // namespace boxcar::server
