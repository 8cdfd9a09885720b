// The agent protocol's server side (protocol/agent_protocol.h): bearer-token auth, the claim
// long poll, heartbeats, log and step uploads, completion.
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "protocol/agent_protocol.h"
#include "server/api.h"
#include "server/webhook_signature.h"

namespace boxcar::server {

namespace json = boost::json;
using namespace std::chrono;

namespace {

bool authorized(const ApiContext& ctx, const HttpRequest& req) {
  std::string given = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (ctx.options.agent_token.empty() || given.compare(0, kBearer.size(), kBearer) != 0) {
    return false;
  }
  return constant_time_equal(std::string_view(given).substr(kBearer.size()),
                             ctx.options.agent_token);
}

HttpResponse unauthorized(const ApiContext& ctx) {
  if (ctx.options.agent_token.empty()) {
    return HttpResponse::error(401, "this server has no agent token: start it with "
                                    "--agent-token or BOXCAR_AGENT_TOKEN");
  }
  return HttpResponse::error(401, "missing or wrong agent token: send "
                                  "\"Authorization: Bearer <token>\" with the server's token");
}

HttpResponse lease_lost(int64_t id, const std::string& agent) {
  return HttpResponse::error(409, "agent \"" + agent + "\" does not hold the lease on job " +
                                      std::to_string(id) +
                                      " (it expired, or the job ended): stop the job");
}

// Holds a claim until a job is claimable or the wait is over. Runs on the request's strand.
class ClaimWaiter : public std::enable_shared_from_this<ClaimWaiter> {
 public:
  ClaimWaiter(ApiContext& ctx, std::shared_ptr<Responder> res, protocol::ClaimRequest req)
      : ctx_(ctx), res_(std::move(res)), req_(std::move(req)),
        deadline_(steady_clock::now() +
                  milliseconds(std::min<int64_t>(req_.wait_ms, ctx.options.max_claim_wait_ms))),
        timer_(std::make_shared<boost::asio::steady_timer>(res_->executor())) {}

  void start() {
    res_->on_close([self = shared_from_this()] {
      self->closed_ = true;
      self->timer_->cancel();
    });
    try_claim();
  }

 private:
  void try_claim() {
    if (closed_ || res_->closed()) return;  // nobody to hand a job to: leave it queued
    uint64_t seen = ctx_.queue_changed.generation();
    auto job = ctx_.store.claim(req_.agent, req_.labels, ctx_.options.lease_ms, now_ms());
    if (!job) return res_->reply(store_error(job.error()));
    if (*job) return res_->reply(HttpResponse::json(200, protocol::to_json(claimed(**job))));
    auto left = duration_cast<milliseconds>(deadline_ - steady_clock::now());
    if (left.count() <= 0) return res_->reply(HttpResponse::text(204, "", ""));
    auto wait = std::min(left, milliseconds(ctx_.options.recheck_ms));
    wait_notified(ctx_.queue_changed, seen, timer_, wait,
                  [self = shared_from_this()] { self->try_claim(); });
  }

  protocol::ClaimResponse claimed(const JobRecord& job) const {
    protocol::ClaimResponse r;
    r.job = protocol::JobSpec{job.id,    job.attempt, job.repo, job.ref,
                              job.commit, job.file,   job.event, job.env,
                              ctx_.options.lease_ms};
    return r;
  }

