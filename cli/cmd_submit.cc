// boxcar submit: queues a job on a server and prints its id.
#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>

#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {

int cmd_submit(const Args& args) {
  auto flags = parse_flags(args, with_api_client_flags({{"--ref", true, false, ""},
                                                        {"--commit", true, false, ""},
                                                        {"--file", true, false, "-f"},
                                                        {"--label", true, true, ""},
                                                        {"--help", false, false, "-h"}}));
  if (!flags.ok()) return usage_error("submit", flags.error().message);
  if (flags->has("--help")) {
    std::printf("usage: boxcar submit [--server URL] [--token-file F] [--ca-file PEM] REPO [--ref REF] [--commit SHA] [--file F]\n%s%s", kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  if (flags->positional.size() != 1) {
    return usage_error("submit", "needs exactly one REPO (a clone URL or a local path)");
  }
  std::string repo = flags->positional[0];
  // A local path is sent absolute: the agent does not run in this directory.
  std::error_code ec;
  if (repo.find("://") == std::string::npos && std::filesystem::exists(repo, ec)) {
    repo = std::filesystem::absolute(repo).lexically_normal().string();
    while (repo.size() > 1 && repo.back() == '/') repo.pop_back();
  }
  boost::json::object body{{"repo", repo}};
  if (auto v = flags->get("--ref")) body["ref"] = *v;
  if (auto v = flags->get("--commit")) body["commit"] = *v;
  if (auto v = flags->get("--file")) body["file"] = *v;
  if (flags->has("--label")) {
    boost::json::array labels;
    for (const auto& l : flags->all("--label")) labels.push_back(boost::json::string(l));
    body["labels"] = std::move(labels);
  }
  auto client = api_client_for(*flags, "submit");
  if (!client) return usage_error("submit", client.error().message);
  auto reply = client->request("POST", "/api/v1/jobs", boost::json::serialize(body));
  if (!reply) {
    std::fprintf(stderr, "boxcar submit: %s\n", reply.error().message.c_str());
    return kExitInfra;
  }
  if (reply->status != 201) {
    std::fprintf(stderr, "boxcar submit: %s\n", error_text(*reply).c_str());
    return exit_code_of_status(reply->status);
  }
  auto v = boost::json::parse(reply->body);
  std::printf("%lld\n", static_cast<long long>(v.at("id").to_number<int64_t>()));
  return kExitOk;
}

}  // namespace boxcar::cli
