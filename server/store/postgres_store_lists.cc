// PostgresStore's job lists: filtered by state, repository and ref, paged by id, newest first.
#include <map>
#include <string>
#include <vector>

#include "server/store/job_query_ref.h"
#include "server/store/pg_session.h"
#include "server/store/postgres_store.h"

namespace boxcar::server {

Result<std::vector<JobRecord>> PostgresStore::jobs(const JobQuery& query) {
  auto s = session();
  if (!s) return s.error();
  RefForms ref = ref_forms(query.ref);
  // An empty filter matches every row; PostgreSQL plans each call with its values (custom
  // plans), so a repository's list still walks jobs_repo_ref (repo, ref, id).
  static const std::string sql = std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE id < $1 AND ($2 = '' OR state = $2)"
                                 " AND ($3 = '' OR repo = $3) AND ($4 = '' OR ref IN ($4, $5))"
                                 " ORDER BY id DESC LIMIT $6";
  std::optional<int64_t> max_rows;
  if (query.limit > 0) max_rows = query.limit;
  auto rows = s->query(sql.c_str(), query.before_id.value_or(INT64_MAX), query.state, query.repo,
                       ref.full, ref.short_name, max_rows);
  if (!rows) return rows.error();
  std::vector<JobRecord> result;
  std::map<int64_t, size_t> index;
  std::string ids = "{";
  for (int i = 0; i < rows->size(); ++i) {
    result.push_back(read_job(*rows, i));
    index[result.back().id] = result.size() - 1;
    ids += (i ? "," : "") + std::to_string(result.back().id);
  }
  ids += "}";
  if (result.empty()) return result;
  auto steps = s->query(
      "SELECT job_id, name, state, exit_code, started_at, finished_at, reason, needs FROM steps"
      " WHERE job_id = ANY($1::bigint[]) ORDER BY job_id, position, name",
      ids);
  if (!steps) return steps.error();
  for (int i = 0; i < steps->size(); ++i) {
    result[index[steps->i64(i, 0)]].steps.push_back(read_step(*steps, i, 1));
  }
  return result;
}

}  // namespace boxcar::server
