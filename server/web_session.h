// Web UI sessions: logging in with an API token gives a random session id (the cookie), kept
// here with the token's name and scopes and a CSRF token for the session's forms. In memory
// only: a restart of the server logs everyone out.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "server/api_tokens.h"

namespace boxcar::server {

class WebSessions {
 public:
  struct Session {
    std::string id;       // the cookie's value: 256 random bits
    ApiToken token;       // who logged in, and what they may do
    std::string csrf;     // echoed by every state-changing form, checked in constant time
    std::chrono::steady_clock::time_point expires;
  };

  explicit WebSessions(std::chrono::seconds lifetime = std::chrono::hours(12),
                       size_t max_sessions = 10'000);

  std::chrono::seconds lifetime() const { return lifetime_; }
  // An error only when the CSPRNG fails (no session is better than a guessable one).
  Result<Session> create(const ApiToken& token);
  // The live session with this id; nullopt when unknown or expired.
  std::optional<Session> find(std::string_view id);
  void remove(std::string_view id);

 private:
  void drop_expired(std::chrono::steady_clock::time_point now);

  std::chrono::seconds lifetime_;
  size_t max_sessions_;
  std::mutex mu_;
  std::map<std::string, Session, std::less<>> sessions_;
};

// The value of cookie `name` in a Cookie header ("a=1; b=2"); "" when absent.
std::string cookie_value(std::string_view header, std::string_view name);

}  // namespace boxcar::server
