// Webhooks from GitHub, Gitea and GitLab: which headers each forge uses, how its signature is
// checked, and what a delivery asks for (a job to queue, a ping, or nothing). Pure functions;
// the routes (POST /hooks/{github,gitea,gitlab}) are in webhooks.cc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "base/result.h"
#include "server/store.h"

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
