// HttpSession: reading requests, dispatching them to handlers, and the session's lifetime
// (keep-alive, close, TLS shutdown). Reading bodies: http_session_body.cc. Writing answers and
// streams: http_session_write.cc.
#include "http/http_session.h"

#include "base/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

// The Responder a handler sees: forwards to its session on the session's strand, and ignores
// everything once this request is answered or the session has moved on.
class Exchange : public Responder {
 public:
  Exchange(std::shared_ptr<HttpSession> session, uint64_t id)
      : session_(std::move(session)), id_(id) {}

  void reply(HttpResponse response) override {
    run([id = id_, r = std::move(response)](HttpSession& s) mutable { s.send(std::move(r), id); });
  }
  void begin_stream(HttpResponse head) override {
    run([id = id_, h = std::move(head)](HttpSession& s) mutable {
      s.send_stream_head(std::move(h), id);
    });
  }
  void write(std::string data, std::function<void(bool)> done) override {
    run([id = id_, d = std::move(data), f = std::move(done)](HttpSession& s) mutable {
      s.send_chunk(std::move(d), std::move(f), false, id);
    });
  }
  void end() override {
    run([id = id_](HttpSession& s) { s.send_chunk({}, nullptr, true, id); });
  }
  void reply_file(HttpResponse head, std::filesystem::path file, uint64_t offset,
                  uint64_t length) override {
    run([id = id_, h = std::move(head), f = std::move(file), offset, length](HttpSession& s) mutable {
      s.send_file(std::move(h), std::move(f), offset, length, id);
    });
  }
  void reply_fd(HttpResponse head, int fd, uint64_t offset, uint64_t length) override {
    auto owned = std::make_shared<unique_fd>(fd);
    run([id = id_, h = std::move(head), owned, offset, length](HttpSession& s) mutable {
      s.send_fd(std::move(h), owned->release(), offset, length, id);
    });
  }
  net::any_io_executor executor() override { return session_->executor(); }
  void on_close(std::function<void()> callback) override {
    run([id = id_, f = std::move(callback)](HttpSession& s) mutable {
      s.add_close_callback(std::move(f), id);
    });
  }
  bool closed() const override { return session_->is_closed(); }

 private:
  template <typename F>
  void run(F&& f) {
    net::post(session_->executor(),
              [s = session_, f = std::forward<F>(f)]() mutable { f(*s); });
  }

  std::shared_ptr<HttpSession> session_;
  uint64_t id_;
};

// The TakenConnection a take_connection route sees: forwards to its session on the strand.
class Taken : public TakenConnection {
 public:
  Taken(std::shared_ptr<HttpSession> session, uint64_t id, bool has_body)
      : session_(std::move(session)), id_(id), has_body_(has_body) {}
  void read_body(char* data, size_t size, std::function<void(bool, size_t, bool)> done) override {
    net::post(session_->executor(), [s = session_, id = id_, data, size, f = std::move(done)]() mutable {
      s->taken_read_body(data, size, std::move(f), id);
    });
  }
  bool has_body() const override { return has_body_; }
  void write_raw(std::string data, std::function<void(bool)> done) override {
    net::post(session_->executor(), [s = session_, id = id_,
                                     d = std::make_shared<std::string>(std::move(data)),
                                     f = std::move(done)]() mutable {
      s->taken_write(std::move(d), std::move(f), id);
    });
  }
  void finish() override {
    net::post(session_->executor(), [s = session_, id = id_] { s->taken_finish(id); });
  }
  net::any_io_executor executor() override { return session_->executor(); }

 private:
  std::shared_ptr<HttpSession> session_;
  uint64_t id_;
  bool has_body_;
};

}  // namespace

BodySpool::~BodySpool() {
  if (fd >= 0) ::close(fd);
  if (!handed_over && !file.empty()) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
  }
}

HttpSession::HttpSession(tcp::socket socket, ConnectionSlot slot, HttpServer& server,
                         net::ssl::context* tls)
    : server_(server), slot_(std::move(slot)), idle_timer_(socket.get_executor()) {
  beast::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (!ec) {
    auto address = peer.address();
    // An IPv4 client of a dual-stack listener is the same client as over IPv4.
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    }
    client_address_ = address.to_string();
  }
  if (tls) {
    tls_.emplace(std::move(socket), *tls);
  } else {
    plain_.emplace(std::move(socket));
  }
}

