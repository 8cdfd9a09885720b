// Webhooks from GitHub, Gitea and GitLab: which headers each forge uses, how its signature is
// checked, and what a delivery asks for (a job to queue, a ping, or nothing). What is declared
// here is pure (no store, no I/O), tested alone in webhooks_test.cc; webhooks.cc also holds the
// routes that use it (POST /hooks/{github,gitea,gitlab}, added by add_webhook_routes in api.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "base/result.h"
#include "server/store/store.h"

namespace boxcar::server {

enum class Forge { github, gitea, gitlab };

struct ForgeHeaders {
  const char* name;        // "github": the metrics label and the dedupe namespace
  const char* event;       // header naming the event
  const char* delivery;    // header carrying the delivery id
  const char* signature;   // HMAC header (github, gitea) or the shared token (gitlab)
};
const ForgeHeaders& forge_headers(Forge forge);

// GitHub: "sha256=<hex HMAC>"; Gitea: "<hex HMAC>"; GitLab: the secret itself. Constant time.
bool webhook_authentic(Forge forge, std::string_view secret, std::string_view signature_header,
                       std::string_view body);

// A request header by name ("" when absent).
using HeaderLookup = std::function<std::string(const char*)>;

// Why a delivery to `forge`'s endpoint carries another forge's event header (so it is refused
// before its signature is checked: a GitHub-signed body replayed to /hooks/gitea), or "".
// Gitea's own deliveries also carry X-GitHub-Event, equal to their X-Gitea-Event.
std::string foreign_delivery(Forge forge, const HeaderLookup& header);

// What a queued delivery asks for, as a dedupe key: event, repository, ref, commit (and a pull
// request's base), hashed. The same key within a day is a replay, whatever its delivery id.
std::string webhook_content_key(const NewJob& job);
inline constexpr int64_t kWebhookReplayWindowMs = 24 * 3600 * 1000;

struct WebhookOutcome {
  enum Action { queue, ping, ignore } action = ignore;
  NewJob job;          // for queue
  std::string why;     // for ignore: "branch deleted", "pull_request action closed", ...
};

// What the delivery asks for. An Error (-> 400) names the payload field that is missing or has
// the wrong type. Events boxcar does not build on are ignored, not errors.
Result<WebhookOutcome> interpret_webhook(Forge forge, const std::string& event,
                                         const boost::json::value& payload);

}  // namespace boxcar::server
