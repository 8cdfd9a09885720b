#include "server/supersede.h"

#include "server/api.h"

namespace boxcar::server {

std::string superseded_reason(int64_t newer, const NewJob& job) {
  return "superseded by job #" + std::to_string(newer) + " (" + job.event + " of " +
         job.commit.substr(0, 7) + ")";
}

bool is_default_branch(const std::string& ref, const std::string& default_branch) {
  if (default_branch.empty()) return false;
  return ref == default_branch || ref == "refs/heads/" + default_branch;
}

Result<std::vector<int64_t>> supersede_older(ApiContext& ctx, int64_t id, const NewJob& job) {
  if (job.event != "push" && job.event != "pull_request") return std::vector<int64_t>{};
  if (ctx.options.keep_superseded_on_default && is_default_branch(job.ref, job.default_branch)) {
    return std::vector<int64_t>{};
  }
  auto ids = ctx.store.supersede(id, superseded_reason(id, job), now_ms());
  if (ids && !ids->empty()) ctx.job_changed.notify();
  return ids;
}

}  // namespace boxcar::server