void HttpSession::start() {
  if (!tls_) {
    beast::error_code ec;
    tcp().socket().non_blocking(true, ec);  // the close watcher peeks without blocking
    prepare_parser();
    return issue_read_header();
  }
  // Detection and handshake share one deadline: a client that connects and stalls (or sends
  // half a hello) is dropped when it passes.
  tcp().expires_after(server_.options().handshake_timeout);
  beast::async_detect_ssl(tcp(), buffer_,
                          [self = shared_from_this()](beast::error_code ec, bool is_tls) {
                            self->on_detected(ec, is_tls);
                          });
}

void HttpSession::on_detected(beast::error_code ec, bool is_tls) {
  if (ec) return shutdown();
  if (!is_tls) return refuse_plain_http();
  // Beast 1.81 constrains this handler as void(error_code) but calls it with (error_code,
  // bytes used): a variadic handler fits both.
  tls_->async_handshake(net::ssl::stream_base::server, buffer_.data(),
                        [self = shared_from_this()](beast::error_code e, auto... used) {
                          if (e) return self->shutdown();
                          self->buffer_.consume((size_t{0} + ... + used));
                          self->prepare_parser();
                          self->issue_read_header();
                        });
}

// Plain HTTP on the HTTPS port: a readable answer instead of a dropped connection, so the
// client's user learns to type https://.
void HttpSession::refuse_plain_http() {
  if (server_.options().on_response) server_.options().on_response(400);
  response_ = std::make_shared<http::response<http::string_body>>(http::status::bad_request, 11);
  response_->set(http::field::server, "boxcar");
  response_->set(http::field::content_type, "application/json");
  response_->body() = "{\"error\":\"this server speaks HTTPS only: use an https:// URL\"}\n";
  response_->keep_alive(false);
  response_->prepare_payload();
  tcp().expires_after(server_.options().write_timeout);
  http::async_write(tcp(), *response_, [self = shared_from_this()](beast::error_code e, size_t) {
    if (e) return self->shutdown();
    self->linger_close();
  });
}

void HttpSession::prepare_parser() {
  spool_parser_.reset();
  spool_.reset();
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_.options().header_limit));
  parser_->body_limit(boost::none);
}

// The next request on a kept-alive connection: idle_timeout for it to begin, then
// header_timeout for the rest of its header.
void HttpSession::read_header() {
  prepare_parser();
  if (tls_watching_) {
    // The close watch's read is still pending: it hands over the next request's first bytes.
    resume_read_ = true;
    idle_timer_.expires_after(server_.options().idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->resume_read_) self->shutdown();
    });
    return;
  }
  if (buffer_.size() > 0) return issue_read_header();  // pipelined: it has begun
  await_request();
}

void HttpSession::await_request() {
  tcp().expires_after(server_.options().idle_timeout);
  auto on_read = [self = shared_from_this()](beast::error_code ec, size_t n) {
    if (ec) return self->shutdown();
    self->buffer_.commit(n);
    self->issue_read_header();
  };
  with_stream([&](auto& stream) { stream.async_read_some(buffer_.prepare(16384), on_read); });
}

void HttpSession::issue_read_header() {
  tcp().expires_after(server_.options().header_timeout);
  with_stream([&](auto& stream) {
    http::async_read_header(stream, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->on_header(ec);
                            });
  });
}

