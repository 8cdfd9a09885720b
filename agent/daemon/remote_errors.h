// Remote failures: what the agent does when a request to the server fails, decided by one
// table (remote_errors.cc) rather than at every call site, and the backoff between retries.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <boost/system/error_code.hpp>

#include "base/duration.h"

namespace boxcar::agent {

enum class RemoteVerdict {
  ok,            // 2xx: the request did what it should
  retry,         // transient (unreachable, reset, timeout, 5xx, 429): same request again, later
  auth_refused,  // 401/403: the token is wrong; retrying cannot help, the agent stops
  lease_lost,    // 409: the job is no longer this agent's; stop it and forget it
  rejected,      // 400/404 and other 4xx: this request is wrong; drop it, go on
};

struct RemoteOutcome {
  RemoteVerdict verdict = RemoteVerdict::ok;
  std::string message;  // one line: "connection refused", "HTTP 503: <body start>"
};

// Classifies a finished request: `ec` is the transport error (set: no HTTP answer), else
// `status` and `body` are the server's answer.
RemoteOutcome classify(const boost::system::error_code& ec, unsigned status,
                       const std::string& body = {});

const char* to_string(RemoteVerdict v);

// Exponential backoff with jitter: 250ms, 500ms, 1s, ... capped at 30s, each delay drawn
// from [d/2, d] so that agents restarted together do not retry in step.
class Backoff {
 public:
  explicit Backoff(Millis initial = Millis(250), Millis cap = Millis(30'000));
  Millis next();   // the delay before the next attempt; grows each call
  void reset();    // after a success
  int failures() const { return failures_; }

 private:
  Millis initial_, cap_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace boxcar::agent
