#include "agent/daemon/http_client.h"

#include "protocol/agent_protocol.h"

#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

namespace boxcar::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<BaseUrl> parse_base_url(const std::string& url) { return parse_server_url(url); }

namespace {

// One connection to the server: plain, or TLS when the client has a TlsClient.
struct Connection {
  Connection(asio::io_context& io, TlsClient* tls) {
    if (tls) {
      secure.emplace(io, tls->context());
    } else {
      plain.emplace(io);
    }
  }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  template <typename F>
  void with_stream(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(*plain);
    }
  }

  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
};

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

constexpr size_t kMaxIdle = 8;

// A Beast body of bytes [0, size) of an open file, read with pread(): the file's offset is never
// used, so every serialization starts at byte 0 and the descriptor may be shared. A read
// failure ends the write with an error and leaves its reason in `read_error`.
struct FdBody {
  struct value_type {
    SharedFd fd;
    uint64_t size = 0;
    std::string read_error;
  };

  static uint64_t size(const value_type& body) { return body.size; }

  class writer {
   public:
    using const_buffers_type = asio::const_buffer;

    template <bool isRequest, class Fields>
    writer(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(boost::system::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::system::error_code& ec) {
      ec = {};
      if (offset_ >= body_.size) return boost::none;
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.size(), body_.size - offset_));
      ssize_t n;
      do {
        n = ::pread(body_.fd->get(), buf_.data(), want, static_cast<off_t>(offset_));
      } while (n < 0 && errno == EINTR);
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        body_.read_error = n < 0 ? std::string("cannot read the file: ") + std::strerror(err)
                                 : "the file ended after " + std::to_string(offset_) + " of " +
                                       std::to_string(body_.size) + " bytes";
        ec = boost::system::error_code(err, boost::system::system_category());
        return boost::none;
      }
      offset_ += static_cast<uint64_t>(n);
      return {{asio::const_buffer(buf_.data(), static_cast<size_t>(n)), offset_ < body_.size}};
    }

   private:
    value_type& body_;
    uint64_t offset_ = 0;
    std::array<char, 1 << 16> buf_;
  };
};

}  // namespace

struct HttpClient::Impl : std::enable_shared_from_this<Impl> {
  struct Op {
    uint64_t id = 0;
    http::request<http::string_body> req;
    SharedFd file;  // set: the body is bytes [0, file_size) of this file
    uint64_t file_size = 0;
    std::optional<http::request<FdBody>> file_req;
    // A fresh one per read: it refuses an answer larger than kMaxClaimBytes (body_limit).
    std::optional<http::response_parser<http::string_body>> parser;
    std::unique_ptr<Connection> conn;
    std::chrono::steady_clock::time_point deadline;
    HttpHandler done;
    bool reused = false;
    bool resent = false;
  };

  asio::io_context& io;
  BaseUrl base;
  std::string token;
  std::shared_ptr<TlsClient> tls;  // set for an https base
  tcp::resolver resolver{io};
  std::vector<std::unique_ptr<Connection>> idle;
  std::map<uint64_t, std::shared_ptr<Op>> ops;
  uint64_t next_id = 1;
  bool shut = false;

  Impl(asio::io_context& io_, BaseUrl b, std::string t, std::shared_ptr<TlsClient> tls_)
      : io(io_), base(std::move(b)), token(std::move(t)), tls(std::move(tls_)) {
    if (base.tls && !tls) {
      if (auto system = TlsClient::create({})) tls = *system;
    }
  }

  void start(const std::shared_ptr<Op>& op) {
    if (!idle.empty()) {
      op->conn = std::move(idle.back());
      idle.pop_back();
      op->reused = true;
      send(op);
      return;
    }
    connect(op);
  }