void HttpSession::on_header(beast::error_code ec) {
  if (ec) return shutdown();
  auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  std::string path;
  std::map<std::string, std::string> query;
  if (!parse_target(req.target(), path, query)) {
    return reject(400, "the request target is not a valid path");
  }
  match_ = server_.router().match(req.method(), path);
  if (!match_.route) {
    // Unread bodies would be taken for the next request: answer and close.
    bool unread_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
    keep_alive_ = keep_alive_ && !unread_body;
    linger_ = unread_body;
    if (match_.status == 405) {
      return reject(405, std::string(req.method_string()) + " is not allowed on " + path +
                             " (allowed: " + match_.allow + ")");
    }
    return reject(404, "no such path: " + std::string(req.method_string()) + " " + path);
  }
  size_t limit = match_.route->options.body_limit;
  if (limit == 0) limit = server_.options().body_limit;
  auto too_large = [&] {
    if (match_.route->options.on_too_large) match_.route->options.on_too_large();
    keep_alive_ = false;
    linger_ = true;
    reject(413, "request body larger than " + std::to_string(limit) + " bytes");
  };
  // A taken connection's body is relayed, never held: the route's handler bounds it.
  if (!match_.route->options.take_connection && parser_->content_length() &&
      *parser_->content_length() > limit) {
    return too_large();
  }
  if (match_.route->options.admit) {
    HttpRequest head;
    head.raw = http::request<http::string_body>(req.base());
    head.path = path;
    head.query = query;
    head.params = match_.params;
    head.client_address = client_address_;
    if (auto refused = match_.route->options.admit(head)) {
      bool unread_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
      keep_alive_ = keep_alive_ && !unread_body;
      linger_ = unread_body;
      return refuse(std::move(*refused));
    }
  }
  if (match_.route->options.take_connection) return take(std::move(path), std::move(query));
  parser_->body_limit(limit);
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    tcp().expires_after(server_.options().write_timeout);
    return with_stream([&](auto& stream) {
      http::async_write(stream, *cont,
                        [self = shared_from_this(), cont, path = std::move(path),
                         query = std::move(query)](beast::error_code e, size_t) mutable {
                          if (e) return self->shutdown();
                          self->read_body(std::move(path), std::move(query));
                        });
    });
  }
  read_body(std::move(path), std::move(query));
}

void HttpSession::dispatch(const Router::Route& route, std::map<std::string, std::string> params,
                           std::string path, std::map<std::string, std::string> query) {
  tcp().expires_never();
  auto request = std::make_shared<HttpRequest>();
  if (spool_parser_) {
    request->raw = http::request<http::string_body>(std::move(spool_parser_->release().base()));
    ::close(spool_->fd);
    spool_->fd = -1;
    spool_->handed_over = true;
    request->body_file = spool_->file;
    request->body_bytes = spool_->bytes;
    request->body_sha256 = spool_->hash.hex();
    spool_.reset();
    spool_parser_.reset();
  } else {
    request->raw = parser_->release();
  }
  request->path = std::move(path);
  request->query = std::move(query);
  request->params = std::move(params);
  request->client_address = client_address_;
  static std::atomic<uint64_t> next_exchange{1};
  exchange_ = next_exchange++;
  answered_ = false;
  auto responder = std::make_shared<Exchange>(shared_from_this(), exchange_);
  try {
    route.handler(*request, responder);
  } catch (const std::exception& e) {
    responder->reply(HttpResponse::error(500, std::string("internal error: ") + e.what()));
  }
  // A reply posted by the handler runs before this (the strand is FIFO): only a request that
  // is still held, or a stream, needs its peer watched.
  net::post(executor(), [self = shared_from_this(), id = exchange_] {
    if (self->exchange_ == id && (!self->answered_ || self->head_serializer_)) self->watch_peer();
  });
}

// The handler gets the connection with its body unread. Whatever it does, the connection is
// not reused: the next bytes could be a request that no route's checks have seen.
void HttpSession::take(std::string path, std::map<std::string, std::string> query) {
  bool has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
  keep_alive_ = false;
  linger_ = has_body;
  spool_parser_.emplace(std::move(*parser_));
  spool_parser_->body_limit(boost::none);
  tcp().expires_never();
  auto request = std::make_shared<HttpRequest>();
  request->raw = http::request<http::string_body>(spool_parser_->get().base());
  request->path = std::move(path);
  request->query = std::move(query);
  request->params = std::move(match_.params);
  request->client_address = client_address_;
  static std::atomic<uint64_t> next_taken{1ull << 61};
  exchange_ = next_taken++;
  answered_ = false;
  request->connection = std::make_shared<Taken>(shared_from_this(), exchange_, has_body);
  auto responder = std::make_shared<Exchange>(shared_from_this(), exchange_);
  try {
    match_.route->handler(*request, responder);
  } catch (const std::exception& e) {
    responder->reply(HttpResponse::error(500, std::string("internal error: ") + e.what()));
  }
}

void HttpSession::reject(unsigned status, std::string_view message) {
  HttpResponse r = HttpResponse::error(status, message);
  if (status == 405) r.headers.emplace_back("Allow", match_.allow);
  refuse(std::move(r));
}

