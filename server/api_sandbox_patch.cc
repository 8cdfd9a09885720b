// PATCH /api/v1/sandboxes/{id}: ttl_ms and labels are the server's alone; sleep_after_ms,
// stop_after_ms and keep_alive are acted on by the agent (pause and stop, SANDBOXES.md §1.3), so
// a change to them goes to the agent first (PATCH /agent/v1/sandboxes/{id}, SandboxTimers) and
// the row is written only once the agent took it. An agent that is lost or unreachable gets
// 503 sandbox_unavailable and the row stays as it was: the stored timers never claim what the
// agent does not do (it keeps them in its meta.json, which the server cannot write).
#include <boost/json.hpp>

#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/api_sandboxes.h"
#include "server/sandbox_fields.h"
#include "server/sandbox_json.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

HttpResponse bad(std::string_view message, std::string_view field = {}) {
  return sandbox_bad_request(message, field);
}

// The body applied to `s`, checked; the answer refusing it otherwise.
std::optional<HttpResponse> apply_patch(const ApiContext& ctx, const HttpRequest& req, SandboxRecord& s) {
  auto body = protocol::parse_json(req.body());
  if (!body) return bad("the body is not JSON: " + body.error().message);
  if (!body->is_object()) return bad("the body must be a JSON object");
  protocol::JsonReader reader(*body);
  reader.known({"ttl_ms", "sleep_after_ms", "stop_after_ms", "keep_alive", "labels"});
  reader.optional("keep_alive", s.keep_alive).optional("labels", s.labels);
  if (!reader.ok()) return bad(reader.error().message, reader.error_field());
  const auto& o = body->as_object();
  if (auto refused = check_sandbox_labels(s.labels)) return refused;
  if (auto refused = read_sandbox_ms(o, "sleep_after_ms", s.sleep_after_ms)) return refused;
  if (auto refused = read_sandbox_ms(o, "stop_after_ms", s.stop_after_ms)) return refused;
  if (o.contains("ttl_ms") && !o.at("ttl_ms").is_null()) {
    if (auto refused = read_sandbox_ms(o, "ttl_ms", s.ttl_ms)) return refused;
    if (auto refused = check_sandbox_ttl(ctx, s.ttl_ms)) return refused;
    // The TTL counts from creation, as on create.
    s.expires_at = s.ttl_ms > 0 ? std::optional<UnixMillis>(s.created_at + s.ttl_ms) : std::nullopt;
  }
  return std::nullopt;
}

// `patched` was read before the agent call: the row is read again and only what PATCH sets is
// copied onto it, so a sync that landed meanwhile (state, ports, last_active_at) is kept.
void store_and_answer(ApiContext& ctx, const SandboxRecord& patched, const std::shared_ptr<Responder>& res) {
  auto current = ctx.store.sandbox(patched.id);
  if (!current) return res->reply(store_error(current.error()));
  if (!*current) {
    return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "no such sandbox: " + patched.id));
  }
  SandboxRecord s = std::move(**current);
  s.labels = patched.labels;
  s.ttl_ms = patched.ttl_ms;
  s.expires_at = patched.expires_at;
  s.sleep_after_ms = patched.sleep_after_ms;
  s.stop_after_ms = patched.stop_after_ms;
  s.keep_alive = patched.keep_alive;
  auto updated = ctx.store.update_sandbox(s);
  if (!updated) return res->reply(store_error(updated.error()));
  if (!*updated) {
    return res->reply(HttpResponse::error_code(404, "sandbox_not_found", "no such sandbox: " + s.id));
  }
  SandboxJson agents(ctx);
  res->reply(HttpResponse::json(200, agents.of(s, now_ms())));
}

}  // namespace

void patch_sandbox(ApiContext& ctx, SandboxAgentCalls& calls, HttpRequest& req,
                   std::shared_ptr<Responder> res) {
  auto caller_or = sandbox_caller(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&caller_or)) return res->reply(std::move(*refused));
  const auto& caller = std::get<SandboxCaller>(caller_or);
  auto found = owned_sandbox(ctx, caller, req.params["id"]);
  if (auto* refused = std::get_if<HttpResponse>(&found)) return res->reply(std::move(*refused));
  const SandboxRecord& before = std::get<SandboxRecord>(found);
  SandboxRecord s = before;
  if (auto refused = apply_patch(ctx, req, s)) return res->reply(std::move(*refused));
  bool timers_changed = s.sleep_after_ms != before.sleep_after_ms ||
                        s.stop_after_ms != before.stop_after_ms || s.keep_alive != before.keep_alive;
  if (!timers_changed) return store_and_answer(ctx, s, res);

  if (s.state == "creating") {
    return res->reply(HttpResponse::error_code(
        409, "not_running", "sandbox " + s.id + " is still being created: patch its timers once it is up"));
  }
  auto agent = ctx.store.sandbox_agent(s.agent_id);
  if (!agent) return res->reply(store_error(agent.error()));
  if (!*agent || visible_state(s, *agent, now_ms(), ctx.options.sandbox_lost_after_ms) == "lost") {
    return res->reply(HttpResponse::error_code(
        503, "sandbox_unavailable",
        "sandbox " + s.id + "'s agent is lost (no sync for " +
            std::to_string(ctx.options.sandbox_lost_after_ms / 1000) +
            " s), so it cannot take sleep_after_ms, stop_after_ms or keep_alive: nothing was changed; "
            "try again once the agent is back"));
  }
  protocol::SandboxTimers timers{s.sleep_after_ms, s.stop_after_ms, s.keep_alive};
  calls.call(**agent, caller.agent_owner(), "PATCH", "/agent/v1/sandboxes/" + s.id,
             json::serialize(protocol::to_json(timers)), kSandboxAgentCallTimeout,
             [&ctx, res, s, agent = **agent](const boost::system::error_code& ec, HttpReply reply) {
               if (ec || reply.status != 200) {
                 return res->reply(sandbox_agent_failure(
                     ec, reply, agent, "could not change the timers of sandbox " + s.id + " (nothing was changed)"));
               }
               store_and_answer(ctx, s, res);
             });
}

}  // namespace boxcar::server
