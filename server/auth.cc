#include "server/auth.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>

#include "base/url.h"

namespace boxcar::server {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The host of a Host header value ("name:8080", "[::1]:8080", "name"), lowercased.
std::string host_of(std::string_view value) {
  std::string v(value);
  if (!v.empty() && v.front() == '[') {
    size_t close = v.find(']');
    return lower(v.substr(1, close == std::string::npos ? std::string::npos : close - 1));
  }
  size_t colon = v.find(':');
  return lower(v.substr(0, colon));
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

bool changes_state(http::verb method) {
  return method != http::verb::get && method != http::verb::head && method != http::verb::options;
}

// A body a browser could send cross-origin without a preflight (forms, text/plain) is refused;
// only application/json, or no body at all, gets through.
std::optional<HttpResponse> check_json_body(const HttpRequest& req) {
  std::string type = lower(req.header("Content-Type"));
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  bool has_body = req.raw.chunked() ||
                  (req.raw.has_content_length() && req.header("Content-Length") != "0");
  if (type.empty() ? !has_body : type == "application/json") return std::nullopt;
  return HttpResponse::error(
      415, "this API takes JSON bodies only: send Content-Type: application/json" +
               (type.empty() ? std::string() : " (not " + type + ")"));
}

}  // namespace

const ApiToken* api_caller(const ApiContext& ctx, const HttpRequest& req) {
  std::string header = req.header("Authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size() ||
      !boost::beast::iequals(std::string_view(header).substr(0, kBearer.size()), kBearer)) {
    return nullptr;
  }
  std::string_view secret = std::string_view(header).substr(kBearer.size());
  while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
  return find_api_token(ctx.options.api_tokens, secret);
}

std::optional<HttpResponse> authorize(const ApiContext& ctx, const HttpRequest& req, Scope scope,
                                      Anonymous anonymous) {
  bool has_header = !req.header("Authorization").empty();
  const ApiToken* token = api_caller(ctx, req);
  if (!token) {
    if (!has_header && anonymous == Anonymous::public_read && ctx.options.public_read &&
        scope == Scope::read) {
      return std::nullopt;
    }
    HttpResponse r = HttpResponse::error(
        401, has_header ? "the API token is not valid (check BOXCAR_API_TOKEN or --token)"
                        : "this API needs a token: send \"Authorization: Bearer TOKEN\" (the "
                          "CLI reads BOXCAR_API_TOKEN; serve wrote one to <data>/api-token "
                          "unless it was given --api-token or --api-tokens)");
    r.headers.emplace_back("WWW-Authenticate",
                           has_header ? "Bearer error=\"invalid_token\"" : "Bearer");
    return r;
  }
  if (!token->allows(scope)) {
    return HttpResponse::error(403, "the API token \"" + token->name + "\" lacks the \"" +
                                        scope_name(scope) + "\" scope this needs");
  }
  return std::nullopt;
}

RouteOptions requires_scope(const ApiContext& ctx, Scope scope, Anonymous anonymous) {
  RouteOptions options;
  options.admit = [&ctx, scope, anonymous](const HttpRequest& head) -> std::optional<HttpResponse> {
    if (auto refused = authorize(ctx, head, scope, anonymous)) return refused;
    if (changes_state(head.method())) return check_json_body(head);
    return std::nullopt;
  };
  return options;
}

std::optional<HttpResponse> check_host(const ServerConfig& options, const HttpRequest& req) {
  std::string value = req.header("Host");
  if (value.empty()) return std::nullopt;
  std::string host = host_of(value);
  if (is_ip_literal(host) || host == "localhost") return std::nullopt;
  if (host == lower(options.listen_address)) return std::nullopt;
  if (!options.public_url.empty() && host == url_host(options.public_url)) return std::nullopt;
  return HttpResponse::error(
      421, "this server does not answer to the name \"" + host +
               "\" (a guard against DNS rebinding): reach it by its address, or start serve "
               "with --public-url http://" + host + ":PORT if that is its name");
}

bool served_over_https(const ServerConfig& options) {
  if (options.http.tls != nullptr) return true;
  auto public_url = parse_server_url(options.public_url);
  return public_url.ok() && public_url->tls;
}

}  // namespace boxcar::server