  void connect(const std::shared_ptr<Op>& op) {
    op->reused = false;
    if (base.tls && !tls) return finish(op, asio::error::no_protocol_option);
    op->conn = std::make_unique<Connection>(io, base.tls ? tls.get() : nullptr);
    auto self = shared_from_this();
    resolver.async_resolve(base.host, base.port,
                           [self, op](const boost::system::error_code& ec,
                                      tcp::resolver::results_type results) {
                             if (self->gone(op)) return;
                             if (ec) return self->finish(op, ec);
                             op->conn->tcp().expires_at(op->deadline);
                             op->conn->tcp().async_connect(
                                 results, [self, op](const boost::system::error_code& cec,
                                                     const tcp::endpoint&) {
                                   if (self->gone(op)) return;
                                   if (cec) return self->finish(op, cec);
                                   if (op->conn->secure) return self->handshake(op);
                                   self->send(op);
                                 });
                           });
  }

  void handshake(const std::shared_ptr<Op>& op) {
    SSL* ssl = op->conn->secure->native_handle();
    if (auto ec = tls->prepare(ssl, base.host)) return finish(op, ec);
    auto self = shared_from_this();
    op->conn->secure->async_handshake(
        asio::ssl::stream_base::client, [self, op](const boost::system::error_code& ec) {
          if (self->gone(op)) return;
          if (ec) return self->finish(op, TlsClient::explain(op->conn->secure->native_handle(), ec));
          self->send(op);
        });
  }

  void send(const std::shared_ptr<Op>& op) {
    auto self = shared_from_this();
    op->conn->tcp().expires_at(op->deadline);
    auto written = [self, op](const boost::system::error_code& ec, size_t) {
      if (self->gone(op)) return;
      if (ec && op->file_req && !op->file_req->body().read_error.empty()) {
        return self->finish(op, ec, op->file_req->body().read_error);
      }
      if (ec) return self->failed(op, ec);
      op->parser.emplace();
      op->parser->body_limit(protocol::kMaxClaimBytes);
      op->conn->with_stream([&](auto& stream) {
        http::async_read(stream, op->conn->buffer, *op->parser,
                         [self, op](const boost::system::error_code& rec, size_t) {
                           if (self->gone(op)) return;
                           if (rec) return self->failed(op, rec);
                           self->answered(op);
                         });
      });
    };
    if (!op->file) {
      return op->conn->with_stream(
          [&](auto& stream) { http::async_write(stream, op->req, std::move(written)); });
    }
    // A fresh body for every send: a re-send starts from the first byte again.
    op->file_req.emplace(http::verb::post, op->req.target(), 11);
    for (const auto& field : op->req) op->file_req->set(field.name_string(), field.value());
    op->file_req->body() = FdBody::value_type{op->file, op->file_size, {}};
    op->file_req->prepare_payload();
    op->conn->with_stream(
        [&](auto& stream) { http::async_write(stream, *op->file_req, std::move(written)); });
  }

  // A kept-alive connection the server closed while idle fails at once: re-send once.
  void failed(const std::shared_ptr<Op>& op, const boost::system::error_code& ec) {
    if (op->reused && !op->resent && stale_connection_error(ec)) {
      op->resent = true;
      connect(op);
      return;
    }
    finish(op, ec);
  }

