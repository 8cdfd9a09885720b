#include "network/egress_policy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace boxcar::network {

namespace {

Error bad_rule(std::string_view text, const std::string& why) {
  return Error{"--egress-allow \"" + std::string(text) + "\": " + why +
                   "; give a network or an address, optionally with a port: 10.0.0.0/8, 10.0.0.5:5432, "
                   "fd00::/8, [fd00::5]:443",
               0, ErrorCode::usage, "egress_allow"};
}

bool parse_number(std::string_view s, unsigned max, unsigned& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && out <= max;
}

struct Range {
  int family;
  std::array<unsigned char, 16> bytes;
  unsigned prefix;
  const char* reason;
};

bool parse_cidr(std::string_view text, int& family, std::array<unsigned char, 16>& bytes, unsigned& prefix) {
  std::string_view addr = text;
  std::string_view len;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = text.substr(slash + 1);
  }
  std::string a(addr);
  bytes.fill(0);
  if (::inet_pton(AF_INET, a.c_str(), bytes.data()) == 1) {
    family = AF_INET;
  } else if (::inet_pton(AF_INET6, a.c_str(), bytes.data()) == 1) {
    family = AF_INET6;
  } else {
    return false;
  }
  unsigned max = family == AF_INET ? 32 : 128;
  prefix = max;
  if (!len.empty() || text.find('/') != std::string_view::npos) {
    if (!parse_number(len, max, prefix)) return false;
  }
  return true;
}

bool within(const std::array<unsigned char, 16>& addr, const std::array<unsigned char, 16>& net, unsigned prefix) {
  for (unsigned bit = 0; bit < prefix; ++bit) {
    unsigned char mask = static_cast<unsigned char>(0x80 >> (bit % 8));
    if ((addr[bit / 8] & mask) != (net[bit / 8] & mask)) return false;
  }
  return true;
}

struct Refused {
  const char* cidr;
  const char* reason;
};

// One table: the ranges and why each is refused, so the rules and the log line agree.
const std::vector<Refused>& refused_v4_table() {
  static const std::vector<Refused> t = {
      {"0.0.0.0/8", "this-network address"},
      {"10.0.0.0/8", "private address (RFC 1918)"},
      {"100.64.0.0/10", "shared address space (CGNAT)"},
      {"127.0.0.0/8", "loopback address"},
      {"169.254.0.0/16", "link-local address (cloud metadata)"},
      {"172.16.0.0/12", "private address (RFC 1918)"},
      {"192.0.0.0/24", "IETF protocol address"},
      {"192.168.0.0/16", "private address (RFC 1918)"},
      {"224.0.0.0/4", "multicast address"},
      {"240.0.0.0/4", "reserved address"},
  };
  return t;
}

const std::vector<Refused>& refused_v6_table() {
  static const std::vector<Refused> t = {
      {"::/127", "unspecified or loopback address"},
      {"::ffff:0:0/96", "IPv4-mapped address"},
      {"64:ff9b::/96", "NAT64 address (it can carry a private IPv4 address)"},
      {"64:ff9b:1::/48", "local-use NAT64 address"},
      {"2002::/16", "6to4 address (it can carry a private IPv4 address)"},
      {"fc00::/7", "unique-local address"},
      {"fe80::/10", "link-local address"},
      {"fec0::/10", "site-local address"},
      {"ff00::/8", "multicast address"},
  };
  return t;
}

std::vector<std::string> cidrs(const std::vector<Refused>& table) {
  std::vector<std::string> out;
  for (const auto& r : table) out.emplace_back(r.cidr);
  return out;
}

std::string address_text(int family, const std::array<unsigned char, 16>& bytes) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

}  // namespace

Result<EgressMode> parse_egress_mode(std::string_view text) {
  if (text == "none") return EgressMode::none;
  if (text == "public") return EgressMode::public_;
  if (text == "all") return EgressMode::all;
  return Error{"--egress \"" + std::string(text) +
                   "\": must be none (loopback only), public (the internet, not private ranges or this "
                   "machine) or all",
               0, ErrorCode::usage, "egress"};
}

std::string_view egress_mode_name(EgressMode mode) {
  switch (mode) {
    case EgressMode::none: return "none";
    case EgressMode::public_: return "public";
    case EgressMode::all: return "all";
  }
  return "public";
}

std::string AllowRule::cidr() const { return address + "/" + std::to_string(prefix); }

std::string AllowRule::text() const {
  if (!port) return cidr();
  return family == AF_INET6 ? "[" + cidr() + "]:" + std::to_string(*port) : cidr() + ":" + std::to_string(*port);
}

Result<AllowRule> parse_allow_rule(std::string_view text) {
  std::string_view net = text;
  std::optional<uint16_t> port;
  auto take_port = [&](std::string_view p) -> bool {
    unsigned value = 0;
    if (!parse_number(p, 65535, value) || value == 0) return false;
    port = static_cast<uint16_t>(value);
    return true;
  };
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad_rule(text, "a '[' without its ']'");
    net = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(":") || !take_port(rest.substr(1))) return bad_rule(text, "the port must be 1..65535");
    }
  } else if (size_t colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    net = text.substr(0, colon);  // one colon: IPv4 with a port (IPv6 has at least two)
    if (!take_port(text.substr(colon + 1))) return bad_rule(text, "the port must be 1..65535");
  }
  AllowRule rule;
  std::array<unsigned char, 16> bytes{};
  if (!parse_cidr(net, rule.family, bytes, rule.prefix)) {
    return bad_rule(text, "\"" + std::string(net) + "\" is not an IPv4 or IPv6 address or network");
  }
  for (unsigned bit = rule.prefix; bit < 128; ++bit) bytes[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
  rule.address = address_text(rule.family, bytes);
  rule.port = port;
  return rule;
}

bool overlaps(const AllowRule& a, const AllowRule& b) {
  if (a.family != b.family) return false;
  std::array<unsigned char, 16> x{}, y{};
  ::inet_pton(a.family, a.address.c_str(), x.data());
  ::inet_pton(b.family, b.address.c_str(), y.data());
  return within(x, y, std::min(a.prefix, b.prefix));
}

const std::vector<std::string>& public_refused_v4() {
  static const std::vector<std::string> v = cidrs(refused_v4_table());
  return v;
}

const std::vector<std::string>& public_refused_v6() {
  static const std::vector<std::string> v = cidrs(refused_v6_table());
  return v;
}

std::string public_refusal_reason(std::string_view address) {
  int family = 0;
  unsigned prefix = 0;
  std::array<unsigned char, 16> bytes{};
  if (address.find('/') != std::string_view::npos || !parse_cidr(address, family, bytes, prefix)) return {};
  for (const auto& r : family == AF_INET ? refused_v4_table() : refused_v6_table()) {
    int f = 0;
    unsigned p = 0;
    std::array<unsigned char, 16> net{};
    parse_cidr(r.cidr, f, net, p);
    if (within(bytes, net, p)) return r.reason;
  }
  return {};
}

}  // namespace boxcar::network
