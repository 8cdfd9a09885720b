#include "cli/connection_flags.h"

#include <string>

namespace boxcar::cli {

namespace {

constexpr long kMostConnections = 1'000'000;

// `max_flag` and `client_flag` into `limits` (which holds the defaults).
Status read_limits(const ParsedFlags& flags, const char* max_flag, const char* client_flag,
                   ConnectionLimits& limits) {
  for (auto [flag, value] : {std::pair{max_flag, &limits.max_connections},
                             std::pair{client_flag, &limits.max_per_client}}) {
    auto v = flags.get(flag);
    if (v && !parse_count(*v, kMostConnections, *value)) {
      return Error{std::string(flag) + " must be a number from 1 to 1000000, not \"" + *v + "\""};
    }
  }
  // A client cap above the listener's would never be reached: say so rather than ignore it.
  if (limits.max_per_client > limits.max_connections) {
    if (flags.has(client_flag)) {
      return Error{std::string(client_flag) + " (" + std::to_string(limits.max_per_client) +
                   ") is larger than " + max_flag + " (" + std::to_string(limits.max_connections) +
                   "): lower it, or raise " + max_flag};
    }
    limits.max_per_client = limits.max_connections;
  }
  return {};
}

}  // namespace

std::vector<FlagSpec> api_connection_flag_specs() {
  return {{"--max-connections", true, false, ""},
          {"--max-connections-per-client", true, false, ""},
          {"--header-timeout", true, false, ""},
          {"--idle-timeout", true, false, ""}};
}

std::vector<FlagSpec> preview_connection_flag_specs() {
  return {{"--preview-max-connections", true, false, ""},
          {"--preview-max-connections-per-client", true, false, ""}};
}

Status read_api_connection_flags(const ParsedFlags& flags, server::HttpServerOptions& http) {
  http.limits = default_connection_limits(open_file_limit(), 1, 4096);
  if (Status st =
          read_limits(flags, "--max-connections", "--max-connections-per-client", http.limits);
      !st.ok()) {
    return st.error();
  }
  for (auto [flag, value] : {std::pair{"--header-timeout", &http.header_timeout},
                             std::pair{"--idle-timeout", &http.idle_timeout}}) {
    auto v = flags.get(flag);
    if (!v) continue;
    auto d = parse_duration(*v);
    if (!d || *d < Millis(1000) || *d > Millis(3'600'000)) {
      return Error{std::string(flag) + " must be a duration from 1s to 1h (like 10s), not \"" + *v +
                   "\""};
    }
    *value = *d;
  }
  return {};
}

Result<ConnectionLimits> preview_connection_limits(const ParsedFlags& flags) {
  // Two descriptors per proxied connection: the client's and the sandbox's.
  ConnectionLimits limits = default_connection_limits(open_file_limit(), 2, 1024);
  if (Status st = read_limits(flags, "--preview-max-connections",
                              "--preview-max-connections-per-client", limits);
      !st.ok()) {
    return st.error();
  }
  return limits;
}

}  // namespace boxcar::cli
