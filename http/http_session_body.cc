// HttpSession's reading of request bodies: into memory up to the route's limit, spooled to a
// file in pieces (RouteOptions::spool_dir), or piece by piece by a route that took the
// connection (TakenConnection), with that route's writes and its end.
#include "http/http_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/write.hpp>

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;

void HttpSession::read_body(std::string path, std::map<std::string, std::string> query) {
  if (!match_.route->options.spool_dir.empty()) {
    size_t limit = match_.route->options.body_limit;
    if (limit == 0) limit = server_.options().body_limit;
    return start_spool(std::move(path), std::move(query), limit);
  }
  tcp().expires_after(server_.options().idle_timeout);
  with_stream([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     [self = shared_from_this(), path = std::move(path),
                      query = std::move(query)](beast::error_code e, size_t) mutable {
                       if (e == http::error::body_limit) {
                         auto& opts = self->match_.route->options;
                         if (opts.on_too_large) opts.on_too_large();
                         self->keep_alive_ = false;
                         self->linger_ = true;
                         return self->reject(413, "request body too large");
                       }
                       if (e) return self->shutdown();
                       self->dispatch(*self->match_.route, std::move(self->match_.params),
                                      std::move(path), std::move(query));
                     });
  });
}

void HttpSession::start_spool(std::string path, std::map<std::string, std::string> query,
                              size_t limit) {
  const auto& dir = match_.route->options.spool_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string name = (dir / "upload-XXXXXX").string();
  int fd = ::mkstemp(name.data());
  if (fd < 0) {
    keep_alive_ = false;
    linger_ = true;
    return refuse(HttpResponse::error(500, "cannot create a file in " + dir.string() + ": " +
                                               std::strerror(errno)));
  }
  spool_ = std::make_unique<BodySpool>();
  spool_->fd = fd;
  spool_->file = name;
  spool_parser_.emplace(std::move(*parser_));
  spool_parser_->body_limit(limit);
  read_spool_chunk(std::move(path), std::move(query));
}

void HttpSession::read_spool_chunk(std::string path, std::map<std::string, std::string> query) {
  reserve_body_reads();
  auto& body = spool_parser_->get().body();
  body.data = spool_->buffer.data();
  body.size = spool_->buffer.size();
  body.more = true;
  tcp().expires_after(server_.options().idle_timeout);
  with_stream([&](auto& stream) {
    http::async_read(
        stream, buffer_, *spool_parser_,
        [self = shared_from_this(), path = std::move(path), query = std::move(query)](
            beast::error_code e, size_t) mutable {
          if (e == http::error::need_buffer) e = {};
          if (e == http::error::body_limit) {
            self->spool_.reset();
            auto& opts = self->match_.route->options;
            if (opts.on_too_large) opts.on_too_large();
            self->keep_alive_ = false;
            self->linger_ = true;
            return self->reject(413, "request body too large");
          }
          if (e || !self->spool_) {
            self->spool_.reset();
            return self->shutdown();
          }
          BodySpool& spool = *self->spool_;
          size_t got = spool.buffer.size() - self->spool_parser_->get().body().size;
          for (size_t done = 0; done < got;) {
            ssize_t n = ::write(spool.fd, spool.buffer.data() + done, got - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
              std::string why = std::strerror(errno);
              self->spool_.reset();
              self->keep_alive_ = false;
              self->linger_ = true;
              return self->refuse(HttpResponse::error(507, "cannot store the upload: " + why));
            }
            done += static_cast<size_t>(n);
          }
          spool.hash.update(spool.buffer.data(), got);
          spool.bytes += got;
          if (self->spool_parser_->is_done()) {
            return self->dispatch(*self->match_.route, std::move(self->match_.params),
                                  std::move(path), std::move(query));
          }
          self->read_spool_chunk(std::move(path), std::move(query));
        });
  });
}

// Beast reads a body through buffer_ in pieces of its free capacity (at least 512 bytes, at
// most 64 KiB): a buffer that only ever held a header made a 64 MiB upload 4,000+ reads of 16 KiB
// (and the proxy's, never grown, 130,000 of 512 bytes), each a full turn of the io_context.
void HttpSession::reserve_body_reads() {
  if (buffer_.capacity() < kBodyRead) buffer_.reserve(kBodyRead);
}

void HttpSession::taken_read_body(char* data, size_t size,
                                  std::function<void(bool, size_t, bool)> done, uint64_t exchange) {
  if (exchange != exchange_ || closed_ || !spool_parser_) return done(false, 0, true);
  if (spool_parser_->is_done()) return done(true, 0, true);
  if (beast::iequals(spool_parser_->get()[http::field::expect], "100-continue") && !continued_) {
    // The client waits for this before it sends the body.
    continued_ = true;
    auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    return taken_write(cont, [self = shared_from_this(), data, size, f = std::move(done),
                              exchange](bool ok) mutable {
      if (!ok) return f(false, 0, true);
      self->taken_read_body(data, size, std::move(f), exchange);
    }, exchange);
  }
  reserve_body_reads();
  auto& body = spool_parser_->get().body();
  body.data = data;
  body.size = size;
  body.more = true;
  tcp().expires_after(server_.options().idle_timeout);
  with_stream([&](auto& stream) {
    // read_some: a piece goes on as soon as it is here (a client feeding stdin live).
    http::async_read_some(stream, buffer_, *spool_parser_,
                     [self = shared_from_this(), size, f = std::move(done)](beast::error_code e, size_t) mutable {
                       if (e == http::error::need_buffer) e = {};
                       if (e || self->closed_) return f(false, 0, true);
                       self->tcp().expires_never();
                       size_t n = size - self->spool_parser_->get().body().size;
                       bool last = self->spool_parser_->is_done();
                       if (last) self->linger_ = false;
                       f(true, n, last);
                     });
  });
}

void HttpSession::taken_write(std::shared_ptr<std::string> data, std::function<void(bool)> done,
                              uint64_t exchange) {
  if (exchange != exchange_ || closed_) return done(false);
  answered_ = true;
  tcp().expires_after(server_.options().write_timeout);
  with_stream([&](auto& stream) {
    net::async_write(stream, net::buffer(*data),
                     [self = shared_from_this(), data, f = std::move(done)](beast::error_code e, size_t) {
                       if (!self->closed_) self->tcp().expires_never();
                       f(!e && !self->closed_);
                     });
  });
}

void HttpSession::taken_finish(uint64_t exchange) {
  if (exchange != exchange_ || closed_) return;
  exchange_ = 0;
  // Plain HTTP: half-close and drain, so that bytes the client sent after its request (never
  // read as one) do not turn the close into a reset that loses the answer's end.
  if (linger_ || !tls_) return linger_close();
  close_gracefully();
}

}  // namespace boxcar::server
