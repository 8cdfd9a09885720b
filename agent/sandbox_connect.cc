#include "agent/sandbox_connect.h"

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace boxcar::agent {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One connection in progress: whichever of write readiness and the deadline comes first ends it.
struct PendingConnect {
  PendingConnect(asio::io_context& io, uint16_t p, SandboxConnectHandler d)
      : socket(io), timer(io), port(p), done(std::move(d)) {}

  void fail(int err, const std::string& why) {
    finish(Error{"connect to port " + std::to_string(port) + ": " + why, err});
  }

  void finish(Result<tcp::socket> result) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(std::move(result));
  }

  tcp::socket socket;
  asio::steady_timer timer;
  uint16_t port;
  SandboxConnectHandler done;
  bool finished = false;
};

}  // namespace

void async_connect_sandbox(asio::io_context& io, executors::Sandbox& sandbox, uint16_t port,
                           std::chrono::steady_clock::duration timeout, SandboxConnectHandler done) {
  auto conn = sandbox.connect_tcp(port);
  if (!conn.ok()) {
    asio::post(io, [done = std::move(done), error = conn.error()] { done(error); });
    return;
  }
  auto p = std::make_shared<PendingConnect>(io, port, std::move(done));
  boost::system::error_code aec;
  p->socket.assign(tcp::v4(), conn.value().get(), aec);
  if (aec) {
    asio::post(io, [p, aec] { p->fail(aec.value(), aec.message()); });
    return;
  }
  conn.value().release();
  p->timer.expires_after(timeout);
  p->timer.async_wait([p](boost::system::error_code ec) {
    if (ec || p->finished) return;
    boost::system::error_code ignored;
    p->socket.close(ignored);  // ends the wait below, which finds `finished` set
    p->fail(ETIMEDOUT, "no answer in time (is its accept queue full?)");
  });
  // Writable means the handshake ended, either way: SO_ERROR tells which.
  p->socket.async_wait(tcp::socket::wait_write, [p](boost::system::error_code ec) {
    if (p->finished) return;
    if (ec) return p->fail(ec.value(), ec.message());
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(p->socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return p->fail(err, std::strerror(err));
    p->finish(std::move(p->socket));
  });
}

}  // namespace boxcar::agent
