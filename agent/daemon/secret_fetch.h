// SecretFetch: the one request by which an agent asks the server for the secrets a job's
// steps declare (POST /api/v1/agent/jobs/{id}/secrets with the job's lease), retried with
// backoff while the server is unreachable, as remote_errors.h classifies its answers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/daemon/remote_errors.h"
#include "base/result.h"
#include "http/http_client.h"
#include "protocol/agent_protocol.h"

namespace boxcar::agent {

class SecretFetch {
 public:
  // `done` gets the answer, or an Error once the server refused (its verdict in `verdict`) or
  // stayed unreachable for `attempts` tries. Not called once the SecretFetch is destroyed.
  using Done = std::function<void(Result<protocol::SecretsResponse>, RemoteVerdict verdict)>;
  SecretFetch(boost::asio::io_context& io, HttpClient& client, int64_t job_id, std::string lease,
              std::vector<std::string> names, Done done, int attempts = 6);
  ~SecretFetch();

  void start();

 private:
  void send();

  HttpClient& client_;
  int64_t job_id_;
  std::string lease_;
  std::vector<std::string> names_;
  Done done_;
  int attempts_left_;
  Backoff backoff_;
  boost::asio::steady_timer retry_;
  uint64_t request_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxcar::agent
