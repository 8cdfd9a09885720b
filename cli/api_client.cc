#include "cli/api_client.h"

#include "base/terminal_escape.h"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <optional>

#include "http/http_client.h"

namespace boxcar::cli {

std::string server_url(const std::optional<std::string>& flag) {
  if (flag) return *flag;
  if (const char* env = std::getenv("BOXCAR_SERVER"); env && *env) return env;
  return "http://127.0.0.1:8080";
}

ClientOptions client_options(const ParsedFlags& flags) {
  ClientOptions options;
  const char* env_ca = std::getenv("BOXCAR_CA_FILE");
  options.ca_file = flags.get("--ca-file").value_or(env_ca ? env_ca : "");
  return options;
}

constexpr size_t kMaxErrorText = 1024;

std::string error_text(const ApiReply& reply) {
  if (reply.status == 401) {
    return "no valid API token for this server (401): set BOXCAR_API_TOKEN or --token-file "
           "(`boxcar serve` wrote one to <data>/api-token unless it was given --api-token or "
           "--api-tokens)";
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(reply.body, ec);
  // The server's words go to a terminal: escapes made visible, an unstructured body cut short
  // (an HTML error page, or a hostile one, is not a message).
  if (!ec && v.is_object() && v.as_object().contains("error") &&
      v.as_object().at("error").is_string()) {
    return escape_for_terminal(std::string_view(v.as_object().at("error").as_string()).substr(0, kMaxErrorText));
  }
  std::string_view body(reply.body);
  std::string shown = escape_for_terminal(body.substr(0, kMaxErrorText));
  if (body.size() > kMaxErrorText) shown += "...";
  return "HTTP " + std::to_string(reply.status) + (body.empty() ? "" : ": " + shown);
}

Result<ApiClient> ApiClient::create(const std::string& base, const ClientOptions& options) {
  auto url = parse_server_url(base);
  if (!url) return Error{url.error().message, 0, ErrorCode::usage};
  if (!url->prefix.empty()) {
    return Error{"server URL \"" + base + "\" must not have a path (like https://ci.example:8443)", 0,
                 ErrorCode::usage};
  }
  if (!options.token.empty()) {
    if (Status st = check_token_transport(*url, "API token"); !st.ok()) {
      return Error{st.error().message, 0, ErrorCode::usage};
    }
  }
  ApiClient c;
  c.url_ = std::move(*url);
  c.token_ = options.token;
  if (c.url_.tls) {
    auto tls = TlsClient::create({options.ca_file});
    if (!tls) return Error{tls.error().message + " (--ca-file or BOXCAR_CA_FILE)", 0, ErrorCode::invalid_input};
    c.tls_ = std::move(*tls);
  }
  return c;
}

namespace {

// The CLI waits for the server as long as the user does (Ctrl-C ends it); a listing can be
// large, so answers are capped well above what a server sends.
constexpr uint64_t kMaxAnswer = 1ull << 30;

// What went wrong on the way to `target`, in the CLI's words, by how far the request got.
Error failure(const ServerUrl& url, const std::string& target, const boost::system::error_code& ec,
              const HttpReply& reply) {
  switch (reply.stage) {
    case HttpStage::resolve:
      return Error{"cannot reach the boxcar server at " + url.text + ": " + ec.message(), 0,
                   ErrorCode::unavailable};
    case HttpStage::connect:
      return Error{"cannot reach the boxcar server at " + url.text + ": " + ec.message() +
                       " (is `boxcar serve` running? set --server or BOXCAR_SERVER)",
                   0, ErrorCode::unavailable};
    case HttpStage::tls_handshake:
      return Error{"cannot talk to the boxcar server at " + url.text + " over TLS: " + ec.message(), 0,
                   ErrorCode::unavailable};
    case HttpStage::exchange:
      break;
  }
  return Error{(reply.status ? "reading " : "request to ") + url.text + target +
                   (reply.status ? " broke: " : " failed: ") + ec.message(),
               0, ErrorCode::unavailable};
}

}  // namespace

Result<ApiReply> ApiClient::request(const std::string& method, const std::string& target,
                                    const std::string& json_body,
                                    const std::string& content_type) {
  boost::asio::io_context io;
  HttpClient client(io, url_, token_, tls_, HttpClientOptions{"boxcar-cli", kMaxAnswer});
  std::optional<Result<ApiReply>> result;
  client.send(method, target, json_body, json_body.empty() ? "" : content_type, kNoTimeout,
              [&](const boost::system::error_code& ec, HttpReply reply) {
                if (ec) {
                  result.emplace(failure(url_, target, ec, reply));
                } else {
                  result.emplace(ApiReply{static_cast<int>(reply.status), std::move(reply.body)});
                }
              });
  io.run();
  return std::move(*result);
}

Status ApiClient::stream(const std::string& target,
                         const std::function<bool(std::string_view)>& on_data) {
  auto got = download(target, on_data);
  if (!got) return got.error();
  return {};
}

Result<uint64_t> ApiClient::download(const std::string& target,
                                     const std::function<bool(std::string_view)>& on_data) {
  boost::asio::io_context io;
  HttpClient client(io, url_, token_, tls_, HttpClientOptions{"boxcar-cli", kMaxAnswer});
  uint64_t total = 0;
  std::optional<Result<uint64_t>> result;
  client.stream(
      target, kNoTimeout,
      [&](std::string_view piece) {
        total += piece.size();
        return on_data(piece);
      },
      [&](const boost::system::error_code& ec, HttpReply reply) {
        if (ec) {
          result.emplace(failure(url_, target, ec, reply));
        } else if (reply.status != 200) {
          ApiReply answer{static_cast<int>(reply.status), std::move(reply.body)};
          result.emplace(Error{error_text(answer), 0,
                               reply.status >= 500 ? ErrorCode::unavailable : ErrorCode::invalid_input});
        } else {
          result.emplace(total);
        }
      });
  io.run();
  return std::move(*result);
}

}  // namespace boxcar::cli
