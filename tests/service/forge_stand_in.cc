#include "tests/service/forge_stand_in.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace boxcar::service_test {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

StandInForge::StandInForge()
    : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  decide_ = [](const Request&) { return 201; };
  acceptor_thread_ = std::thread([this] {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) break;
      std::lock_guard lock(mu_);
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket] { serve(socket); });
    }
  });
}

StandInForge::~StandInForge() {
  stopping_ = true;
  {
    // A connection of our own wakes the blocking accept.
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
  }
  acceptor_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    for (auto& s : sockets_) {
      boost::system::error_code ec;
      s->shutdown(tcp::socket::shutdown_both, ec);
    }
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void StandInForge::answer(std::function<int(const Request&)> decide) {
  std::lock_guard lock(mu_);
  decide_ = std::move(decide);
}

std::vector<StandInForge::Request> StandInForge::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void StandInForge::serve(std::shared_ptr<tcp::socket> socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(*socket, buffer, req, ec);
    if (ec || stopping_) return;
    Request r{std::string(req.method_string()), std::string(req.target()), req.body(), {}};
    for (const auto& field : req) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      r.headers[name] = std::string(field.value());
    }
    int code = 201;
    {
      std::lock_guard lock(mu_);
      code = decide_(r);
      r.answered = code;
      requests_.push_back(r);
    }
    http::response<http::string_body> res{static_cast<http::status>(code), req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = code < 300 ? R"({"id":1,"state":"ok"})" : R"({"message":"Bad credentials"})";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(*socket, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

}  // namespace boxcar::service_test
