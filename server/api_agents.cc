// The admin routes over registered agents: GET /api/v1/agents lists them, POST
// /api/v1/agents/{id}/revoke revokes one (its credential stops working at once and its running
// jobs are re-queued), POST /api/v1/agents/{id}/forget deletes a revoked one's record so its
// name can be registered again.
#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "server/agent_identity.h"
#include "server/api.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

json::value agent_to_json(const AgentRecord& a) {
  json::array labels;
  for (const auto& l : a.labels) labels.emplace_back(l);
  return {{"id", a.id},
          {"name", a.name},
          {"labels", std::move(labels)},
          {"state", a.revoked_at ? "revoked" : "active"},
          {"created_at", format_rfc3339(a.created_at)},
          {"last_seen_at", rfc3339_or_null(a.last_seen_at)},
          {"revoked_at", rfc3339_or_null(a.revoked_at)}};
}

// The agent the {id} capture names; nullopt once `res` was answered (401, 404, 500).
std::optional<AgentRecord> admin_agent_of_request(ApiContext& ctx, HttpRequest& req,
                                                  Responder& res) {
  if (auto refused = authorize(ctx, req, Scope::admin)) {
    res.reply(std::move(*refused));
    return std::nullopt;
  }
  auto id = parse_job_id(req.params["id"]);  // the same rule: a positive integer
  auto agent = id ? ctx.store.agent(*id) : Result<std::optional<AgentRecord>>(std::nullopt);
  if (!agent) {
    res.reply(store_error(agent.error()));
    return std::nullopt;
  }
  if (!*agent) {
    res.reply(HttpResponse::error(404, "no agent with id " + req.params["id"] +
                                           " (`boxcar agents` lists them)"));
    return std::nullopt;
  }
  return **agent;
}

void list(ApiContext& ctx, HttpRequest& req, Responder& res) {
  if (auto refused = authorize(ctx, req, Scope::admin)) return res.reply(std::move(*refused));
  auto all = ctx.store.agents();
  if (!all) return res.reply(store_error(all.error()));
  json::array out;
  for (const auto& a : *all) out.push_back(agent_to_json(a));
  res.reply(HttpResponse::json(200, json::object{{"agents", std::move(out)}}));
}

void revoke(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto agent = admin_agent_of_request(ctx, req, res);
  if (!agent) return;
  UnixMillis now = now_ms();
  auto revoked = ctx.store.revoke_agent(agent->id, now);
  if (!revoked) return res.reply(store_error(revoked.error()));
  // Its leases ended at `now`: re-queue its running jobs at once rather than at the sweep.
  auto released = ctx.store.expire_leases(now);
  if (!released) return res.reply(store_error(released.error()));
  if (!released->empty()) {
    ctx.queue_changed.notify();
    ctx.job_changed.notify();
  }
  auto after = ctx.store.agent(agent->id);
  if (!after) return res.reply(store_error(after.error()));
  res.reply(HttpResponse::json(200, *after ? agent_to_json(**after) : agent_to_json(*agent)));
}

void forget(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto agent = admin_agent_of_request(ctx, req, res);
  if (!agent) return;
  auto forgotten = ctx.store.forget_agent(agent->id);
  if (!forgotten) return res.reply(store_error(forgotten.error()));
  if (!*forgotten) {
    return res.reply(HttpResponse::error(
        409, "agent \"" + agent->name + "\" is not revoked: revoke it first (`boxcar agent revoke " +
                 agent->name + "`)"));
  }
  res.reply(HttpResponse::json(200, json::object{{"forgotten", agent->id}, {"name", agent->name}}));
}

}  // namespace

void add_agents_admin_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::get, "/api/v1/agents",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, *res); });
  router.add(http::verb::post, "/api/v1/agents/{id}/revoke",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { revoke(ctx, req, *res); });
  router.add(http::verb::post, "/api/v1/agents/{id}/forget",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { forget(ctx, req, *res); });
}

}  // namespace boxcar::server
