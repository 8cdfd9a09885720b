// SqliteStore's artifacts: records of the files agents uploaded, and their expiry.
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<bool> SqliteStore::holds_lease(int64_t id, const LeaseHolder& holder) {
  std::lock_guard lock(mu_);
  return lease_held(id, holder);
}

Result<bool> SqliteStore::add_artifact(int64_t id, const LeaseHolder& holder,
                                       const ArtifactRecord& a) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  auto held = lease_held(id, holder);
  if (!held || !*held) return held;
  SqliteQuery q(*this,
                "INSERT INTO artifacts (job_id, path, sha256, size, step, created_at, link_target)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, path) DO UPDATE SET"
                " sha256 = excluded.sha256, size = excluded.size, step = excluded.step,"
                " created_at = excluded.created_at, link_target = excluded.link_target");
  BOXCAR_RETURN_IF_ERROR(
      q.bind(id).bind(a.path).bind(a.sha256).bind(a.size).bind(a.step).bind(a.created_at).bind(a.link_target).run());
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return true;
}

Result<std::vector<ArtifactRecord>> SqliteStore::artifacts(int64_t id) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "SELECT path, sha256, size, step, created_at, link_target FROM artifacts WHERE job_id = ?"
                " ORDER BY path");
  q.bind(id);
  std::vector<ArtifactRecord> out;
  for (;;) {
    auto row = q.next();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back({q.text(0), q.text(1), q.i64(2), q.text(3), q.i64(4), q.text(5)});
  }
  return out;
}

Result<std::optional<ArtifactRecord>> SqliteStore::artifact(int64_t id, const std::string& path) {
  std::lock_guard lock(mu_);
  SqliteQuery q(*this,
                "SELECT path, sha256, size, step, created_at, link_target FROM artifacts"
                " WHERE job_id = ? AND path = ?");
  auto row = q.bind(id).bind(path).next();
  if (!row) return row.error();
  if (!*row) return std::optional<ArtifactRecord>();
  return std::optional<ArtifactRecord>(ArtifactRecord{q.text(0), q.text(1), q.i64(2), q.text(3), q.i64(4), q.text(5)});
}

Result<std::vector<std::string>> SqliteStore::expire_artifacts(UnixMillis older_than) {
  std::lock_guard lock(mu_);
  SqliteTransaction tx(db_);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  std::vector<std::string> hashes;
  {
    SqliteQuery q(*this, "SELECT DISTINCT sha256 FROM artifacts WHERE created_at < ?");
    q.bind(older_than);
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      hashes.push_back(q.text(0));
    }
  }
  {
    SqliteQuery q(*this, "DELETE FROM artifacts WHERE created_at < ?");
    BOXCAR_RETURN_IF_ERROR(q.bind(older_than).run());
  }
  std::vector<std::string> unreferenced;
  for (const auto& h : hashes) {
    SqliteQuery q(*this, "SELECT 1 FROM artifacts WHERE sha256 = ? LIMIT 1");
    auto row = q.bind(h).next();
    if (!row) return row.error();
    if (!*row) unreferenced.push_back(h);
  }
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return unreferenced;
}

}  // namespace boxcar::server
