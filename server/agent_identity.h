// Agent identity on the server (DESIGN.md section 6, "Auth"): agent credentials and lease
// tokens, and the checks that name the agent and the lease behind an agent-protocol request.
// A credential is "<agent id>.<secret>" and a lease token a bare secret; each secret is 32 bytes
// from OpenSSL's CSPRNG as hex, and the store keeps only its sha256.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "server/api.h"

namespace boxcar::server {

// "<agent id>.<secret>", and back; nullopt unless `text` has that form.
std::string make_credential(int64_t agent_id, const std::string& secret);
struct ParsedCredential {
  int64_t agent_id = 0;
  std::string secret;
};
std::optional<ParsedCredential> parse_credential(std::string_view text);

// The bearer token of `Authorization: Bearer <token>`; "" when there is none.
std::string bearer_token(const HttpRequest& req);

// The agent whose credential the request carries (compared in constant time with the stored
// hash), or the answer that refuses it: 401 for a missing, unknown or wrong credential or a
// revoked agent, 500 when the store failed. Records that the agent was seen (at most every
// few seconds).
std::variant<AgentRecord, HttpResponse> agent_of_request(ApiContext& ctx, const HttpRequest& req);

// agent_of_request() plus the lease token of the `X-Boxcar-Lease` header: the holder that the
// store's per-job calls check (409 when the header is missing).
std::variant<LeaseHolder, HttpResponse> lease_holder_of_request(ApiContext& ctx,
                                                                const HttpRequest& req);

// 409: `holder` does not hold job `id`'s lease.
HttpResponse lease_lost(int64_t id, const LeaseHolder& holder);

// A handler of one job's agent route (api_agent.cc, rerun.cc): job_route() finds the agent from
// its credential and the lease from the X-Boxcar-Lease header, and the job from the path's {id}
// (404 when it is not an id); the handler's store calls then check both against the job's lease.
using JobHandler = void (*)(ApiContext&, int64_t, const LeaseHolder&, HttpRequest&, Responder&);
Handler job_route(ApiContext& ctx, JobHandler f);

}  // namespace boxcar::server
