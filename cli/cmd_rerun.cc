// boxcar rerun: queues a new job for a finished one's repository, commit, ref and event; with
// --failed, one that re-runs only the steps that did not succeed and what needs them.
#include <cstdio>

#include <boost/json.hpp>

#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {

namespace {

bool is_job_id(const std::string& text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

int cmd_rerun(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--failed", false, false, ""},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("rerun", flags.error().message);
  if (flags->has("--help")) {
    std::printf(
        "usage: boxcar rerun [--server URL] [--token-file F] [--ca-file PEM] [--failed] JOB\n"
        "Queues a new job for JOB's repository, commit, ref, event, file and env, and prints its id.\n"
        "  --failed   re-run only the steps that did not succeed and what needs them; the others are\n"
        "             reused: not run, their artifacts put back for the steps that need them\n"
        "exit codes: 0 queued (the new id on stdout); 1 the server refused it (JOB has not ended, or\n"
        "nothing failed in it); 2 bad input (usage, an unknown JOB, a token without write scope);\n"
        "3 the server could not be reached\n%s%s",
        kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.size() != 1) return usage_error("rerun", "needs exactly one JOB id");
  const std::string& job = flags->positional[0];
  if (!is_job_id(job)) return usage_error("rerun", "\"" + job + "\" is not a job id (a positive number, as `boxcar jobs` lists)");
  auto client = api_client_for(*flags, "rerun");
  if (!client) return usage_error("rerun", client.error().message);
  std::string target = "/api/v1/jobs/" + job + "/rerun" + (flags->has("--failed") ? "?failed=1" : "");
  auto reply = client->request("POST", target);
  if (!reply) {
    std::fprintf(stderr, "boxcar rerun: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status >= 300) {
    std::fprintf(stderr, "boxcar rerun: job %s: %s\n", job.c_str(), error_text(*reply).c_str());
    // 409: the request was right, the job's state refuses it (still running, nothing failed).
    return reply->status == 409 ? kExitFailed : exit_code_of_status(reply->status);
  }
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(reply->body, ec);
  const boost::json::value* id = !ec && body.is_object() ? body.as_object().if_contains("id") : nullptr;
  if (!id || !id->is_int64()) {
    std::fprintf(stderr, "boxcar rerun: the server's answer has no job id: %s\n", reply->body.substr(0, 200).c_str());
    return kExitInfra;
  }
  std::printf("%lld\n", static_cast<long long>(id->as_int64()));
  return kExitOk;
}

}  // namespace boxcar::cli
