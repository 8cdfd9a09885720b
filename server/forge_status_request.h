// Commit statuses as the forges' APIs take them: the request one outbox row becomes (GitHub,
// Gitea, GitLab), what a forge's answer means (delivered, retry later, give up), and the backoff
// between tries. Pure: no sockets, no store; the sender (forge_status_sender.h) drives it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "server/server.h"
#include "server/store/store.h"

namespace boxcar::server {

// The context a webhook's job posts its statuses under: "boxcar/<pipeline name>" (the name last
// reported for the repository's file), else "boxcar/<file>" when the job names one, else "boxcar".
std::string status_context(const std::string& pipeline_name, const std::string& file);

struct StatusRequest {
  std::string api_root;  // "https://api.github.com", "https://git.example.com/api/v1"
  std::string path;      // under api_root: "/repos/o/r/statuses/<sha>"
  std::vector<std::pair<std::string, std::string>> headers;  // the token's among them
  std::string body;      // JSON
};

// The POST that sets `status` on `job`'s commit, as the forge's published API describes it.
// An Error (never naming a token) says why none can be sent: no token for that forge, an API
// root outside --gitea-url/--gitlab-url, plain http to a host that is not loopback, a job
// without a forge link. Such a row is given up at once.
Result<StatusRequest> status_request(const JobRecord& job, const ForgeStatusRecord& status,
                                     const ServerConfig& config);

// What an answer means. Network errors, 408, 425, 429, 5xx and a GitHub rate limit (403 with
// no requests left) are worth another try; any other 4xx will not change by waiting (a bad
// token, an unknown repository or commit): give up, and say why in words.
struct StatusVerdict {
  ForgeStatusOutcome::Kind kind = ForgeStatusOutcome::failed;
  std::string why;  // "" when delivered
};
// `network_error`: no whole answer came (its text; then `http_status` is 0). `forge` names the
// token flag in the explanation; `rate_limit_left` is GitHub's X-RateLimit-Remaining ("" when
// absent). `message`: the forge's error text, if any, already stripped of secrets.
StatusVerdict classify_status_reply(const std::string& forge, const std::string& network_error,
                                    unsigned http_status, const std::string& rate_limit_left,
                                    const std::string& message);

// The wait before try number `attempts` + 1: 1 s doubled per try, at most 10 minutes, times
// `jitter` in [0.5, 1] so servers that failed together do not retry together.
Millis status_backoff(int attempts, double jitter);

// A delivery stops being retried after this many tries or this long after the row was queued.
inline constexpr int kMaxStatusAttempts = 25;
inline constexpr int64_t kStatusGiveUpMs = 24LL * 3600 * 1000;

// The forge's error text in `body` ({"message": ...} on all three; GitLab may use "error"), cut
// to 200 bytes, with `secret` blanked out should the forge echo it. "" when there is none.
std::string forge_error_message(const std::string& body, const std::string& secret);

}  // namespace boxcar::server
