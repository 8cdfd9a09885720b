// HttpServer: its listeners (base/listener.h, connection caps and accept back-off); each
// connection is an HttpSession (http_session.cc).
#include "http/http_server.h"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "http/http_session.h"

namespace boxcar::server {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

HttpServer::HttpServer(net::io_context& io, const Router& router, HttpServerOptions options)
    : io_(io), router_(router), options_(std::move(options)) {}

HttpServer::~HttpServer() { stop(); }

Result<uint16_t> HttpServer::listen(const std::string& address, uint16_t port,
                                    std::optional<ConnectionLimits> limits) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) return Error{"bad listen address \"" + address + "\": " + ec.message()};
  tcp::endpoint endpoint(ip, port);
  Listener::Options lo;
  lo.limits = limits.value_or(options_.limits);
  lo.http_refusal = !options_.tls;  // a TLS client could not read a plain 503
  lo.name = "API listener";
  auto listener = std::make_unique<Listener>(
      io_, std::move(lo), [this](tcp::socket socket, ConnectionSlot slot) {
        auto session = std::make_shared<HttpSession>(std::move(socket), std::move(slot), *this,
                                                     options_.tls.get());
        {
          std::lock_guard lock(mu_);
          if (stopped_) return;
          sessions_[session.get()] = session;
        }
        session->start();
      });
  auto bound = listener->listen(endpoint);
  if (!bound) {
    return Error{"cannot listen on " + address + ":" + std::to_string(port) + ": " +
                     bound.error().message,
                 bound.error().err};
  }
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
  return bound->port();
}

size_t HttpServer::open_connections() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& l : listeners_) n += l->open_connections();
  return n;
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
  // Once close() returned, no listener starts another session.
  for (auto& l : listeners_) l->close();
  for (auto& [_, weak] : sessions) {
    if (auto s = weak.lock()) s->close();
  }
}

}  // namespace boxcar::server
