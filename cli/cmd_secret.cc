// boxcar secret set|ls|rm: the secrets a server keeps for pipelines' `secrets = [...]`, for
// every repository or one (--repo URL, as the server's jobs name it). A value is read from
// stdin or --from-file, never from an argument (ps would show it), and is never printed back:
// ls shows names and dates. All need the server's admin API token.
#include <unistd.h>

#include <boost/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "base/url.h"
#include "cli/api_client.h"
#include "cli/api_token.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace boxcar::cli {
namespace {

namespace json = boost::json;

constexpr const char* kUsage =
    "usage: boxcar secret set NAME [--repo URL] [--from-file F]   (the value on stdin)\n"
    "       boxcar secret ls [--repo URL] [--json]\n"
    "       boxcar secret rm NAME [--repo URL]\n"
    "       (each also takes [--server URL] [--token-file F] [--ca-file PEM])\n"
    "  NAME: 1-128 of A-Z, 0-9 and _, not starting with a digit, as `secrets = [...]` names it\n"
    "  --repo URL: the repository's own secret (as `boxcar jobs` shows its repo), which a job of\n"
    "  that repository gets over the server-wide one of the same name; without it: server-wide\n"
    "  --from-file F: the value is F's content (one trailing newline is kept; stdin: the value\n"
    "  as typed or piped, its one trailing newline dropped). Values: up to 64 KiB of UTF-8 text.\n"
    "  Jobs from pull requests of forks get no secrets. Needs an admin token.\n";

// The value, from --from-file or stdin; never from an argument.
Result<std::string> read_value(const ParsedFlags& flags) {
  std::string value;
  if (auto file = flags.get("--from-file")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) return Error{"--from-file: cannot read " + *file};
    value.assign(std::istreambuf_iterator<char>(in), {});
    return value;
  }
  if (::isatty(STDIN_FILENO)) std::fprintf(stderr, "value (end with Ctrl-D): ");
  value.assign(std::istreambuf_iterator<char>(std::cin), {});
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (value.empty()) {
    return Error{"no value on stdin: pipe it in (`printf %s \"$VALUE\" | boxcar secret set NAME`) "
                 "or give --from-file F"};
  }
  return value;
}

std::string query_of(const ParsedFlags& flags) {
  auto repo = flags.get("--repo");
  return repo ? "?repo=" + percent_encode(*repo, false) : "";
}

std::string where(const ParsedFlags& flags) {
  auto repo = flags.get("--repo");
  return repo ? "for " + *repo : "server-wide";
}

int failed(const char* sub, const std::string& message, int code) {
  std::fprintf(stderr, "boxcar secret %s: %s\n", sub, message.c_str());
  return code;
}

}  // namespace

int cmd_secret(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s%s%s", kUsage, kApiTokenHelp, kConnectionHelp);
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string sub = args[0];
  if (sub != "set" && sub != "ls" && sub != "rm") {
    return usage_error("secret", "unknown subcommand \"" + sub + "\" (set, ls or rm)");
  }
  std::vector<FlagSpec> specs = {{"--repo", true, false, ""}, {"--help", false, false, "-h"}};
  if (sub == "set") specs.push_back({"--from-file", true, false, ""});
  if (sub == "ls") specs.push_back({"--json", false, false, ""});
  auto flags = parse_flags(Args(args.begin() + 1, args.end()), with_api_client_flags(std::move(specs)));
  std::string command = "secret " + sub;
  if (!flags.ok()) return usage_error(command, flags.error().message);
  if (flags->has("--help")) {
    std::printf("%s%s%s", kUsage, kApiTokenHelp, kConnectionHelp);
    return kExitOk;
  }
  size_t names = sub == "ls" ? 0 : 1;
  if (flags->positional.size() != names) {
    return usage_error(command, names == 0 ? "takes no NAME (--repo URL lists one repository's)"
                                           : flags->positional.size() > 1
                                                 ? "takes one NAME; the value goes on stdin or "
                                                   "in --from-file, never on the command line"
                                                 : "needs the secret's NAME");
  }
  auto client = api_client_for(*flags, command.c_str());
  if (!client) return usage_error(command, client.error().message);

  Result<ApiReply> reply = Error{""};
  std::string name = names ? flags->positional[0] : "";
  std::string target = "/api/v1/secrets" + (names ? "/" + percent_encode(name, false) : "") + query_of(*flags);
  if (sub == "set") {
    auto value = read_value(*flags);
    if (!value) return usage_error(command, value.error().message);
    reply = client->request("PUT", target, *value, "application/octet-stream");
  } else {
    reply = client->request(sub == "ls" ? "GET" : "DELETE", target);
  }
  if (!reply) return failed(sub.c_str(), reply.error().message, kExitInfra);
  if (reply->status >= 300) {
    return failed(sub.c_str(), (names ? name + ": " : "") + error_text(*reply),
                  exit_code_of_status(reply->status));
  }
  if (sub == "set") {
    std::printf("secret %s %s %s\n", name.c_str(),
                reply->status == 201 ? "set" : "replaced", where(*flags).c_str());
    return kExitOk;
  }
  if (sub == "rm") {
    std::printf("secret %s removed (%s)\n", name.c_str(), where(*flags).c_str());
    return kExitOk;
  }
  if (flags->has("--json")) {
    std::printf("%s\n", reply->body.c_str());
    return kExitOk;
  }
  boost::system::error_code ec;
  json::value body = json::parse(reply->body, ec);
  const json::value* list = !ec && body.is_object() ? body.as_object().if_contains("secrets") : nullptr;
  if (!list || !list->is_array()) return failed("ls", "unexpected answer from the server", kExitInfra);
  if (list->as_array().empty()) {
    std::printf("no secrets %s\n", where(*flags).c_str());
    return kExitOk;
  }
  std::printf("%-32s %-22s %s\n", "NAME", "CREATED", "UPDATED");
  for (const auto& item : list->as_array()) {
    if (!item.is_object()) continue;
    const json::object& o = item.as_object();
    auto text = [&](const char* key) {
      const json::value* v = o.if_contains(key);
      return v && v->is_string() ? std::string(v->as_string()) : std::string("-");
    };
    std::printf("%-32s %-22s %s\n", text("name").c_str(), text("created_at").c_str(),
                text("updated_at").c_str());
  }
  return kExitOk;
}

}  // namespace boxcar::cli
