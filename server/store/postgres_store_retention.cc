// PostgresStore's retention: old finished jobs (and all that is theirs) and old webhook
// deliveries deleted in small batches. Replicas sweeping at once take different rows.
#include <algorithm>

#include "server/store/pg_session.h"

namespace boxcar::server {

Result<PurgeResult> PostgresStore::purge(UnixMillis jobs_before, UnixMillis deliveries_before,
                                         int batch) {
  auto s = session();
  if (!s) return s.error();
  PgSession::Transaction tx(*s);
  BOXCAR_RETURN_IF_ERROR(tx.begin());
  PurgeResult result;
  auto old = s->query(
      "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1"
      " AND state IN ('success', 'failed', 'cancelled', 'error', 'skipped')"
      " ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED",
      jobs_before, int64_t{batch});
  if (!old) return old.error();
  std::vector<std::string> hashes;
  for (int i = 0; i < old->size(); ++i) {
    int64_t id = old->i64(i, 0);
    auto shas = s->query("SELECT DISTINCT sha256 FROM artifacts WHERE job_id = $1", id);
    if (!shas) return shas.error();
    for (int k = 0; k < shas->size(); ++k) hashes.push_back(shas->text(k, 0));
    // Steps, log chunks, previews and artifact records go with it (ON DELETE CASCADE).
    auto deleted = s->query("DELETE FROM jobs WHERE id = $1", id);
    if (!deleted) return deleted.error();
    result.jobs += deleted->affected();
  }
  std::sort(hashes.begin(), hashes.end());
  hashes.erase(std::unique(hashes.begin(), hashes.end()), hashes.end());
  for (const auto& hash : hashes) {
    auto left = s->query("SELECT 1 FROM artifacts WHERE sha256 = $1 LIMIT 1", hash);
    if (!left) return left.error();
    if (left->size() == 0) result.unreferenced_hashes.push_back(hash);
  }
  auto deliveries = s->query(
      "DELETE FROM deliveries WHERE ctid IN (SELECT ctid FROM deliveries"
      " WHERE received_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
      deliveries_before, int64_t{batch});
  if (!deliveries) return deliveries.error();
  result.deliveries = deliveries->affected();
  BOXCAR_RETURN_IF_ERROR(tx.commit());
  return result;
}

}  // namespace boxcar::server
