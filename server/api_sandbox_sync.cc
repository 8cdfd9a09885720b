// POST /api/v1/agent/sandboxes/sync: an agent's data plane (endpoint, key, free slots and
// memory) and the full list of the sandboxes it holds, every 5 s and on every change. The
// answer names the sandboxes the server does not have on that agent: the agent deletes them.
#include <set>

#include <boost/json.hpp>

#include "base/url.h"
#include "protocol/agent_paths.h"
#include "protocol/json_reader.h"
#include "protocol/sandbox_api.h"
#include "server/agent_identity.h"
#include "server/api_sandboxes.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

constexpr size_t kMaxReported = 10'000;

HttpResponse bad(std::string_view message, std::string_view field = {}) {
  return HttpResponse::error_code(400, "bad_request", message, field);
}

void sync(ApiContext& ctx, HttpRequest& req, std::shared_ptr<Responder> res) {
  auto agent = agent_of_request(ctx, req);
  if (auto* refused = std::get_if<HttpResponse>(&agent)) return res->reply(std::move(*refused));
  auto body = protocol::parse_json(req.body());
  if (!body) return res->reply(bad("the body is not JSON: " + body.error().message));
  auto parsed = protocol::sandbox_sync_from_json(*body);
  if (!parsed) return res->reply(bad(parsed.error().message));
  const protocol::SandboxSync& s = *parsed;
  auto url = parse_server_url(s.endpoint);
  if (!url || url->tls || !url->prefix.empty()) {
    return res->reply(bad("endpoint: the data plane's http://host:port (--sandbox-advertise), not \"" +
                              s.endpoint.substr(0, 200) + "\"",
                          "endpoint"));
  }
  if (s.key.empty() || s.key.size() > 256) return res->reply(bad("key: 1-256 bytes", "key"));
  if (s.sandboxes.size() > kMaxReported) {
    return res->reply(bad("sandboxes: at most " + std::to_string(kMaxReported), "sandboxes"));
  }
  static const std::set<std::string> kStates = {"creating", "running", "paused", "stopped", "error"};
  SandboxAgentRecord record;
  record.agent_id = std::get<AgentRecord>(agent).id;
  record.endpoint = s.endpoint;
  record.key = s.key;
  record.slots_free = std::max<int64_t>(0, s.slots_free);
  record.memory_free_bytes = std::max<int64_t>(0, s.memory_free_bytes);
  std::vector<SandboxSyncItem> items;
  for (const auto& r : s.sandboxes) {
    if (!kStates.contains(r.state)) {
      return res->reply(bad("sandboxes: " + r.id + " has the unknown state \"" + r.state.substr(0, 40) + "\"",
                            "sandboxes"));
    }
    json::array ports;
    for (const auto& p : r.ports) ports.push_back(protocol::to_json(p));
    items.push_back({r.id, r.state, r.last_active_at, json::serialize(ports), r.error.substr(0, 4096)});
  }
  auto deleted = ctx.store.sync_sandboxes(record, items, now_ms());
  if (!deleted) return res->reply(store_error(deleted.error()));
  protocol::SandboxSyncAnswer answer;
  answer.deleted = std::move(*deleted);
  res->reply(HttpResponse::json(200, protocol::to_json(answer)));
}

}  // namespace

void add_sandbox_sync_route(Router& router, ApiContext& ctx) {
  RouteOptions options;
  options.body_limit = 16 << 20;
  router.add(http::verb::post, protocol::kAgentSandboxSyncPath,
             [&ctx](HttpRequest& req, std::shared_ptr<Responder> res) { sync(ctx, req, std::move(res)); },
             options);
}

}  // namespace boxcar::server
