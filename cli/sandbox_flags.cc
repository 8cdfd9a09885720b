#include "cli/sandbox_flags.h"

#include <cstdlib>

#include <boost/asio/ip/address.hpp>

#include "base/url.h"

namespace boxcar::cli {

namespace {
// More sandboxes than this on one agent would run out of pids and memory long before.
constexpr long kMaxSandboxSlots = 100'000;
// Warm sandboxes are made one per io_context turn; more than this only holds memory idle.
constexpr long kMaxSandboxWarm = 64;

Error usage(std::string message) { return Error{std::move(message), 0, ErrorCode::usage}; }
}  // namespace

std::vector<FlagSpec> with_sandbox_flags(std::vector<FlagSpec> specs) {
  specs.push_back({"--sandbox-slots", true, false, ""});
  specs.push_back({"--sandbox-listen", true, false, ""});
  specs.push_back({"--sandbox-advertise", true, false, ""});
  specs.push_back({"--sandbox-git-allow-private", false, false, ""});
  specs.push_back({"--sandbox-sync-interval", true, false, ""});
  specs.push_back({"--sandbox-warm", true, false, ""});
  return specs;
}

Result<SandboxSettings> read_sandbox_flags(const ParsedFlags& flags) {
  SandboxSettings s;
  s.git_allow_private = flags.has("--sandbox-git-allow-private");
  if (auto v = flags.get("--sandbox-slots")) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != 0 || n < 0 || n > kMaxSandboxSlots) {
      return usage("--sandbox-slots must be a number from 0 (hosting off) to " + std::to_string(kMaxSandboxSlots) +
                   ", not \"" + *v + "\"");
    }
    s.slots = static_cast<size_t>(n);
  }
  if (auto v = flags.get("--sandbox-warm")) {
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != 0 || n < 0 || n > kMaxSandboxWarm) {
      return usage("--sandbox-warm must be a number from 0 (none kept ready) to " + std::to_string(kMaxSandboxWarm) +
                   ", not \"" + *v + "\"");
    }
    if (static_cast<size_t>(n) > s.slots) {
      return usage("--sandbox-warm " + *v + " is more than --sandbox-slots " + std::to_string(s.slots) +
                   ": a warm sandbox holds a slot; give at most " + std::to_string(s.slots));
    }
    s.warm = static_cast<size_t>(n);
  }
  bool loopback = true;
  if (auto v = flags.get("--sandbox-listen")) {
    size_t colon = v->rfind(':');
    std::string host = colon == std::string::npos ? "" : v->substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    char* end = nullptr;
    long port = colon == std::string::npos ? -1 : std::strtol(v->c_str() + colon + 1, &end, 10);
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(host, ec);
    if (ec || port < 0 || port > 65535 || *end != 0 || colon + 1 == v->size()) {
      return usage("--sandbox-listen must be ADDR:PORT with an IP address (like 127.0.0.1:0 or "
                   "0.0.0.0:8471), not \"" + *v + "\"");
    }
    loopback = addr.is_loopback();
    s.listen = *v;
  }
  if (auto v = flags.get("--sandbox-advertise")) {
    auto url = parse_server_url(*v);
    if (!url.ok() || url->tls || !url->prefix.empty()) {
      return usage("--sandbox-advertise must be http://HOST:PORT without a path, the address the server "
                   "reaches --sandbox-listen at (like http://10.0.0.7:8471), not \"" + *v + "\"" +
                   (url.ok() ? "" : ": " + url.error().message));
    }
    s.advertise = url->text;
  } else if (!loopback) {
    return usage("--sandbox-listen " + s.listen + " is not a loopback address, so the server may be on "
                 "another machine, where 127.0.0.1 is not this one: give --sandbox-advertise "
                 "http://ADDRESS:PORT, the address the server reaches this port at");
  }
  if (auto v = flags.get("--sandbox-sync-interval")) {
    auto d = parse_duration(*v);
    if (!d || *d < Millis(100) || *d > Millis(3'600'000)) {
      return usage("--sandbox-sync-interval must be a duration from 100ms to 1h (like 5s), not \"" + *v + "\"");
    }
    s.sync_interval = *d;
  }
  return s;
}

}  // namespace boxcar::cli
