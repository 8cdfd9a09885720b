// boxcar agents: the server's registered agents as a table (or --json); boxcar agent revoke and
// boxcar agent forget: an admin stops an agent's credential (its running jobs are re-queued) or
// frees a revoked agent's name. All need the server's admin API token.
#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

namespace json = boost::json;

std::string field(const json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return "-";
  if (it->value().is_string()) return std::string(it->value().as_string());
  return json::serialize(it->value());
}

std::string labels_of(const json::object& o) {
  std::string out;
  if (auto* l = o.if_contains("labels"); l && l->is_array()) {
    for (const auto& v : l->as_array()) {
      if (v.is_string()) out += (out.empty() ? "" : ",") + std::string(v.as_string());
    }
  }
  return out.empty() ? "-" : out;
}

// GET /api/v1/agents; prints the error and sets `exit_code` when it fails.
std::optional<json::array> fetch_agents(ApiClient& client, const char* command, int& exit_code) {
  auto reply = client.request("GET", "/api/v1/agents");
  if (!reply) {
    std::fprintf(stderr, "boxcar %s: %s\n", command, reply.error().message.c_str());
    exit_code = kExitInfra;
    return std::nullopt;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "boxcar %s: %s\n", command, error_text(*reply).c_str());
    exit_code = exit_code_of_status(reply->status);
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value v = json::parse(reply->body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("agents") || !v.at("agents").is_array()) {
    std::fprintf(stderr, "boxcar %s: unexpected answer from the server\n", command);
    exit_code = kExitInfra;
    return std::nullopt;
  }
  return v.at("agents").as_array();
}

// A function, not a global: with_api_client_flags reads another file's globals.
std::vector<FlagSpec> agents_flags() {
  return with_api_client_flags({{"--json", false, false, ""}, {"--help", false, false, "-h"}});
}

}  // namespace

int cmd_agents(const Args& args) {
  auto flags = parse_flags(args, agents_flags());
  if (!flags.ok()) return usage_error("agents", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar agents [--server URL] [--token-file F] [--json]\n"
                "  the server's registered agents (needs an admin API token)\n%s", kApiTokenHelp);
    return kExitOk;
  }
  if (!flags->positional.empty()) return usage_error("agents", "takes no arguments");
  auto client = api_client_for(*flags, "agents");
  if (!client) return usage_error("agents", client.error().message);
  int exit_code = kExitOk;
  auto agents = fetch_agents(*client, "agents", exit_code);
  if (!agents) return exit_code;
  if (flags->has("--json")) {
    std::printf("%s\n", json::serialize(*agents).c_str());
    return kExitOk;
  }
  std::printf("%-24s %-6s %-8s %-26s %s\n", "NAME", "ID", "STATE", "LAST SEEN", "LABELS");
  for (const auto& a : *agents) {
    if (!a.is_object()) continue;
    const auto& o = a.as_object();
    std::printf("%-24s %-6s %-8s %-26s %s\n", field(o, "name").c_str(), field(o, "id").c_str(),
                field(o, "state").c_str(), field(o, "last_seen_at").c_str(), labels_of(o).c_str());
  }
  return kExitOk;
}

// `boxcar agent revoke|forget NAME|ID`.
int cmd_agent_admin(const std::string& action, const Args& args) {
  std::string command = "agent " + action;
  auto flags = parse_flags(args, agents_flags());
  if (!flags.ok()) return usage_error(command, flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar agent %s NAME|ID [--server URL] [--token-file F]\n%s%s", action.c_str(),
                action == "revoke"
                    ? "  its credential stops working at once; its running jobs are queued again.\n"
                      "  A revoked agent's name stays taken until `boxcar agent forget NAME`.\n"
                    : "  deletes a revoked agent's record, so its name can be registered again\n",
                kApiTokenHelp);
    return kExitOk;
  }
  if (flags->positional.size() != 1) return usage_error(command, "needs exactly one agent NAME or ID");
  const std::string& wanted = flags->positional[0];
  auto client = api_client_for(*flags, command);
  if (!client) return usage_error(command, client.error().message);
  int exit_code = kExitOk;
  auto agents = fetch_agents(*client, command.c_str(), exit_code);
  if (!agents) return exit_code;
  // A name first (names may be all digits), then an id.
  std::optional<json::object> found;
  for (const char* key : {"name", "id"}) {
    for (const auto& a : *agents) {
      if (!found && a.is_object() && field(a.as_object(), key) == wanted) found = a.as_object();
    }
  }
  if (!found) {
    std::fprintf(stderr, "boxcar %s: no agent named or numbered \"%s\" (`boxcar agents` lists them)\n",
                 command.c_str(), wanted.c_str());
    return kExitUsage;
  }
  auto reply = client->request("POST", "/api/v1/agents/" + field(*found, "id") + "/" + action);
  if (!reply) {
    std::fprintf(stderr, "boxcar %s: %s\n", command.c_str(), reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "boxcar %s: %s\n", command.c_str(), error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  std::printf("%s agent %s (id %s)\n", action == "revoke" ? "revoked" : "forgot",
              field(*found, "name").c_str(), field(*found, "id").c_str());
  return kExitOk;
}

}  // namespace boxcar::cli
