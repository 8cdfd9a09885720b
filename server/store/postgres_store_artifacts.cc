// PostgresStore's artifacts: records of the files agents uploaded, and their expiry.
#include "server/store/migrations.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

namespace {

ArtifactRecord read_artifact(const PgRows& rows, int row) {
  return {rows.text(row, 0), rows.text(row, 1), rows.i64(row, 2), rows.text(row, 3),
          rows.i64(row, 4), rows.text(row, 5)};
}

}  // namespace

Result<bool> PostgresStore::holds_lease(int64_t id, const LeaseHolder& holder) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "SELECT 1 FROM jobs WHERE id = $1 AND state = 'running' AND agent_id = $2 AND lease_hash = $3",
      id, holder.agent_id, lease_hash(holder));
  if (!rows) return rows.error();
  return rows->size() > 0;
}

Result<bool> PostgresStore::add_artifact(int64_t id, const LeaseHolder& holder,
                                         const ArtifactRecord& a) {
  auto s = session();
  if (!s) return s.error();
  // One statement: the insert happens only while the agent holds the lease.
  auto rows = s->query(
      "INSERT INTO artifacts (job_id, path, sha256, size, step, created_at, link_target)"
      " SELECT id, $4, $5, $6, $7, $8, $9 FROM jobs"
      " WHERE id = $1 AND state = 'running' AND agent_id = $2 AND lease_hash = $3"
      " ON CONFLICT (job_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
      " step = excluded.step, created_at = excluded.created_at, link_target = excluded.link_target",
      id, holder.agent_id, lease_hash(holder), a.path, a.sha256, a.size, a.step, a.created_at,
      a.link_target);
  if (!rows) return rows.error();
  return rows->affected() > 0;
}

Result<std::vector<ArtifactRecord>> PostgresStore::artifacts(int64_t id) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "SELECT path, sha256, size, step, created_at, link_target FROM artifacts WHERE job_id = $1"
      " ORDER BY path COLLATE \"C\"",
      id);
  if (!rows) return rows.error();
  std::vector<ArtifactRecord> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(read_artifact(*rows, i));
  return out;
}

Result<std::optional<ArtifactRecord>> PostgresStore::artifact(int64_t id, const std::string& path) {
  auto s = session();
  if (!s) return s.error();
  auto rows = s->query(
      "SELECT path, sha256, size, step, created_at, link_target FROM artifacts WHERE job_id = $1 AND path = $2",
      id, path);
  if (!rows) return rows.error();
  if (rows->size() == 0) return std::optional<ArtifactRecord>();
  return std::optional<ArtifactRecord>(read_artifact(*rows, 0));
}

Result<std::vector<std::string>> PostgresStore::expire_artifacts(UnixMillis older_than) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto gone = s->query(
      "WITH d AS (DELETE FROM artifacts WHERE created_at < $1 RETURNING sha256)"
      " SELECT DISTINCT sha256 FROM d",
      older_than);
  if (!gone) return gone.error();
  std::vector<std::string> unreferenced;
  for (int i = 0; i < gone->size(); ++i) {
    std::string h = gone->text(i, 0);
    auto left = s->query("SELECT 1 FROM artifacts WHERE sha256 = $1 LIMIT 1", h);
    if (!left) return left.error();
    if (left->size() == 0) unreferenced.push_back(h);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return unreferenced;
}

}  // namespace boxcar::server
