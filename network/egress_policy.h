// The egress policy of an agent's jobs, as data: which destinations a job's steps may reach
// outside their own network. Chosen by the operator (--egress, --egress-allow) and narrowed per
// step by its `egress` list of names (base/host_pattern.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace boxcar::network {

enum class EgressMode {
  none,    // nothing leaves the job: loopback only, no resolver
  public_,  // "public": everything but the agent machine's own addresses and the ranges below
  all,     // everything (the agent machine's own addresses still only through `allow`)
};

// "none" | "public" | "all"; the error names the three.
Result<EgressMode> parse_egress_mode(std::string_view text);
std::string_view egress_mode_name(EgressMode mode);

// One --egress-allow: a network and, optionally, one port of it.
//   "10.0.0.0/8", "10.0.0.5" (= /32), "10.0.0.5:5432", "10.0.0.0/8:443",
//   "fd00::/8", "fd00::5" (= /128), "[fd00::5]:443", "[fd00::/8]:443"
struct AllowRule {
  int family = 0;           // AF_INET or AF_INET6
  std::string address;      // the network address, host bits cleared: "10.0.0.0", "fd00::"
  unsigned prefix = 0;      // 0..32 or 0..128
  std::optional<uint16_t> port;

  std::string cidr() const;  // "10.0.0.0/8"
  std::string text() const;  // as parse_allow_rule reads it back
};

// The error says what is wrong and shows the accepted forms.
Result<AllowRule> parse_allow_rule(std::string_view text);

// Whether two networks share an address (ports aside): same family, and equal in the bits of the
// shorter prefix.
bool overlaps(const AllowRule& a, const AllowRule& b);

struct EgressPolicy {
  EgressMode mode = EgressMode::public_;
  std::vector<AllowRule> allow;  // reachable in every mode but none, before anything is refused
};

// What `public` refuses besides the agent machine's own addresses, in CIDR text, one place:
// this-network 0/8, loopback 127/8, RFC 1918, CGNAT 100.64/10, link-local 169.254/16 (cloud
// metadata), IETF 192.0.0/24, multicast 224/4, reserved 240/4; IPv6 unspecified/loopback, v4-mapped
// ::ffff:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48 and 6to4 2002::/16 (each can carry a
// private IPv4 address to a translator), unique-local fc00::/7, link-local fe80::/10,
// site-local fec0::/10, multicast ff00::/8.
const std::vector<std::string>& public_refused_v4();
const std::vector<std::string>& public_refused_v6();

// Why `public` refuses an address, in a few words for a step's log ("private address (RFC
// 1918)", "link-local address (cloud metadata)"); "" when it does not.
std::string public_refusal_reason(std::string_view address);

}  // namespace boxcar::network
