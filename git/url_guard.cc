#include "git/url_guard.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <memory>

#include "base/url.h"
#include "git/checkout.h"

namespace boxcar::git {

namespace {

bool v4_public(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return !(in(0x00000000, 8) ||     // "this network"
           in(0x0a000000, 8) ||     // 10/8
           in(0x64400000, 10) ||    // 100.64/10, carrier-grade NAT
           in(0x7f000000, 8) ||     // loopback
           in(0xa9fe0000, 16) ||    // link-local, cloud metadata
           in(0xac100000, 12) ||    // 172.16/12
           in(0xc0000000, 24) ||    // IETF protocol assignments
           in(0xc0000200, 24) ||    // TEST-NET-1
           in(0xc0a80000, 16) ||    // 192.168/16
           in(0xc6120000, 15) ||    // benchmarking
           in(0xc6336400, 24) ||    // TEST-NET-2
           in(0xcb007100, 24) ||    // TEST-NET-3
           in(0xe0000000, 4) ||     // multicast
           in(0xf0000000, 4));      // reserved, broadcast
}

bool v6_public(const std::array<uint8_t, 16>& b) {
  static constexpr std::array<uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::array<uint8_t, 12> kNat64{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  auto v4_at_end = [&b] {
    return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
  };
  if (std::memcmp(b.data(), kMapped.data(), 12) == 0 || std::memcmp(b.data(), kNat64.data(), 12) == 0) {
    return v4_public(v4_at_end());
  }
  bool zero_prefix = std::all_of(b.begin(), b.begin() + 15, [](uint8_t x) { return x == 0; });
  if (zero_prefix && (b[15] == 0 || b[15] == 1)) return false;  // :: and ::1
  if ((b[0] & 0xfe) == 0xfc) return false;                       // fc00::/7, unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;       // fe80::/10, link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;       // fec0::/10, old site-local
  if (b[0] == 0xff) return false;                                // multicast
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;  // documentation
  if (std::all_of(b.begin(), b.begin() + 12, [](uint8_t x) { return x == 0; })) return false;  // ::a.b.c.d
  return true;
}

}  // namespace

std::string git_url_host(std::string_view url) {
  if (url.empty() || is_local_url(url)) return "";
  if (url.find("://") == std::string_view::npos) {  // scp-style [user@]host:path
    std::string_view head = url.substr(0, url.find(':'));
    if (size_t at = head.rfind('@'); at != std::string_view::npos) head = head.substr(at + 1);
    std::string host(head);
    for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return host;
  }
  return url_host(url);
}

bool is_public_address(std::string_view address) {
  std::string text(address);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return v4_public(ntohl(v4.s_addr));
  std::array<uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, text.c_str(), v6.data()) == 1) return v6_public(v6);
  return false;
}

Status check_public_url(std::string_view url) {
  const std::string host = git_url_host(url);
  const std::string shown = redact_url(std::string(url));
  if (host.empty()) {
    return Error{"cannot tell the host of " + shown + ": give an https:// or ssh:// URL", 0, ErrorCode::invalid_input, "url"};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &raw); rc != 0) {
    return Error{"cannot resolve " + host + " (of " + shown + "): " + ::gai_strerror(rc), 0, ErrorCode::invalid_input, "url"};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(raw, &::freeaddrinfo);
  for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    const void* where = ai->ai_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if (!::inet_ntop(ai->ai_family, where, text.data(), text.size())) continue;
    if (!is_public_address(text.data())) {
      return Error{host + " (of " + shown + ") resolves to " + text.data() +
                       ", a loopback, private or link-local address: the agent fetches from those only when "
                       "started with --sandbox-git-allow-private",
                   0, ErrorCode::invalid_input, "url"};
    }
  }
  return {};
}

}  // namespace boxcar::git
