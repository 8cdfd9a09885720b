// HttpServer: the accept loop; each connection is an HttpSession (http_session.cc).
#include "server/http_server.h"

#include <future>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "server/http_session.h"

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

HttpServer::HttpServer(net::io_context& io, const Router& router, HttpServerOptions options)
    : io_(io), router_(router), options_(std::move(options)), acceptor_(net::make_strand(io)) {}

HttpServer::~HttpServer() { stop(); }

Result<uint16_t> HttpServer::listen(const std::string& address, uint16_t port) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) return Error{"bad listen address \"" + address + "\": " + ec.message()};
  tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{"cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message(),
                 ec.value()};
  }
  uint16_t bound = acceptor_.local_endpoint(ec).port();
  accept();
  return bound;
}

void HttpServer::accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) {
      auto session = std::make_shared<HttpSession>(std::move(socket), *this, options_.tls.get());
      {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        sessions_[session.get()] = session;
      }
      session->start();
    }
    accept();
  });
}

void HttpServer::forget(HttpSession* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
}

void HttpServer::stop() {
  std::map<HttpSession*, std::weak_ptr<HttpSession>> sessions;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    sessions.swap(sessions_);
  }
  for (auto& [_, weak] : sessions) {
    if (auto s = weak.lock()) s->close();
  }
  beast::error_code ec;
  if (io_.stopped()) {
    acceptor_.close(ec);
    return;
  }
  // The acceptor belongs to its strand; wait (briefly) for the close so no accept runs after.
  auto closed = std::make_shared<std::promise<void>>();
  auto future = closed->get_future();
  net::post(acceptor_.get_executor(), [this, closed] {
    beast::error_code e;
    acceptor_.close(e);
    closed->set_value();
  });
  future.wait_for(std::chrono::seconds(1));
}

}  // namespace boxcar::server
