// HttpSession's writing side: answers, streamed bodies (chunks, server-sent events) and files
// sent from disk, one write at a time through the session's outbox.
#include "http/http_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;

void HttpSession::send_file(HttpResponse head, std::filesystem::path file, uint64_t offset,
                            uint64_t length, uint64_t exchange) {
  if (exchange != exchange_ || answered_ || closed_) return;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return send(HttpResponse::error(500, "cannot open " + file.filename().string() + ": " +
                                             std::strerror(errno)),
                exchange);
  }
  send_fd(std::move(head), fd, offset, length, exchange);
}

void HttpSession::send_fd(HttpResponse head, int fd, uint64_t offset, uint64_t length, uint64_t exchange) {
  if (exchange != exchange_ || answered_ || closed_) {
    ::close(fd);
    return;
  }
  answered_ = true;
  if (server_.options().on_response) server_.options().on_response(head.status);
  file_out_ = std::make_unique<FileReply>();
  file_out_->fd = fd;
  file_out_->offset = offset;
  file_out_->left = length;
  file_head_ = std::make_shared<http::response<http::empty_body>>(
      static_cast<http::status>(head.status), 11);
  file_head_->set(http::field::server, "boxcar");
  if (!head.content_type.empty()) file_head_->set(http::field::content_type, head.content_type);
  for (auto& [name, value] : head.headers) file_head_->set(name, value);
  file_head_->content_length(length);
  file_head_->keep_alive(keep_alive_);
  tcp().expires_after(server_.options().write_timeout);
  with_stream([&](auto& stream) {
    http::async_write(stream, *file_head_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->shutdown();
      self->write_file_next();
    });
  });
}

void HttpSession::write_file_next() {
  if (!file_out_ || closed_) return;
  FileReply& out = *file_out_;
  if (out.left == 0) {
    file_out_.reset();
    file_head_.reset();
    if (linger_) return linger_close();
    return finish_exchange(keep_alive_);
  }
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.buffer.size(), out.left));
  ssize_t n = ::pread(out.fd, out.buffer.data(), want, static_cast<off_t>(out.offset));
  if (n <= 0) {  // the file shrank: the promised length cannot be kept
    file_out_.reset();
    return shutdown();
  }
  out.offset += static_cast<uint64_t>(n);
  out.left -= static_cast<uint64_t>(n);
  tcp().expires_after(server_.options().write_timeout);
  with_stream([&](auto& stream) {
    net::async_write(stream, net::buffer(out.buffer.data(), static_cast<size_t>(n)),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) {
                         self->file_out_.reset();
                         return self->shutdown();
                       }
                       self->write_file_next();
                     });
  });
}

void HttpSession::send(HttpResponse response, uint64_t exchange) {
  if (exchange != exchange_ || answered_ || closed_) return;
  answered_ = true;
  if (server_.options().on_response) server_.options().on_response(response.status);
  response_ = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(response.status), 11);
  response_->set(http::field::server, "boxcar");
  if (!response.content_type.empty()) {
    response_->set(http::field::content_type, response.content_type);
  }
  for (auto& [name, value] : response.headers) response_->set(name, value);
  response_->body() = std::move(response.body);
  response_->keep_alive(keep_alive_);
  response_->prepare_payload();
  tcp().expires_after(server_.options().write_timeout);
  with_stream([&](auto& stream) {
    http::async_write(stream, *response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->shutdown();
                        if (self->linger_) return self->linger_close();
                        self->finish_exchange(self->keep_alive_);
                      });
  });
}

void HttpSession::send_stream_head(HttpResponse head, uint64_t exchange) {
  if (exchange != exchange_ || answered_ || closed_) return;
  answered_ = true;
  if (server_.options().on_response) server_.options().on_response(head.status);
  stream_head_ = std::make_shared<http::response<http::empty_body>>(
      static_cast<http::status>(head.status), 11);
  stream_head_->set(http::field::server, "boxcar");
  stream_head_->set(http::field::content_type, head.content_type);
  for (auto& [name, value] : head.headers) stream_head_->set(name, value);
  stream_head_->chunked(true);
  stream_head_->keep_alive(keep_alive_);
  head_serializer_.emplace(*stream_head_);
  writing_ = true;
  tcp().expires_after(server_.options().write_timeout);
  with_stream([&](auto& stream) {
    http::async_write_header(stream, *head_serializer_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->writing_ = false;
                               if (ec) return self->shutdown();
                               self->tcp().expires_never();
                               self->write_next();
                             });
  });
}

void HttpSession::send_chunk(std::string data, std::function<void(bool)> done, bool last,
                             uint64_t exchange) {
  if (exchange != exchange_ || closed_ || !head_serializer_) {
    if (done) net::post(executor(), [done] { done(false); });
    return;
  }
  outbox_.push_back(Pending{std::move(data), std::move(done), last});
  if (!writing_) write_next();
}

void HttpSession::write_next() {
  if (writing_ || outbox_.empty()) return;
  writing_ = true;
  auto on_written = [self = shared_from_this()](beast::error_code ec, size_t) {
    self->writing_ = false;
    Pending sent = std::move(self->outbox_.front());
    self->outbox_.pop_front();
    if (sent.done) sent.done(!ec);
    if (ec) {
      self->shutdown();
      return self->drain_outbox();
    }
    self->tcp().expires_never();
    if (sent.last) return self->finish_exchange(self->keep_alive_);
    self->write_next();
  };
  tcp().expires_after(server_.options().write_timeout);
  Pending& next = outbox_.front();
  if (next.last) {
    with_stream([&](auto& stream) {
      net::async_write(stream, http::make_chunk_last(), std::move(on_written));
    });
  } else if (next.data.empty()) {  // an empty chunk would end the body
    writing_ = false;
    Pending sent = std::move(outbox_.front());
    outbox_.pop_front();
    if (sent.done) sent.done(true);
    write_next();
  } else {
    with_stream([&](auto& stream) {
      net::async_write(stream, http::make_chunk(net::buffer(next.data)), std::move(on_written));
    });
  }
}

}  // namespace boxcar::server
