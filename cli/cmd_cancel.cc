// boxcar cancel: asks the server to cancel a job (a running one stops at its next heartbeat; a
// finished one's agent closes the previews it still serves).
#include <cstdio>

#include <boost/json.hpp>

#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {

int cmd_cancel(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("cancel", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar cancel [--server URL] [--token-file F] [--ca-file PEM] JOB\n%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.size() != 1) return usage_error("cancel", "needs exactly one JOB id");
  auto client = api_client_for(*flags, "cancel");
  if (!client) return usage_error("cancel", client.error().message);
  auto reply = client->request("POST", "/api/v1/jobs/" + flags->positional[0] + "/cancel");
  if (!reply) {
    std::fprintf(stderr, "boxcar cancel: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status >= 300) {
    std::fprintf(stderr, "boxcar cancel: job %s: %s\n", flags->positional[0].c_str(),
                 error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  // An older server answers without "previews_closing": a plain cancel.
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(reply->body, ec);
  const boost::json::value* closing =
      !ec && body.is_object() ? body.as_object().if_contains("previews_closing") : nullptr;
  if (closing && closing->is_bool() && closing->as_bool()) {
    std::printf("closing the open previews of job %s\n", flags->positional[0].c_str());
  } else {
    std::printf("cancel requested for job %s\n", flags->positional[0].c_str());
  }
  return kExitOk;
}

}  // namespace boxcar::cli