void HttpSession::refuse(HttpResponse response) {
  static std::atomic<uint64_t> next_reject{1ull << 62};
  exchange_ = next_reject++;
  answered_ = false;
  send(std::move(response), exchange_);
}

void HttpSession::finish_exchange(bool reusable) {
  exchange_ = 0;
  on_close_.clear();
  file_out_.reset();
  file_head_.reset();
  head_serializer_.reset();
  stream_head_.reset();
  response_.reset();
  if (!reusable) return close_gracefully();
  read_header();
}

// TLS: say close_notify before closing, so the client can tell the end from a cut. A client
// that does not answer it is waited for briefly.
void HttpSession::close_gracefully() {
  if (!tls_ || closed_ || tls_watching_) return shutdown();
  tcp().expires_after(std::chrono::seconds(5));
  tls_->async_shutdown([self = shared_from_this()](beast::error_code) { self->shutdown(); });
}

// After refusing a request whose body is still coming, read and drop the rest for a while
// before closing: closing at once would reset the connection, and the client would lose the
// answer it has not read yet.
void HttpSession::linger_close() {
  beast::error_code ec;
  tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  tcp().expires_after(std::chrono::seconds(5));
  drain(std::make_shared<std::array<char, 16384>>(), 0);
}

void HttpSession::drain(std::shared_ptr<std::array<char, 16384>> scratch, size_t total) {
  auto& buffer = *scratch;
  // Over TLS too the raw bytes are read and dropped: nothing in them is wanted.
  tcp().async_read_some(net::buffer(buffer), [self = shared_from_this(), scratch = std::move(scratch),
                                                total](beast::error_code ec, size_t n) mutable {
    if (ec || total + n > (64u << 20)) return self->shutdown();
    self->drain(std::move(scratch), total + n);
  });
}

void HttpSession::add_close_callback(std::function<void()> callback, uint64_t exchange) {
  if (exchange != exchange_) return;
  if (closed_) return callback();
  on_close_.push_back(std::move(callback));
}

void HttpSession::watch_peer() {
  if (watched_ == exchange_ || closed_ || exchange_ == 0) return;
  watched_ = exchange_;
  if (tls_) return watch_tls_peer();
  tcp().socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), id = exchange_](beast::error_code ec) {
        if (self->watched_ == id) self->watched_ = 0;
        if (ec || self->closed_ || id != self->exchange_) return;
        char byte;
        beast::error_code peek_ec;
        size_t n = self->tcp().socket().receive(net::buffer(&byte, 1),
                                                  tcp::socket::message_peek, peek_ec);
        if (peek_ec == net::error::would_block) return self->watch_peer();
        if (peek_ec || n == 0) return self->shutdown();
        // The client sent more (a pipelined request): it is still there; stop watching.
      });
}

// Over TLS a peek cannot tell a client's close_notify from a pipelined request, so the watch
// reads: an error or a close ends the session; data is the next request's start, left in
// buffer_ for read_header.
void HttpSession::watch_tls_peer() {
  if (tls_watching_) return;
  tls_watching_ = true;
  tls_->async_read_some(buffer_.prepare(16384), [self = shared_from_this(), id = exchange_](
                                                    beast::error_code ec, size_t n) {
    self->tls_watching_ = false;
    if (self->watched_ == id) self->watched_ = 0;
    if (ec) return self->shutdown();
    self->buffer_.commit(n);
    if (self->resume_read_) {
      self->resume_read_ = false;
      self->idle_timer_.cancel();
      self->issue_read_header();
    }
  });
}

void HttpSession::fire_close() {
  auto callbacks = std::move(on_close_);
  on_close_.clear();
  for (auto& f : callbacks) f();
  if (!writing_) drain_outbox();  // else the write in flight fails and drains
}

void HttpSession::drain_outbox() {
  auto pending = std::move(outbox_);
  outbox_.clear();
  for (auto& p : pending) {
    if (p.done) p.done(false);
  }
}

void HttpSession::shutdown() {
  if (closed_) return;
  closed_ = true;
  spool_.reset();
  beast::error_code ec;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
  tcp().close();
  slot_.release();
  idle_timer_.cancel();
  fire_close();
  server_.forget(this);
}

}  // namespace boxcar::server