  // Status and headers, once they are in (an answer cut short, or too large, has them).
  static void take_header(Op& op, HttpResponse& r) {
    if (!op.parser || !op.parser->is_header_done()) return;
    const auto& res = op.parser->get();
    r.status = res.result_int();
    for (const auto& field : res) {
      r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
  }

  void answered(const std::shared_ptr<Op>& op) {
    HttpResponse r;
    take_header(*op, r);
    auto& res = op->parser->get();
    r.body = std::move(res.body());
    if (res.keep_alive() && idle.size() < kMaxIdle) {
      op->conn->tcp().expires_never();
      idle.push_back(std::move(op->conn));
    }
    auto done = std::move(op->done);
    ops.erase(op->id);
    done({}, std::move(r));
  }

  void finish(const std::shared_ptr<Op>& op, const boost::system::error_code& ec,
              std::string local_error = {}) {
    if (op->conn) {
      beast::error_code ignored;
      op->conn->tcp().socket().close(ignored);
    }
    auto done = std::move(op->done);
    ops.erase(op->id);
    HttpResponse r;
    take_header(*op, r);
    r.local_error = std::move(local_error);
    done(ec, std::move(r));
  }

  bool gone(const std::shared_ptr<Op>& op) const { return shut || !ops.count(op->id); }

  void abort(uint64_t id) {
    auto it = ops.find(id);
    if (it == ops.end()) return;
    auto op = it->second;
    ops.erase(it);
    if (op->conn) op->conn->tcp().close();
  }

  void shutdown() {
    shut = true;
    resolver.cancel();
    auto all = std::move(ops);
    for (auto& [id, op] : all) {
      if (op->conn) op->conn->tcp().close();
    }
    for (auto& c : idle) c->tcp().close();
    idle.clear();
  }
};

HttpClient::HttpClient(asio::io_context& io, BaseUrl base, std::string token,
                       std::shared_ptr<TlsClient> tls)
    : impl_(std::make_shared<Impl>(io, std::move(base), std::move(token), std::move(tls))) {}

HttpClient::~HttpClient() { impl_->shutdown(); }

uint64_t HttpClient::post_json(const std::string& path, const boost::json::value& body,
                               Millis timeout, HttpHandler done, const std::string& lease) {
  auto op = std::make_shared<Impl::Op>();
  op->id = impl_->next_id++;
  op->done = std::move(done);
  op->deadline = std::chrono::steady_clock::now() + timeout;
  op->req.method(http::verb::post);
  op->req.target(impl_->base.prefix + path);
  op->req.version(11);
  op->req.set(http::field::host, impl_->base.authority);
  op->req.set(http::field::user_agent, "boxcar-agent");
  op->req.set(http::field::content_type, "application/json");
  op->req.set(http::field::authorization, "Bearer " + impl_->token);
  if (!lease.empty()) op->req.set(protocol::kLeaseHeader, lease);
  op->req.keep_alive(true);
  op->req.body() = boost::json::serialize(body);
  op->req.prepare_payload();
  impl_->ops[op->id] = op;
  // Start from a fresh handler: never call `done` inside post_json.
  auto impl = impl_;
  asio::post(impl_->io, [impl, op] {
    if (!impl->gone(op)) impl->start(op);
  });
  return op->id;
}

uint64_t HttpClient::post_file(const std::string& path, SharedFd file, uint64_t size,
                               Millis timeout, HttpHandler done, const std::string& lease) {
  auto op = std::make_shared<Impl::Op>();
  op->id = impl_->next_id++;
  op->done = std::move(done);
  op->deadline = std::chrono::steady_clock::now() + timeout;
  op->file = std::move(file);
  op->file_size = size;
  op->req.method(http::verb::post);
  op->req.target(impl_->base.prefix + path);
  op->req.version(11);
  op->req.set(http::field::host, impl_->base.authority);
  op->req.set(http::field::user_agent, "boxcar-agent");
  op->req.set(http::field::content_type, "application/octet-stream");
  op->req.set(http::field::authorization, "Bearer " + impl_->token);
  if (!lease.empty()) op->req.set(protocol::kLeaseHeader, lease);
  op->req.keep_alive(true);
  impl_->ops[op->id] = op;
  auto impl = impl_;
  asio::post(impl_->io, [impl, op] {
    if (!impl->gone(op)) impl->start(op);
  });
  return op->id;
}

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return "";
}

void HttpClient::cancel(uint64_t id) { impl_->abort(id); }

void HttpClient::set_token(std::string token) { impl_->token = std::move(token); }

size_t HttpClient::in_flight() const { return impl_->ops.size(); }

}  // namespace boxcar::agent
