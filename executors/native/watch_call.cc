#include "executors/native/watch_call.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "executors/native/watch_wire.h"

namespace boxcar::executors::native {

WatchCall::WatchCall(boost::asio::io_context& io, unique_fd sock, WatchRequest request, Millis start_timeout,
                     WatchHandlers handlers)
    : sock_(io, sock.release()),
      timer_(io),
      request_(std::move(request)),
      start_timeout_(start_timeout),
      handlers_(std::move(handlers)) {}

void WatchCall::start() {
  auto self = shared_from_this();
  timer_.expires_after(start_timeout_);
  timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec && !self->watching_) {
      self->end(Error{"the watch helper did not start within " + std::to_string(self->start_timeout_.count()) + " ms",
                      ETIMEDOUT});
    }
  });
  read();
}

void WatchCall::cancel() {
  if (over_) return;
  over_ = true;
  timer_.cancel();
  // Dead for sure: a helper blocked in read(inotify) would otherwise wait for the next event.
  if (have_pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  boost::system::error_code ignored;
  sock_.close(ignored);
  handlers_ = {};
}

void WatchCall::end(Status why) {
  if (over_) return;
  auto on_end = std::move(handlers_.on_end);
  cancel();
  if (on_end) on_end(std::move(why));
}

Status WatchCall::parse(std::string& data) {
  size_t at = 0;
  Status result;
  while (!over_ && data.size() - at >= kWatchHeader) {
    const char type = data[at];
    const auto flags = static_cast<uint8_t>(data[at + 1]);
    const size_t len = static_cast<uint8_t>(data[at + 2]) | (static_cast<size_t>(static_cast<uint8_t>(data[at + 3])) << 8);
    if (len > kMaxWatchPayload) {
      result = Error{"the watch helper sent an oversized record", EPROTO};
      break;
    }
    if (data.size() - at < kWatchHeader + len) break;
    std::string_view payload(data.data() + at + kWatchHeader, len);
    at += kWatchHeader + len;
    if (type == 'W' && !watching_ && len == 0 && flags == 0) {
      watching_ = true;
      timer_.cancel();
      if (handlers_.on_watching) handlers_.on_watching();
    } else if (type == 'C' && watching_) {
      const unsigned kind = flags & 0x7f;
      if (kind > static_cast<unsigned>(WatchEvent::Kind::attrib) || !valid_relative_path(payload)) {
        result = Error{"the watch helper sent a malformed change", EPROTO};
        break;
      }
      WatchEvent ev;
      ev.kind = static_cast<WatchEvent::Kind>(kind);
      ev.is_dir = flags & 0x80;
      ev.path = payload.empty() ? request_.path
                : request_.path == "/" ? "/" + std::string(payload)
                                       : request_.path + "/" + std::string(payload);
      if (handlers_.on_event) handlers_.on_event(std::move(ev));
    } else if (type == 'O' && watching_ && len == 0) {
      if (handlers_.on_overflow) handlers_.on_overflow();
    } else if (type == 'E' && watching_ && len == 0) {
      result = Status{};
      end(Status{});
      break;
    } else if (type == 'X' && len >= 2) {
      int err = static_cast<uint8_t>(payload[0]) | (static_cast<uint8_t>(payload[1]) << 8);
      std::string message(payload.substr(2));
      for (char& c : message) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';  // it goes into an answer as text
      }
      if (err <= 0 || err > 4095) err = EIO;
      end(Error{std::move(message), err});
      break;
    } else {
      result = Error{"the watch helper sent an unexpected record", EPROTO};
      break;
    }
  }
  data.erase(0, at);
  return result;
}

void WatchCall::read() {
  auto self = shared_from_this();
  sock_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [self](boost::system::error_code ec) {
    if (self->over_) return;
    if (ec) return self->end(Error{"reading the watch helper: " + ec.message(), EIO});
    char buf[65536];
    // At most 16 reads (1 MiB) per wakeup: a helper flooding events must not keep the agent's
    // one io thread in this handler; the rest waits for the next turn of the loop.
    for (int reads = 0; reads < 16; ++reads) {
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)];
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(self->sock_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return self->end(Error{std::string("reading the watch helper: ") + std::strerror(errno), errno});
      const bool first = !self->have_pidfd_;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          unique_fd owned(fd);
          // Only the first byte of the stream carries a descriptor: the helper's pidfd.
          if (first && !self->have_pidfd_ && n > 0 && buf[0] == 'P') {
            self->pidfd_ = std::move(owned);
            self->have_pidfd_ = true;
          } else {
            return self->end(Error{"the watch helper sent a descriptor where none belongs", EPROTO});
          }
        }
      }
      if (msg.msg_flags & MSG_CTRUNC) return self->end(Error{"the watch helper sent too many descriptors", EPROTO});
      if (n == 0) {
        return self->end(Error{self->watching_ ? "the watch helper ended (the sandbox stopped)"
                                               : "the watch helper ended without starting (the sandbox stopped?)",
                               ESRCH});
      }
      if (first && !self->have_pidfd_) return self->end(Error{"the watch helper did not send its pidfd first", EPROTO});
      const size_t skip = first ? 1 : 0;  // the 'P' byte
      self->data_.append(buf + skip, static_cast<size_t>(n) - skip);
      if (Status s = self->parse(self->data_); !s) return self->end(s);
      if (self->over_) return;
    }
    self->read();
  });
}

}  // namespace boxcar::executors::native
