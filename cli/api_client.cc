#include "cli/api_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <vector>

namespace boxcar::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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

std::string error_text(const ApiReply& reply) {
  if (reply.status == 401) {
    return "no valid API token for this server (401): set BOXCAR_API_TOKEN or --token-file "
           "(`boxcar serve` wrote one to <data>/api-token unless it was given --api-token or "
           "--api-tokens)";
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(reply.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("error") &&
      v.as_object().at("error").is_string()) {
    return std::string(v.as_object().at("error").as_string());
  }
  return "HTTP " + std::to_string(reply.status) + (reply.body.empty() ? "" : ": " + reply.body);
}

Result<ApiClient> ApiClient::create(const std::string& base, const ClientOptions& options) {
  auto url = parse_server_url(base);
  if (!url) return url.error();
  if (!url->prefix.empty()) {
    return Error{"server URL \"" + base + "\" must not have a path (like https://ci.example:8443)"};
  }
  if (!options.token.empty()) {
    if (Status st = check_token_transport(*url, "API token"); !st.ok()) return st.error();
  }
  ApiClient c;
  c.url_ = std::move(*url);
  c.token_ = options.token;
  if (c.url_.tls) {
    auto tls = TlsClient::create({options.ca_file});
    if (!tls) return Error{tls.error().message + " (--ca-file or BOXCAR_CA_FILE)"};
    c.tls_ = std::move(*tls);
  }
  return c;
}

namespace {

// One connection to the server, plain or TLS.
struct Connection {
  std::optional<tcp::socket> plain;
  std::optional<asio::ssl::stream<tcp::socket>> secure;

  template <typename F>
  auto with_stream(F&& f) {
    return secure ? f(*secure) : f(*plain);
  }
};

Result<std::unique_ptr<Connection>> connect(asio::io_context& io, const ServerUrl& url,
                                            TlsClient* tls) {
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return Error{"cannot reach the boxcar server at " + url.text + ": " + ec.message()};
  tcp::socket socket(io);
  asio::connect(socket, endpoints, ec);
  if (ec) {
    return Error{"cannot reach the boxcar server at " + url.text + ": " + ec.message() +
                 " (is `boxcar serve` running? set --server or BOXCAR_SERVER)"};
  }
  auto conn = std::make_unique<Connection>();
  if (!tls) {
    conn->plain.emplace(std::move(socket));
    return conn;
  }
  auto& stream = conn->secure.emplace(std::move(socket), tls->context());
  ec = tls->prepare(stream.native_handle(), url.host);
  if (!ec) stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    return Error{"cannot talk to the boxcar server at " + url.text + " over TLS: " +
                 TlsClient::explain(stream.native_handle(), ec).message()};
  }
  return conn;
}

// The server closed the connection: over TLS without close_notify too.
bool closed(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

Result<ApiReply> ApiClient::request(const std::string& method, const std::string& target,
                                    const std::string& json_body) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, url_.authority);
  req.set(http::field::user_agent, "boxcar-cli");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
  }
  req.prepare_payload();
  asio::io_context io;
  auto conn = connect(io, url_, tls_.get());
  if (!conn) return conn.error();
  boost::system::error_code ec;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  (*conn)->with_stream([&](auto& stream) {
    beast::flat_buffer buf;
    http::write(stream, req, ec);
    if (!ec) http::read(stream, buf, parser, ec);
    return 0;
  });
  if (ec) return Error{"request to " + url_.text + target + " failed: " + ec.message()};
  return ApiReply{static_cast<int>(parser.get().result_int()), parser.get().body()};
}

Status ApiClient::stream(const std::string& target,
                         const std::function<bool(std::string_view)>& on_data) {
  auto got = download(target, on_data);
  if (!got) return got.error();
  return {};
}

Result<uint64_t> ApiClient::download(const std::string& target,
                                     const std::function<bool(std::string_view)>& on_data) {
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, url_.authority);
  req.set(http::field::user_agent, "boxcar-cli");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  asio::io_context io;
  auto conn = connect(io, url_, tls_.get());
  if (!conn) return conn.error();
  return (*conn)->with_stream([&](auto& stream) -> Result<uint64_t> {
    boost::system::error_code ec;
    http::write(stream, req, ec);
    if (ec) return Error{"request to " + url_.text + target + " failed: " + ec.message()};
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    http::read_header(stream, buf, parser, ec);
    if (ec) return Error{"request to " + url_.text + target + " failed: " + ec.message()};
    bool ok = parser.get().result_int() == 200;
    std::string error_body;
    std::vector<char> chunk(1 << 18);
    uint64_t total = 0;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      // read_some hands over what has arrived: a live log stream is printed as it comes.
      http::read_some(stream, buf, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (closed(ec)) break;
      if (ec) return Error{"reading " + url_.text + target + " broke: " + ec.message()};
      size_t n = chunk.size() - parser.get().body().size;
      if (!ok) {
        if (error_body.size() < 65536) error_body.append(chunk.data(), n);
        continue;
      }
      total += n;
      if (n > 0 && !on_data(std::string_view(chunk.data(), n))) break;
    }
    if (!ok) {
      return Error{error_text(ApiReply{static_cast<int>(parser.get().result_int()), error_body})};
    }
    return total;
  });
}

}  // namespace boxcar::cli
