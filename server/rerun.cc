// Re-runs (docs/api.md "Re-runs"): POST /api/v1/jobs/{id}/rerun queues a new job for a finished
// one's repository, commit, ref and event; with ?failed=1 the agent re-runs only the steps that
// did not succeed and what needs them, and reuses the others: their artifact records are copied
// from the old job (POST .../reuse) and their files fetched back into their layers (GET
// .../artifacts/{path}), so the steps that need them see them.
#include "server/rerun.h"

#include <algorithm>

#include <boost/json.hpp>

#include "base/run_state.h"
#include "base/safe_relative_path.h"
#include "protocol/agent_paths.h"
#include "protocol/rerun_protocol.h"
#include "server/agent_identity.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string job_name(int64_t id) { return "job " + std::to_string(id); }

// The refusals users get as 409 (the web UI's button shows them too).
Error refused(std::string message) { return Error{std::move(message), 0, ErrorCode::usage}; }

void rerun_route(ApiContext& ctx, HttpRequest& req, Responder& res) {
  std::string failed = req.query_or("failed", "0");
  if (failed != "0" && failed != "1" && failed != "true" && failed != "false") {
    return res.reply(HttpResponse::error(400, "?failed= takes 1 or 0 (true or false), not \"" + failed + "\""));
  }
  auto old = job_of_request(ctx, req, res);
  if (!old) return;
  bool failed_only = failed == "1" || failed == "true";
  auto id = rerun_job(ctx, *old, failed_only);
  if (!id) {
    bool refusal = id.error().code == ErrorCode::usage || id.error().code == ErrorCode::conflict;
    return res.reply(refusal ? HttpResponse::error(409, id.error().message) : store_error(id.error()));
  }
  HttpResponse r = HttpResponse::json(
      201, json::object{{"id", *id}, {"rerun_of", old->id}, {"failed_only", failed_only}});
  r.headers.emplace_back("Location", "/api/v1/jobs/" + std::to_string(*id));
  res.reply(std::move(r));
}

// A step the agent reused: the old job's artifact records of it become the job's (lease-checked,
// only from the job this one re-runs, within the job's artifact limit; all or nothing).
void reuse(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req, Responder& res) {
  auto v = protocol::parse_json(req.body());
  if (!v) return res.reply(HttpResponse::error(400, v.error().message));
  auto body = protocol::reuse_request_from_json(*v);
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto copy = ctx.store.copy_reused_artifacts(id, holder, body->from_job, body->step,
                                              static_cast<int64_t>(ctx.options.artifact_max_job), now_ms());
  if (!copy) return res.reply(store_error(copy.error()));
  switch (copy->outcome) {
    case ReuseCopy::Outcome::lease_lost: return res.reply(lease_lost(id, holder));
    case ReuseCopy::Outcome::not_rerun_of:
      return res.reply(HttpResponse::error(
          403, job_name(id) + " is not a re-run of " + job_name(body->from_job) +
                   "'s failed steps: a step is reused only from the job its claim named "
                   "(rerun_of); nothing was copied"));
    case ReuseCopy::Outcome::over_limit:
      return res.reply(HttpResponse::error(
          413, job_name(id) + " would hold " + std::to_string(copy->job_bytes) +
                   " bytes of artifacts with step \"" + body->step + "\"'s, over its limit of " +
                   std::to_string(ctx.options.artifact_max_job) + "; nothing was copied"));
    case ReuseCopy::Outcome::copied: break;
  }
  protocol::ReuseResponse out;
  for (const auto& a : copy->records) out.artifacts.push_back({a.path, a.sha256, a.size, a.link_target});
  res.reply(HttpResponse::json(200, protocol::to_json(out)));
}

// One of the job's own artifact files, for the agent holding its lease (a reused step's, to put
// back in its layer). Links are not served: the reuse answer names their targets.
void fetch_artifact(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req, Responder& res) {
  const std::string& path = req.params["path"];
  if (!safe_relative_path(path)) {
    return res.reply(HttpResponse::error(400, "artifact paths are relative, without \"..\" or \".\""));
  }
  auto held = ctx.store.holds_lease(id, holder);
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, holder));
  auto a = ctx.store.artifact(id, path);
  if (!a) return res.reply(store_error(a.error()));
  if (!*a || !(*a)->link_target.empty() || ctx.options.artifact_dir.empty()) {
    return res.reply(HttpResponse::error(404, job_name(id) + " has no artifact file " + path));
  }
  fs::path blob = blob_path(ctx, (*a)->sha256);
  std::error_code ec;
  uint64_t size = fs::file_size(blob, ec);
  if (ec) return res.reply(HttpResponse::error(410, "the artifact's content is gone: " + ec.message()));
  HttpResponse head;
  head.status = 200;
  head.content_type = "application/octet-stream";
  res.reply_file(std::move(head), blob, 0, size);
}

}  // namespace

bool has_failed_steps(const JobRecord& job) {
  return std::any_of(job.steps.begin(), job.steps.end(), [](const StepRecord& s) {
    return s.state != "success" && s.state != "skipped";
  });
}

Result<int64_t> rerun_job(ApiContext& ctx, const JobRecord& old, bool failed_only) {
  if (!is_final_job_state(old.state)) {
    return refused(job_name(old.id) + " is " + old.state +
                   ": only a finished job can be re-run (wait for it to end, or cancel it first)");
  }
  if (failed_only) {
    if (!has_failed_steps(old)) {
      return refused("nothing failed in " + job_name(old.id) + " (it ended " + old.state +
                     (old.steps.empty() ? " before any step ran" : " and every step succeeded") +
                     "): re-run it whole instead (without --failed)");
    }
    // The reused steps' outputs must be of the commit the re-run checks out.
    if (old.commit.empty()) {
      return refused(job_name(old.id) + " names no commit (it was submitted without one), so "
                     "its steps' results may be of another one: re-run it whole instead (without --failed)");
    }
  }
  NewJob job;
  job.repo = old.repo;
  job.ref = old.ref;
  job.commit = old.commit;
  job.file = old.file;
  job.env = old.env;
  job.event = old.event;
  job.labels = old.labels;
  job.max_attempts = ctx.options.max_attempts;
  job.fork = old.fork;  // a fork's job stays without secrets
  job.base_repo = old.base_repo;
  job.forge = old.forge;
  job.default_branch = old.default_branch;
  job.status_context = old.status_context;
  job.rerun_of = old.id;
  job.rerun_failed = failed_only;
  auto id = ctx.store.enqueue(job);
  if (!id) return id.error();
  ctx.queue_changed.notify();
  return *id;
}

void describe_rerun(ApiContext& ctx, const JobRecord& job, protocol::JobSpec& spec) {
  if (!job.rerun_of || !job.rerun_failed) return;
  auto old = ctx.store.job(*job.rerun_of);
  if (!old || !*old) return;  // gone (retention): nothing to reuse, every step runs
  spec.rerun_of = *job.rerun_of;
  for (const auto& s : (*old)->steps) spec.previous_steps[s.name] = s.state;
}

void add_rerun_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::post, "/api/v1/jobs/{id}/rerun",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { rerun_route(ctx, req, *res); },
             requires_scope(ctx, Scope::write));
  router.add(http::verb::post, protocol::agent_job_route(protocol::kReuse), job_route(ctx, reuse));
  router.add(http::verb::get, protocol::agent_job_route(protocol::kArtifacts) + "/{path...}",
             job_route(ctx, fetch_artifact));
}

}  // namespace boxcar::server
