// Previews: the agent's sync of the previews it serves for a job (a full list each time, also
// after the job completed), and the users' list with each preview's state as of now (for a
// read token only: the URLs hold the tokens that open the previews).
#include <boost/json.hpp>

#include "base/rfc3339.h"
#include "protocol/agent_paths.h"
#include "protocol/agent_protocol.h"
#include "server/agent_identity.h"
#include "server/api.h"
#include "server/auth.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

// Once the job is final its agent re-sends its previews every few seconds while any is open
// (while the job runs it reports only changes, and a lost lease closes them). This much silence
// means the agent stopped, e.g. it died, and took its previews with it.
constexpr UnixMillis kSilentAgentMs = 30'000;

json::value preview_to_json(const PreviewRecord& p, const JobRecord& job, UnixMillis now) {
  return {{"step", p.step},
          {"name", p.name},
          {"port", p.port},
          {"url", p.url},
          {"path_url", p.path_url},
          {"state", preview_open(p, job, now) ? "open" : "closed"},
          {"opened_at", format_rfc3339(p.opened_at)},
          {"expires_at", rfc3339_or_null(p.expires_at)},
          {"closed_at", rfc3339_or_null(p.closed_at)}};
}

void sync(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto holder = lease_holder_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&holder)) return res.reply(std::move(*refusal));
  auto id = parse_job_id(req.params["id"]);
  if (!id) return res.reply(HttpResponse::error(404, "no such job: " + req.params["id"]));
  auto body = protocol::from_json_text<protocol::PreviewSync>(req.body());
  if (!body) return res.reply(HttpResponse::error(400, body.error().message));
  std::vector<PreviewRecord> open;
  open.reserve(body->previews.size());
  for (const auto& p : body->previews) {
    PreviewRecord r;
    r.step = p.step;
    r.name = p.name;
    r.port = p.port;
    r.url = p.url;
    r.path_url = p.path_url;
    r.expires_at = p.expires_at;
    open.push_back(std::move(r));
  }
  auto result = ctx.store.sync_previews(*id, std::get<LeaseHolder>(holder), open, now_ms());
  if (!result) return res.reply(store_error(result.error()));
  if (!result->accepted) return res.reply(lease_lost(*id, std::get<LeaseHolder>(holder)));
  protocol::PreviewSyncResponse answer{result->close_requested};
  res.reply(HttpResponse::json(200, protocol::to_json(answer)));
}

void list(ApiContext& ctx, HttpRequest& req, Responder& res) {
  auto job = job_of_request(ctx, req, res);
  if (!job) return;
  auto all = ctx.store.previews(job->id);
  if (!all) return res.reply(store_error(all.error()));
  UnixMillis now = now_ms();
  json::array out;
  for (const auto& p : *all) out.push_back(preview_to_json(p, *job, now));
  res.reply(HttpResponse::json(200, json::object{{"previews", std::move(out)}}));
}

}  // namespace

bool preview_open(const PreviewRecord& preview, const JobRecord& job, UnixMillis now) {
  if (preview.closed_at) return false;
  if (preview.expires_at && *preview.expires_at <= now) return false;
  return !(is_final_job_state(job.state) && preview.seen_at < now - kSilentAgentMs);
}

void add_preview_routes(Router& router, ApiContext& ctx) {
  router.add(http::verb::post, protocol::agent_job_route(protocol::kPreviews),
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { sync(ctx, req, *res); });
  router.add(http::verb::get, "/api/v1/jobs/{id}/previews",
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { list(ctx, req, *res); },
             // A preview's URL holds the token that opens it: never for anonymous callers,
             // --public-read or not.
             requires_scope(ctx, Scope::read));
}

}  // namespace boxcar::server
