// SandboxClient::git_checkout: the body of POST /git/checkout, and its answer.
#include <boost/json.hpp>

#include "client/sandbox_client.h"

namespace boxcar::client {

Result<boost::json::object> SandboxClient::git_checkout(const std::string& id, const GitCheckoutOptions& o) {
  boost::json::object body{{"url", o.url}};
  if (!o.ref.empty()) body["ref"] = o.ref;
  if (!o.commit.empty()) body["commit"] = o.commit;
  if (!o.dir.empty()) body["dir"] = o.dir;
  if (!o.token.empty()) body["token"] = o.token;
  if (o.replace) body["replace"] = true;
  if (o.timeout_ms > 0) body["timeout_ms"] = o.timeout_ms;
  auto answer = api_->call_json("POST", sandbox_path(id) + "/git/checkout", body);
  if (!answer) return answer.error();
  if (!answer->is_object()) return Error{"the server's checkout answer is not a JSON object", 0, ErrorCode::unavailable};
  return answer->as_object();
}

}  // namespace boxcar::client
