#include "server/agent_identity.h"

#include <charconv>

#include "base/hex.h"
#include "base/random_token.h"
#include "base/sha256.h"
#include "protocol/agent_protocol.h"

namespace boxcar::server {

namespace {

constexpr int64_t kSeenEveryMs = 5'000;  // last_seen_at is a hint: not a write per request

HttpResponse refused(std::string_view why) {
  return HttpResponse::error(401, std::string(why));
}

}  // namespace

std::string make_credential(int64_t agent_id, const std::string& secret) {
  return std::to_string(agent_id) + "." + secret;
}

std::optional<ParsedCredential> parse_credential(std::string_view text) {
  size_t dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 18) return std::nullopt;
  ParsedCredential c;
  auto [end, ec] = std::from_chars(text.data(), text.data() + dot, c.agent_id);
  if (ec != std::errc() || end != text.data() + dot || c.agent_id <= 0) return std::nullopt;
  std::string_view secret = text.substr(dot + 1);
  if (secret.size() != 64 || !is_lower_hex(secret)) return std::nullopt;
  c.secret = std::string(secret);
  return c;
}

std::string bearer_token(const HttpRequest& req) {
  std::string given = req.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (given.compare(0, kBearer.size(), kBearer) != 0) return "";
  return given.substr(kBearer.size());
}

std::variant<AgentRecord, HttpResponse> agent_of_request(ApiContext& ctx, const HttpRequest& req) {
  std::string token = bearer_token(req);
  if (token.empty()) {
    return refused("missing agent credential: send \"Authorization: Bearer <credential>\" with "
                   "the credential POST /api/v1/agent/register returned");
  }
  auto parsed = parse_credential(token);
  if (!parsed) {
    return refused("not an agent credential (the shared agent token only registers an agent: "
                   "POST /api/v1/agent/register, then use the credential it returns)");
  }
  auto agent = ctx.store.agent(parsed->agent_id);
  if (!agent) return store_error(agent.error());
  if (!*agent || !constant_time_equal(sha256_hex(parsed->secret), (*agent)->credential_hash)) {
    return refused("unknown or wrong agent credential: register the agent again");
  }
  AgentRecord record = std::move(**agent);
  if (record.revoked_at) {
    return refused("agent \"" + record.name + "\" (id " + std::to_string(record.id) +
                   ") was revoked: its credential no longer works");
  }
  UnixMillis now = now_ms();
  if (!record.last_seen_at || now - *record.last_seen_at >= kSeenEveryMs) {
    // A hint for `boxcar agents`: a failure here must not fail the agent's request.
    (void)ctx.store.agent_seen(record.id, record.labels, now);
    record.last_seen_at = now;
  }
  return record;
}

std::variant<LeaseHolder, HttpResponse> lease_holder_of_request(ApiContext& ctx,
                                                                const HttpRequest& req) {
  auto agent = agent_of_request(ctx, req);
  if (auto* refusal = std::get_if<HttpResponse>(&agent)) return std::move(*refusal);
  const auto& record = std::get<AgentRecord>(agent);
  std::string token = req.header(protocol::kLeaseHeader);
  if (token.empty()) {
    return HttpResponse::error(409, std::string("no lease token: send the job's lease token (from "
                                                "the claim's answer) in the ") +
                                        protocol::kLeaseHeader + " header");
  }
  return LeaseHolder{record.id, record.name, sha256_hex(token)};
}

HttpResponse lease_lost(int64_t id, const LeaseHolder& holder) {
  return HttpResponse::error(409, "agent \"" + holder.agent + "\" does not hold the lease on job " +
                                      std::to_string(id) +
                                      " with this lease token (it expired, the job ended, or the "
                                      "job is another agent's): stop the job");
}

}  // namespace boxcar::server
