// The server's route tables, one installer per concern, and what they share: the store, the
// options, the metrics and the notifiers that wake held requests.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "http/http_server.h"
#include "server/log_followers.h"
#include "server/metrics.h"
#include "http/notifier.h"
#include "server/server.h"
#include "server/store/store.h"

namespace boxcar::server {

struct ApiContext {
  Store& store;
  const ServerConfig& options;
  Metrics& metrics;
  Notifier& queue_changed;  // a job was enqueued or re-queued: wakes held claims
  Notifier& job_changed;    // a log chunk or a job's final state: wakes log followers
  LogFollowers& followers;  // the live log followers held, against their caps
};

void add_job_routes(Router& router, ApiContext& ctx);      // api_jobs.cc
void add_log_routes(Router& router, ApiContext& ctx);      // api_logs.cc
void add_agent_routes(Router& router, ApiContext& ctx);    // api_agent.cc
void add_webhook_routes(Router& router, ApiContext& ctx);  // webhooks.cc
void add_web_ui_routes(Router& router, ApiContext& ctx);   // web_ui.cc
void add_artifact_routes(Router& router, ApiContext& ctx); // api_artifacts.cc
void add_cache_routes(Router& router, ApiContext& ctx);    // api_caches.cc
void add_preview_routes(Router& router, ApiContext& ctx);  // api_previews.cc
void add_agents_admin_routes(Router& router, ApiContext& ctx);  // api_agents.cc: list, revoke
void add_secret_routes(Router& router, ApiContext& ctx);  // api_secrets.cc: also the agent's

// Retention: deletes artifact records older than options.artifact_retention_ms and the blobs
// no record refers to any more (api_artifacts.cc). Returns the number of blobs removed.
size_t sweep_artifacts(ApiContext& ctx);
// Runs `expire` (store calls that delete artifact records and return the hashes no record
// refers to any more), then deletes those blobs, all under the lock that uploads place and
// record blobs under, so a blob is never deleted between an upload finding it and recording it.
size_t remove_unreferenced_blobs(ApiContext& ctx,
                                 const std::function<std::vector<std::string>()>& expire);
// Job retention (retention.cc): deletes up to a few batches of the finished jobs and webhook
// deliveries older than options.job_retention_ms, with their artifacts' blobs no other job
// refers to. Returns the number of jobs deleted; true in `more` when a batch was full.
int64_t sweep_job_retention(ApiContext& ctx, bool& more);

// Where an artifact's bytes are kept: artifact_dir/sha256/<ab>/<hash> (api_artifacts.cc).
std::filesystem::path blob_path(const ApiContext& ctx, const std::string& sha256);

// (The agent protocol's checks, for every agent route, are in agent_identity.h.)

// Whether a preview is still served as of `now` (api_previews.cc): not once its agent closed it
// or its TTL passed, nor once its job is final and the agent stopped re-sending it.
bool preview_open(const PreviewRecord& preview, const JobRecord& job, UnixMillis now);

// Re-run (issue 15, server/rerun.cc): queues a new job for `old`'s repository, commit, ref,
// event, file and env (and forge link); with `failed_only`, one that re-runs only the failed
// steps and what depends on them, taking the rest from `old`. Returns the new job's id; an
// Error with ErrorCode::usage when `old` cannot be re-run (e.g. it is still running).
Result<int64_t> rerun_job(ApiContext& ctx, const JobRecord& old, bool failed_only);
// POST /api/v1/jobs/{id}/rerun, and the agent's routes for reused steps (rerun.cc,
// protocol/rerun_protocol.h).
void add_rerun_routes(Router& router, ApiContext& ctx);

// Streams job `job`'s log from byte `offset` (of `step`, or every step when "") as server-sent
// events until the job is final (api_logs.cc): "log" events whose data is data(chunk, bytes),
// then an "end" event {state, reason}. Admitted against the follower caps like the API's
// follow=1 (429 when one is reached); the caller has authorized the request.
using LogEventData = std::function<boost::json::object(const LogChunk& chunk, std::string_view data)>;
void follow_job_log(ApiContext& ctx, const HttpRequest& req, std::shared_ptr<Responder> res,
                    int64_t job, const std::string& step, int64_t offset, LogEventData data);
// GET .../artifacts/{path...} for job {id}: the artifact's bytes (api_artifacts.cc); the caller
// has authorized the request.
void download_artifact(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res);

UnixMillis now_ms();
// format_rfc3339(*t) (base/rfc3339.h), or JSON null when there is no time.
boost::json::value rfc3339_or_null(const std::optional<UnixMillis>& t);
// The job as the API shows it (contract fields of DESIGN.md section 6, plus a few).
boost::json::value job_to_json(const JobRecord& job);
// A {id} capture as a job id; nullopt unless it is a positive integer.
std::optional<int64_t> parse_job_id(const std::string& text);
// 500 {"error": ...} for a store failure.
HttpResponse store_error(const Error& error);
// The job the request's {id} names; nullopt once `res` was answered 404 (a bad or unknown id)
// or 500 (the store failed).
std::optional<JobRecord> job_of_request(ApiContext& ctx, HttpRequest& req, Responder& res);

}  // namespace boxcar::server
