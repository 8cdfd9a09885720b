#include "http/reverse_proxy.h"

#include <array>
#include <set>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kPiece = 64 << 10;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and the framing, which each side sets for itself.
const std::set<std::string>& hop_by_hop() {
  static const std::set<std::string> kNames = {
      "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
      "te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect", "host"};
  return kNames;
}

std::string chunk(const char* data, size_t n) {
  char size[32];
  int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
  std::string out(size, static_cast<size_t>(len));
  out.append(data, n);
  out += "\r\n";
  return out;
}

class ProxyExchange : public std::enable_shared_from_this<ProxyExchange> {
 public:
  ProxyExchange(HttpRequest& request, std::shared_ptr<Responder> responder, ProxyTarget target,
                ProxyOptions options)
      : conn_(request.connection), responder_(std::move(responder)), target_(std::move(target)),
        options_(std::move(options)), resolver_(conn_->executor()), upstream_(conn_->executor()),
        head_(request.raw.base()) {
    // Beast reads as much as buffer_ has room for (at least 512 bytes): an empty buffer would
    // relay the answer in 512-byte pieces, each a read, a write and a turn of the io_context
    // (what held a GET through the gateway at 28 MB/s and ~40 ms of CPU per MiB).
    buffer_.reserve(kPiece + (16 << 10));
  }

