// CONTRACT PLACEHOLDER (issue 15): the re-run branch replaces this file.
#include "server/api.h"

namespace boxcar::server {

Result<int64_t> rerun_job(ApiContext&, const JobRecord&, bool) {
  return Error{"re-runs are not built yet"};
}

}  // namespace boxcar::server
