// The agent protocol's server side (protocol/agent_protocol.h): registration with the shared
// token, the claim long poll (which hands out lease tokens), heartbeats, log and step uploads,
// completion; each authenticated by the agent's own credential (agent_identity.h).
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/random_token.h"
#include "base/run_state.h"
#include "base/sha256.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"
#include "server/agent_identity.h"
#include "server/api.h"
#include "server/rerun.h"

namespace boxcar::server {

namespace json = boost::json;
using namespace std::chrono;

namespace {

// The shared registration token (--agent-token), compared in constant time.
bool registration_authorized(const ApiContext& ctx, const HttpRequest& req) {
  return !ctx.options.agent_token.empty() &&
         constant_time_equal(bearer_token(req), ctx.options.agent_token);
}

HttpResponse registration_refused(const ApiContext& ctx) {
  if (ctx.options.agent_token.empty()) {
    return HttpResponse::error(401, "this server has no agent registration token: start it with "
                                    "--agent-token or BOXCAR_AGENT_TOKEN");
  }
  return HttpResponse::error(401, "missing or wrong registration token: send \"Authorization: "
                                  "Bearer <token>\" with the server's --agent-token");
}

// A new agent: its credential is made here and shown once; the store keeps its hash.
void register_agent(ApiContext& ctx, HttpRequest& req, Responder& res) {
  if (!registration_authorized(ctx, req)) return res.reply(registration_refused(ctx));
  auto body = protocol::from_json_text<protocol::RegisterRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto secret = random_token();  // 64 hex digits: parse_credential checks that length
  if (!secret) return res.reply(HttpResponse::error(500, secret.error().message));
  auto added = ctx.store.add_agent(body->name, body->labels, sha256_hex(*secret), now_ms());
  if (!added) return res.reply(store_error(added.error()));
  if (!*added) {
    // Taken: the name stays with its agent, which holds its own credential, so registering
    // with the shared token cannot take over another agent's jobs.
    auto other = ctx.store.agent_named(body->name);
    if (!other) return res.reply(store_error(other.error()));
    std::string id = *other ? std::to_string((*other)->id) : "?";
    if (*other && (*other)->revoked_at) {
      return res.reply(HttpResponse::error(
          409, "agent name \"" + body->name + "\" belongs to revoked agent " + id +
                   ": a revoked agent cannot register again; choose another --name, or free the "
                   "name with `boxcar agent forget " + body->name + "`"));
    }
    return res.reply(HttpResponse::error(
        409, "agent name \"" + body->name + "\" is already registered (agent " + id +
                 "): an agent keeps its credential in its --data directory, so start it with the "
                 "same --data; or choose another --name, or revoke the other (`boxcar agent "
                 "revoke " + body->name + "`)"));
  }
  protocol::RegisterResponse out{(*added)->id, (*added)->name,
                                 make_credential((*added)->id, *secret)};
  res.reply(HttpResponse::json(201, protocol::to_json(out)));
}

// Holds a claim until a job is claimable or the wait is over. Runs on the request's strand.
class ClaimWaiter : public std::enable_shared_from_this<ClaimWaiter> {
 public:
  ClaimWaiter(ApiContext& ctx, std::shared_ptr<Responder> res, const AgentRecord& agent,
              protocol::ClaimRequest req, std::string lease_token)
      : ctx_(ctx), res_(std::move(res)), req_(std::move(req)),
        lease_token_(std::move(lease_token)),
        holder_{agent.id, agent.name, sha256_hex(lease_token_)},
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
    // Revoked while the claim was held: it takes no job.
    auto agent = ctx_.store.agent(holder_.agent_id);
    if (!agent) return res_->reply(store_error(agent.error()));
    if (!*agent || (*agent)->revoked_at) {
      return res_->reply(HttpResponse::error(401, "agent \"" + holder_.agent + "\" was revoked"));
    }
    auto job = ctx_.store.claim(holder_, req_.labels, ctx_.options.lease_ms, now_ms());
    if (!job) return res_->reply(store_error(job.error()));
    if (*job) {
      ctx_.job_changed.notify();  // it is running now: its "running" commit status can go
      HttpResponse r = HttpResponse::json(200, protocol::to_json(claimed(**job)));
      // Also outside the body: an agent that cannot read it can still fail the job.
      r.headers.emplace_back(protocol::kJobHeader, std::to_string((*job)->id));
      r.headers.emplace_back(protocol::kLeaseHeader, lease_token_);
      return res_->reply(std::move(r));
    }
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
                              ctx_.options.lease_ms, lease_token_};
    r.job.fork = job.fork;
    describe_rerun(ctx_, job, r.job);
    return r;
  }

  ApiContext& ctx_;
  std::shared_ptr<Responder> res_;
  protocol::ClaimRequest req_;
  std::string lease_token_;  // fresh per claim; only its hash is stored, on the job it gets
  LeaseHolder holder_;
  steady_clock::time_point deadline_;
  std::shared_ptr<boost::asio::steady_timer> timer_;
  bool closed_ = false;
};

void claim(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto agent = agent_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&agent)) return res->reply(std::move(*refusal));
  auto body = protocol::from_json_text<protocol::ClaimRequest>(req.body());
  if (!body) return res->reply(HttpResponse::error(400, body.error().message));
  const auto& record = std::get<AgentRecord>(agent);
  if (body->labels != record.labels) {
    if (auto seen = ctx.store.agent_seen(record.id, body->labels, now_ms()); !seen) {
      return res->reply(store_error(seen.error()));
    }
  }
  auto lease_token = random_token();
  if (!lease_token) return res->reply(HttpResponse::error(500, lease_token.error().message));
  std::make_shared<ClaimWaiter>(ctx, std::move(res), record, std::move(*body), std::move(*lease_token))
      ->start();
}