  void start() {
    resolver_.async_resolve(target_.host, target_.port,
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              if (ec) return self->unreachable("cannot resolve: " + ec.message());
                              self->upstream_.expires_after(self->options_.connect_timeout);
                              self->upstream_.async_connect(r, [self](beast::error_code e, auto) {
                                if (e) return self->unreachable("cannot connect: " + e.message());
                                self->send_head();
                              });
                            });
  }

 private:
  void unreachable(const std::string& why) {
    if (replied_) return;
    replied_ = true;
    beast::error_code ignored;
    upstream_.socket().close(ignored);
    responder_->reply(options_.unreachable ? options_.unreachable(why) : HttpResponse::error(502, why));
  }

  void send_head() {
    std::set<std::string> skip = hop_by_hop();
    for (const auto& d : target_.drop) skip.insert(lower(d));
    for (const auto& [name, value] : target_.add) skip.insert(lower(name));
    std::string out = std::string(head_.method_string()) + " " + target_.target + " HTTP/1.1\r\n";
    out += "Host: " + target_.host + ":" + target_.port + "\r\n";
    for (const auto& field : head_) {
      if (skip.contains(lower(field.name_string()))) continue;
      out += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
    }
    for (const auto& [name, value] : target_.add) out += name + ": " + value + "\r\n";
    // The HttpServer's parser took the header only with chunked as the final coding, if any.
    chunked_request_ = lower(head_[beast::http::field::transfer_encoding]).find("chunked") != std::string::npos;
    if (chunked_request_) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (auto length = head_.find(beast::http::field::content_length); length != head_.end()) {
      out += "Content-Length: " + std::string(length->value()) + "\r\n";
    }
    out += "Connection: close\r\n\r\n";
    write_upstream(std::move(out), [self = shared_from_this()] { self->relay_request_body(); });
  }

  void write_upstream(std::string data, std::function<void()> next) {
    auto buffer = std::make_shared<std::string>(std::move(data));
    upstream_.expires_after(options_.idle_timeout);
    net::async_write(upstream_, net::buffer(*buffer),
                     [self = shared_from_this(), buffer, next = std::move(next)](beast::error_code ec, size_t) {
                       // The upstream may answer (and close) before taking the whole body: read it.
                       if (ec) return self->read_response_head();
                       next();
                     });
  }

  void relay_request_body() {
    if (!conn_->has_body()) return read_response_head();
    conn_->read_body(in_.data(), in_.size(), [self = shared_from_this()](bool ok, size_t n, bool last) {
      net::dispatch(self->upstream_.get_executor(), [self, ok, n, last] {
        if (!ok) {
          // The client went away mid-body: the upstream must not take half a body as whole.
          beast::error_code ignored;
          self->upstream_.socket().close(ignored);
          self->replied_ = true;
          return self->conn_->finish();
        }
        std::string piece;
        if (n > 0) piece = self->chunked_request_ ? chunk(self->in_.data(), n) : std::string(self->in_.data(), n);
        if (last && self->chunked_request_) piece += "0\r\n\r\n";
        auto next = [self, last] { last ? self->read_response_head() : self->relay_request_body(); };
        if (piece.empty()) return next();
        self->write_upstream(std::move(piece), next);
      });
    });
  }

  void read_response_head() {
    if (reading_response_) return;
    reading_response_ = true;
    parser_.body_limit(boost::none);
    if (head_.method() == beast::http::verb::head) parser_.skip(true);
    upstream_.expires_after(options_.idle_timeout);
    beast::http::async_read_header(upstream_, buffer_, parser_,
                                   [self = shared_from_this()](beast::error_code ec, size_t) {
                                     if (ec) return self->unreachable("no answer: " + ec.message());
                                     self->send_response_head();
                                   });
  }

  void send_response_head() {
    replied_ = true;
    const auto& res = parser_.get();
    unsigned status = res.result_int();
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(res.reason()) + "\r\n";
    for (const auto& field : res) {
      if (hop_by_hop().contains(lower(field.name_string()))) continue;
      out += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
    }
    bool no_body = status / 100 == 1 || status == 204 || status == 304;
    if (auto length = parser_.content_length(); length && !no_body) {
      out += "Content-Length: " + std::to_string(*length) + "\r\n";
    } else if (!no_body && head_.method() != beast::http::verb::head) {
      chunked_response_ = true;
      out += "Transfer-Encoding: chunked\r\n";
    }
    out += "Connection: close\r\n\r\n";
    conn_->write_raw(std::move(out), [self = shared_from_this()](bool ok) {
      net::dispatch(self->upstream_.get_executor(), [self, ok] {
        if (!ok) return self->close();
        self->relay_response_body();
      });
    });
  }

  void relay_response_body() {
    if (parser_.is_done()) {
      if (!chunked_response_) return close();
      return conn_->write_raw("0\r\n\r\n", [self = shared_from_this()](bool) { self->close(); });
    }
    auto& body = parser_.get().body();
    body.data = out_.data();
    body.size = out_.size();
    upstream_.expires_after(options_.idle_timeout);
    // read_some: each piece goes on as soon as it is here (server-sent events flow live).
    beast::http::async_read_some(upstream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec == beast::http::error::need_buffer) ec = {};
      if (ec) return self->close();  // cut short: the client sees the answer end early
      size_t n = self->out_.size() - self->parser_.get().body().size;
      if (n == 0) return self->relay_response_body();
      std::string piece = self->chunked_response_ ? chunk(self->out_.data(), n) : std::string(self->out_.data(), n);
      self->conn_->write_raw(std::move(piece), [self](bool ok) {
        net::dispatch(self->upstream_.get_executor(), [self, ok] {
          if (!ok) return self->close();
          self->relay_response_body();
        });
      });
    });
  }

  void close() {
    beast::error_code ignored;
    upstream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    upstream_.close();
    conn_->finish();
  }

  std::shared_ptr<TakenConnection> conn_;
  std::shared_ptr<Responder> responder_;
  ProxyTarget target_;
  ProxyOptions options_;
  tcp::resolver resolver_;
  beast::tcp_stream upstream_;
  beast::http::request_header<> head_;
  beast::flat_buffer buffer_{kPiece + (16 << 10)};
  beast::http::response_parser<beast::http::buffer_body> parser_;
  std::array<char, kPiece> in_{};
  std::array<char, kPiece> out_{};
  bool chunked_request_ = false, chunked_response_ = false;
  bool replied_ = false, reading_response_ = false;
};

}  // namespace

void reverse_proxy(HttpRequest& request, std::shared_ptr<Responder> responder, ProxyTarget target,
                   ProxyOptions options) {
  if (!request.connection) {
    return responder->reply(HttpResponse::error(500, "reverse_proxy needs a take_connection route"));
  }
  std::make_shared<ProxyExchange>(request, std::move(responder), std::move(target), std::move(options))->start();
}

}  // namespace boxcar::server
