// ServerUrl: a boxcar server's base URL (http:// or https://) as the clients and agents use it,
// parsed once with Boost.URL, and the rule for where a token may travel in clear.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar {

struct ServerUrl {
  bool tls = false;        // https://
  std::string host;        // without brackets: "127.0.0.1", "::1", "ci.example"
  std::string port;        // "80" / "443" when not given
  std::string authority;   // host[:port] as written (IPv6 in brackets), for the Host header
  std::string prefix;      // path prefix without a trailing slash, usually ""
  std::string text;        // scheme://authority + prefix, for messages
};

// Parses "http[s]://host[:port][/prefix]". Errors say what is wrong: another scheme, no host,
// a bad port, credentials, a query or fragment in the URL.
Result<ServerUrl> parse_server_url(const std::string& url);

// "localhost", 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z): names whose traffic never leaves this
// machine. Any other name is not, whatever it resolves to.
bool is_loopback_host(std::string_view host);

// Ok when a token may be sent to `url`: over https, or over plain http only to a loopback host.
// The error ("refusing to send the <what> over plain http to HOST: use https ...") is a usage
// error, found before any connection is made.
Status check_token_transport(const ServerUrl& url, std::string_view what);

}  // namespace boxcar