  ApiContext& ctx_;
  std::shared_ptr<Responder> res_;
  protocol::ClaimRequest req_;
  steady_clock::time_point deadline_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
  bool closed_ = false;
};

void claim(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto body = protocol::from_json_text<protocol::ClaimRequest>(req.body());
  if (!body) return res->reply(HttpResponse::error(400, body.error().message));
  std::make_shared<ClaimWaiter>(ctx, std::move(res), std::move(*body))->start();
}

void heartbeat(ApiContext& ctx, int64_t id, HttpRequest& req, Responder& res) {
  auto body = protocol::from_json_text<protocol::HeartbeatRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto beat = ctx.store.heartbeat(id, body->agent, ctx.options.lease_ms, now_ms());
  if (!beat) return res.reply(store_error(beat.error()));
  protocol::HeartbeatResponse out{beat->cancel_requested, !beat->lease_held};
  res.reply(HttpResponse::json(200, protocol::to_json(out)));
}

void upload_logs(ApiContext& ctx, int64_t id, HttpRequest& req, Responder& res) {
  auto body = protocol::from_json_text<protocol::LogUpload>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  int64_t stored = 0;
  bool held_checked = false;
  UnixMillis now = now_ms();
  for (const auto& c : body->chunks) {
    auto added = ctx.store.append_log(id, body->agent, LogChunk{c.step, c.seq, c.attempt, c.data, now, 0});
    if (!added) return res.reply(store_error(added.error()));
    if (*added) {
      ++stored;
      continue;
    }
    if (held_checked) continue;
    // false is a duplicate or a lost lease: the job's holder tells them apart.
    auto job = ctx.store.job(id);
    if (!job) return res.reply(store_error(job.error()));
    if (!*job || (*job)->state != "running" || (*job)->agent != body->agent) {
      if (stored > 0) ctx.job_changed.notify();
      return res.reply(lease_lost(id, body->agent));
    }
    held_checked = true;
  }
  if (stored > 0) ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"stored", stored}}));
}

void update_step(ApiContext& ctx, int64_t id, HttpRequest& req, Responder& res) {
  auto body = protocol::from_json_text<protocol::StepUpdate>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  StepRecord step{body->name, body->state, body->exit_code, body->started_at, body->finished_at,
                  body->reason};
  auto held = ctx.store.update_step(id, body->agent, step);
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, body->agent));
  bool finished = step.state != "pending" && step.state != "running";
  if (finished && step.started_at && step.finished_at && *step.finished_at >= *step.started_at) {
    ctx.metrics.observe_step_duration(static_cast<double>(*step.finished_at - *step.started_at) /
                                      1000.0);
  }
  ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"ok", true}}));
}

void complete(ApiContext& ctx, int64_t id, HttpRequest& req, Responder& res) {
  auto body = protocol::from_json_text<protocol::CompleteRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  if (!is_final_job_state(body->state)) {
    return res.reply(HttpResponse::error(
        400, "\"state\" must be success, failed, cancelled, error or skipped, not \"" +
                 body->state + "\""));
  }
  auto held = ctx.store.complete(id, body->agent, body->state, body->reason, now_ms());
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, body->agent));
  ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"ok", true}}));
}

using JobHandler = void (*)(ApiContext&, int64_t, HttpRequest&, Responder&);

Handler job_route(ApiContext& ctx, JobHandler f) {
  return [&ctx, f](HttpRequest& req, std::shared_ptr<Responder> res) {
    if (!authorized(ctx, req)) return res->reply(unauthorized(ctx));
    auto id = parse_job_id(req.params["id"]);
    if (!id) return res->reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
    f(ctx, *id, req, *res);
  };
}

}  // namespace

bool agent_authorized(const ApiContext& ctx, const HttpRequest& req) { return authorized(ctx, req); }
HttpResponse agent_unauthorized(const ApiContext& ctx) { return unauthorized(ctx); }
HttpResponse agent_lease_lost(int64_t id, const std::string& agent) { return lease_lost(id, agent); }

void add_agent_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::post, "/api/v1/agent/claim",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               if (!authorized(ctx, req)) return res->reply(unauthorized(ctx));
               claim(ctx, req, std::move(res));
             });
  router.add(http::verb::post, "/api/v1/agent/jobs/{id}/heartbeat", job_route(ctx, heartbeat));
  router.add(http::verb::post, "/api/v1/agent/jobs/{id}/logs", job_route(ctx, upload_logs));
  router.add(http::verb::post, "/api/v1/agent/jobs/{id}/steps", job_route(ctx, update_step));
  router.add(http::verb::post, "/api/v1/agent/jobs/{id}/complete", job_route(ctx, complete));
}

}  // namespace boxcar::server
