// URLs, parsed with Boost.URL and nowhere by hand: a boxcar server's base URL, where a token may
// travel, a URL as it may be shown, and percent-encoding. The one special case is git's
// scp-style "git@host:path", which is not a URL and is passed through as it is.
#pragma once

#include <optional>
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
// machine. Any other name is not, whatever it resolves to ("127.evil.example" is not).
bool is_loopback_host(std::string_view host);

// Ok when a token may be sent to `url`: over https, or over plain http only to a loopback host.
// The error ("refusing to send the <what> over plain http to HOST: use https ...") is a usage
// error, found before any connection is made.
Status check_token_transport(const ServerUrl& url, std::string_view what);

// The host (lowercase) that a credential sent along with a request for `url` reaches, when it
// may be sent at all: an https URL with no userinfo (not even an empty one: in
// "https://github.com@evil.example/" the host is evil.example), a host that is a plain name or
// an IPv4 address (no IPv6 literal, no percent-encoding), and a port, if given, in 1..65535.
// nullopt for anything else, scp-style and local paths included.
std::optional<std::string> credential_host(std::string_view url);

// The lowercase host of an absolute URL, IPv6 without brackets; "" when `url` is not one.
std::string url_host(std::string_view url);

// Whether a URL carries a password in its userinfo ("postgres://user:pw@host/db"). A text with
// "://" and an '@' that does not parse counts as carrying one: the answer decides whether it is
// treated as a secret.
bool url_has_password(std::string_view url);

// "https://user:token@host/x.git" -> "https://host/x.git"; anything without userinfo (paths,
// scp-style "git@host:x") is returned as it is. A text with "://" that does not parse loses
// everything between "://" and its last '@', so no credential is shown either.
std::string redact_url(const std::string& url);

// Percent-encodes all but RFC 3986's unreserved characters (and '/' when `keep_slash`), with
// uppercase hex: a path or a query value built from a step's or an artifact's name.
std::string percent_encode(std::string_view text, bool keep_slash);

}  // namespace boxcar
