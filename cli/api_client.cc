#include "cli/api_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

std::string error_text(const ApiReply& reply) {
  boost::system::error_code ec;
  auto v = boost::json::parse(reply.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("error") &&
      v.as_object().at("error").is_string()) {
    return std::string(v.as_object().at("error").as_string());
  }
  return "HTTP " + std::to_string(reply.status) + (reply.body.empty() ? "" : ": " + reply.body);
}

Result<ApiClient> ApiClient::create(const std::string& base) {
  const std::string scheme = "http://";
  if (base.rfind(scheme, 0) != 0) {
    return Error{"server URL \"" + base + "\" must start with http:// (like http://127.0.0.1:8080)"};
  }
  std::string rest = base.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) {
    return Error{"server URL \"" + base + "\" must not have a path"};
  }
  ApiClient c;
  c.base_ = scheme + rest;
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || rest.back() == ']') {
    c.host_ = rest;
    c.port_ = "80";
  } else {
    c.host_ = rest.substr(0, colon);
    c.port_ = rest.substr(colon + 1);
  }
  if (c.host_.size() > 2 && c.host_.front() == '[') c.host_ = c.host_.substr(1, c.host_.size() - 2);
  if (c.host_.empty()) return Error{"server URL \"" + base + "\" has no host"};
  return c;
}

namespace {

Result<tcp::socket> connect(asio::io_context& io, const std::string& host, const std::string& port,
                            const std::string& base) {
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return Error{"cannot reach the boxcar server at " + base + ": " + ec.message()};
  tcp::socket socket(io);
  asio::connect(socket, endpoints, ec);
  if (ec) {
    return Error{"cannot reach the boxcar server at " + base + ": " + ec.message() +
                 " (is `boxcar serve` running? set --server or BOXCAR_SERVER)"};
  }
  return socket;
}

}  // namespace

Result<ApiReply> ApiClient::request(const std::string& method, const std::string& target,
                                    const std::string& json_body) {
  asio::io_context io;
  auto socket = connect(io, host_, port_, base_);
  if (!socket) return socket.error();
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "boxcar-cli");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
  }
  req.prepare_payload();
  boost::system::error_code ec;
  http::write(*socket, req, ec);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  if (!ec) http::read(*socket, buf, parser, ec);
  if (ec) return Error{"request to " + base_ + target + " failed: " + ec.message()};
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
  asio::io_context io;
  auto socket = connect(io, host_, port_, base_);
  if (!socket) return socket.error();
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "boxcar-cli");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  boost::system::error_code ec;
  http::write(*socket, req, ec);
  if (ec) return Error{"request to " + base_ + target + " failed: " + ec.message()};
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(*socket, buf, parser, ec);
  if (ec) return Error{"request to " + base_ + target + " failed: " + ec.message()};
  bool ok = parser.get().result_int() == 200;
  std::string error_body;
  std::vector<char> chunk(1 << 18);
  uint64_t total = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some hands over what has arrived: a live log stream is printed as it comes.
    http::read_some(*socket, buf, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) return Error{"reading " + base_ + target + " broke: " + ec.message()};
    size_t n = chunk.size() - parser.get().body().size;
    if (!ok) {
      if (error_body.size() < 65536) error_body.append(chunk.data(), n);
      continue;
    }
    total += n;
    if (n > 0 && !on_data(std::string_view(chunk.data(), n))) break;
  }
  if (!ok) return Error{error_text(ApiReply{static_cast<int>(parser.get().result_int()), error_body})};
  return total;
}

}  // namespace boxcar::cli
