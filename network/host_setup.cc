#include "network/host_setup.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace boxcar::network {

namespace {

std::string read_line(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

Status write_sysctl(const std::filesystem::path& p, const std::string& value) {
  std::ofstream f(p);
  f << value;
  f.flush();
  if (!f) return Error{"job networks: cannot write " + value + " to " + p.string() + " (run as root)", EACCES, ErrorCode::unavailable};
  return {};
}

void machine_addresses(std::vector<std::string>& v4, std::vector<std::string>& v6) {
  v4.clear();
  v6.clear();
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
      v4.emplace_back(text);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, text, sizeof text);
      v6.emplace_back(text);
    }
  }
  ::freeifaddrs(list);
  for (auto* v : {&v4, &v6}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
}

bool has_ipv6_default_route() {
  std::ifstream f("/proc/net/ipv6_route");
  std::string dst, dst_len, src, src_len, hop, metric, ref, use, flags, dev;
  while (f >> dst >> dst_len >> src >> src_len >> hop >> metric >> ref >> use >> flags >> dev) {
    if (dst_len == "00" && dev != "lo" && dst == std::string(32, '0')) return true;
  }
  return false;
}

Status check_pool_free(const AllowRule& pool) {
  auto conflict = [&](const std::string& dev, const std::array<unsigned char, 16>& dst, unsigned len) -> Status {
    if (len == 0 || dev == "lo" || dev.starts_with("bxj")) return {};
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(pool.family, dst.data(), text, sizeof text);
    if (!overlaps(pool, AllowRule{pool.family, text, len, std::nullopt})) return {};
    return Error{"job networks: the address pool " + pool.cidr() + " overlaps the machine's route to " + text + "/" +
                     std::to_string(len) + " on " + dev + "; choose a pool outside the machine's networks",
                 0, ErrorCode::unavailable, pool.family == AF_INET ? "network_pool_v4" : "network_pool_v6"};
  };
  if (pool.family == AF_INET) {
    std::ifstream f("/proc/net/route");
    std::string line;
    std::getline(f, line);  // the column names
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string dev;
      unsigned dst = 0, gw = 0, flags = 0, refcnt = 0, use = 0, metric = 0, mask = 0;
      in >> dev >> std::hex >> dst >> gw >> flags >> std::dec >> refcnt >> use >> metric >> std::hex >> mask;
      std::array<unsigned char, 16> d{};
      std::memcpy(d.data(), &dst, 4);  // the kernel prints it in network order read as a host int
      auto s = conflict(dev, d, static_cast<unsigned>(__builtin_popcount(mask)));
      if (!s) return s;
    }
    return {};
  }
  std::ifstream f("/proc/net/ipv6_route");
  std::string dst, dst_len, src, src_len, hop, metric, ref, use, flags, dev;
  while (f >> dst >> dst_len >> src >> src_len >> hop >> metric >> ref >> use >> flags >> dev) {
    std::array<unsigned char, 16> d{};
    for (size_t i = 0; i < 16; ++i) d[i] = static_cast<unsigned char>(std::stoul(dst.substr(i * 2, 2), nullptr, 16));
    if (d[0] == 0xff || (d[0] == 0xfe && (d[1] & 0xc0) == 0x80)) continue;  // multicast, link-local: every link has them
    auto s = conflict(dev, d, static_cast<unsigned>(std::stoul(dst_len, nullptr, 16)));
    if (!s) return s;
  }
  return {};
}

Status enable_forwarding(bool ipv6) {
  if (read_line("/proc/sys/net/ipv4/ip_forward") != "1") {
    auto s = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    if (!s) return s;
  }
  if (!ipv6 || read_line("/proc/sys/net/ipv6/conf/all/forwarding") == "1") return {};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/sys/net/ipv6/conf", ec)) {
    if (read_line(entry.path() / "accept_ra") == "1") (void)write_sysctl(entry.path() / "accept_ra", "2");
  }
  return write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
}

}  // namespace boxcar::network
