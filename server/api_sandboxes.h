// The sandbox API's control plane in the server (SANDBOXES.md §1.1, §1.4, §1.5, §2.1):
// create/list/get/patch/delete under /api/v1/sandboxes (api_sandboxes.cc), the agents' sandbox
// sync (api_sandbox_sync.cc), and the gateway that forwards every other
// /api/v1/sandboxes/{id}/... request to the owning agent (sandbox_gateway.cc).
#pragma once

#include <optional>
#include <string>
#include <variant>

#include <boost/json/value.hpp>

#include "server/api.h"
#include "server/sandbox_agent_calls.h"

namespace boxcar::server {

// An agent that has not synced for this long (3 periods of 5 s) is lost: its sandboxes read
// `lost`, and requests for them get 503 sandbox_unavailable.
inline constexpr UnixMillis kSandboxAgentLostMs = 15'000;

// Who calls a sandbox route: the API token's name owns what it creates; an admin token sees
// every owner's (owner_filter "").
struct SandboxCaller {
  const ApiToken* token = nullptr;
  std::string owner;
  bool admin = false;
  std::string owner_filter() const { return admin ? "" : owner; }
  // The X-Boxcar-Owner the agent gets: "*" for an admin, who may reach any owner's sandbox.
  std::string agent_owner() const;
};

// The caller, or the answer refusing it: 401 unauthorized (no or an unknown token; --public-read
// opens nothing here), 403 permission_denied (a token without the sandboxes scope).
std::variant<SandboxCaller, HttpResponse> sandbox_caller(const ApiContext& ctx, const HttpRequest& req);

// The sandbox `id` when `caller` may see it; otherwise the answer: 404 sandbox_not_found (also
// for another owner's: existence does not leak), 500 when the store failed.
std::variant<SandboxRecord, HttpResponse> owned_sandbox(ApiContext& ctx, const SandboxCaller& caller,
                                                        const std::string& id);

// The state as the API shows it: `lost` once the hosting agent stopped syncing.
std::string visible_state(const SandboxRecord& s, const std::optional<SandboxAgentRecord>& agent,
                          UnixMillis now);

void add_sandbox_routes(Router& router, ApiContext& ctx, SandboxAgentCalls& agents);
void add_sandbox_sync_route(Router& router, ApiContext& ctx);
void add_sandbox_gateway(Router& router, ApiContext& ctx);

// The TTL: deletes up to a batch of expired sandboxes (rows first, then each agent is told;
// an agent that misses it learns it from its next sync). Returns how many went.
size_t sweep_expired_sandboxes(ApiContext& ctx, SandboxAgentCalls& agents);

}  // namespace boxcar::server
