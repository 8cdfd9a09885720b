#include "cli/api_token.h"

#include <unistd.h>

#include <cstdlib>

#include "base/url.h"
#include "cli/secret_flag.h"

namespace boxcar::cli {

namespace {

const SecretFlag kToken{"--token", "BOXCAR_API_TOKEN"};

// Whether the URL's host is this machine's loopback: only then may the local server's token
// be sent to it without being asked for.
bool loopback_url(const std::string& url) {
  auto parsed = parse_server_url(url);
  return parsed.ok() && is_loopback_host(parsed->host);
}

}  // namespace

const char* const kApiTokenHelp =
    "  --token T, --token-file F: the server's API token (also BOXCAR_API_TOKEN); without one,\n"
    "  a server on this machine's loopback gets the token `boxcar serve` wrote to its default\n"
    "  data directory (/var/lib/boxcar/api-token as root, ~/.local/share/boxcar/api-token)\n"
    "  when this user can read it\n";

std::filesystem::path default_serve_data_dir() {
  if (::geteuid() == 0) return "/var/lib/boxcar";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local/share/boxcar";
  return "/tmp/boxcar";
}

std::filesystem::path api_token_file(const std::filesystem::path& data_dir) {
  return data_dir / "api-token";
}

std::vector<FlagSpec> with_api_client_flags(std::vector<FlagSpec> specs) {
  for (FlagSpec& s : secret_flag_specs(kToken)) specs.push_back(std::move(s));
  specs.push_back({"--server", true, false, ""});
  specs.push_back({"--ca-file", true, false, ""});
  return specs;
}

Result<ApiTarget> api_target_for(const ParsedFlags& flags, const std::string& command) {
  ApiTarget target;
  target.server = server_url(flags.get("--server"));
  auto token = read_secret(flags, kToken, command);
  if (!token) return token.error();
  if (!*token && loopback_url(target.server)) {
    auto file = api_token_file(default_serve_data_dir());
    if (::access(file.c_str(), R_OK) == 0) {
      auto text = read_secret_file(file, "the server's token file");
      if (text) *token = std::move(*text);
    }
  }
  if (*token) target.token = **token;
  target.ca_file = client_options(flags).ca_file;
  return target;
}

Result<ApiClient> api_client_for(const ParsedFlags& flags, const std::string& command) {
  auto target = api_target_for(flags, command);
  if (!target) return target.error();
  // The token goes in at creation, so that create() refuses to send it over plain http to
  // another machine before anything is sent.
  ClientOptions options;
  options.ca_file = target->ca_file;
  options.token = target->token;
  return ApiClient::create(target->server, options);
}

}  // namespace boxcar::cli
