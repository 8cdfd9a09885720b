// The SSRF guard of checkouts a sandbox asks for: a URL the API's caller names is fetched by the
// agent, on the agent's network, so it must not reach the agent's own machine or its private
// networks (a cloud's metadata service at 169.254.169.254, a database on 10.0.0.5) unless the
// operator allows it (--sandbox-git-allow-private).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar::git {

// The host a git URL names: "https://u@Host:8443/x" -> "host", "git@host:x" -> "host",
// "ssh://[::1]/x" -> "::1"; "" for local paths, file:// and anything unparsable.
std::string git_url_host(std::string_view url);

// Whether `address` (numeric IPv4 or IPv6) is a public unicast address: not loopback, private
// (RFC 1918, fc00::/7), carrier-grade NAT, link-local, multicast, unspecified, documentation or
// reserved, and not an IPv4-mapped or NAT64 form of one of those. false when it does not parse.
bool is_public_address(std::string_view address);

// Ok when every address `url`'s host resolves to is public. The error names the host, the
// address that is not, and the flag that allows it; a name that does not resolve is an error too
// (ErrorCode::invalid_input, subject "url"). Blocking (getaddrinfo): call it off the io_context.
Status check_public_url(std::string_view url);

}  // namespace boxcar::git
