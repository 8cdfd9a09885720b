#include "cli/forge_status_flags.h"

#include <string>
#include <tuple>
#include <utility>

#include "base/url.h"
#include "cli/secret_flag.h"

namespace boxcar::cli {

const char* const kForgeStatusUsage =
    "  commit statuses (README \"Connect your forge\"): --github-token, --gitea-token,\n"
    "  --gitlab-token (each also as --NAME-file F or BOXCAR_GITHUB_TOKEN, BOXCAR_GITEA_TOKEN,\n"
    "  BOXCAR_GITLAB_TOKEN); a forge without a token gets no statuses, its jobs run all the same\n"
    "  --github-api-url URL: GitHub's API root (default https://api.github.com; GitHub\n"
    "  Enterprise: https://HOST/api/v3)\n"
    "  --gitea-url URL, --gitlab-url URL (repeatable): the forge origins (https://git.example.com)\n"
    "  the Gitea and GitLab tokens may be sent to; a webhook naming another gets no statuses.\n"
    "  Without them, whoever holds the webhook secret can aim the token at any host (SECURITY.md)\n";

namespace {

const SecretFlag kGithubToken{"--github-token", "BOXCAR_GITHUB_TOKEN"};
const SecretFlag kGiteaToken{"--gitea-token", "BOXCAR_GITEA_TOKEN"};
const SecretFlag kGitlabToken{"--gitlab-token", "BOXCAR_GITLAB_TOKEN"};

// A URL a token is sent to: http(s), no credentials, https unless loopback (a test's forge).
Status check_url(const std::string& flag, const std::string& url, bool origin_only,
                 const std::string& token_flag) {
  auto parsed = parse_server_url(url);
  std::string example = origin_only ? "https://git.example.com" : "https://api.github.com";
  if (!parsed) {
    return Error{flag + " must be an https URL like " + example + ", not \"" + url + "\": " +
                 parsed.error().message};
  }
  if (origin_only && !parsed->prefix.empty()) {
    return Error{flag + " takes the forge's origin (" + example + "), without a path, not \"" +
                 url + "\""};
  }
  return check_token_transport(*parsed, token_flag);
}

}  // namespace

std::vector<FlagSpec> forge_status_flag_specs() {
  std::vector<FlagSpec> specs = {{"--github-api-url", true, false, ""},
                                 {"--gitea-url", true, true, ""},
                                 {"--gitlab-url", true, true, ""}};
  for (const auto* secret : {&kGithubToken, &kGiteaToken, &kGitlabToken}) {
    for (auto& spec : secret_flag_specs(*secret)) specs.push_back(std::move(spec));
  }
  return specs;
}

Status apply_forge_status_flags(const ParsedFlags& flags, server::ServerConfig& options) {
  for (auto [secret, token] : {std::pair{&kGithubToken, &options.github_token},
                               std::pair{&kGiteaToken, &options.gitea_token},
                               std::pair{&kGitlabToken, &options.gitlab_token}}) {
    auto value = read_secret(flags, *secret, "serve");
    if (!value) return value.error();
    if (*value) *token = **value;
  }
  if (auto url = flags.get("--github-api-url")) {
    if (Status st = check_url("--github-api-url", *url, false, "--github-token"); !st.ok()) return st;
    options.github_api_url = *url;
    while (options.github_api_url.size() > 8 && options.github_api_url.back() == '/') {
      options.github_api_url.pop_back();
    }
  }
  for (auto [flag, list, token] : {std::tuple{"--gitea-url", &options.gitea_urls, "--gitea-token"},
                                   std::tuple{"--gitlab-url", &options.gitlab_urls, "--gitlab-token"}}) {
    auto it = flags.values.find(flag);
    if (it == flags.values.end()) continue;
    for (const auto& url : it->second) {
      if (Status st = check_url(flag, url, true, token); !st.ok()) return st;
      list->push_back(url);
    }
  }
  // A Gitea or GitLab token goes only to the forges listed: without one it would go nowhere.
  for (auto [token, list, token_flag, url_flag] :
       {std::tuple{&options.gitea_token, &options.gitea_urls, "--gitea-token", "--gitea-url"},
        std::tuple{&options.gitlab_token, &options.gitlab_urls, "--gitlab-token", "--gitlab-url"}}) {
    if (!token->empty() && list->empty()) {
      return Error{std::string(token_flag) + " needs " + url_flag +
                       " https://HOST (repeatable): the forge(s) the token may be sent to; the "
                       "API named by a webhook is used only when it is at one of them",
                   0, ErrorCode::usage, url_flag + 2};
    }
  }
  return {};
}

}  // namespace boxcar::cli