void heartbeat(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
               Responder& res) {
  auto body = protocol::from_json_text<protocol::HeartbeatRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto beat = ctx.store.heartbeat(id, holder, ctx.options.lease_ms, now_ms());
  if (!beat) return res.reply(store_error(beat.error()));
  protocol::HeartbeatResponse out{beat->cancel_requested, !beat->lease_held};
  res.reply(HttpResponse::json(200, protocol::to_json(out)));
}

void upload_logs(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
                 Responder& res) {
  // Agents send bytes that are not UTF-8 as "data_base64"; an older agent sends them raw in
  // "data", which strict parsing would refuse, losing the whole batch. Either way they are kept.
  json::parse_options lenient;
  lenient.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  json::value parsed = json::parse(req.body(), ec, {}, lenient);
  if (ec) return res.reply(HttpResponse::error(400, "malformed JSON: " + ec.message()));
  auto body = protocol::from_json<protocol::LogUpload>(parsed);
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  int64_t stored = 0;
  bool held_checked = false;
  UnixMillis now = now_ms();
  for (const auto& c : body->chunks) {
    auto added = ctx.store.append_log(id, holder, LogChunk{c.step, c.seq, c.attempt, c.data, now, 0},
                                      ctx.options.max_job_log);
    if (!added) return res.reply(store_error(added.error()));
    if (*added) {
      ++stored;
      continue;
    }
    if (held_checked) continue;
    // false is a duplicate or a lost lease: the lease's holder tells them apart.
    auto held = ctx.store.holds_lease(id, holder);
    if (!held) return res.reply(store_error(held.error()));
    if (!*held) {
      if (stored > 0) ctx.job_changed.notify();
      return res.reply(lease_lost(id, holder));
    }
    held_checked = true;
  }
  if (stored > 0) ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"stored", stored}}));
}

void update_step(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
                 Responder& res) {
  auto body = protocol::from_json_text<protocol::StepUpdate>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  StepRecord step{body->name,         body->state,  body->exit_code, body->started_at,
                  body->finished_at,  body->reason, body->needs};
  auto held = ctx.store.update_step(id, holder, step);
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, holder));
  auto state = parse_step_state(step.state);
  bool finished = state && *state != StepState::pending && *state != StepState::running;
  if (finished && step.started_at && step.finished_at && *step.finished_at >= *step.started_at) {
    ctx.metrics.observe_step_duration(static_cast<double>(*step.finished_at - *step.started_at) /
                                      1000.0);
  }
  if (finished && body->egress_refused) ctx.metrics.set_egress_refused(id, step.name, *body->egress_refused);
  ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"ok", true}}));
}

void complete(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
              Responder& res) {
  auto body = protocol::from_json_text<protocol::CompleteRequest>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  if (!is_final_job_state(body->state)) {
    return res.reply(HttpResponse::error(
        400, "\"state\" must be success, failed, cancelled, error or skipped, not \"" +
                 body->state + "\""));
  }
  auto held = ctx.store.complete(id, holder, body->state, body->reason, now_ms());
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, holder));
  ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"ok", true}}));
}

// What the agent read in the pipeline (name, [on] cancel_superseded): a newer push's supersede
// check reads it (supersede.cc).
void report_pipeline(ApiContext& ctx, int64_t id, const LeaseHolder& holder, HttpRequest& req,
                     Responder& res) {
  auto body = protocol::from_json_text<protocol::PipelineReport>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  auto held = ctx.store.set_job_pipeline(id, holder, body->name, body->cancel_superseded);
  if (!held) return res.reply(store_error(held.error()));
  if (!*held) return res.reply(lease_lost(id, holder));
  ctx.job_changed.notify();
  res.reply(HttpResponse::json(200, json::object{{"ok", true}}));
}

}  // namespace

// The agent comes from its credential and the lease from the X-Boxcar-Lease header; the store
// call then checks both against the job's lease.
Handler job_route(ApiContext& ctx, JobHandler f) {
  return [&ctx, f](HttpRequest& req, std::shared_ptr<Responder> res) {
    auto holder = lease_holder_of_request(ctx, req);
    if (auto* refusal = std::get_if<HttpResponse>(&holder)) return res->reply(std::move(*refusal));
    auto id = parse_job_id(req.params["id"]);
    if (!id) return res->reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
    f(ctx, *id, std::get<LeaseHolder>(holder), req, *res);
  };
}

void add_agent_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::post, protocol::kAgentRegisterPath,
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               register_agent(ctx, req, *res);
             });
  router.add(http::verb::post, protocol::kAgentClaimPath,
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) {
               claim(ctx, req, std::move(res));
             });
  using protocol::agent_job_route;
  router.add(http::verb::post, agent_job_route(protocol::kHeartbeat), job_route(ctx, heartbeat));
  router.add(http::verb::post, agent_job_route(protocol::kLogs), job_route(ctx, upload_logs));
  router.add(http::verb::post, agent_job_route(protocol::kSteps), job_route(ctx, update_step));
  router.add(http::verb::post, agent_job_route(protocol::kComplete), job_route(ctx, complete));
  router.add(http::verb::post, agent_job_route(protocol::kPipeline), job_route(ctx, report_pipeline));
}

}  // namespace boxcar::server
