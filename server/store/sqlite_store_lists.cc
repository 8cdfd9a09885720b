// SqliteStore's job lists: filtered by state, repository and ref, paged by id, newest first.
#include <string>
#include <vector>

#include "server/store/job_query_ref.h"
#include "server/store/sqlite_query.h"
#include "server/store/sqlite_store.h"

namespace boxcar::server {

Result<std::vector<JobRecord>> SqliteStore::jobs(const JobQuery& query) {
  std::lock_guard lock(mu_);
  RefForms ref = ref_forms(query.ref);
  std::vector<int64_t> ids;
  {
    // Only the filters asked for, so that SQLite plans each form on its own index (jobs_repo_ref
    // for a repository and its refs, jobs_state for a state); at most 8 forms stay prepared.
    std::string sql = "SELECT id FROM jobs WHERE id < ?";
    if (!query.state.empty()) sql += " AND state = ?";
    if (!query.repo.empty()) sql += " AND repo = ?";
    if (!ref.full.empty()) sql += " AND ref IN (?, ?)";
    sql += " ORDER BY id DESC LIMIT ?";
    SqliteQuery q(*this, sql.c_str());
    q.bind(query.before_id.value_or(INT64_MAX));
    if (!query.state.empty()) q.bind(query.state);
    if (!query.repo.empty()) q.bind(query.repo);
    if (!ref.full.empty()) q.bind(ref.full).bind(ref.short_name);
    q.bind(int64_t{query.limit > 0 ? query.limit : -1});
    for (;;) {
      auto row = q.next();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(q.i64(0));
    }
  }
  std::vector<JobRecord> result;
  for (int64_t id : ids) {
    auto job = load_job(id);
    if (!job) return job.error();
    if (*job) result.push_back(std::move(**job));
  }
  return result;
}

}  // namespace boxcar::server
