// Host patterns: the names a step's `egress` list lets it reach ("registry.npmjs.org",
// "*.pythonhosted.org", "github.com:443"). Parsed in one place for the pipeline's validation and
// the agent's resolver, so the two never disagree on what a pattern means.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar {

struct HostPattern {
  // Lowercase, no trailing dot. Either a DNS name ("github.com") or "*." and a name, which
  // matches every name below it at any depth ("*.pythonhosted.org" matches
  // "files.pythonhosted.org" and "a.b.pythonhosted.org", not "pythonhosted.org" itself).
  std::string name;
  std::optional<uint16_t> port;  // only this TCP/UDP port; none: every port

  bool wildcard() const { return name.starts_with("*."); }
  std::string text() const;  // as written back: "github.com:443"
};

// "name", "*.name", "name:port". Names are letters, digits, '-' and '.' (labels of 1..63
// characters, 253 at most, not an address: raw addresses belong in --egress-allow), matched
// without regard to case; a port is 1..65535. The error says what is wrong, e.g.
// `"*.com:99999": the port must be 1..65535`.
Result<HostPattern> parse_host_pattern(std::string_view text);

// Whether `host` (any case, an optional trailing dot) is one the pattern names; ports aside.
bool host_pattern_matches(const HostPattern& pattern, std::string_view host);

}  // namespace boxcar
