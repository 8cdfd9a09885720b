#include "client/api_connection.h"

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <optional>

#include "base/terminal_escape.h"

namespace boxcar::client {

namespace {

constexpr size_t kMaxMessage = 1024;
constexpr uint64_t kMaxAnswer = 256ull << 20;  // listings and sync exec output (16 MiB x 2 + JSON)
const char* const kUserAgent = "boxcar-client";

ErrorCode code_for_status(int status) {
  if (status == 401) return ErrorCode::usage;
  if (status == 404) return ErrorCode::not_found;
  if (status == 409) return ErrorCode::conflict;
  if (status == 413 || status == 429 || status == 507) return ErrorCode::limit_exceeded;
  if (status >= 500) return ErrorCode::unavailable;
  return ErrorCode::invalid_input;
}

// The server's words are shown on terminals: escapes made visible and cut short.
std::string shown(std::string_view text) {
  std::string out = escape_for_terminal(text.substr(0, kMaxMessage));
  if (text.size() > kMaxMessage) out += "...";
  return out;
}

}  // namespace

ApiFailure parse_failure(int status, std::string_view body) {
  ApiFailure f;
  f.status = status;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    auto text = [&](const char* key) -> std::string {
      auto* p = o.if_contains(key);
      return p && p->is_string() ? shown(p->as_string()) : "";
    };
    f.message = text("error");
    f.code = text("code");
    f.field = text("field");
  }
  if (f.message.empty()) {
    f.message = "HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + shown(body));
  }
  if (status == 401) {
    f.message += " (set --token or BOXCAR_API_TOKEN to a token of this server; `boxcar serve` "
                 "writes one to <data>/api-token when it is given none)";
  }
  return f;
}

Error api_error(const ApiFailure& failure) {
  return Error{failure.message, 0, code_for_status(failure.status), failure.code};
}

Result<std::shared_ptr<ApiConnection>> ApiConnection::open(const std::string& server, std::string token,
                                                           const ConnectOptions& options) {
  auto url = parse_server_url(server);
  if (!url) return Error{url.error().message, 0, ErrorCode::usage};
  if (!url->prefix.empty()) {
    return Error{"server URL \"" + server + "\" must not have a path (like https://ci.example:8443)",
                 0, ErrorCode::usage};
  }
  if (!token.empty()) {
    if (Status st = check_token_transport(*url, "API token"); !st.ok()) {
      return Error{st.error().message, 0, ErrorCode::usage};
    }
  }
  auto c = std::make_shared<ApiConnection>();
  c->url_ = std::move(*url);
  c->token_ = std::move(token);
  if (c->url_.tls) {
    auto tls = TlsClient::create({options.ca_file});
    if (!tls) return Error{tls.error().message, 0, ErrorCode::usage};
    c->tls_ = std::move(*tls);
  }
  return c;
}

Result<std::string> ApiConnection::finish(const std::string& target, const boost::system::error_code& ec,
                                          HttpReply& reply) {
  if (ec) {
    std::string what = reply.stage == HttpStage::exchange
                           ? "request to " + url_.text + target + " failed: " + ec.message()
                           : "cannot reach the boxcar server at " + url_.text + ": " + ec.message();
    if (!reply.local_error.empty()) return Error{reply.local_error, 0, ErrorCode::invalid_input};
    return Error{what, 0, ErrorCode::unavailable};
  }
  if (reply.status < 200 || reply.status > 299) {
    return api_error(parse_failure(static_cast<int>(reply.status), reply.body));
  }
  return std::move(reply.body);
}

Result<std::string> ApiConnection::call(const std::string& method, const std::string& target,
                                        std::string body, const std::string& content_type,
                                        const HttpHeaders& headers) {
  boost::asio::io_context io;
  HttpClient client(io, url_, token_, tls_, HttpClientOptions{kUserAgent, kMaxAnswer});
  std::optional<Result<std::string>> result;
  bool has_body = !body.empty();
  client.send(method, target, std::move(body), has_body ? content_type : "", kNoTimeout,
              [&](const boost::system::error_code& ec, HttpReply reply) {
                result.emplace(finish(target, ec, reply));
              },
              headers);
  io.run();
  return std::move(*result);
}

Result<boost::json::value> ApiConnection::call_json(const std::string& method, const std::string& target,
                                                    const boost::json::value& body,
                                                    const HttpHeaders& headers) {
  auto answer = call(method, target, body.is_null() ? "" : boost::json::serialize(body),
                     "application/json", headers);
  if (!answer) return answer.error();
  if (answer->empty()) return boost::json::value(nullptr);
  boost::system::error_code ec;
  auto v = boost::json::parse(*answer, ec);
  if (ec) {
    return Error{"the server's answer to " + method + " " + target + " is not JSON: " + ec.message(),
                 0, ErrorCode::unavailable};
  }
  return v;
}

Status ApiConnection::stream(const std::string& method, const std::string& target, std::string body,
                             const std::function<bool(std::string_view)>& on_data) {
  boost::asio::io_context io;
  HttpClient client(io, url_, token_, tls_, HttpClientOptions{kUserAgent, kMaxAnswer});
  std::optional<Status> result;
  bool has_body = !body.empty();
  client.stream(method, target, std::move(body), has_body ? "application/json" : "", kNoTimeout,
                on_data, [&](const boost::system::error_code& ec, HttpReply reply) {
                  auto r = finish(target, ec, reply);
                  result.emplace(r ? Status{} : Status{r.error()});
                });
  io.run();
  return std::move(*result);
}

Result<std::string> ApiConnection::upload(const std::string& method, const std::string& target,
                                          SharedFd file, uint64_t size,
                                          const std::function<void(uint64_t)>& progress) {
  boost::asio::io_context io;
  HttpClient client(io, url_, token_, tls_, HttpClientOptions{kUserAgent, kMaxAnswer});
  std::optional<Result<std::string>> result;
  client.send_file(method, target, std::move(file), size, kNoTimeout,
                   [&](const boost::system::error_code& ec, HttpReply reply) {
                     result.emplace(finish(target, ec, reply));
                   },
                   {}, progress);
  io.run();
  return std::move(*result);
}

}  // namespace boxcar::client
