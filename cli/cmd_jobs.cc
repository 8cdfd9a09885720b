// boxcar jobs: the server's jobs, newest first, as a table (or --json). Refs and repositories
// come from whoever submitted the job: shown escaped (base/terminal_escape.h).
#include <boost/json.hpp>

#include <cstdio>

#include "base/terminal_escape.h"
#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

std::string field(const boost::json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return "-";
  if (it->value().is_string()) return escape_for_terminal(it->value().as_string());
  return escape_for_terminal(boost::json::serialize(it->value()));
}

}  // namespace

int cmd_jobs(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--state", true, false, ""},
                                                        {"--limit", true, false, ""},
                                                        {"--json", false, false, ""},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("jobs", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar jobs [--server URL] [--token-file F] [--ca-file PEM] [--state S] [--limit N] [--json]\n%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  std::string target = "/api/v1/jobs?limit=" + flags->get("--limit").value_or("50");
  if (auto s = flags->get("--state")) target += "&state=" + *s;
  auto client = api_client_for(*flags, "jobs");
  if (!client) return usage_error("jobs", client.error().message);
  auto reply = client->request("GET", target);
  if (!reply) {
    std::fprintf(stderr, "boxcar jobs: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "boxcar jobs: %s\n", error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  if (flags->has("--json")) {
    std::printf("%s\n", reply->body.c_str());
    return kExitOk;
  }
  auto doc = boost::json::parse(reply->body).as_object();
  std::printf("%-6s  %-9s  %-7s  %-20s  %-12s  %s\n", "ID", "STATE", "ATTEMPT", "CREATED", "REF",
              "REPO");
  for (const auto& v : doc.at("jobs").as_array()) {
    const auto& j = v.as_object();
    std::printf("%-6s  %-9s  %-7s  %-20s  %-12s  %s\n", field(j, "id").c_str(),
                field(j, "state").c_str(), field(j, "attempt").c_str(),
                field(j, "created_at").substr(0, 19).c_str(), field(j, "ref").c_str(),
                field(j, "repo").c_str());
  }
  return kExitOk;
}

}  // namespace boxcar::cli
