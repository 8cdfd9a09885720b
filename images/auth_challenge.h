// A registry's WWW-Authenticate challenge (RFC 7235): which scheme it wants and, for Bearer,
// where to get a token (realm) for which service and scope. Pure parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace boxcar::images {

struct AuthChallenge {
  enum class Scheme { basic, bearer };
  Scheme scheme = Scheme::basic;
  std::string realm;
  std::string service;
  std::string scope;
};

// The first Basic or Bearer challenge of a header value such as
// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"`;
// nullopt when there is none (another scheme, or not parseable).
std::optional<AuthChallenge> parse_auth_challenge(std::string_view header);

}  // namespace boxcar::images
