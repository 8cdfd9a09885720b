// Heartbeat: keeps one running job's lease alive (POST heartbeat every lease/3) and relays
// what the server answers: the user cancelled the job, or the lease is gone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http/http_client.h"
#include "agent/daemon/remote_errors.h"

namespace boxcar::agent {

struct HeartbeatHandlers {
  std::function<void()> on_cancel;                    // once, the first time the server says so
  std::function<void()> on_lost;                      // 409 or {"lost": true}: heartbeats stop
  std::function<void(const RemoteOutcome&)> on_auth;  // 401/403: heartbeats stop
  std::function<void(const std::string&)> log;
};

class Heartbeat {
 public:
  Heartbeat(boost::asio::io_context& io, HttpClient& client, int64_t job_id, std::string lease,
            Millis interval, HeartbeatHandlers handlers);
  ~Heartbeat();

  void start();  // the first heartbeat goes out after one interval
  void stop();

 private:
  void arm(Millis delay);
  void beat();

  HttpClient& client_;
  int64_t job_id_;
  std::string lease_;  // the claim's lease token
  Millis interval_;
  HeartbeatHandlers handlers_;
  boost::asio::steady_timer timer_;
  uint64_t request_ = 0;
  bool in_flight_ = false;
  bool stopped_ = false;
  bool cancel_seen_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
