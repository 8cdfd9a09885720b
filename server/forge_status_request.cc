#include "server/forge_status_request.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>

#include "base/url.h"

namespace boxcar::server {

namespace json = boost::json;

namespace {

struct ForgeAuth {
  const char* flag;         // the token's flag, for messages
  const char* env;          // the token's environment variable
  const char* url_flag;     // the allow-list's flag ("" for GitHub: its root is the server's)
  const std::string* token;
  const std::vector<std::string>* allowed;
};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// "https://host:port" of a URL, lowercase, default ports dropped; "" when it is no http(s) URL.
std::string origin_of(const std::string& url) {
  auto parsed = parse_server_url(url);
  if (!parsed) return "";
  std::string scheme = parsed->tls ? "https" : "http";
  std::string port = parsed->port == (parsed->tls ? "443" : "80") ? "" : ":" + parsed->port;
  std::string host = parsed->host.find(':') != std::string::npos ? "[" + parsed->host + "]" : parsed->host;
  return scheme + "://" + lower(host) + port;
}

bool hex_sha(const std::string& sha) {
  return sha.size() >= 7 && sha.size() <= 64 &&
         std::all_of(sha.begin(), sha.end(), [](unsigned char c) { return std::isxdigit(c); });
}

}  // namespace

std::string status_context(const std::string& pipeline_name, const std::string& file) {
  if (!pipeline_name.empty()) return "boxcar/" + pipeline_name;
  if (!file.empty()) return "boxcar/" + file;
  return "boxcar";
}

Result<StatusRequest> status_request(const JobRecord& job, const ForgeStatusRecord& status,
                                     const ServerConfig& config) {
  const std::string& forge = job.forge.forge;
  ForgeAuth auth;
  if (forge == "github") {
    auth = {"--github-token", "BOXCAR_GITHUB_TOKEN", "", &config.github_token, nullptr};
  } else if (forge == "gitea") {
    auth = {"--gitea-token", "BOXCAR_GITEA_TOKEN", "--gitea-url", &config.gitea_token, &config.gitea_urls};
  } else if (forge == "gitlab") {
    auth = {"--gitlab-token", "BOXCAR_GITLAB_TOKEN", "--gitlab-url", &config.gitlab_token, &config.gitlab_urls};
  } else {
    return Error{"the job has no forge to post statuses to"};
  }
  if (auth.token->empty()) {
    return Error{std::string("this server has no ") + auth.flag + " (boxcar serve " + auth.flag +
                 "-file F, or " + auth.env + "): statuses are not sent"};
  }
  if (!hex_sha(job.commit)) return Error{"the job's commit \"" + job.commit + "\" is not a sha"};
  StatusRequest req;
  req.api_root = forge == "github" ? config.github_api_url : job.forge.api;
  auto root = parse_server_url(req.api_root);
  if (!root) return Error{"the forge's API root " + req.api_root + ": " + root.error().message};
  // Gitea's and GitLab's API roots come from the signed webhook: the token goes only to an
  // origin the operator listed (none listed: nowhere), so a webhook cannot aim it elsewhere.
  if (auth.allowed) {
    std::string origin = origin_of(req.api_root);
    bool listed = std::any_of(auth.allowed->begin(), auth.allowed->end(),
                              [&](const std::string& a) { return origin_of(a) == origin; });
    if (!listed) {
      return Error{"the webhook named the API at " + origin + ", which is not in this server's " +
                   auth.url_flag + (auth.allowed->empty() ? " (none is set)" : "") +
                   ": the token is not sent there"};
    }
  }
  if (auto ok = check_token_transport(*root, std::string(auth.flag)); !ok) return ok.error();

  json::object body{{"state", status.state}, {"description", status.description}};
  if (!config.public_url.empty()) {
    std::string base = config.public_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    body["target_url"] = base + "/jobs/" + std::to_string(job.id);
  }
  std::string context = job.status_context.empty() ? "boxcar" : job.status_context;
  std::string sha = lower(job.commit);
  if (forge == "gitlab") {
    // POST /projects/:id/statuses/:sha; the context is called "name" there.
    body["name"] = context;
    req.path = "/projects/" + percent_encode(job.forge.repo, false) + "/statuses/" + sha;
    req.headers = {{"PRIVATE-TOKEN", *auth.token}};
  } else {
    // POST /repos/{owner}/{repo}/statuses/{sha} on both.
    body["context"] = context;
    size_t slash = job.forge.repo.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == job.forge.repo.size()) {
      return Error{"the repository \"" + job.forge.repo + "\" is not owner/name"};
    }
    req.path = "/repos/" + percent_encode(job.forge.repo.substr(0, slash), false) + "/" +
               percent_encode(job.forge.repo.substr(slash + 1), false) + "/statuses/" + sha;
    if (forge == "github") {
      req.headers = {{"Authorization", "Bearer " + *auth.token},
                     {"Accept", "application/vnd.github+json"},
                     {"X-GitHub-Api-Version", "2022-11-28"}};
    } else {
      req.headers = {{"Authorization", "token " + *auth.token}, {"Accept", "application/json"}};
    }
  }
  req.body = json::serialize(body);
  return req;
}

StatusVerdict classify_status_reply(const std::string& forge, const std::string& network_error,
                                    unsigned http_status, const std::string& rate_limit_left,
                                    const std::string& message) {
  using K = ForgeStatusOutcome;
  std::string said = message.empty() ? "" : ": " + message;
  std::string code = std::to_string(http_status);
  if (!network_error.empty()) return {K::retry, "no answer from the forge: " + network_error};
  if (http_status >= 200 && http_status < 300) return {K::delivered, ""};
  // Retryable: the forge is down, overloaded or limiting us; it will answer later.
  if (http_status >= 500 || http_status == 408 || http_status == 425) {
    return {K::retry, "the forge answered " + code + said};
  }
  if (http_status == 429 || (http_status == 403 && forge == "github" && rate_limit_left == "0")) {
    return {K::retry, "rate limited by the forge (" + code + ")" + said};
  }
  // Fatal: waiting changes nothing; the operator has to.
  std::string flag = "--" + forge + "-token";
  if (http_status == 401) {
    return {K::failed, "the forge refused the token (401)" + said + ": check " + flag};
  }
  if (http_status == 403) {
    return {K::failed, "the token may not set statuses here (403)" + said + ": give " + flag +
                           " the scope README \"Connect your forge\" names"};
  }
  if (http_status == 404) {
    return {K::failed, "the forge knows no such repository or commit, or the token cannot see it "
                       "(404)" + said};
  }
  return {K::failed, "the forge refused the status (" + code + ")" + said};
}

Millis status_backoff(int attempts, double jitter) {
  constexpr int64_t kFirst = 1'000, kMax = 10 * 60 * 1000;
  int64_t wait = kFirst;
  for (int i = 1; i < attempts && wait < kMax; ++i) wait *= 2;
  wait = std::min(wait, kMax);
  jitter = std::clamp(jitter, 0.5, 1.0);
  return Millis(static_cast<int64_t>(static_cast<double>(wait) * jitter));
}

std::string forge_error_message(const std::string& body, const std::string& secret) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  std::string text;
  if (!ec && v.is_object()) {
    for (const char* key : {"message", "error"}) {
      if (const json::value* m = v.as_object().if_contains(key); m && m->is_string()) {
        text = std::string(m->as_string());
        break;
      }
    }
  }
  if (!secret.empty()) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return text;
}

}  // namespace boxcar::server
