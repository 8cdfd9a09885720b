#include "http/http_client.h"

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

namespace boxcar {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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

// The server closed the connection: over TLS without close_notify too.
bool closed_by_server(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::ssl::error::stream_truncated;
}

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

constexpr size_t kMaxIdle = 8;
constexpr size_t kMaxErrorBody = 64 << 10;
constexpr size_t kStreamChunk = 64 << 10;  // a stream()ed body is handed over in pieces of at most this

// A Beast body of bytes [0, size) of an open file, read with pread(): the file's offset is never
// used, so every serialization starts at byte 0 and the descriptor may be shared. A read
// failure ends the write with an error and leaves its reason in `read_error`.
struct FdBody {
  struct value_type {
    SharedFd fd;
    uint64_t size = 0;
    std::string read_error;
    std::function<void(uint64_t)> progress;  // set: told the bytes read so far
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
      if (body_.progress) body_.progress(offset_);
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
    HttpStage stage = HttpStage::resolve;
    http::request<http::string_body> req;
    SharedFd file;  // set: the body is bytes [0, file_size) of this file
    uint64_t file_size = 0;
    std::function<void(uint64_t)> file_progress;
    std::optional<http::request<FdBody>> file_req;
    // A fresh one per read: it refuses an answer larger than options.max_body (body_limit).
    std::optional<http::response_parser<http::string_body>> parser;
    // stream(): the body is handed to on_data as it arrives, never held.
    BodyHandler on_data;
    std::optional<http::response_parser<http::buffer_body>> stream_parser;
    std::vector<char> chunk;
    std::string error_body;  // a streamed answer that is not 200: its start, for the message
    Millis timeout{0};       // kNoTimeout: none; for stream(), per wait
    std::unique_ptr<Connection> conn;
    std::chrono::steady_clock::time_point deadline;
    ReplyHandler done;
    bool reused = false;
    bool resent = false;
  };

  asio::io_context& io;
  ServerUrl base;
  std::string token;
  HttpClientOptions options;
  std::shared_ptr<TlsClient> tls;  // set for an https base
  tcp::resolver resolver{io};
  std::vector<std::unique_ptr<Connection>> idle;
  std::map<uint64_t, std::shared_ptr<Op>> ops;
  uint64_t next_id = 1;
  bool shut = false;

