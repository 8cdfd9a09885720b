#include "server/web_session.h"

#include <algorithm>

#include "base/random_token.h"

namespace boxcar::server {

WebSessions::WebSessions(std::chrono::seconds lifetime, size_t max_sessions)
    : lifetime_(lifetime), max_sessions_(std::max<size_t>(max_sessions, 1)) {}

Result<WebSessions::Session> WebSessions::create(const ApiToken& token) {
  auto now = std::chrono::steady_clock::now();
  auto id = random_token();
  if (!id) return id.error();
  auto csrf = random_token();
  if (!csrf) return csrf.error();
  Session s{std::move(*id), token, std::move(*csrf), now + lifetime_};
  std::lock_guard lock(mu_);
  drop_expired(now);
  // Logins need a valid token, so this bound only stops a token holder from growing the map
  // without end: the session closest to expiry makes room.
  if (sessions_.size() >= max_sessions_) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.expires < b.second.expires;
    });
    sessions_.erase(oldest);
  }
  sessions_.emplace(s.id, s);
  return s;
}

std::optional<WebSessions::Session> WebSessions::find(std::string_view id) {
  if (id.empty()) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void WebSessions::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) sessions_.erase(it);
}

void WebSessions::drop_expired(std::chrono::steady_clock::time_point now) {
  std::erase_if(sessions_, [now](const auto& entry) { return entry.second.expires <= now; });
}

std::string cookie_value(std::string_view header, std::string_view name) {
  size_t i = 0;
  while (i < header.size()) {
    size_t end = header.find(';', i);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(i, end - i);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view value = pair.substr(eq + 1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      return std::string(value);
    }
    i = end + 1;
  }
  return "";
}

}  // namespace boxcar::server
