// StandInForge (tests only): a forge's API on 127.0.0.1 (a real HTTP server in the test
// process) that records every request it gets and answers as the test says, so the server's
// commit statuses can be checked against the shapes GitHub, Gitea and GitLab document.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace boxcar::service_test {

class StandInForge {
 public:
  struct Request {
    std::string method, target, body;
    std::map<std::string, std::string> headers;  // lower-case names
    int answered = 0;                            // the status it was answered with
  };

  StandInForge();  // listening on a free loopback port
  ~StandInForge();
  StandInForge(const StandInForge&) = delete;
  StandInForge& operator=(const StandInForge&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The status each request is answered with (default: 201). Called on the forge's threads.
  void answer(std::function<int(const Request&)> decide);
  std::vector<Request> requests() const;

 private:
  void serve(std::shared_ptr<boost::asio::ip::tcp::socket> socket);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stopping_ = false;
  mutable std::mutex mu_;
  std::function<int(const Request&)> decide_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::thread acceptor_thread_;
};

}  // namespace boxcar::service_test