  Impl(asio::io_context& io_, ServerUrl b, std::string t, std::shared_ptr<TlsClient> tls_,
       HttpClientOptions o)
      : io(io_), base(std::move(b)), token(std::move(t)), options(std::move(o)), tls(std::move(tls_)) {
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

  // Arms the connection's timer for the next wait: the request's deadline, or none.
  static void arm(Op& op) {
    if (op.timeout == kNoTimeout) {
      op.conn->tcp().expires_never();
    } else if (op.on_data) {
      op.conn->tcp().expires_after(op.timeout);
    } else {
      op.conn->tcp().expires_at(op.deadline);
    }
  }

  void connect(const std::shared_ptr<Op>& op) {
    op->reused = false;
    op->stage = HttpStage::resolve;
    if (base.tls && !tls) return finish(op, asio::error::no_protocol_option);
    op->conn = std::make_unique<Connection>(io, base.tls ? tls.get() : nullptr);
    auto self = shared_from_this();
    resolver.async_resolve(base.host, base.port,
                           [self, op](const boost::system::error_code& ec,
                                      tcp::resolver::results_type results) {
                             if (self->gone(op)) return;
                             if (ec) return self->finish(op, ec);
                             op->stage = HttpStage::connect;
                             arm(*op);
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
    op->stage = HttpStage::tls_handshake;
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
    op->stage = HttpStage::exchange;
    auto self = shared_from_this();
    arm(*op);
    auto written = [self, op](const boost::system::error_code& ec, size_t) {
      if (self->gone(op)) return;
      if (ec && op->file_req && !op->file_req->body().read_error.empty()) {
        return self->finish(op, ec, op->file_req->body().read_error);
      }
      if (ec) return self->failed(op, ec);
      if (op->on_data) return self->read_stream_header(op);
      op->parser.emplace();
      op->parser->body_limit(self->options.max_body);
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
    op->file_req.emplace(op->req.method(), op->req.target(), 11);
    for (const auto& field : op->req) op->file_req->set(field.name_string(), field.value());
    op->file_req->body() = FdBody::value_type{op->file, op->file_size, {}, op->file_progress};
    op->file_req->prepare_payload();
    op->conn->with_stream(
        [&](auto& stream) { http::async_write(stream, *op->file_req, std::move(written)); });
  }

  void read_stream_header(const std::shared_ptr<Op>& op) {
    op->stream_parser.emplace();
    op->stream_parser->body_limit(boost::none);
    auto self = shared_from_this();
    op->conn->with_stream([&](auto& stream) {
      http::async_read_header(stream, op->conn->buffer, *op->stream_parser,
                              [self, op](const boost::system::error_code& ec, size_t) {
                                if (self->gone(op)) return;
                                if (ec) return self->failed(op, ec);
                                op->chunk.resize(kStreamChunk);
                                // Beast reads at most the buffer's free capacity (512 bytes
                                // after a small header): room for a whole chunk makes one
                                // recvmsg per 64 KiB instead of per 512 bytes, 5x the speed
                                // of a large download (bench/image_pull_bench.py).
                                op->conn->buffer.reserve(kStreamChunk);
                                self->read_stream_body(op);
                              });
    });
  }

  void read_stream_body(const std::shared_ptr<Op>& op) {
    if (op->stream_parser->is_done()) return streamed(op, /*whole=*/true);
    auto& body = op->stream_parser->get().body();
    body.data = op->chunk.data();
    body.size = op->chunk.size();
    arm(*op);
    auto self = shared_from_this();
    op->conn->with_stream([&](auto& stream) {
      // read_some hands over what has arrived: a live log is passed on as it comes.
      http::async_read_some(stream, op->conn->buffer, *op->stream_parser,
                            [self, op](boost::system::error_code ec, size_t) {
                              if (self->gone(op)) return;
                              if (ec == http::error::need_buffer) ec = {};
                              size_t n = op->chunk.size() - op->stream_parser->get().body().size;
                              bool ok = op->stream_parser->get().result_int() == 200;
                              if (n > 0 && !ok) {
                                // An error answer is kept for its message, up to 64 KiB; one
                                // that goes on past that (an endless body) is cut there.
                                op->error_body.append(op->chunk.data(), n);
                                if (op->error_body.size() >= kMaxErrorBody) {
                                  op->error_body.resize(kMaxErrorBody);
                                  return self->streamed(op, /*whole=*/false);
                                }
                              }
                              if (n > 0 && ok && !op->on_data(std::string_view(op->chunk.data(), n))) {
                                return self->streamed(op, /*whole=*/false);
                              }
                              // A body whose end is the connection's end (no length, not
                              // chunked) is whole when the connection closes, over TLS without
                              // close_notify too. One with a length or chunks is cut short:
                              // an injected FIN must not pass a truncated download as whole.
                              if (closed_by_server(ec)) {
                                if (op->stream_parser->need_eof()) return self->streamed(op, /*whole=*/false);
                                return self->finish(op, http::error::partial_message);
                              }
                              if (ec) return self->finish(op, ec);
                              self->read_stream_body(op);
                            });
    });
  }

  // The end of a streamed answer: whole (its connection may serve another request) or not.
  void streamed(const std::shared_ptr<Op>& op, bool whole) {
    HttpReply r;
    take_header(*op, r);
    r.body = std::move(op->error_body);
    if (whole && op->stream_parser->get().keep_alive() && idle.size() < kMaxIdle) {
      op->conn->tcp().expires_never();
      idle.push_back(std::move(op->conn));
    } else {
      beast::error_code ignored;
      op->conn->tcp().socket().close(ignored);
    }
    auto done = std::move(op->done);
    ops.erase(op->id);
    done({}, std::move(r));
  }

  // A kept-alive connection the server closed while idle fails at once: re-send once.
  void failed(const std::shared_ptr<Op>& op, const boost::system::error_code& ec) {
    // Only when nothing of an answer came: a request the server began to answer was received,
    // and sending it again (a job's `complete`) would do it twice.
    bool answered = (op->parser && op->parser->got_some()) || (op->stream_parser && op->stream_parser->got_some());
    if (op->reused && !op->resent && !answered && stale_connection_error(ec)) {
      op->resent = true;
      connect(op);
      return;
    }
    finish(op, ec);
  }

  // Status and headers, once they are in (an answer cut short, or too large, has them).
  static void take_header(Op& op, HttpReply& r) {
    auto take = [&r](const auto& res) {
      r.status = res.result_int();
      for (const auto& field : res) {
        r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
    };
    if (op.parser && op.parser->is_header_done()) take(op.parser->get());
    if (op.stream_parser && op.stream_parser->is_header_done()) take(op.stream_parser->get());
  }

  void answered(const std::shared_ptr<Op>& op) {
    HttpReply r;
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
    HttpReply r;
    take_header(*op, r);
    r.local_error = std::move(local_error);
    r.stage = op->stage;
    done(ec, std::move(r));
  }

  bool gone(const std::shared_ptr<Op>& op) const { return shut || !ops.count(op->id); }

  // A request's head: method, target, Host, User-Agent, token and the caller's headers.
  void set_head(http::request<http::string_body>& req, const std::string& method,
                const std::string& path, const HttpHeaders& headers) const {
    req.method(http::string_to_verb(method));
    req.target(base.prefix + path);
    req.version(11);
    req.set(http::field::host, base.authority);
    req.set(http::field::user_agent, options.user_agent);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    for (const auto& [name, value] : headers) req.set(name, value);
    req.keep_alive(true);
  }

  // Registers `op` and starts it from a fresh handler; returns its id.
  uint64_t queue(const std::shared_ptr<Op>& op, Millis timeout, ReplyHandler done);

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

HttpClient::HttpClient(asio::io_context& io, ServerUrl base, std::string token,
                       std::shared_ptr<TlsClient> tls, HttpClientOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(base), std::move(token), std::move(tls),
                                   std::move(options))) {}

HttpClient::~HttpClient() { impl_->shutdown(); }

uint64_t HttpClient::Impl::queue(const std::shared_ptr<Op>& op, Millis timeout, ReplyHandler done) {
  op->id = next_id++;
  op->done = std::move(done);
  op->timeout = timeout;
  op->deadline = std::chrono::steady_clock::now() + timeout;
  ops[op->id] = op;
  // Start from a fresh handler: never call `done` inside the call that queued it.
  auto self = shared_from_this();
  asio::post(io, [self, op] {
    if (!self->gone(op)) self->start(op);
  });
  return op->id;
}

uint64_t HttpClient::send(const std::string& method, const std::string& path, std::string body,
                          const std::string& content_type, Millis timeout, ReplyHandler done,
                          const HttpHeaders& headers) {
  auto op = std::make_shared<Impl::Op>();
  impl_->set_head(op->req, method, path, headers);
  if (!content_type.empty()) op->req.set(http::field::content_type, content_type);
  op->req.body() = std::move(body);
  op->req.prepare_payload();
  return impl_->queue(op, timeout, std::move(done));
}

uint64_t HttpClient::post_json(const std::string& path, const boost::json::value& body,
                               Millis timeout, ReplyHandler done, const HttpHeaders& headers) {
  return send("POST", path, boost::json::serialize(body), "application/json", timeout,
              std::move(done), headers);
}

uint64_t HttpClient::post_file(const std::string& path, SharedFd file, uint64_t size,
                               Millis timeout, ReplyHandler done, const HttpHeaders& headers) {
  return send_file("POST", path, std::move(file), size, timeout, std::move(done), headers);
}

uint64_t HttpClient::send_file(const std::string& method, const std::string& path, SharedFd file,
                               uint64_t size, Millis timeout, ReplyHandler done,
                               const HttpHeaders& headers, std::function<void(uint64_t)> progress) {
  auto op = std::make_shared<Impl::Op>();
  impl_->set_head(op->req, method, path, headers);
  op->req.set(http::field::content_type, "application/octet-stream");
  op->file = std::move(file);
  op->file_size = size;
  op->file_progress = std::move(progress);
  return impl_->queue(op, timeout, std::move(done));
}

uint64_t HttpClient::stream(const std::string& path, Millis idle, BodyHandler on_data,
                            ReplyHandler done, const HttpHeaders& headers) {
  auto op = std::make_shared<Impl::Op>();
  impl_->set_head(op->req, "GET", path, headers);
  op->req.prepare_payload();
  op->on_data = std::move(on_data);
  return impl_->queue(op, idle, std::move(done));
}

uint64_t HttpClient::stream(const std::string& method, const std::string& path, std::string body,
                            const std::string& content_type, Millis idle, BodyHandler on_data,
                            ReplyHandler done, const HttpHeaders& headers) {
  auto op = std::make_shared<Impl::Op>();
  impl_->set_head(op->req, method, path, headers);
  if (!content_type.empty()) op->req.set(http::field::content_type, content_type);
  op->req.body() = std::move(body);
  op->req.prepare_payload();
  op->on_data = std::move(on_data);
  return impl_->queue(op, idle, std::move(done));
}

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return "";
}

std::string reply_failure(const boost::system::error_code& ec, const HttpReply& reply) {
  if (ec) return ec.message();
  return "the server answered " + std::to_string(reply.status) + ": " + reply.body.substr(0, 300);
}

void HttpClient::cancel(uint64_t id) { impl_->abort(id); }

void HttpClient::set_token(std::string token) { impl_->token = std::move(token); }

size_t HttpClient::in_flight() const { return impl_->ops.size(); }

}  // namespace boxcar
