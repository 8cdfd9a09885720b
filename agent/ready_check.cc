#include "agent/ready_check.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "agent/sandbox_connect.h"

namespace boxcar::agent {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One attempt, connect and HTTP exchange together, ends by then: the scheduler retries.
constexpr std::chrono::seconds kAttemptTimeout{2};

// An HTTP GET on an already connected socket, bounded by the attempt's deadline.
struct HttpProbe : std::enable_shared_from_this<HttpProbe> {
  HttpProbe(tcp::socket s, std::function<void(bool)> d)
      : socket(std::move(s)), timer(socket.get_executor()), done(std::move(d)) {}

  void start(const std::string& path, std::chrono::steady_clock::time_point deadline) {
    request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\nUser-Agent: boxcar-ready-check\r\n\r\n";
    auto self = shared_from_this();
    timer.expires_at(deadline);
    timer.async_wait([self](boost::system::error_code ec) {
      if (!ec) self->socket.close();
    });
    asio::async_write(socket, asio::buffer(request), [self](boost::system::error_code ec, size_t) {
      if (ec) return self->finish(false);
      self->read();
    });
  }

  void read() {
    auto self = shared_from_this();
    socket.async_read_some(asio::buffer(buf.data() + got, buf.size() - got),
                           [self](boost::system::error_code ec, size_t n) {
                             self->got += n;
                             std::string_view head(self->buf.data(), self->got);
                             // "HTTP/1.1 200": the status is the three digits after the space.
                             if (head.size() >= 12 && head.substr(0, 5) == "HTTP/") {
                               size_t sp = head.find(' ');
                               if (sp != std::string_view::npos && sp + 4 <= head.size()) {
                                 char c = head[sp + 1];
                                 return self->finish(c == '2' || c == '3');
                               }
                             }
                             if (ec || self->got == self->buf.size()) return self->finish(false);
                             self->read();
                           });
  }

  void finish(bool ok) {
    if (finished) return;
    finished = true;
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    done(ok);
  }

  tcp::socket socket;
  asio::steady_timer timer;
  std::function<void(bool)> done;
  std::string request;
  std::array<char, 256> buf{};
  size_t got = 0;
  bool finished = false;
};

}  // namespace

void check_ready_once(asio::io_context& io, executors::Sandbox& sandbox,
                      const pipeline::ReadyCheck& check, int default_port,
                      std::function<void(bool)> done) {
  int port = check.tcp.value_or(default_port);
  auto deadline = std::chrono::steady_clock::now() + kAttemptTimeout;
  auto connected = [done = std::move(done), path = check.http, deadline](Result<tcp::socket> conn) mutable {
    if (!conn.ok() || !path) return done(conn.ok());
    auto probe = std::make_shared<HttpProbe>(std::move(conn).value(), std::move(done));
    probe->start(*path, deadline);
  };
  async_connect_sandbox(io, sandbox, static_cast<uint16_t>(port), kAttemptTimeout, std::move(connected));
}

}  // namespace boxcar::agent
